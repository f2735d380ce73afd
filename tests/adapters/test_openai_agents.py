"""OpenAI Agents SDK driven offline by its own ScriptedModel, tools wrapped by guard_tools."""

from __future__ import annotations

import asyncio
import os

import pytest

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
pytest.importorskip("agents.testing")

from agents import Agent, Runner, ToolInputGuardrailTripwireTriggered, function_tool  # noqa: E402
from agents.testing import ScriptedModel, assistant_message, function_call  # noqa: E402

from microloop.adapters.openai_agents import guard_tools, guarded_run_config  # noqa: E402

SEARCH = {"query": "weather in Paris"}


@pytest.fixture
def ran() -> list[str]:
    return []


@pytest.fixture
def tools(ran):
    @function_tool
    def search(query: str) -> str:
        """Search the web."""
        ran.append("search")
        return "no results"

    @function_tool
    def ask_user(question: str) -> str:
        """Ask the user."""
        ran.append("ask_user")
        return "Paris, France"

    return [search, ask_user]


def run(model, tools, guard, **kw):
    agent = Agent(name="assistant", instructions="help", model=model, tools=guard_tools(tools, guard))
    return asyncio.run(Runner.run(agent, "weather?", max_turns=20, **kw))


def outputs(call) -> dict[str, str]:
    """The tool results the model received in one call, by call id."""
    return {i["call_id"]: i["output"] for i in call.input if isinstance(i, dict) and i.get("type") == "function_call_output"}


def test_a_repeated_call_is_nudged_then_blocked_and_the_model_pivots(guard, tools, ran):
    steps = [[function_call("search", SEARCH, call_id=f"call_{i}")] for i in (1, 2, 3)]
    model = ScriptedModel(steps + [[function_call("ask_user", {"question": "which?"}, call_id="call_4")],
                                   [assistant_message("done")]])

    result = run(model, tools, guard)

    assert ran == ["search", "search", "ask_user"]
    assert guard.actions() == ["allow", "warn", "block", "allow"]
    seen = outputs(model.calls[3])  # the model's input right after the block
    assert seen["call_1"] == "no results"
    assert seen["call_2"] == "no results\n\n" + guard.messages("warn")[0]
    assert seen["call_3"] == guard.messages("block")[0] != ""
    assert result.final_output == "done"


def test_a_model_that_ignores_every_block_is_halted(guard, tools, ran):
    model = ScriptedModel([[function_call("search", SEARCH, call_id=f"call_{i}")] for i in range(1, 12)])

    with pytest.raises(ToolInputGuardrailTripwireTriggered) as info:
        run(model, tools, guard)

    assert info.value.output.output_info.action == "halt"
    assert ran == ["search", "search"]
    assert guard.actions() == ["allow", "warn"] + ["block"] * 5 + ["halt"]


def test_parallel_calls_are_recorded_under_their_own_ids(guard, tools, ran):
    turn = lambda n: [function_call("search", {"query": q}, call_id=f"{q}_{n}") for q in ("a", "b")]  # noqa: E731
    model = ScriptedModel([turn(1), turn(2), turn(3), [assistant_message("done")]])

    result = run(model, tools, guard)

    assert ran == ["search"] * 4
    seen = outputs(model.calls[3])
    assert seen["a_3"] == seen["b_3"] and seen["a_3"] in guard.messages("block")
    assert result.final_output == "done"


def test_a_call_whose_answers_change_is_not_blocked(guard):
    ran = []

    @function_tool
    def job_status(job: str) -> str:
        """A job's status."""
        ran.append(job)
        return f"{len(ran) * 10}% done"

    model = ScriptedModel([[function_call("job_status", {"job": "7"}, call_id=f"c{i}")] for i in range(5)]
                          + [[assistant_message("done")]])
    result = run(model, [job_status], guard)

    assert ran == ["7"] * 5 and "block" not in guard.actions()
    assert result.final_output == "done"


def test_a_hallucinated_tool_is_answered_with_the_real_tools(guard, tools, ran):
    model = ScriptedModel([[function_call("serach", SEARCH, call_id="call_1")],
                           [function_call("search", SEARCH, call_id="call_2")], [assistant_message("done")]])

    result = run(model, tools, guard, run_config=guarded_run_config(guard))

    answer = outputs(model.calls[1])["call_1"]
    assert guard.log[0][2].rule == "tool.unknown" and answer == guard.log[0][2].message
    assert "search" in answer and "ask_user" in answer
    assert ran == ["search"] and result.final_output == "done"


def test_verify_under_function_tool_keeps_the_schema():
    from microloop import Guardrail

    guard = Guardrail("balanced")

    def transfer(amount: int, to: str) -> str:
        """Transfer money."""
        return f"sent {amount} to {to}"

    wrapped = function_tool(guard.verify(transfer))
    assert wrapped.name == "transfer"
    props = wrapped.params_json_schema["properties"]
    assert {k: v["type"] for k, v in props.items()} == {"amount": "integer", "to": "string"}
