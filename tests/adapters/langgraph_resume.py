"""One process of test_langgraph_resume.py: a LangGraph agent stuck on one call, persisted by a
SQLite checkpointer and interrupted before each tool step, its guard's history in Redis (or, with
port `memory`, in this process only).

Usage: langgraph_resume.py DB PORT STEPS. Starts thread `t1` (or resumes it when the checkpoint
exists), runs STEPS more tool steps, then prints the thread's tool messages as JSON lines.
"""

from __future__ import annotations

import json
import sqlite3
import sys

from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition
from lc_fakes import ScriptedChatModel, repeat_forever

from microloop import Guardrail
from microloop.adapters.langgraph import guard_tool_node


@tool
def open_page(url: str) -> str:
    """Open a web page."""
    return "Please solve the CAPTCHA"


def main() -> None:
    db, port, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if port == "memory":
        guard = Guardrail("balanced")
    else:
        import redis

        from microloop.store import RedisStore

        guard = Guardrail("balanced", store=RedisStore(redis.Redis(port=int(port)), "langgraph"))
    model = ScriptedChatModel(respond=repeat_forever(("open_page", {"url": "https://shop.example"})))

    graph = StateGraph(MessagesState)
    graph.add_node("agent", lambda state: {"messages": [model.invoke(state["messages"])]})
    graph.add_node("tools", guard_tool_node([open_page], guard))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    with sqlite3.connect(db, check_same_thread=False) as conn:
        app = graph.compile(checkpointer=SqliteSaver(conn), interrupt_before=["tools"])
        config = {"configurable": {"thread_id": "t1"}}
        if app.get_state(config).next == ():
            app.invoke({"messages": [("user", "read the prices")]}, config)  # stops before the first tool step
        for _ in range(steps):
            app.invoke(None, config)  # one tool step, then the model, then the next interrupt
        for m in app.get_state(config).values["messages"]:
            if isinstance(m, ToolMessage):
                print(json.dumps({"status": m.status, "content": m.content}))


if __name__ == "__main__":
    main()
