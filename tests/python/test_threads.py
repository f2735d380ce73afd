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


def test_a_slow_tool_beside_many_fast_ones_keeps_its_late_result() -> None:
    """Parallel tool calls: a slow tool finishes after 300 other calls pushed it out of the window
    (default 256). Its result is late, never an error, and is counted."""
    guard = Guardrail("balanced")
    slow_started = threading.Event()
    fast_done = threading.Event()

    @guard.verify
    def slow_build(target: str) -> str:
        slow_started.set()
        assert fast_done.wait(30)
        return f"built {target}"

    @guard.verify
    def read_file(path: str) -> str:
        return f"contents of {path}"

    results: list = []
    slow = threading.Thread(target=lambda: results.append(slow_build("app")))
    slow.start()
    assert slow_started.wait(30), "the slow call was never checked"
    for i in range(300):
        read_file(f"src/{i}.py")
    fast_done.set()
    slow.join()
    assert results == ["built app"]
    stats = guard.stats
    assert (stats.calls, stats.results, stats.late) == (301, 301, 1)


def test_eight_threads_with_slow_tools_lose_no_result() -> None:
    """8 threads x 2,000 check/record pairs through @verify on one guard, one slow call per thread
    held until the others are done: every call runs, every result is recorded, the slow ones late."""
    guard = Guardrail("balanced")
    barrier = threading.Barrier(THREADS)
    release = threading.Event()
    finished = threading.Semaphore(0)
    failures: list = []
    returned = [0] * THREADS
    slow_started = [threading.Event() for _ in range(THREADS)]

    @guard.verify
    def fetch(thread: int, page: int) -> str:
        if page == 0:  # the slow one: waits until every thread's fast calls are checked
            slow_started[thread].set()
            finished.release()
            assert release.wait(60)
        return f'{{"thread": {thread}, "page": {page}}}'

    def agent(n: int) -> None:
        barrier.wait()
        try:
            slow = threading.Thread(target=lambda: fetch(n, 0))
            slow.start()
            assert slow_started[n].wait(60), "the slow call was never checked"
            for i in range(1, CALLS):
                fetch(n, i)
                returned[n] += 1
            slow.join()
            returned[n] += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)
            release.set()

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    # The slow calls are released once all of them have started and every fast call has run.
    for _ in range(THREADS):
        assert finished.acquire(timeout=60)
    while sum(returned) < THREADS * (CALLS - 1) and not failures:
        threading.Event().wait(0.01)
    release.set()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    assert returned == [CALLS] * THREADS
    stats = guard.stats
    assert stats.calls == stats.results == THREADS * CALLS
    assert stats.late >= THREADS and stats.blocked == 0
