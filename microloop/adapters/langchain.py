"""LangChain 1.x (``create_agent``): a middleware that checks every tool call with a MicroLoop guard.

Add one line to an existing agent::

    from microloop import Guardrail
    from microloop.adapters.langchain import MicroLoopMiddleware

    guard = Guardrail("balanced")
    agent = create_agent(model, tools=[search, transfer], middleware=[MicroLoopMiddleware(guard)])

It works under ``invoke``/``stream`` and ``ainvoke``/``astream`` alike. A blocked call is not run:
the model gets ``ToolMessage(content=<why, and what to do instead>, tool_call_id=<the call's id>,
status="error")`` and pivots; a ``warn`` is appended to the real result; a ``halt`` raises
:class:`microloop.Halted` out of ``agent.invoke()``. The tools offered to the model are registered with
the guard on every model call, so a hallucinated tool is answered with the list of the real ones.
Each ``thread_id`` gets its own history.

For a single tool, ``@guard.verify`` under ``@tool`` keeps the tool's argument schema; a block then
raises :class:`microloop.Blocked` from the tool (add ``handle_tool_error=True`` to the tool, or use the
middleware, to turn it into a message).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langgraph.prebuilt.tool_node import ToolCallRequest

from .. import Guardrail
from .langgraph import ToolCallGuard, ToolResult

__all__ = ["MicroLoopMiddleware"]


class MicroLoopMiddleware(AgentMiddleware):
    """Check each tool call before it runs, record its result, turn blocks into tool messages."""

    def __init__(self, guard: Guardrail, *, per_thread: bool = True) -> None:
        super().__init__()
        self.guard = guard
        self._calls = ToolCallGuard(guard, per_thread=per_thread)

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> Any:
        self._calls.set_tools(_tool_names(request.tools))
        return handler(request)

    async def awrap_model_call(
        self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> Any:
        self._calls.set_tools(_tool_names(request.tools))
        return await handler(request)

    def wrap_tool_call(self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], ToolResult]) -> ToolResult:
        return self._calls.wrap(request, handler)

    async def awrap_tool_call(
        self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], Awaitable[ToolResult]]
    ) -> ToolResult:
        return await self._calls.awrap(request, handler)


def _tool_names(tools: Iterable[Any]) -> list[str]:
    names = []
    for tool in tools or ():
        if isinstance(tool, dict):  # a provider tool given as a schema
            name = tool.get("name") or (tool.get("function") or {}).get("name")
        else:
            name = getattr(tool, "name", None)
        if name:
            names.append(str(name))
    return names
