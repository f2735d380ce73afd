"""Added cost per tool call of each framework adapter: the same scripted run, guarded and not.

Each run makes CALLS tool calls with distinct arguments (nothing is blocked), through the real
framework with an offline scripted model. The overhead per call is
(median guarded run - median plain run) / CALLS. Run with ``make bench-adapters``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from microloop import Guardrail

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "adapters"))
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

CALLS = 20


def search(query: str) -> str:
    """Search the web."""
    return f"results for {query}"


def fresh_guard() -> Guardrail:
    return Guardrail("balanced")


@pytest.mark.parametrize("guarded", [False, True], ids=["plain", "guarded"])
def test_langchain(benchmark, guarded):
    pytest.importorskip("langchain.agents")
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from lc_fakes import ScriptedChatModel, ask, tool_messages

    from microloop.adapters.langchain import MicroLoopMiddleware

    def respond(messages):
        n = len(tool_messages(messages))
        return ask(("search", {"query": str(n)})) if n < CALLS else AIMessage(content="done")

    tools = [tool(search)]

    def run():
        middleware = [MicroLoopMiddleware(fresh_guard())] if guarded else []
        agent = create_agent(ScriptedChatModel(respond=respond), tools=tools, middleware=middleware)
        assert agent.invoke({"messages": [("user", "go")]})["messages"][-1].content == "done"

    benchmark.pedantic(run, rounds=30, warmup_rounds=2)


@pytest.mark.parametrize("guarded", [False, True], ids=["plain", "guarded"])
def test_langgraph(benchmark, guarded):
    pytest.importorskip("langgraph.prebuilt")
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition
    from lc_fakes import ScriptedChatModel, ask, tool_messages

    from microloop.adapters.langgraph import guard_tool_node

    def respond(messages):
        n = len(tool_messages(messages))
        return ask(("search", {"query": str(n)})) if n < CALLS else AIMessage(content="done")

    tools = [tool(search)]

    def run():
        model = ScriptedChatModel(respond=respond)
        graph = StateGraph(MessagesState)
        graph.add_node("agent", lambda state: {"messages": [model.invoke(state["messages"])]})
        graph.add_node("tools", guard_tool_node(tools, fresh_guard()) if guarded else ToolNode(tools))
        graph.add_edge(START, "agent")
        graph.add_conditional_edges("agent", tools_condition)
        graph.add_edge("tools", "agent")
        assert graph.compile().invoke({"messages": [("user", "go")]})["messages"][-1].content == "done"

    benchmark.pedantic(run, rounds=30, warmup_rounds=2)


@pytest.mark.parametrize("guarded", [False, True], ids=["plain", "guarded"])
def test_autogen(benchmark, guarded):
    pytest.importorskip("autogen_agentchat")
    from autogen_agentchat.agents import AssistantAgent
    from autogen_core import FunctionCall
    from autogen_core.models import CreateResult, ModelFamily, ModelInfo, RequestUsage
    from autogen_core.tools import FunctionTool, StaticStreamWorkbench
    from autogen_ext.models.replay import ReplayChatCompletionClient

    from microloop.adapters.autogen import GuardedWorkbench

    info = ModelInfo(vision=False, function_calling=True, json_output=False, family=ModelFamily.UNKNOWN,
                     structured_output=False)
    usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
    script = [CreateResult(finish_reason="function_calls", cached=False, usage=usage,
                           content=[FunctionCall(id=f"c{i}", name="search", arguments=json.dumps({"query": str(i)}))])
              for i in range(CALLS)] + ["done"]
    tools = [FunctionTool(search, description="Search the web.")]

    def run():
        workbench = GuardedWorkbench(tools, fresh_guard()) if guarded else StaticStreamWorkbench(tools)
        client = ReplayChatCompletionClient(script, model_info=info)
        agent = AssistantAgent("a", model_client=client, workbench=workbench, max_tool_iterations=CALLS + 1)
        assert asyncio.run(agent.run(task="go")).messages[-1].content == "done"

    benchmark.pedantic(run, rounds=30, warmup_rounds=2)


@pytest.mark.parametrize("guarded", [False, True], ids=["plain", "guarded"])
def test_openai_agents(benchmark, guarded):
    pytest.importorskip("agents.testing")
    from agents import Agent, Runner, function_tool
    from agents.testing import ScriptedModel, assistant_message, function_call

    from microloop.adapters.openai_agents import guard_tools

    tools = [function_tool(search)]

    def run():
        steps = [[function_call("search", {"query": str(i)}, call_id=f"c{i}")] for i in range(CALLS)]
        model = ScriptedModel(steps + [[assistant_message("done")]])
        agent = Agent(name="a", model=model, tools=guard_tools(tools, fresh_guard()) if guarded else tools)
        assert asyncio.run(Runner.run(agent, "go", max_turns=CALLS + 2)).final_output == "done"

    benchmark.pedantic(run, rounds=30, warmup_rounds=2)


@pytest.mark.parametrize("guarded", [False, True], ids=["plain", "guarded"])
def test_crewai(benchmark, guarded, tmp_path):
    pytest.importorskip("crewai")
    from crewai import Agent, Crew, Task
    from crewai.llms.base_llm import BaseLLM
    from crewai.tools import tool

    from microloop.adapters.crewai import guard_crew, unguard_crew

    class ScriptedLLM(BaseLLM):
        turn: int = 0

        def supports_function_calling(self) -> bool:
            return True

        def call(self, messages, tools=None, callbacks=None, available_functions=None, from_task=None,
                 from_agent=None, response_model=None):
            self.turn += 1
            if self.turn > CALLS:
                return "done"
            return [{"id": f"c{self.turn}", "type": "function",
                     "function": {"name": "search", "arguments": json.dumps({"query": str(self.turn)})}}]

    search_tool = tool("search")(search)

    def run():
        agent = Agent(role="R", goal="g", backstory="b", tools=[search_tool], llm=ScriptedLLM(model="scripted"),
                      verbose=False, max_iter=CALLS + 2)
        crew = Crew(agents=[agent], tasks=[Task(description="go", expected_output="x", agent=agent)])
        if guarded:
            guard_crew(crew, fresh_guard())
        try:
            assert crew.kickoff().raw == "done"
        finally:
            unguard_crew(crew)

    benchmark.pedantic(run, rounds=8, warmup_rounds=1)


def test_langgraph_wrapper_alone(benchmark):
    """The adapter's own work per call (check, run a stub tool, record), without a framework run."""
    pytest.importorskip("langgraph.prebuilt")
    import itertools

    from langchain_core.messages import ToolMessage
    from langgraph.prebuilt.tool_node import ToolCallRequest

    from microloop.adapters.langgraph import ToolCallGuard

    wrapper = ToolCallGuard(fresh_guard())
    wrapper.set_tools(["search"])
    counter = itertools.count()

    def one_call():
        i = next(counter)
        call = {"name": "search", "args": {"query": str(i)}, "id": f"c{i}", "type": "tool_call"}
        request = ToolCallRequest(tool_call=call, tool=None, state={}, runtime=None)
        return wrapper.wrap(request, lambda r: ToolMessage(content=f"results {i}", tool_call_id=call["id"]))

    benchmark(one_call)
