"""CrewAI 1.x driven offline by a scripted BaseLLM (native function calling), guarded by guard_crew.

Runs in its own virtualenv (.venv-crewai): CrewAI pins openai<3, which the Agents SDK cannot use.
"""

from __future__ import annotations

import json
import os
import tempfile

import pytest

_home = tempfile.mkdtemp(prefix="microloop-crewai-")  # CrewAI writes under $HOME at import time
for _var, _value in {"CREWAI_DISABLE_TELEMETRY": "true", "CREWAI_DISABLE_TRACKING": "true",
                     "OTEL_SDK_DISABLED": "true", "CREWAI_TRACING_ENABLED": "false", "HOME": _home,
                     "XDG_DATA_HOME": _home, "XDG_CONFIG_HOME": _home}.items():
    os.environ[_var] = _value

pytest.importorskip("crewai")

from crewai import Agent, Crew, Task  # noqa: E402
from crewai.hooks import HookAborted  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from crewai.tools import tool  # noqa: E402

from microloop.adapters.crewai import guard_crew, unguard_crew  # noqa: E402


class ScriptedLLM(BaseLLM):
    """Answers from a list of turns; a turn is a list of (name, args) tool calls, or the final text."""

    script: list = []
    seen: list = []

    def supports_function_calling(self) -> bool:
        return True

    def call(self, messages, tools=None, callbacks=None, available_functions=None, from_task=None,
             from_agent=None, response_model=None):
        self.seen.append(list(messages) if isinstance(messages, list) else [messages])
        turn = self.script[len(self.seen) - 1] if len(self.seen) <= len(self.script) else "done"
        if isinstance(turn, str):
            return turn
        return [{"id": f"call_{len(self.seen)}_{i}", "type": "function",
                 "function": {"name": n, "arguments": json.dumps(a)}} for i, (n, a) in enumerate(turn)]


def tool_results(messages) -> dict[str, str]:
    return {m["tool_call_id"]: m["content"] for m in messages if isinstance(m, dict) and m.get("role") == "tool"}


@pytest.fixture
def ran() -> list[str]:
    return []


@pytest.fixture
def crew_for(ran, guard):
    crews = []

    @tool("search")
    def search(query: str) -> str:
        """Search the web."""
        ran.append(f"search:{query}")
        return "no results"

    @tool("ask_user")
    def ask_user(question: str) -> str:
        """Ask the user."""
        ran.append("ask_user")
        return "Paris, France"

    def make(script):
        llm = ScriptedLLM(model="scripted", script=script, seen=[])
        agent = Agent(role="Researcher", goal="answer", backstory="x", tools=[search, ask_user], llm=llm,
                      verbose=False, max_iter=20)
        crew = Crew(agents=[agent], tasks=[Task(description="weather?", expected_output="answer", agent=agent)])
        crews.append(crew)
        return guard_crew(crew, guard), llm

    yield make
    for crew in crews:
        unguard_crew(crew)


SEARCH = ("search", {"query": "weather in Paris"})


def test_a_repeated_call_is_nudged_then_blocked_and_the_model_pivots(guard, crew_for, ran):
    crew, llm = crew_for([[SEARCH], [SEARCH], [SEARCH], [("ask_user", {"question": "which?"})], "done"])

    result = crew.kickoff()

    assert ran == ["search:weather in Paris"] * 2 + ["ask_user"]
    assert guard.actions() == ["allow", "warn", "block", "allow"]
    seen = tool_results(llm.seen[3])  # the model's input right after the block
    assert seen["call_1_0"] == "no results"
    assert seen["call_2_0"] == "no results\n\n" + guard.messages("warn")[0]
    assert seen["call_3_0"] == guard.messages("block")[0] != ""
    assert "blocked by hook" not in seen["call_3_0"]
    assert result.raw == "done"


