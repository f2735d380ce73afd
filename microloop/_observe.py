"""Shadow mode: a policy with ``mode = "observe"`` computes, logs and counts every verdict and never
blocks a call.

:class:`Guardrail` returns an :class:`ObservingGuardrail` for such a policy. The library judges
every call on the history as executed and lets it run: a verdict an enforcing guard would have given
as ``warn``, ``block`` or ``halt`` comes back as ``allow`` with that action in
:attr:`Verdict.observed <microloop.Verdict.observed>` (its rule, message and count kept), and the
call enters the history like any other, so its result is recorded. The guard logs every verdict and
result, counts them (``stats.observed``, ``observed_counts``) and keeps the latest in
``last_observed``. ``microloop replay`` reads the log; replayed under the same policy (observe mode)
it finds the verdicts logged.

A guard loaded from a snapshot or unpickled under such a policy observes too (its log is then
``$MICROLOOP_OBSERVE_LOG`` or the logger). The log (JSONL, appended) is the ``observe_log`` argument, a path or a writable text file, or the
file named by ``$MICROLOOP_OBSERVE_LOG``; without either, the verdicts that are not ``allow`` go to
the ``microloop.observe`` logger. One line per event (``action`` is the would-be action)::

    {"microloop": "observe", "event": "check", "session": "", "call": 1, "time": "...", "tool": "search",
     "args": {...}, "action": "block", "rule": "loop.no_progress", "message": "...", "count": 2}
    {"microloop": "observe", "event": "record", "session": "", "call": 1, "output": "...", "error": false}
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import IO, Any, Dict, Optional, Union

from .guardrail import Guardrail, Verdict
from .policy import load_policy

__all__ = ["ObservingGuardrail", "observe_mode"]

_log = logging.getLogger("microloop.observe")
_TOML_MODE = re.compile(r"""^\s*mode\s*=\s*["']([^"']*)["']""", re.M)


def observe_mode(policy: Any) -> bool:
    """True when the policy says ``mode = "observe"`` (the library validates the value)."""
    if isinstance(policy, Mapping):
        return policy.get("mode") == "observe"
    if policy is None:
        return False
    compiled = getattr(policy, "_policy", None)  # an Engine: the text it was compiled from
    try:
        raw = compiled if isinstance(compiled, bytes) else load_policy(policy)[0]
        text = raw.decode("utf-8", "replace").strip()
    except Exception:
        return False  # the library reports the bad policy
    if "observe" not in text:
        return False
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            return False
        return isinstance(doc, dict) and doc.get("mode") == "observe"
    top = re.split(r"^\s*\[", text, maxsplit=1, flags=re.M)[0]  # TOML: keys before the first table
    m = _TOML_MODE.search(top)
    return bool(m and m.group(1) == "observe")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _value(args: Any) -> Any:
    if isinstance(args, (bytes, bytearray)):
        args = bytes(args).decode("utf-8", "replace")
    if isinstance(args, str):
        try:
            return json.loads(args)
        except ValueError:
            return args
    return {} if args is None else args


def _text(output: Any) -> Any:
    if output is None or isinstance(output, str):
        return output or ""
    if isinstance(output, (bytes, bytearray)):
        return bytes(output).decode("utf-8", "replace")
    try:
        json.dumps(output)
        return output
    except (TypeError, ValueError):
        return str(output)


class _Sink:
    """One JSONL file shared by a guard and its sessions; lines written whole under a lock."""

    def __init__(self, target: Union[str, "os.PathLike[str]", IO[str], None]) -> None:
        self.lock = threading.Lock()
        self.own = False
        self.file: Optional[IO[str]] = None
        if target is None:
            target = os.environ.get("MICROLOOP_OBSERVE_LOG") or None
        if isinstance(target, (str, os.PathLike)):
            self.file = open(target, "a", encoding="utf-8")
            self.own = True
        elif target is not None:
            self.file = target

    def write(self, entry: Dict[str, Any]) -> None:
        if self.file is None:
            if entry.get("event") == "check" and entry.get("action") != "allow":
                _log.info("%s %s: would %s (%s) %s", entry["session"] or "-", entry["tool"], entry["action"], entry["rule"], entry["message"])
            return
        line = json.dumps(entry, ensure_ascii=False, default=str) + "\n"
        with self.lock:
            self.file.write(line)
            self.file.flush()

    def close(self) -> None:
        if self.own and self.file is not None:
            self.file.close()
            self.file = None


class ObservingGuardrail(Guardrail):
    """A :class:`Guardrail` under a policy in observe mode (see the module doc)."""

    def __init__(self, policy: Any = "balanced", *, tools: Any = None, on_warn: Any = None,
                 observe_log: Union[str, "os.PathLike[str]", IO[str], None] = None, store: Any = None) -> None:
        if store is not None:
            raise ValueError("observe mode keeps its session in the process: a policy with mode = \"observe\" cannot take a store")
        self._sink = _Sink(observe_log)
        super().__init__(policy, tools=tools, on_warn=on_warn)

    def _init(self, engine: Any, on_warn: Any, session: Any = None) -> None:
        # Also the way in for Guardrail.load and unpickling, which do not call __init__.
        if not hasattr(self, "_sink"):
            self._sink = _Sink(None)
        self._name = getattr(self, "_name", "")
        self.observed_counts: Dict[str, int] = {"warn": 0, "block": 0, "halt": 0}
        self.last_observed: Optional[Verdict] = None
        super()._init(engine, on_warn, session)

    def check(self, tool: Any, args: Any = None) -> Verdict:
        v = super().check(tool, args)
        would = v.observed
        if would:
            with self._lock:
                self.observed_counts[would] += 1
                self.last_observed = v
        self._sink.write({"microloop": "observe", "event": "check", "session": self._name, "call": v.call_id, "time": _now(),
                          "tool": tool if isinstance(tool, str) else bytes(tool).decode("utf-8", "replace"), "args": _value(args),
                          "action": would or v.action, "rule": v.rule, "message": v.message, "count": v.count})
        return v

    def record(self, call_id: int, output: Any = None, error: bool = False) -> None:
        super().record(call_id, output, error)
        self._sink.write({"microloop": "observe", "event": "record", "session": self._name, "call": call_id,
                          "output": _text(output), "error": bool(error)})

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.observed_counts = {"warn": 0, "block": 0, "halt": 0}
            self.last_observed = None

    def session(self, name: str) -> "ObservingGuardrail":
        s = self._sessions.get(name)
        if s is not None:
            return s  # type: ignore[return-value]
        with self._lock:
            s = self._sessions.get(name)
            if s is None:
                child: ObservingGuardrail = object.__new__(ObservingGuardrail)
                child._sink, child._name = self._sink, name  # one log for the guard and its sessions
                child._init(self._engine, self.on_warn)
                if self._tools:
                    child.set_tools(self._tools)
                self._sessions[name] = s = child
            return s  # type: ignore[return-value]

    def close(self) -> None:
        super().close()
        if not self._name:
            self._sink.close()
