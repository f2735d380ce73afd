"""Shared by every adapter suite; imports no framework (CrewAI runs in its own virtualenv)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from microloop import Guardrail, Verdict


class SpyGuard:
    """A real ``Guardrail`` that also keeps every verdict it gave, so a test can compare what the
    model read with what the guard said."""

    def __init__(self, guard: Guardrail, log: list[tuple[str, Any, Verdict]] | None = None) -> None:
        self._guard = guard
        self._lock = threading.Lock()
        self.log: list[tuple[str, Any, Verdict]] = [] if log is None else log
        self.recorded: list[tuple[int, Any, bool]] = []

    def check(self, tool: str, args: Any = None) -> Verdict:
        verdict = self._guard.check(tool, args)
        with self._lock:
            self.log.append((tool, args, verdict))
        return verdict

    def record(self, call_id: int, output: Any, error: bool = False) -> None:
        with self._lock:
            self.recorded.append((call_id, output, error))
        self._guard.record(call_id, output, error=error)

    def session(self, name: str) -> SpyGuard:
        spy = SpyGuard(self._guard.session(name), self.log)
        spy.recorded = self.recorded
        spy._lock = self._lock
        return spy

    def __getattr__(self, name: str) -> Any:
        return getattr(self._guard, name)

    def actions(self, tool: str | None = None) -> list[str]:
        return [v.action for t, _, v in self.log if tool is None or t == tool]

    def messages(self, action: str) -> list[str]:
        return [v.message for _, _, v in self.log if v.action == action]


@pytest.fixture
def guard() -> SpyGuard:
    return SpyGuard(Guardrail("balanced"))
