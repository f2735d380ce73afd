"""AutoGen agentchat 0.7 driven offline by ReplayChatCompletionClient, tools in a GuardedWorkbench."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("autogen_agentchat")

from autogen_agentchat.agents import AssistantAgent  # noqa: E402
from autogen_agentchat.conditions import MaxMessageTermination  # noqa: E402
from autogen_agentchat.teams import RoundRobinGroupChat  # noqa: E402
from autogen_core import FunctionCall  # noqa: E402
from autogen_core.models import CreateResult, FunctionExecutionResultMessage, ModelFamily, ModelInfo, RequestUsage  # noqa: E402
from autogen_core.tools import FunctionTool  # noqa: E402
from autogen_ext.models.replay import ReplayChatCompletionClient  # noqa: E402

from microloop.adapters.autogen import GuardedTool, GuardedWorkbench  # noqa: E402

MODEL_INFO = ModelInfo(vision=False, function_calling=True, json_output=False, family=ModelFamily.UNKNOWN,
                       structured_output=False)
SEARCH = {"query": "weather in Paris"}


def calls(*batch: tuple[str, str, dict]) -> CreateResult:
    return CreateResult(finish_reason="function_calls", cached=False, usage=RequestUsage(prompt_tokens=0, completion_tokens=0),
                        content=[FunctionCall(id=i, name=n, arguments=json.dumps(a)) for i, n, a in batch])


@pytest.fixture
def ran() -> list[str]:
    return []


@pytest.fixture
def tools(ran):
    def search(query: str) -> str:
        """Search the web."""
        ran.append("search")
        return "no results"

    def ask_user(question: str) -> str:
        """Ask the user."""
        ran.append("ask_user")
        return "Paris, France"

    return [search, ask_user]


class ReplayClient(ReplayChatCompletionClient):
    """Replays the script; offered no tools at all, it answers in text, as a real model must."""

    async def create(self, messages, *, tools=(), **kwargs):
        if not tools:
            self.create_calls.append({"messages": messages, "tools": []})
            return CreateResult(finish_reason="stop", content="I cannot go on.", cached=False,
                                usage=RequestUsage(prompt_tokens=0, completion_tokens=0))
        return await super().create(messages, tools=tools, **kwargs)


def make_agent(script, tools, guard, *, wrap_tools=False):
    client = ReplayClient(script, model_info=MODEL_INFO)
    if wrap_tools:
        kw = {"tools": [GuardedTool(FunctionTool(t, description=t.__doc__), guard) for t in tools]}
    else:
        kw = {"workbench": GuardedWorkbench(tools, guard)}
    return client, AssistantAgent("assistant", model_client=client, max_tool_iterations=20, **kw)


def run(script, tools, guard, *, wrap_tools=False):
    client, agent = make_agent(script, tools, guard, wrap_tools=wrap_tools)
    return client, asyncio.run(agent.run(task="weather?"))


def results(client, n: int) -> dict[str, tuple[str, bool]]:
    """The tool results in the model's n-th input, by call id: (content, is_error)."""
    out = {}
    for message in client.create_calls[n]["messages"]:
        if isinstance(message, FunctionExecutionResultMessage):
            out.update({r.call_id: (r.content, r.is_error) for r in message.content})
    return out


@pytest.mark.parametrize("wrap_tools", [False, True], ids=["workbench", "tool"])
def test_a_repeated_call_is_nudged_then_blocked_and_the_model_pivots(guard, tools, ran, wrap_tools):
    script = [calls((f"call_{i}", "search", SEARCH)) for i in (1, 2, 3)]
    script += [calls(("call_4", "ask_user", {"question": "which?"})), "done"]

    client, result = run(script, tools, guard, wrap_tools=wrap_tools)

    assert ran == ["search", "search", "ask_user"]
    assert guard.actions() == ["allow", "warn", "block", "allow"]
    seen = results(client, 3)  # the model's input right after the block
    assert seen["call_1"] == ("no results", False)
    assert seen["call_2"] == ("no results\n\n" + guard.messages("warn")[0], False)
    assert seen["call_3"] == (guard.messages("block")[0], True)
    assert result.messages[-1].content == "done"


def test_a_halt_withdraws_the_tools_so_the_agent_turn_ends(guard, tools, ran):
    script = [calls((f"call_{i}", "search", SEARCH)) for i in range(1, 12)] + ["done"]

    client, result = run(script, tools, guard)

    assert ran == ["search", "search"]
    assert guard.actions() == ["allow", "warn"] + ["block"] * 5 + ["halt"]
    assert results(client, 8)["call_8"] == (guard.messages("halt")[0], True)
    assert client.create_calls[8]["tools"] == [] and len(client.create_calls) == 9
    assert result.messages[-1].content == "I cannot go on."


def test_a_halt_stops_the_team(guard, tools, ran):
    script = [calls((f"call_{i}", "search", SEARCH)) for i in range(1, 12)] + ["done"]
    client = ReplayClient(script, model_info=MODEL_INFO)
    workbench = GuardedWorkbench(tools, guard)
    agent = AssistantAgent("assistant", model_client=client, workbench=workbench, max_tool_iterations=20)
    team = RoundRobinGroupChat([agent], termination_condition=MaxMessageTermination(50) | workbench.termination)

    result = asyncio.run(asyncio.wait_for(team.run(task="weather?"), 30))

    assert ran == ["search", "search"]
    assert workbench.halted is not None and workbench.halted.action == "halt"
    assert result.stop_reason == workbench.halted.message
    assert len(client.create_calls) == 9  # the team did not ask the agent again


def test_parallel_calls_are_answered_under_their_own_ids(guard, tools, ran):
    turn = lambda n: calls(*((f"{q}_{n}", "search", {"query": q}) for q in ("a", "b")))  # noqa: E731
    client, result = run([turn(1), turn(2), turn(3), "done"], tools, guard)

    assert ran == ["search"] * 4
    seen = results(client, 3)
    assert seen["a_3"][1] and seen["b_3"][1]
    assert seen["a_3"][0] in guard.messages("block") and "`search`" in seen["a_3"][0]
    assert result.messages[-1].content == "done"


def test_a_call_whose_answers_change_is_not_blocked(guard):
    ran = []

    def job_status(job: str) -> str:
        """A job's status."""
        ran.append(job)
        return f"{len(ran) * 10}% done"

    script = [calls((f"c{i}", "job_status", {"job": "7"})) for i in range(5)] + ["done"]
    client, result = run(script, [job_status], guard)

    assert ran == ["7"] * 5 and "block" not in guard.actions()
    assert result.messages[-1].content == "done"


def test_the_workbench_registers_the_agent_tools(guard, tools):
    GuardedWorkbench(tools, guard)
    verdict = guard.check("serach", SEARCH)
    assert verdict.rule == "tool.unknown"
    assert "search" in verdict.message and "ask_user" in verdict.message
