"""AutoGen (autogen-agentchat 0.7): a workbench, or a tool wrapper, that checks every call.

Give the agent a guarded workbench instead of its tools (one line)::

    from microloop import Guardrail
    from microloop.adapters.autogen import GuardedWorkbench

    guard = Guardrail("balanced")
    agent = AssistantAgent("assistant", model_client, workbench=GuardedWorkbench([search, transfer], guard),
                           max_tool_iterations=10)

or wrap single tools: ``tools=[GuardedTool(FunctionTool(search, description="..."), guard)]``.

A blocked call is not run: the model gets a ``FunctionExecutionResult`` with ``is_error=True`` whose
content is the verdict's message, under the call's id; a ``warn`` is appended to the real result; a
``halt`` is answered with the halt message, after which the workbench lists no tools, so the model
must answer in text and the agent's turn ends; ``workbench.halted`` holds the verdict. In a team, add
``workbench.termination`` to the team's termination condition (``termination_condition=... |
workbench.termination``): it stops the team with the halt message. (Raising from a tool call would hang
``AssistantAgent``, whose tool-event queue is then never closed; cancelling the run's token hangs a
team.) AutoGen answers a tool name that no workbench lists by itself ("tool not found")
before any workbench is asked, so ``tool.unknown`` never fires here.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any

from autogen_agentchat.conditions import ExternalTermination
from autogen_agentchat.messages import StopMessage
from autogen_core import CancellationToken
from autogen_core.tools import (
    BaseTool,
    FunctionTool,
    StaticStreamWorkbench,
    TextResultContent,
    ToolOverride,
    ToolResult,
)

from autogen_core.tools import ToolSchema

from .. import Guardrail, Verdict
from .._call import ToolCall
from ._common import output_text, parse_args

__all__ = ["GuardedTool", "GuardedWorkbench", "HaltTermination"]


class GuardedWorkbench(StaticStreamWorkbench):
    """A ``StaticStreamWorkbench`` over ``tools`` (``BaseTool``s or plain functions) guarded by ``guard``."""

    def __init__(
        self,
        tools: Sequence[BaseTool[Any, Any] | Callable[..., Any]],
        guard: Guardrail,
        tool_overrides: dict[str, ToolOverride] | None = None,
    ) -> None:
        base_tools = [_as_tool(t) for t in tools]
        super().__init__(base_tools, tool_overrides)
        self.guard = guard
        self.halted: Verdict | None = None
        self.termination = HaltTermination()
        overrides = tool_overrides or {}
        guard.set_tools([(overrides[t.name].name if t.name in overrides else None) or t.name for t in base_tools])

    async def list_tools(self) -> list[ToolSchema]:
        return [] if self.halted else await super().list_tools()

    async def reset(self) -> None:
        await super().reset()
        self.halted = None
        await self.termination.reset()

    def _refusal(self, name: str, verdict: Verdict) -> ToolResult:
        if verdict.halted:
            self.halted = verdict
            self.termination.set(verdict)
        return ToolResult(name=name, result=[TextResultContent(content=verdict.message)], is_error=True)

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
        call_id: str | None = None,
    ) -> ToolResult:
        call = ToolCall(self.guard, name, dict(arguments or {}))
        if call.blocked:
            return self._refusal(name, call.verdict)
        result = await call.arun(super().call_tool, name, arguments, cancellation_token, call_id)
        return _recorded(call, result)

    async def call_tool_stream(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
        call_id: str | None = None,
    ) -> AsyncGenerator[Any | ToolResult, None]:
        call = ToolCall(self.guard, name, dict(arguments or {}))
        if call.blocked:
            yield self._refusal(name, call.verdict)
            return
        try:
            async for event in super().call_tool_stream(name, arguments, cancellation_token, call_id):
                yield _recorded(call, event) if isinstance(event, ToolResult) else event
        except Exception as exc:
            call.failed(exc)
            raise


class GuardedTool(BaseTool[Any, Any]):
    """Any AutoGen ``BaseTool`` with the guard in front of it (``run_json`` is what the workbench calls).

    A block raises an exception whose text is the verdict's message; the workbench turns it into an
    ``is_error=True`` result. A halt is answered the same way: to end the run on a halt, use
    :class:`GuardedWorkbench`, which can withdraw its tools.
    """

    def __init__(self, inner: BaseTool[Any, Any], guard: Guardrail) -> None:
        super().__init__(inner.args_type(), inner.return_type(), inner.name, inner.description)
        self._inner = inner
        self.guard = guard

    async def run(self, args: Any, cancellation_token: CancellationToken) -> Any:
        return await self._inner.run(args, cancellation_token)

    async def run_json(
        self, args: Mapping[str, Any], cancellation_token: CancellationToken, call_id: str | None = None
    ) -> Any:
        call = ToolCall(self.guard, self.name, parse_args(args))
        if call.blocked:
            raise _BlockedCall(call.verdict.message)
        value = await call.arun(self._inner.run_json, args, cancellation_token, call_id=call_id)
        text = self._inner.return_value_as_string(value)
        call.done(text)
        return call.nudged(text) if call.nudge else value

    def return_value_as_string(self, value: Any) -> str:
        return value if isinstance(value, str) else self._inner.return_value_as_string(value)


class HaltTermination(ExternalTermination):
    """A team termination condition that fires once the guard halted (``GuardedWorkbench.termination``)."""

    def __init__(self) -> None:
        super().__init__()
        self._message = ""

    def set(self, verdict: Verdict | None = None) -> None:
        self._message = verdict.message if verdict is not None else "Halted by MicroLoop."
        super().set()

    async def __call__(self, messages: Any) -> StopMessage | None:
        stop = await super().__call__(messages)
        return None if stop is None else StopMessage(content=self._message, source="MicroLoop")


class _BlockedCall(Exception):
    """Carries a block's message, alone, to the workbench that shows ``str(exc)`` to the model."""


def _as_tool(tool: BaseTool[Any, Any] | Callable[..., Any]) -> BaseTool[Any, Any]:
    if isinstance(tool, BaseTool):
        return tool
    return FunctionTool(tool, description=(tool.__doc__ or tool.__name__).strip())


def _recorded(call: ToolCall, result: ToolResult) -> ToolResult:
    call.done(output_text(result.to_text(replace_image="[image]")), error=result.is_error)
    if call.nudge:
        return result.model_copy(update={"result": [*result.result, TextResultContent(content="\n" + call.nudge)]})
    return result
