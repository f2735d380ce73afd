"""The official Python SDK client (`mcp` on PyPI) through microloop-mcp to the reference
filesystem server (npm) over stdio."""

from __future__ import annotations

import json

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from conftest import RELAY, fs_command

META = "dev.microloop/verdict"


async def session_run(root, body, *relay_args):
    command = fs_command(root)
    params = StdioServerParameters(command=str(RELAY), args=[*relay_args, "--", *command], cwd=str(root))
    with anyio.fail_after(60):
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                await session.list_tools()
                return await body(session)


def run(root, body, *relay_args):
    return anyio.run(session_run, root, body, *relay_args)


def text(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


def verdict(result) -> dict | None:
    meta = result.meta or {}
    return meta.get(META)


def test_a_read_of_an_unchanged_file_runs_twice_then_is_blocked(root):
    path = str(root / "notes.txt")

    async def body(s):
        return [await s.call_tool("read_text_file", {"path": path}) for _ in range(3)]

    first, second, third = run(root, body)
    assert not first.is_error and text(first) == "first line\nsecond line\n"
    assert not second.is_error and text(second).startswith("first line\nsecond line\n")
    assert third.is_error
    assert "read_text_file" in text(third) and "Do not repeat" in text(third)
    assert verdict(third)["action"] == "block"


def test_a_write_in_between_lets_the_read_through(root):
    path = str(root / "notes.txt")

    async def body(s):
        out = [await s.call_tool("read_text_file", {"path": path}) for _ in range(2)]
        out.append(await s.call_tool("write_file", {"path": path, "content": "changed\n"}))
        out.append(await s.call_tool("read_text_file", {"path": path}))
        return out

    *_, wrote, read = run(root, body)
    assert not wrote.is_error
    assert not read.is_error and text(read) == "changed\n"


def test_the_same_failing_call_fails_twice_then_is_blocked(root):
    path = str(root / "missing.txt")

    async def body(s):
        return [await s.call_tool("read_text_file", {"path": path}) for _ in range(3)]

    first, second, third = run(root, body)
    assert first.is_error and "ENOENT" in text(first)
    assert second.is_error and "ENOENT" in text(second)
    assert third.is_error and "ENOENT" not in text(third) and verdict(third)["action"] == "block"


def test_an_unknown_tool_is_refused_with_the_nearest_names(root):
    async def body(s):
        with pytest.raises(MCPError) as e:
            await s.call_tool("read_txt_file", {"path": "x"})
        return e.value

    err = run(root, body)
    assert err.code == -32602
    assert err.message.startswith("Unknown tool: read_txt_file.")
    assert err.data["nearest"][0] == "read_text_file"


def test_arguments_that_break_the_input_schema_never_reach_the_server(root):
    async def body(s):
        return await s.call_tool("write_file", {"path": str(root / "new.txt")})

    result = run(root, body)
    assert result.is_error and verdict(result)["rule"] == "mcp.input_schema"
    assert "content" in text(result)
    assert not (root / "new.txt").exists()


def test_a_policy_given_to_the_relay_applies(root):
    path = str(root / "notes.txt")
    policy = json.dumps({"tools": [{"name": "write_file", "allow": False}]})

    async def body(s):
        return await s.call_tool("write_file", {"path": path, "content": "x"})

    result = run(root, body, "--policy", policy)
    assert result.is_error and verdict(result)["rule"] == "tool.denied"
    assert (root / "notes.txt").read_text() == "first line\nsecond line\n"
