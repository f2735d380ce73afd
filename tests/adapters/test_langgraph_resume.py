"""A LangGraph thread interrupted and resumed in a new process (SQLite checkpointer) keeps its
guard's history in a real redis-server (`Guardrail(..., store=RedisStore(...))`), so the loop that
spans the interruption is still blocked; with the history in process memory it is not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from redis_server import redis_server  # noqa: E402


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with redis_server() as port:
        yield port


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
