"""OpenAI Agents SDK: tool guardrails that check every call of an agent's function tools.

Wrap the agent's tools (one line)::

    from microloop import Guardrail
    from microloop.adapters.openai_agents import guard_tools, guarded_run_config

    guard = Guardrail("balanced")
    agent = Agent(name="assistant", tools=guard_tools([search, transfer], guard))
    result = await Runner.run(agent, "...", run_config=guarded_run_config(guard))   # optional

Each tool gets a ``tool_input_guardrail`` and a ``tool_output_guardrail`` (its own guardrails are
kept). A blocked call is answered with ``reject_content(<the verdict's message>)``: the tool does not
run, the model reads why and the run goes on; the output guardrail records every result (pending calls
are kept per ``tool_call_id``: the SDK runs a turn's calls concurrently) and appends a ``warn``'s
message; a ``halt`` answers ``raise_exception()``, so ``Runner.run`` raises
``ToolInputGuardrailTripwireTriggered`` (its ``output.output_info`` is the verdict).

The SDK refuses a tool name the agent does not have before any guardrail runs; the optional
``guarded_run_config(guard)`` makes it answer the model instead, with the guard's ``tool.unknown``
message listing the real tools.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from agents import (
    FunctionTool,
    RunConfig,
    ToolGuardrailFunctionOutput,
    ToolInputGuardrailData,
    ToolOutputGuardrailData,
    function_tool,
    tool_input_guardrail,
    tool_output_guardrail,
)

from .. import Guardrail
from .._call import ToolCall
from ._common import PendingCalls, output_text, parse_args

__all__ = ["guard_tools", "guarded_run_config"]


def guard_tools(tools: Sequence[FunctionTool | Callable[..., Any]], guard: Guardrail) -> list[FunctionTool]:
    """Copies of ``tools`` (``FunctionTool``s or plain functions) whose every call ``guard`` checks."""
    function_tools = [t if isinstance(t, FunctionTool) else function_tool(t) for t in tools]
    guard.set_tools([t.name for t in function_tools])
    pending = PendingCalls()

    @tool_input_guardrail(name="microloop")
    def check_call(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        ctx = data.context
        call = ToolCall(guard, ctx.tool_name, parse_args(ctx.tool_arguments))
        verdict = call.verdict
        if call.halted:
            return ToolGuardrailFunctionOutput.raise_exception(output_info=verdict)
        if call.blocked:
            return ToolGuardrailFunctionOutput.reject_content(verdict.message, output_info=verdict)
        pending.put(ctx.tool_call_id, call)
        return ToolGuardrailFunctionOutput.allow(output_info=verdict)

    @tool_output_guardrail(name="microloop")
    def record_result(data: ToolOutputGuardrailData) -> ToolGuardrailFunctionOutput:
        call = pending.pop(data.context.tool_call_id)
        if call is None:
            return ToolGuardrailFunctionOutput.allow()
        text = output_text(data.output)
        call.done(text)
        if call.nudge:  # the real result, with the nudge after it
            return ToolGuardrailFunctionOutput.reject_content(call.nudged(text), output_info=call.verdict)
        return ToolGuardrailFunctionOutput.allow(output_info=call.verdict)

    return [
        dataclasses.replace(
            t,
            tool_input_guardrails=[*(t.tool_input_guardrails or []), check_call],
            tool_output_guardrails=[*(t.tool_output_guardrails or []), record_result],
        )
        for t in function_tools
    ]


def guarded_run_config(guard: Guardrail, **run_config: Any) -> RunConfig:
    """A ``RunConfig`` that answers a hallucinated tool name with the guard's list of the real tools.

    Pass the same guard as to :func:`guard_tools` (it knows the tool names). Other ``RunConfig``
    fields are passed through; a ``tool_error_formatter`` given here handles every other kind of error.
    """
    formatter = run_config.pop("tool_error_formatter", None)

    def format_error(args: Any) -> str | None:
        if args.kind == "tool_not_found":
            verdict = guard.check(args.tool_name, {})
            if verdict.blocked:
                return verdict.message
        return formatter(args) if formatter else None

    return RunConfig(
        tool_not_found_behavior="return_error_to_model", tool_error_formatter=format_error, **run_config
    )
