"""Sessions shared through a real redis-server (Debian's package, started on a free loopback port):
many workers on one session never lose each other's calls, and a killed worker loses nothing that
was acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Iterator

import pytest
import redis  # pinned in requirements-dev.txt

from microloop import Guardrail, PolicyMismatch
from microloop.store import RedisStore

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "store_worker.py")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import store_worker  # noqa: E402
from redis_server import redis_server  # noqa: E402


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with redis_server() as port:
        yield port


def store(port: int, key: str) -> RedisStore:
    return RedisStore(redis.Redis(port=port), key)


def test_two_guards_on_one_key_share_one_history(port: int) -> None:
    a = Guardrail("balanced", store=store(port, "two"), tools=["open_page"])
    b = Guardrail("balanced", store=store(port, "two"))
    v = a.check("open_page", {"url": "x"})
    b.record(v.call_id, "CAPTCHA")  # the result may come back to another worker
    v = b.check("open_page", {"url": "x"})
    assert v.action == "warn"
    a.record(v.call_id, "CAPTCHA")
    assert b.check("open_page", {"url": "x"}).action == "block"
    assert a.check("serach", {}).rule == "tool.unknown"  # the tool names live in the store too
    assert a.stats == b.stats and a.stats.calls == 2 and a.stats.blocked == 2
    with pytest.raises(PolicyMismatch):
        Guardrail("strict", store=store(port, "two")).check("open_page", {})
    store(port, "two").clear()
    assert Guardrail("balanced", store=store(port, "two")).stats.calls == 0


def test_the_named_sessions_of_a_stored_guard_live_in_the_store(port: int) -> None:
    # As the LangGraph adapter keeps one per thread id: a new process (here a new guard) picks the
    # thread's history up where it was.
    first = Guardrail("balanced", store=store(port, "agent"))
    v = first.session("thread:7").check("open_page", {"url": "x"})
    first.session("thread:7").record(v.call_id, "CAPTCHA")
    assert first.stats.calls == 0  # the guard's own history is another key
    later = Guardrail("balanced", store=store(port, "agent"))
    assert later.session("thread:7").check("open_page", {"url": "x"}).action == "warn"
    assert later.session("thread:8").check("open_page", {"url": "x"}).action == "allow"
    assert redis.Redis(port=port).exists("agent:thread:7", "agent:thread:8") == 2


def run_workers(port: int, key: str, workers: int, n: int, ack_file: str) -> list:
    return [
        subprocess.Popen([sys.executable, WORKER, str(port), key, str(w), str(n), f"{ack_file}.{w}"])
        for w in range(workers)
    ]


def acks(ack_file: str, workers: int) -> list:
    """(store version, op, call id, worker, index) of every acknowledged check and record, in the
    order the store took them."""
    out = []
    for w in range(workers):
        path = f"{ack_file}.{w}"
        if os.path.exists(path):
            for line in open(path, encoding="utf-8"):
                version, op, call_id, i = line.split()
                out.append((int(version), op, int(call_id), w, int(i)))
    return sorted(out)


def test_four_workers_on_one_session_give_the_history_of_the_same_calls_made_in_turn(port: int, tmp_path) -> None:
    workers, n = 4, 500
    ack_file = str(tmp_path / "ack")
    procs = run_workers(port, "four", workers, n, ack_file)
    assert [p.wait(timeout=600) for p in procs] == [0] * workers
    done = acks(ack_file, workers)
    versions = [d[0] for d in done]
    assert len(done) == 2 * workers * n and versions == list(range(1, 2 * workers * n + 1))  # none lost
    shared = Guardrail("balanced", store=store(port, "four")).stats
    assert (shared.calls, shared.results) == (workers * n, workers * n)
    # The same calls and results, made one after another in the order the store took them.
    alone = Guardrail("balanced")
    for _, op, call_id, w, i in done:
        if op == "check":
            assert alone.check("search", store_worker.args_of(w, i)).call_id == call_id
        else:
            alone.record(call_id, store_worker.result_of(w, i))
    assert alone.stats == shared


def test_a_worker_killed_between_load_and_save_loses_nothing_acknowledged(port: int, tmp_path) -> None:
    ack_file = str(tmp_path / "ack")
    procs = run_workers(port, "killed", 2, 100000, ack_file)
    time.sleep(3)
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    done = acks(ack_file, 2)
    checks = sum(1 for d in done if d[1] == "check")
    records = len(done) - checks
    assert checks > 10, "the workers made too few calls to test anything"
    st = Guardrail("balanced", store=store(port, "killed")).stats
    # Every acknowledged check and record is in the store; at most one more per worker was saved
    # without being acknowledged before the kill.
    assert checks <= st.calls <= checks + 2 and records <= st.results <= records + 2
    assert st.calls + st.results <= len(done) + 2
