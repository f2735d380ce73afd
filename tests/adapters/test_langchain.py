"""LangChain 1.x ``create_agent`` driven offline by a scripted model, guarded by MicroLoopMiddleware."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.messages import AIMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from lc_fakes import ScriptedChatModel, repeat_forever, repeat_n, repeat_then_pivot, tool_messages  # noqa: E402

from microloop import Blocked, Guardrail, Halted  # noqa: E402
from microloop.adapters.langchain import MicroLoopMiddleware  # noqa: E402

SEARCH = ("search", {"query": "weather in Paris"})
PIVOT = ("ask_user", {"question": "Which city do you mean?"})


@pytest.fixture
def ran() -> list[str]:
    return []


@pytest.fixture
def tools(ran):
    @tool
    def search(query: str) -> str:
        """Search the web."""
        ran.append(f"search:{query}")
        return "no results"

    @tool
    def ask_user(question: str) -> str:
        """Ask the user a question."""
        ran.append("ask_user")
        return "Paris, France"

    @tool
    def poll_job(job: str) -> str:
        """The status of a job."""
        ran.append("poll_job")
        return f"running, step {len(ran)}"

    return [search, ask_user, poll_job]


def run(agent, mode: str):
    inputs = {"messages": [{"role": "user", "content": "What is the weather?"}]}
    if mode == "async":
        return asyncio.run(agent.ainvoke(inputs))
    return agent.invoke(inputs)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_repeated_call_is_nudged_then_blocked_and_the_model_pivots(guard, tools, ran, mode):
    model = ScriptedChatModel(respond=repeat_then_pivot(SEARCH, PIVOT))
    agent = create_agent(model, tools=tools, middleware=[MicroLoopMiddleware(guard)])

    result = run(agent, mode)

    assert ran == ["search:weather in Paris"] * 2 + ["ask_user"]
    assert guard.actions() == ["allow", "warn", "block", "allow"]
    first, second, blocked, pivot = tool_messages(result["messages"])
    assert first.content == "no results" and first.status == "success"
    assert second.content == "no results\n\n" + guard.messages("warn")[0]
    # What the model read right after the block: the verdict's message, under the blocked call's id.
    after_block = next(seen for seen in model.seen if seen[-1] is not None and isinstance(seen[-1], ToolMessage)
                       and seen[-1].status == "error")
    blocked_call = after_block[-2]
    assert isinstance(blocked_call, AIMessage)
    assert after_block[-1].tool_call_id == blocked_call.tool_calls[0]["id"] == blocked.tool_call_id
    assert after_block[-1].content == guard.messages("block")[0] != ""
    assert pivot.content == "Paris, France"
    assert result["messages"][-1].content == "done"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_model_that_ignores_every_block_is_halted(guard, tools, ran, mode):
    model = ScriptedChatModel(respond=repeat_forever(SEARCH))
    agent = create_agent(model, tools=tools, middleware=[MicroLoopMiddleware(guard)])

    with pytest.raises(Halted):
        run(agent, mode)

    assert ran == ["search:weather in Paris"] * 2
    assert guard.actions() == ["allow", "warn"] + ["block"] * 5 + ["halt"]
    assert len(model.seen) == 8  # the run ended at the halt, not at a recursion limit


def test_a_call_whose_answers_change_is_not_blocked(guard, tools, ran):
    model = ScriptedChatModel(respond=repeat_n(("poll_job", {"job": "42"}), 6))
    agent = create_agent(model, tools=tools, middleware=[MicroLoopMiddleware(guard)])

    result = run(agent, "sync")

    assert ran == ["poll_job"] * 6
    assert guard.actions() == ["allow", "warn", "allow", "allow", "allow", "allow"]  # a nudge, never a block
    assert [m.status for m in tool_messages(result["messages"])] == ["success"] * 6


def test_a_hallucinated_tool_is_answered_with_the_real_tools(guard, tools, ran):
    model = ScriptedChatModel(respond=repeat_then_pivot(("serach", {"query": "weather"}), PIVOT))
    agent = create_agent(model, tools=tools, middleware=[MicroLoopMiddleware(guard)])

    result = run(agent, "sync")

    unknown = tool_messages(result["messages"])[0]
    assert unknown.status == "error"
    assert guard.log[0][2].rule == "tool.unknown"
    assert unknown.content == guard.log[0][2].message
    for name in ("search", "ask_user", "poll_job"):
        assert name in unknown.content
    assert ran == ["ask_user"]
    assert result["messages"][-1].content == "done"


def test_verify_under_tool_keeps_the_argument_schema_and_blocks():
    guard = Guardrail("balanced")
    ran = []

    @tool
    @guard.verify
    def transfer(amount: int, to: str) -> str:
        """Transfer money."""
        ran.append(amount)
        return f"sent {amount} to {to}"

    assert transfer.name == "transfer"
    assert transfer.description == "Transfer money."
    assert {k: v["type"] for k, v in transfer.args.items()} == {"amount": "integer", "to": "string"}
    assert transfer.invoke({"amount": 5, "to": "bob"}) == "sent 5 to bob"
    transfer.invoke({"amount": 5, "to": "bob"})
    with pytest.raises(Blocked):
        transfer.invoke({"amount": 5, "to": "bob"})
    assert ran == [5, 5]


def test_verify_under_tool_keeps_an_async_tool_async():
    guard = Guardrail("balanced")

    @tool
    @guard.verify
    async def lookup(key: str) -> str:
        """Look a key up."""
        return key.upper()

    assert lookup.coroutine is not None and lookup.func is None
    assert {k: v["type"] for k, v in lookup.args.items()} == {"key": "string"}
    assert asyncio.run(lookup.ainvoke({"key": "a"})) == "A"
