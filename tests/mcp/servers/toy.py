"""A small MCP server on the official Python SDK, for what the filesystem server does not do:
progress, logging notifications, resources, prompts, a slow call to cancel, a server that dies
mid-call, and stdout lines that are not JSON.

    python toy.py [stdio | http PORT]
"""

from __future__ import annotations

import json
import os
import sys

import anyio
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("toy")
# The SDK diverts fd 1 to stderr while it serves; a copy made before keeps the wire.
WIRE = os.dup(1)
_counter = {"n": 0}


@server.tool()
async def echo(text: str) -> str:
    """Says the text back."""
    return text


@server.tool()
async def count() -> str:
    """A different answer each time."""
    _counter["n"] += 1
    return f"count {_counter['n']}"


@server.tool()
async def fail(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"cannot do it: {reason}")


@server.tool()
async def work(steps: int, ctx: Context) -> str:
    """Reports progress and logs as it goes."""
    for i in range(steps):
        await ctx.report_progress(i + 1, steps, f"step {i + 1}")
        await ctx.info(f"did step {i + 1}")
    return f"did {steps} steps"


@server.tool()
async def paced(steps: int, delay: float, ctx: Context) -> str:
    """Reports progress, waiting `delay` seconds after each step."""
    for i in range(steps):
        await ctx.report_progress(i + 1, steps)
        await anyio.sleep(delay)
    return "paced"


@server.tool()
async def whoami(ctx: Context) -> str:
    """The Authorization header of the HTTP request (empty over stdio)."""
    request = ctx.request_context.request
    return request.headers.get("authorization", "") if request is not None else ""


@server.tool()
async def approved(text: str, ctx: Context) -> str:
    """The request's params._meta as JSON (the relay's approval token is under dev.microloop/approval)."""
    return json.dumps(dict(ctx.request_context.meta or {}))


@server.tool()
async def slow(seconds: float) -> str:
    """Sleeps (to be cancelled)."""
    await anyio.sleep(seconds)
    return "slept"


@server.tool()
async def die(code: int) -> str:
    """Exits the server in the middle of the call."""
    sys.stdout.flush()
    os._exit(code)


@server.tool()
async def noise(text: str) -> str:
    """Writes a line that is not JSON on the server's stdout before answering."""
    os.write(WIRE, b"this line is not JSON\n")
    return text


@server.resource("toy://greeting")
def greeting() -> str:
    """A fixed text."""
    return "hello from toy"


@server.prompt()
def review(code: str) -> str:
    """Asks for a review."""
    return f"Please review:\n{code}"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
