"""A scripted LangChain chat model that answers from what it has read, offline.

``respond(messages)`` gets the model's whole input and returns its next ``AIMessage``; every input
is kept in ``seen`` so a test can assert on what the model was told.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

_ids = itertools.count(1)


def ask(*calls: tuple[str, dict[str, Any]]) -> AIMessage:
    """An AIMessage asking for ``calls`` (several make parallel tool calls), each with a fresh id."""
    return AIMessage(
        content="",
        tool_calls=[{"name": n, "args": a, "id": f"call_{next(_ids)}", "type": "tool_call"} for n, a in calls],
    )


class ScriptedChatModel(BaseChatModel):
    respond: Callable[[list[BaseMessage]], AIMessage]
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self  # the scripted messages already carry their tool calls

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        self.seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.respond(list(messages)))])


def tool_messages(messages: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def repeat_then_pivot(call: tuple[str, dict[str, Any]], pivot: tuple[str, dict[str, Any]]):
    """Ask for ``call`` until a tool answer is an error, then ask ``pivot`` once, then finish."""

    def respond(messages: list[BaseMessage]) -> AIMessage:
        answers = tool_messages(messages)
        if answers and answers[-1].status == "error" and answers[-1].name == call[0] and not _asked(messages, pivot):
            return ask(pivot)
        if _asked(messages, pivot):
            return AIMessage(content="done")
        return ask(call)

    return respond


def repeat_forever(call: tuple[str, dict[str, Any]]):
    return lambda messages: ask(call)


def repeat_n(call: tuple[str, dict[str, Any]], n: int):
    """Ask for ``call`` ``n`` times whatever the answers, then finish."""

    def respond(messages: list[BaseMessage]) -> AIMessage:
        return ask(call) if len(tool_messages(messages)) < n else AIMessage(content="done")

    return respond


def _asked(messages: list[BaseMessage], call: tuple[str, dict[str, Any]]) -> bool:
    return any(
        isinstance(m, AIMessage) and any(c["name"] == call[0] and c["args"] == call[1] for c in m.tool_calls)
        for m in messages
    )
