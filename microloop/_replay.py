"""``microloop replay``: runs a recorded trajectory through a policy and reports where it would have
blocked.

Reads OpenAI chat ``messages`` (assistant ``tool_calls`` / legacy ``function_call``, then ``tool``
messages) and Anthropic messages (``tool_use`` blocks, then ``tool_result`` blocks), as a JSON list,
an object with ``messages`` (and optionally ``tools``), or JSONL with one message per line. The real
results are recorded after each call, blocked or not: the report is counterfactual from the first
block on (the real agent saw the real result, not MicroLoop's message).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .guardrail import Guardrail


@dataclass
class ToolCall:
    id: str
    name: str
    args: Any  # JSON text (OpenAI) or a value (Anthropic)


@dataclass
class Step:
    step: int
    tool: str
    args: str
    action: str
    rule: str = ""
    message: str = ""
    count: int = 0
    result_chars: int = 0


@dataclass
class Report:
    source: str
    policy: str
    steps: List[Step] = field(default_factory=list)

    def summary(self) -> Dict[str, Any]:
        by = {a: sum(1 for s in self.steps if s.action == a) for a in ("allow", "warn", "block", "halt")}
        stopped = [s for s in self.steps if s.action in ("block", "halt")]
        return {
            "calls": len(self.steps),
            **by,
            "first_block_step": stopped[0].step if stopped else None,
            "rules": sorted({s.rule for s in stopped}),
            # what the model would not have read: the results of the calls that would not have run
            "est_tokens_saved": sum(s.result_chars for s in stopped) // 4,
        }

    def to_json(self) -> Dict[str, Any]:
        return {"source": self.source, "policy": self.policy, "steps": [asdict(s) for s in self.steps], "summary": self.summary()}


def load_messages(text: str) -> Tuple[List[dict], List[str]]:
    """The messages and the declared tool names of a JSON or JSONL trajectory."""
    text = text.strip()
    tools: List[str] = []
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(doc, dict):
        for t in doc.get("tools") or []:
            name = t.get("name") or (t.get("function") or {}).get("name")
            if name:
                tools.append(name)
        doc = doc.get("messages", [])
    if not isinstance(doc, list) or not all(isinstance(m, dict) for m in doc):
        raise ValueError("expected a list of chat messages, an object with `messages`, or JSONL of messages")
    # JSONL whose lines are whole conversations: concatenate their messages
    if doc and all("messages" in m and "role" not in m for m in doc):
        doc = [msg for conv in doc for msg in conv["messages"]]
    return doc, tools


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(part.get("text") if isinstance(part.get("text"), str) else json.dumps(part, sort_keys=True))
            else:
                parts.append(str(part))
        return "\n".join(parts)
    return json.dumps(content, sort_keys=True)


def events(messages: List[dict]) -> Iterator[Tuple[str, Any]]:
    """("call", ToolCall) and ("result", (id, text, is_error)) in conversation order."""
    for i, m in enumerate(messages):
        role = m.get("role")
        for k, tc in enumerate(m.get("tool_calls") or []):
            fn = tc.get("function") or {}
            yield "call", ToolCall(tc.get("id") or f"{i}.{k}", fn.get("name", ""), fn.get("arguments") or "{}")
        if m.get("function_call"):
            fn = m["function_call"]
            yield "call", ToolCall(f"{i}.fc", fn.get("name", ""), fn.get("arguments") or "{}")
        if role in ("tool", "function"):
            yield "result", (m.get("tool_call_id") or f"{i - 1}.fc", _text_of(m.get("content")), False)
        content = m.get("content")
        if isinstance(content, list):
            for block in content:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_use":
                    yield "call", ToolCall(block.get("id", f"{i}"), block.get("name", ""), block.get("input", {}))
                elif block.get("type") == "tool_result":
                    yield "result", (block.get("tool_use_id", ""), _text_of(block.get("content")), bool(block.get("is_error")))


def replay(text: str, policy: Any = "balanced", source: str = "-") -> Report:
    messages, tools = load_messages(text)
    guard = Guardrail(policy, tools=tools or None)
    report = Report(source, guard.policy)
    pending: Dict[str, Tuple[int, Step]] = {}  # tool call id -> (MicroLoop call id, step)
    for kind, ev in events(messages):
        if kind == "call":
            args = ev.args if isinstance(ev.args, str) else json.dumps(ev.args, ensure_ascii=False)
            try:
                v = guard.check(ev.name or "?", args)
                step = Step(len(report.steps) + 1, ev.name, args, v.action, v.rule, v.message, v.count)
            except Exception as e:  # invalid JSON arguments in the log: report them, go on
                v = None
                step = Step(len(report.steps) + 1, ev.name, args, "error", type(e).__name__, str(e))
            report.steps.append(step)
            pending[ev.id] = (v.call_id if v is not None and v.allowed else 0, step)
        else:
            call_id, text_out, is_error = ev
            if call_id not in pending:
                continue
            mid, step = pending.pop(call_id)
            step.result_chars = len(text_out)
            if mid:
                guard.record(mid, text_out, error=is_error or text_out.lstrip().lower().startswith(("error", "traceback")))
    return report


def format_report(report: Report, verbose: bool = False) -> str:
    lines = [f"Replay of {report.source} under policy {report.policy[:60]!r}:"]
    for s in report.steps:
        if s.action == "allow" and not verbose:
            continue
        args = s.args if len(s.args) <= 60 else s.args[:57] + "..."
        lines.append(f"  step {s.step:3}  {s.action.upper():5}  {s.tool} {args}")
        if s.rule:
            lines.append(f"             [{s.rule}] {s.message[:140]}")
    sm = report.summary()
    lines.append("")
    lines.append(
        f"{sm['calls']} calls: {sm['allow']} allowed, {sm['warn']} warned, {sm['block']} blocked, {sm['halt']} halted."
    )
    if sm["first_block_step"]:
        lines.append(f"First block at step {sm['first_block_step']} ({', '.join(sm['rules'])}); "
                     f"about {sm['est_tokens_saved']:,} tokens of results the model would not have read.")
    else:
        lines.append("The policy would not have blocked anything.")
    return "\n".join(lines)