def test_a_model_that_ignores_every_block_is_halted(guard, crew_for, ran):
    # Two alternating blocked calls, so CrewAI's own stop (5 identical results) is not what ends the run.
    other = ("search", {"query": "weather in Rome"})
    crew, llm = crew_for([[SEARCH], [other], [SEARCH], [other]] + [[SEARCH], [other]] * 5)

    with pytest.raises(HookAborted):
        crew.kickoff()

    assert sorted(ran) == ["search:weather in Paris"] * 2 + ["search:weather in Rome"] * 2
    assert guard.actions()[-1] == "halt" and guard.actions().count("halt") == 1


def test_parallel_calls_are_answered_under_their_own_ids(guard, crew_for, ran):
    pair = [("search", {"query": "a"}), ("search", {"query": "b"})]
    crew, llm = crew_for([pair, pair, pair, "done"])

    result = crew.kickoff()

    assert sorted(ran) == ["search:a", "search:a", "search:b", "search:b"]
    seen = tool_results(llm.seen[3])
    assert seen["call_3_0"] in guard.messages("block") and seen["call_3_1"] in guard.messages("block")
    assert result.raw == "done"


def test_a_hallucinated_tool_is_answered_with_the_real_tools(guard, crew_for, ran):
    crew, llm = crew_for([[("serach", {"query": "x"})], [SEARCH], "done"])

    result = crew.kickoff()

    answer = tool_results(llm.seen[1])["call_1_0"]
    assert guard.log[0][2].rule == "tool.unknown" and answer == guard.log[0][2].message
    assert "search" in answer and "ask_user" in answer
    assert ran == ["search:weather in Paris"] and result.raw == "done"


def test_a_call_whose_answers_change_is_not_blocked(guard, crew_for, ran):
    polls = [[("search", {"query": "status"})]] * 4
    ran.extend(["x"])  # makes the results below differ from call to call

    crew, llm = crew_for(polls + ["done"])
    crew.agents[0].tools[0].func = lambda query: (ran.append(query), f"{len(ran)} done")[1]
    crew.kickoff()

    assert ran.count("status") == 4 and "block" not in guard.actions()


def test_hooks_of_an_unguarded_crew_do_not_fire(guard, crew_for, ran):
    crew, llm = crew_for([[SEARCH], "done"])
    unguard_crew(crew)
    crew.kickoff()
    assert guard.log == [] and ran == ["search:weather in Paris"]


def test_verify_under_crewai_tool_keeps_the_schema():
    from microloop import Guardrail

    guard = Guardrail("balanced")

    @tool("transfer")
    @guard.verify
    def transfer(amount: int, to: str) -> str:
        """Transfer money."""
        return f"sent {amount} to {to}"

    props = transfer.args_schema.model_json_schema()["properties"]
    assert {k: v["type"] for k, v in props.items()} == {"amount": "integer", "to": "string"}


class ReActLLM(BaseLLM):
    """No native function calling: CrewAI parses Thought/Action/Action Input text (the ReAct path)."""

    queries: list = []
    seen: list = []

    def call(self, messages, tools=None, callbacks=None, available_functions=None, from_task=None,
             from_agent=None, response_model=None):
        self.seen.append(messages)
        if len(self.seen) <= len(self.queries):
            query = self.queries[len(self.seen) - 1]
            return f"Thought: search\nAction: search\nAction Input: {json.dumps({'query': query})}"
        return "Thought: I now know the final answer\nFinal Answer: done"


def test_the_react_path_is_guarded_too(guard, crew_for, ran):
    # CrewAI itself refuses an immediately repeated call on this path, so the loop alternates.
    crew, _ = crew_for([])
    llm = ReActLLM(model="react", queries=["a", "b", "a", "b", "a", "b"], seen=[])
    crew.agents[0].llm = llm

    assert crew.kickoff().raw == "done"

    assert ran == ["search:a", "search:b", "search:a", "search:b"]
    assert guard.actions() == ["allow", "allow", "warn", "warn", "block", "block"]
    after_block = json.dumps(llm.seen[5], default=str)
    assert json.dumps(guard.messages("block")[0])[1:-1] in after_block
