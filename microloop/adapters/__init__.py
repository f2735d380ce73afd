"""Framework adapters: one module per framework, each a one-line change to an existing agent.

========================  ==================================================================
framework                 entry point
========================  ==================================================================
LangChain 1.x             ``microloop.adapters.langchain.MicroLoopMiddleware(guard)``
LangGraph 1.x             ``microloop.adapters.langgraph.guard_tool_node(tools, guard)``
CrewAI 1.x                ``microloop.adapters.crewai.guard_crew(crew, guard)``
AutoGen agentchat 0.7     ``microloop.adapters.autogen.GuardedWorkbench(tools, guard)``
OpenAI Agents SDK         ``microloop.adapters.openai_agents.guard_tools(tools, guard)``
========================  ==================================================================

Every adapter does the same five things: it registers the agent's tool names (so a hallucinated
tool is answered with the real ones), records every tool output as the call's result (so
no-progress detection works), appends a ``warn`` verdict's message to the real result, replaces a
blocked call's result with the verdict's message (so the model reads it and pivots), and ends the
run on a ``halt``. Each module imports its framework only when it is imported itself: ``import
microloop`` and ``import microloop.adapters`` import no framework.
"""
