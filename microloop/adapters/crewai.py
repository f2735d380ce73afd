"""CrewAI 1.x: tool-call hooks that check every tool call of a crew's agents.

Guard an existing crew (one line)::

    from microloop import Guardrail
    from microloop.adapters.crewai import guard_crew

    guard = Guardrail("balanced")
    crew = guard_crew(Crew(agents=[...], tasks=[...]), guard)
    crew.kickoff()

``guard_crew`` registers one global ``before_tool_call`` and one ``after_tool_call`` hook (sync: an
async hook never blocks), scoped to the crew's agents; ``unguard_crew(crew)`` removes them. The agents'
tool names are registered with the guard, so a hallucinated tool is answered with the real ones.

A blocked call is not run: the before-hook returns ``False`` and the after-hook puts the verdict's
message in place of CrewAI's fixed "Tool execution blocked by hook" text, so the model reads why and
pivots. The after-hook records every result and appends a ``warn``'s message. A ``halt`` raises
CrewAI's own ``HookAborted`` from the after-hook, which ends ``kickoff()``.

CrewAI's hooks fail open (an exception other than ``HookAborted`` is swallowed and the tool runs), so
the hooks here never raise on a block. Note that CrewAI stops a crew by itself on the 5th identical
(tool, arguments, result): the guard blocks a repeated call long before that.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

from crewai.hooks import HookAborted, ToolCallHookContext
from crewai.hooks.tool_hooks import (
    register_after_tool_call_hook,
    register_before_tool_call_hook,
    unregister_after_tool_call_hook,
    unregister_before_tool_call_hook,
)

from .. import Guardrail
from .._call import ToolCall
from ._common import PendingCalls, output_text, parse_args

__all__ = ["guard_crew", "unguard_crew"]

_BLOCKED_BY_HOOK = "Tool execution blocked by hook"
_installed: dict[int, tuple[Any, Any]] = {}
_lock = threading.Lock()


def guard_crew(crew: Any, guard: Guardrail) -> Any:
    """Check every tool call of ``crew``'s agents with ``guard``; returns the crew (for chaining)."""
    unguard_crew(crew)
    agents = list(crew.agents)
    agent_ids = {id(a) for a in agents}
    guard.set_tools(sorted({t.name for a in agents for t in (a.tools or [])}))
    pending = PendingCalls()

    def ours(ctx: ToolCallHookContext) -> bool:
        return ctx.crew is crew or id(ctx.agent) in agent_ids

    def before(ctx: ToolCallHookContext) -> bool | None:
        if not ours(ctx):
            return None
        call = ToolCall(guard, ctx.tool_name, parse_args(ctx.tool_input))
        # The same args dict reaches the after-hook of this call; concurrent calls have their own.
        pending.put(_key(ctx), call)
        return False if call.blocked else None

    def after(ctx: ToolCallHookContext) -> str | None:
        call = pending.pop(_key(ctx)) if ours(ctx) else None
        if call is None:
            return None
        if call.halted:
            raise HookAborted(call.verdict.message)
        if call.blocked:
            return call.verdict.message
        # What the tool returned: CrewAI's text for the model may carry extras (a tool reminder on the
        # ReAct path) that would make every answer look new.
        raw = ctx.raw_tool_result if ctx.raw_tool_result is not None else ctx.tool_result
        text = output_text(raw)
        failed = text.startswith(("Error executing tool:", _BLOCKED_BY_HOOK))
        call.done(text, error=failed)
        if not call.nudge:
            return None
        return call.nudged(ctx.tool_result if isinstance(ctx.tool_result, str) else text)

    register_before_tool_call_hook(before)
    register_after_tool_call_hook(after)
    with _lock:
        _installed[id(crew)] = (before, after)
    return crew


def unguard_crew(crew: Any) -> None:
    """Remove the hooks ``guard_crew`` installed for ``crew`` (no-op if there are none)."""
    with _lock:
        hooks = _installed.pop(id(crew), None)
    if hooks:
        unregister_before_tool_call_hook(hooks[0])
        unregister_after_tool_call_hook(hooks[1])


def _key(ctx: ToolCallHookContext) -> Hashable:
    return (threading.get_ident(), id(ctx.tool_input))
