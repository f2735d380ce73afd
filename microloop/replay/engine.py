"""Runs each recorded run's calls through a :class:`~microloop.Guardrail` and keeps every verdict.

Each call is checked as the agent made it; when the verdict lets it run, the result the log recorded
is recorded (``error`` as the log says). A blocked call leaves the history unchanged, exactly as in a
guarded run, but the log goes on with what the real agent did next: from the first block on, the
report is counterfactual (the real agent read the real result, not MicroLoop's message).
Under a policy with ``mode = "observe"`` the replay observes instead: every call runs and enters the
history, and each step shows the would-be verdict, as a guard in shadow mode logged it.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from ..errors import MicroLoopError
from ..guardrail import Guardrail
from .formats import Call, Run, UnknownFormat, parse

__all__ = ["Step", "RunReport", "Replay", "replay_run", "replay_text", "replay_paths", "find_files", "totals"]

STOPPED = ("block", "halt")
RESULT_KEPT = 2000  # characters of each answer kept for the report


@dataclass
class Step:
    step: int
    tool: str
    args: str
    action: str
    rule: str = ""
    message: str = ""
    count: int = 0
    result: str = ""
    result_chars: int = 0
    error: bool = False
    tokens: Optional[int] = None
    time: Optional[str] = None


@dataclass
class RunReport:
    source: str  # the file
    name: str  # the run (a file may hold many)
    format: str
    policy: str
    steps: List[Step] = field(default_factory=list)

    def summary(self) -> Dict[str, Any]:
        by = {a: 0 for a in ("allow", "warn", "block", "halt", "error")}
        for s in self.steps:
            by[s.action] = by.get(s.action, 0) + 1
        stopped = [s for s in self.steps if s.action in STOPPED]
        has_tokens = any(s.tokens is not None for s in self.steps)
        return {
            "calls": len(self.steps),
            **by,
            "first_block_step": stopped[0].step if stopped else None,
            "rules": sorted({s.rule for s in stopped}),
            "warn_rules": sorted({s.rule for s in self.steps if s.action == "warn"}),
            "calls_saved": len(stopped),
            # the model tokens the log records for the turns that made the blocked calls
            "tokens": sum(s.tokens or 0 for s in self.steps) if has_tokens else None,
            "tokens_saved": sum(s.tokens or 0 for s in stopped) if has_tokens else None,
            # what the model would not have read: the answers of the calls that would not have run
            "est_tokens_saved": sum(s.result_chars for s in stopped) // 4,
        }

    def to_json(self) -> Dict[str, Any]:
        return {"source": self.source, "name": self.name, "format": self.format, "policy": self.policy,
                "steps": [asdict(s) for s in self.steps], "summary": self.summary()}


def totals(reports: Iterable[RunReport]) -> Dict[str, Any]:
    t: Dict[str, Any] = {"runs": 0, "runs_blocked": 0, "calls": 0, "allow": 0, "warn": 0, "block": 0, "halt": 0,
                         "error": 0, "calls_saved": 0, "tokens": None, "tokens_saved": None, "est_tokens_saved": 0}
    for r in reports:
        s = r.summary()
        t["runs"] += 1
        t["runs_blocked"] += s["calls_saved"] > 0
        for k in ("calls", "allow", "warn", "block", "halt", "error", "calls_saved", "est_tokens_saved"):
            t[k] += s[k]
        for k in ("tokens", "tokens_saved"):
            if s[k] is not None:
                t[k] = (t[k] or 0) + s[k]
    return t


class _Replaying(Guardrail):
    """A plain guard even under a policy in observe mode (no observe log)."""

    __slots__ = ()


class Replay:
    """One policy, many runs: a single session, reset between runs."""

    def __init__(self, policy: Any = "balanced") -> None:
        # A policy in observe mode replays as it observes: every call runs and enters the history,
        # each verdict is the would-be one (Verdict.observed); nothing is logged.
        self.guard = _Replaying(policy)
        self.policy = self.guard.policy
        self._tools: List[str] = []

    def run(self, run: Run, source: str = "-") -> RunReport:
        g = self.guard
        g.reset()
        if run.tools != self._tools:
            g.set_tools(run.tools)
            self._tools = list(run.tools)
        report = RunReport(source, run.name, run.format, self.policy)
        if run.conversation is not None and run.dialect is not None:
            self._native(run, report)
            return report
        steps = report.steps
        pending: Dict[str, Tuple[int, Step]] = {}  # the log's call id -> (MicroLoop's call id, step)
        for ev in run.events:
            if ev.__class__ is Call:
                args = ev.args if isinstance(ev.args, str) else json.dumps(ev.args, ensure_ascii=False)
                try:
                    v = g.check(ev.tool or "?", args)
                    step = Step(len(steps) + 1, ev.tool, args, v.observed or v.action, v.rule, v.message, v.count, tokens=ev.tokens, time=ev.time)
                    mid = v.call_id
                except MicroLoopError as e:  # arguments in the log that are not JSON: reported, not fatal
                    step = Step(len(steps) + 1, ev.tool, args, "error", type(e).__name__, str(e), tokens=ev.tokens, time=ev.time)
                    mid = 0
                steps.append(step)
                pending[ev.id] = (mid, step)
            else:
                hit = pending.pop(ev.id, None)
                if hit is None:
                    continue
                mid, step = hit
                text = ev.text  # type: ignore[union-attr]
                step.result = text[:RESULT_KEPT]
                step.result_chars = len(text)
                step.error = ev.error  # type: ignore[union-attr]
                if mid:
                    g.record(mid, text, error=ev.error)  # type: ignore[union-attr]
        return report


    def _native(self, run: Run, report: RunReport) -> None:
        """An LLM API conversation, read by the native replay the proxy uses: the verdicts are the
        proxy's by construction. The log's token counts are joined back by call id."""
        calls = {ev.id: ev for ev in run.events if ev.__class__ is Call}
        for c in self.guard.replay(run.conversation, run.dialect or "openai")["calls"]:
            ev = calls.get(c["id"])
            result = c["result"] or {}
            text = result.get("text", "")
            report.steps.append(Step(
                len(report.steps) + 1, c["tool"], c["args"], c["action"], c["rule"], c["message"], c["count"],
                result=text[:RESULT_KEPT], result_chars=len(text), error=bool(result.get("error")),
                tokens=getattr(ev, "tokens", None), time=getattr(ev, "time", None)))


def replay_run(run: Run, policy: Any = "balanced", source: str = "-") -> RunReport:
    return Replay(policy).run(run, source)


def replay_text(text: str, policy: Any = "balanced", source: str = "-", fmt: Optional[str] = None) -> List[RunReport]:
    r = Replay(policy)
    return [r.run(run, source) for run in parse(text, source, fmt)]


LOG_SUFFIXES = (".jsonl", ".json", ".traj")


def find_files(paths: Iterable[str]) -> Iterator[Tuple[str, bool]]:
    """(file, named): each file named, each log file under a folder, each match of a glob. ``named``
    is False for files found by walking or globbing, which are skipped when no format fits."""
    for p in paths:
        if p == "-":
            yield p, True
        elif os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    if f.endswith(LOG_SUFFIXES):
                        yield os.path.join(root, f), False
        elif any(ch in p for ch in "*?[") and not os.path.exists(p):
            matches = sorted(glob.glob(os.path.expanduser(p), recursive=True))
            if not matches:
                yield p, True  # reported as missing
            for m in matches:
                if os.path.isdir(m):
                    yield from find_files([m])
                else:
                    yield m, False
        else:
            yield p, True


class Progress:
    """A progress bar on stderr, only when it is a terminal and there is more than one file."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.on = total > 1 and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.done = 0

    def step(self, label: str) -> None:
        self.done += 1
        if not self.on:
            return
        width = 30
        filled = width * self.done // self.total
        name = label if len(label) <= 40 else "..." + label[-37:]
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {name:<40}")
        self.stream.flush()

    def close(self) -> None:
        if self.on:
            self.stream.write("\r" + " " * 80 + "\r")
            self.stream.flush()


def replay_paths(
    paths: Iterable[str],
    policy: Any = "balanced",
    fmt: Optional[str] = None,
    on_problem: Optional[Callable[[str, str, bool], None]] = None,
    progress: Any = None,
) -> List[RunReport]:
    """Every run in the given files, folders and globs. ``on_problem(file, reason, named)`` hears
    about each file that cannot be read (``named``: the user named it, so it is an error)."""
    r = Replay(policy)
    files = list(find_files(paths))
    bar = Progress(len(files), progress)
    reports: List[RunReport] = []
    try:
        for path, named in files:
            bar.step(path)
            try:
                if path == "-":
                    text = sys.stdin.read()
                else:
                    with open(path, encoding="utf-8", errors="surrogateescape") as f:
                        text = f.read()
                runs = parse(text, os.path.basename(path) if path != "-" else "-", fmt)
            except (OSError, UnknownFormat, UnicodeError) as e:
                if on_problem is not None:
                    on_problem(path, str(e) if not isinstance(e, OSError) else (e.strerror or str(e)), named)
                continue
            reports.extend(r.run(run, path) for run in runs)
    finally:
        bar.close()
    return reports
