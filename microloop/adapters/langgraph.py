"""LangGraph 1.x: a ``ToolNode`` whose every tool call is checked by a MicroLoop guard.

Add one line to a graph built by hand::

    from microloop import Guardrail
    from microloop.adapters.langgraph import guard_tool_node

    guard = Guardrail("balanced")
    graph.add_node("tools", guard_tool_node([search, transfer], guard))   # instead of ToolNode([...])

A blocked call is answered with an error ``ToolMessage`` carrying the verdict's message and the
call's ``tool_call_id`` (the tool does not run, the model reads why and pivots); a ``warn`` is appended
to the real result; a ``halt`` raises :class:`microloop.Halted` out of ``graph.invoke()``. Each
``thread_id`` of the graph's config gets its own history (``guard.session("thread:<id>")``), so two
conversations never block each other. Parallel tool calls are checked independently.

A graph whose threads resume in another process (an interrupt and a checkpointer, a fleet of
workers) keeps each thread's history in Redis with a stored guard: the loop that spans the
interruption is still blocked::

    import redis
    from langgraph.checkpoint.sqlite import SqliteSaver
    from microloop.store import RedisStore

    guard = Guardrail("balanced", store=RedisStore(redis.Redis(), key="agent"))  # agent:thread:<id>
    graph.add_node("tools", guard_tool_node(tools, guard))
    app = graph.compile(checkpointer=SqliteSaver(conn), interrupt_before=["tools"])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Any, TypeAlias

from langchain_core.messages import ToolMessage
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from .. import Guardrail, Verdict
from .._call import ToolCall
from ._common import GuardSessions, halt, output_text

__all__ = ["ToolCallGuard", "guard_tool_node"]

ToolResult: TypeAlias = "ToolMessage | Command"


def guard_tool_node(tools: Sequence[Any], guard: Guardrail, **tool_node_kwargs: Any) -> ToolNode:
    """A ``ToolNode(tools, **tool_node_kwargs)`` whose tool calls ``guard`` checks and records."""
    call_guard = ToolCallGuard(guard)
    node = ToolNode(
        tools, wrap_tool_call=call_guard.wrap, awrap_tool_call=call_guard.awrap, **tool_node_kwargs
    )
    call_guard.set_tools(node.tools_by_name)
    return node


class ToolCallGuard:
    """The ``wrap_tool_call`` / ``awrap_tool_call`` pair shared by the LangGraph and LangChain adapters.

    ``per_thread`` keeps one history per ``thread_id`` of the run's config; calls of a run without a
    ``thread_id`` share the guard's own history.
    """

    def __init__(self, guard: Guardrail, *, per_thread: bool = True) -> None:
        self._sessions = GuardSessions(guard)
        self._per_thread = per_thread

    def set_tools(self, names: Iterable[str]) -> None:
        self._sessions.set_tools(names)

    def wrap(self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolResult]) -> ToolResult:
        call = self._check(request)
        if call.blocked:
            return _blocked_message(request, call.verdict)
        return _recorded(call, request, call.run(execute, request))

    async def awrap(
        self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], Awaitable[ToolResult]]
    ) -> ToolResult:
        call = self._check(request)
        if call.blocked:
            return _blocked_message(request, call.verdict)
        return _recorded(call, request, await call.arun(execute, request))

    def _check(self, request: ToolCallRequest) -> ToolCall:
        guard = self._sessions.get(self._thread_key(request))
        tool_call = request.tool_call
        return ToolCall(guard, tool_call["name"], tool_call.get("args") or {})

    def _thread_key(self, request: ToolCallRequest) -> Hashable | None:
        if not self._per_thread or request.runtime is None:
            return None
        config = getattr(request.runtime, "config", None) or {}
        thread_id = (config.get("configurable") or {}).get("thread_id")
        return None if thread_id is None else f"thread:{thread_id}"


def _blocked_message(request: ToolCallRequest, verdict: Verdict) -> ToolMessage:
    if verdict.halted:
        raise halt(verdict)
    call = request.tool_call
    return ToolMessage(
        content=verdict.message, tool_call_id=call["id"], name=call["name"], status="error"
    )


def _recorded(call: ToolCall, request: ToolCallRequest, result: ToolResult) -> ToolResult:
    """Record what the tool answered; append a ``warn`` verdict's message to it."""
    call_id = request.tool_call["id"]
    if isinstance(result, ToolMessage):
        call.done(_content_text(result.content), error=result.status == "error")
        return _nudged(result, call)
    if isinstance(result, Command) and isinstance(result.update, dict):
        messages = result.update.get("messages") or []
        for i, message in enumerate(messages):
            if isinstance(message, ToolMessage) and message.tool_call_id == call_id:
                call.done(_content_text(message.content), error=message.status == "error")
                if call.nudge:
                    messages = [*messages[:i], _nudged(message, call), *messages[i + 1 :]]
                    update = {**result.update, "messages": messages}
                    return Command(graph=result.graph, update=update, resume=result.resume, goto=result.goto)
                return result
    call.done(output_text(repr(result)))
    return result


def _nudged(message: ToolMessage, call: ToolCall) -> ToolMessage:
    if not call.nudge:
        return message
    if isinstance(message.content, str):
        content: Any = call.nudged(message.content)
    else:
        content = [*message.content, {"type": "text", "text": call.nudge}]
    return message.model_copy(update={"content": content})


def _content_text(content: str | list[Any]) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            parts.append(output_text(block))
    return "\n".join(parts)
