"""LangGraph 1.x: a hand-built graph whose ToolNode is guard_tool_node, driven by a scripted model."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("langgraph.prebuilt")

from langchain_core.messages import AIMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import tools_condition  # noqa: E402
from lc_fakes import ScriptedChatModel, ask, repeat_forever, repeat_then_pivot, tool_messages  # noqa: E402

from microloop import Halted  # noqa: E402
from microloop.adapters.langgraph import guard_tool_node  # noqa: E402


@pytest.fixture
def ran() -> list[str]:
    return []


@pytest.fixture
def tools(ran):
    @tool
    def lookup(city: str) -> str:
        """Look a city's weather up."""
        ran.append(city)
        return f"{city}: no data"

    @tool
    def ask_user(question: str) -> str:
        """Ask the user."""
        ran.append("ask_user")
        return "try Lyon"

    return [lookup, ask_user]


def build(model, tools, guard):
    def call_model(state: MessagesState):
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", call_model)
    graph.add_node("tools", guard_tool_node(tools, guard))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def start(thread: str | None = None):
    config = {"configurable": {"thread_id": thread}} if thread else None
    return {"messages": [("user", "weather?")]}, config


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_parallel_calls_are_blocked_each_under_its_own_id(guard, tools, ran, mode):
    pair = (("lookup", {"city": "Paris"}), ("lookup", {"city": "Rome"}))

    def respond(messages):
        answers = tool_messages(messages)
        if any(m.status == "error" for m in answers):
            return AIMessage(content="done") if answers[-1].name == "ask_user" else ask(("ask_user", {"question": "?"}))
        return ask(*pair)  # two calls at once, run concurrently by the ToolNode

    model = ScriptedChatModel(respond=respond)
    graph = build(model, tools, guard)
    inputs, config = start()
    result = asyncio.run(graph.ainvoke(inputs, config)) if mode == "async" else graph.invoke(inputs, config)

    assert sorted(ran[:4]) == ["Paris", "Paris", "Rome", "Rome"] and ran[4:] == ["ask_user"]
    blocked_turn = next(m for m in model.seen if any(t.status == "error" for t in tool_messages(m)))
    request = blocked_turn[-3]
    assert isinstance(request, AIMessage) and len(request.tool_calls) == 2
    answers = {m.tool_call_id: m for m in blocked_turn[-2:]}
    for call in request.tool_calls:  # each block answers its own call id, whatever order they ran in
        answer = answers[call["id"]]
        assert answer.status == "error"
        assert answer.content in guard.messages("block")
        assert f"`lookup`" in answer.content
    assert result["messages"][-1].content == "done"


def test_each_thread_id_has_its_own_history(guard, tools, ran):
    call = ("lookup", {"city": "Paris"})
    graph = build(ScriptedChatModel(respond=repeat_then_pivot(call, ("ask_user", {"question": "?"}))), tools, guard)

    for thread in ("a", "b"):
        inputs, config = start(thread)
        graph.invoke(inputs, config)

    assert ran == ["Paris", "Paris", "ask_user"] * 2  # thread b was not blocked by thread a's history
    assert guard.actions("lookup") == ["allow", "warn", "block"] * 2


def test_a_halt_stops_the_graph(guard, tools, ran):
    model = ScriptedChatModel(respond=repeat_forever(("lookup", {"city": "Paris"})))
    graph = build(model, tools, guard)

    with pytest.raises(Halted) as info:
        graph.invoke(*start("t"))

    assert info.value.rule == "halt.ignored_blocks"
    assert ran == ["Paris", "Paris"]
    assert len(model.seen) == 8


def test_a_hallucinated_tool_is_answered_with_the_real_tools(guard, tools, ran):
    model = ScriptedChatModel(respond=repeat_then_pivot(("weather", {"city": "Paris"}), ("lookup", {"city": "Lyon"})))
    result = build(model, tools, guard).invoke(*start())

    unknown = tool_messages(result["messages"])[0]
    assert unknown.status == "error" and guard.log[0][2].rule == "tool.unknown"
    assert unknown.content == guard.log[0][2].message
    assert "lookup" in unknown.content and "ask_user" in unknown.content
    assert ran == ["Lyon"]


def test_a_tool_returning_a_changing_answer_runs_every_time(guard, ran):
    @tool
    def job_status(job: str) -> str:
        """A job's status."""
        ran.append(job)
        return f"{len(ran) * 10}% done"

    def respond(messages):
        return ask(("job_status", {"job": "7"})) if len(tool_messages(messages)) < 5 else AIMessage(content="done")

    result = build(ScriptedChatModel(respond=respond), [job_status], guard).invoke(*start())

    assert ran == ["7"] * 5
    assert "block" not in guard.actions()
    assert all(isinstance(m, ToolMessage) and m.status == "success" for m in tool_messages(result["messages"]))
