"""A LangGraph thread interrupted and resumed in a new process (SQLite checkpointer) keeps its
guard's history in a real redis-server (`Guardrail(..., store=RedisStore(...))`), so the loop that
spans the interruption is still blocked; with the history in process memory it is not."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = shutil.which("redis-server")
    assert server, "redis-server is needed (Debian's package; .ci/run installs it)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL) as p:
        try:
            for _ in range(200):
                try:
                    redis.Redis(port=port).ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            yield port
        finally:
            p.terminate()
            p.wait(timeout=10)


def run(db: str, port: str, steps: int) -> list[dict]:
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "langgraph_resume.py"), db, port, str(steps)],
        capture_output=True, text=True, timeout=300, cwd=HERE,
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("where", ["redis", "memory"])
def test_a_loop_that_spans_an_interruption_is_blocked_after_the_resume(port: int, tmp_path, where: str) -> None:
    db = str(tmp_path / "checkpoints.sqlite")
    store = str(port) if where == "redis" else "memory"
    first = run(db, store, 2)  # two visits, the same CAPTCHA: the second is warned
    assert [m["status"] for m in first] == ["success", "success"]
    assert "loop" not in first[0]["content"].lower() and "Please solve the CAPTCHA" in first[1]["content"]
    resumed = run(db, store, 1)  # a new process resumes the thread from SQLite
    assert len(resumed) == 3
    if where == "redis":
        assert resumed[2]["status"] == "error" and "Please solve the CAPTCHA" not in resumed[2]["content"]
    else:  # the control: a history kept in memory starts empty in the new process
        assert resumed[2] == {"status": "success", "content": "Please solve the CAPTCHA"}
