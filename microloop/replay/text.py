"""The replay as text: each run's warned and blocked calls, then the totals."""

from __future__ import annotations

from typing import Any, Dict, List

from .engine import RunReport


def _short(s: str, n: int) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 3] + "..."


def format_report(report: RunReport, verbose: bool = False) -> str:
    lines = [f"Replay of {report.name} ({report.format}) under policy {report.policy[:60]!r}:"]
    for s in report.steps:
        if s.action == "allow" and not verbose:
            continue
        lines.append(f"  step {s.step:3}  {s.action.upper():5}  {s.tool} {_short(s.args, 60)}")
        if s.rule:
            lines.append(f"             [{s.rule}] {_short(s.message, 140)}")
    sm = report.summary()
    lines.append(
        f"{sm['calls']} calls: {sm['allow']} allowed, {sm['warn']} warned, {sm['block']} blocked, {sm['halt']} halted"
        + (f", {sm['error']} unreadable" if sm["error"] else "") + ".")
    if sm["first_block_step"]:
        saved = f"{sm['calls_saved']} calls saved"
        if sm["tokens_saved"] is not None:
            saved += f", {sm['tokens_saved']:,} model tokens (as the log records them)"
        lines.append(f"First block at step {sm['first_block_step']} ({', '.join(sm['rules'])}); {saved}; "
                     f"about {sm['est_tokens_saved']:,} tokens of results the model would not have read.")
    else:
        lines.append("The policy would not have blocked anything.")
    return "\n".join(lines)


def format_totals(t: Dict[str, Any], problems: List[str]) -> str:
    lines = [f"Total: {t['runs']:,} runs ({t['runs_blocked']:,} with a block), {t['calls']:,} calls: "
             f"{t['warn']:,} warned, {t['block']:,} blocked, {t['halt']:,} halted."]
    saved = f"Saved: {t['calls_saved']:,} calls"
    if t["tokens_saved"] is not None:
        saved += f", {t['tokens_saved']:,} of {t['tokens']:,} model tokens the logs record"
    lines.append(saved + f"; about {t['est_tokens_saved']:,} tokens of results not read.")
    if problems:
        lines.append(f"{len(problems)} file(s) not replayed (see above).")
    return "\n".join(lines)
