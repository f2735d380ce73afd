"""Many threads on one Guardrail: cffi releases the GIL, so this runs truly concurrently in the library."""

from __future__ import annotations

import threading

from microloop import Guardrail

THREADS = 8
CALLS = 2000


def test_eight_threads_hammering_one_guard_keep_exact_counts() -> None:
    guard = Guardrail({"loops": {"window": 65536}})  # every call stays in the window
    barrier = threading.Barrier(THREADS)
    failures: list = []

    def agent(n: int) -> None:
        barrier.wait()
        try:
            for i in range(CALLS):
                v = guard.check("search", {"thread": n, "page": i})  # every call distinct: all allowed
                assert v.action == "allow", v
                guard.record(v.call_id, f"page {i} of thread {n}", error=(i % 10 == 0))
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    stats = guard.stats
    assert stats.calls == THREADS * CALLS
    assert stats.errors == THREADS * CALLS // 10
    assert stats.blocked == 0
    assert stats.history_len == THREADS * CALLS


def test_threads_repeating_one_call_are_blocked_exactly_once_each_after_the_limit() -> None:
    guard = Guardrail({"loops": {"max_identical": 50, "max_no_progress": 0}})
    barrier = threading.Barrier(THREADS)
    allowed: list = []
    lock = threading.Lock()

    def agent() -> None:
        barrier.wait()
        mine = 0
        for _ in range(100):
            v = guard.check("poll", {"id": 1})
            if v.allowed:
                mine += 1
                guard.record(v.call_id, "same")
        with lock:
            allowed.append(mine)

    threads = [threading.Thread(target=agent) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = guard.stats
    assert sum(allowed) == stats.calls
    assert stats.calls + stats.blocked == THREADS * 100
    assert stats.calls <= 51
