"""An agent end to end: the OpenAI Agents SDK's MCPServerStdio runs the filesystem server under
microloop-mcp, and a scripted model that keeps reading the same file is stopped; the model reads
the block text as the tool's output."""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")

from agents import Agent, Runner  # noqa: E402
from agents.mcp import MCPServerStdio  # noqa: E402
from agents.testing import ScriptedModel, assistant_message, function_call  # noqa: E402

from conftest import RELAY, fs_command  # noqa: E402


def outputs(call) -> dict[str, str]:
    """The tool outputs the model received in one call, by call id, as text."""
    out = {}
    for item in call.input:
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            o = item["output"]
            if isinstance(o, list):
                o = "\n".join(part.get("text", "") for part in o)
            elif isinstance(o, dict):
                o = o.get("text", "")
            out[item["call_id"]] = o
    return out


async def run_agent(root, model):
    server = MCPServerStdio(
        params={"command": str(RELAY), "args": ["--", *fs_command(root)], "cwd": str(root)},
        name="files", cache_tools_list=True, client_session_timeout_seconds=30,
    )
    async with server:
        agent = Agent(name="assistant", instructions="help", model=model, mcp_servers=[server])
        return await Runner.run(agent, "what is in notes.txt?", max_turns=20)


def test_a_looping_model_is_stopped_and_reads_the_block_text(root):
    path = str(root / "notes.txt")
    loops = 6
    steps = [[function_call("read_text_file", {"path": path}, call_id=f"call_{i}")] for i in range(1, loops + 1)]
    model = ScriptedModel(steps + [[assistant_message("I keep getting the same file; stopping.")]])

    result = asyncio.run(run_agent(root, model))

    assert result.final_output == "I keep getting the same file; stopping."
    seen = outputs(model.calls[-1])
    assert len(seen) == loops
    assert seen["call_1"] == "first line\nsecond line\n"
    assert seen["call_2"].startswith("first line\nsecond line\n")
    for i in range(3, loops + 1):
        assert "first line" not in seen[f"call_{i}"], seen[f"call_{i}"]
        assert "Blocked" in seen[f"call_{i}"] or "halt" in seen[f"call_{i}"].lower()
    assert "Do not repeat this call" in seen["call_3"]
