"""``microloop replay``: what a policy would have done on runs an agent already recorded.

Reads the logs agents write (Claude Code, Codex CLI, Gemini CLI, OpenHands, SWE-agent,
mini-swe-agent, tau-bench, tau2-bench, LangSmith, OpenAI/Anthropic messages; see
:data:`formats.FORMATS`), runs every call through a :class:`~microloop.Guardrail`, and reports the
calls that would have been warned or blocked, and the calls and tokens that would have been saved.

>>> from microloop.replay import replay_text
>>> log = '''[{"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "ls", "arguments": "{}"}}]},
...          {"role": "tool", "tool_call_id": "1", "content": "a.txt"}]'''
>>> [s.action for s in replay_text(log)[0].steps]
['allow']
"""

from .engine import Replay, RunReport, Step, find_files, replay_paths, replay_run, replay_text, totals
from .formats import FORMATS, Call, Result, Run, UnknownFormat, detect, parse
from .text import format_report, format_totals

__all__ = [
    "FORMATS", "Call", "Result", "Run", "UnknownFormat", "detect", "parse",
    "Replay", "RunReport", "Step", "find_files", "replay_paths", "replay_run", "replay_text", "totals",
    "format_report", "format_totals",
]
