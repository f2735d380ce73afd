"""What the framework adapters share: sessions with the agent's tool names, pending calls, text.

Each adapter runs a call through :class:`microloop._call.ToolCall` (check, run, record, nudge).

Tool calls run concurrently in every supported framework (thread pools or ``asyncio.gather``), so
nothing here assumes an order: a call's id is kept under the framework's own tool-call id, never
as "the last call".
"""

from __future__ import annotations

import json
import threading
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from .. import Guardrail, Halted, Verdict
from .._call import ToolCall


def parse_args(args: Any) -> dict[str, Any]:
    """The tool arguments as a dict, from a mapping, JSON text or nothing."""
    if args is None or args == "":
        return {}
    if isinstance(args, (str, bytes, bytearray)):
        value = json.loads(args)
        return value if isinstance(value, dict) else {"input": value}
    if isinstance(args, Mapping):
        return dict(args)
    return {"input": args}


def output_text(output: Any) -> str:
    """A tool output as the text the model reads (and the guard fingerprints)."""
    if isinstance(output, str):
        return output
    if isinstance(output, (bytes, bytearray)):
        return bytes(output).decode("utf-8", errors="replace")
    try:
        return json.dumps(output, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(output)


def halt(verdict: Verdict) -> Halted:
    """The exception that ends a run on a ``halt`` verdict."""
    return Halted(verdict)


class GuardSessions:
    """The guard, or one of its sessions per key (a thread id), each knowing the agent's tool names."""

    def __init__(self, guard: Guardrail) -> None:
        self._guard = guard
        self._lock = threading.Lock()
        self._tools: tuple[str, ...] | None = None
        self._told: set[Hashable] = set()

    @property
    def guard(self) -> Guardrail:
        return self._guard

    def set_tools(self, names: Iterable[str]) -> None:
        """Register the agent's tool names with the guard and every session (cheap when unchanged)."""
        names = tuple(sorted(set(names)))
        with self._lock:
            if names == self._tools:
                return
            self._tools = names
            self._told.clear()

    def get(self, key: Hashable | None = None) -> Guardrail:
        guard = self._guard if key is None else self._guard.session(str(key))
        with self._lock:  # held while registering: no call of this session is checked before it
            if self._tools is not None and key not in self._told:
                guard.set_tools(list(self._tools))
                self._told.add(key)
        return guard


class PendingCalls:
    """Checked, running tool calls, kept under the framework's own tool-call id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[Hashable, ToolCall] = {}

    def put(self, key: Hashable, call: ToolCall) -> None:
        with self._lock:
            self._calls[key] = call

    def pop(self, key: Hashable) -> ToolCall | None:
        with self._lock:
            return self._calls.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)
