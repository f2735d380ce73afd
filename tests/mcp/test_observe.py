"""Shadow mode in microloop-mcp (`--observe`, or a policy's mode = "observe"), driven by the official
Python SDK client: over stdio in front of the reference filesystem server, over Streamable HTTP in
front of the SDK's toy server. Every call reaches the server, every verdict and result is logged in
the format `microloop replay` reads, and the would-be blocks are counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import get_default_environment, stdio_client

from conftest import RELAY, TOY_SERVER, fs_command
from test_http import free_port, run as run_http, wait_http
from test_python_client import text, verdict

READS = 5


def read_log(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


async def stdio_reads(root, log, relay_args):
    path = str(root / "notes.txt")
    env = {**get_default_environment(), "MICROLOOP_OBSERVE_LOG": str(log)}
    params = StdioServerParameters(command=str(RELAY), args=[*relay_args, "--", *fs_command(root)], cwd=str(root), env=env)
    with anyio.fail_after(60):
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                await session.list_tools()
                out = [await session.call_tool("read_text_file", {"path": path}) for _ in range(READS)]
                out.append(await session.call_tool("read_txt_file", {"path": path}))  # no such tool
                return out


@pytest.mark.parametrize("how", ["flag", "policy"])
def test_stdio_every_call_reaches_the_server_and_every_verdict_is_logged(root, tmp_path, how):
    log = tmp_path / "observe.jsonl"
    if how == "flag":
        args = ["--observe"]
    else:
        (tmp_path / "shadow.toml").write_text('mode = "observe"\n')
        args = ["--policy", str(tmp_path / "shadow.toml")]
    results = anyio.run(stdio_reads, root, log, args)
    for r in results[:READS]:
        assert not r.is_error and text(r).startswith("first line\nsecond line\n"), "the server answered every read"
        assert verdict(r) is None and "microloop" not in text(r).lower(), "the model reads nothing from MicroLoop"
    assert results[READS].is_error, "the unknown tool went to the server, which refused it"
    lines = read_log(log)
    checks = [d for d in lines if d["event"] == "check"]
    records = [d for d in lines if d["event"] == "record"]
    assert [d["tool"] for d in checks] == ["read_text_file"] * READS + ["read_txt_file"]
    actions = [d["action"] for d in checks]
    assert actions[0] == "allow" and actions[2] == "block" and actions[-1] == "block", actions
    assert checks[-1]["rule"] == "mcp.unknown_tool"
    assert [d["call"] for d in records] == [d["call"] for d in checks[:READS]], "each read ran, so each result is recorded"
    assert all("first line" in d["output"] for d in records)
    assert len({d["session"] for d in lines}) == 1


@pytest.fixture
def observing_relay(tmp_path):
    server_port, relay_port = free_port(), free_port()
    log = tmp_path / "observe.jsonl"
    server = subprocess.Popen([sys.executable, str(TOY_SERVER), "http", str(server_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = None
    try:
        wait_http(f"http://127.0.0.1:{server_port}/mcp")
        proc = subprocess.Popen([str(RELAY), "--observe", "--listen", f"127.0.0.1:{relay_port}", "--upstream", f"http://127.0.0.1:{server_port}/mcp"],
                                env={**os.environ, "MICROLOOP_OBSERVE_LOG": str(log)}, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{relay_port}"
        wait_http(base + "/healthz")
        yield base, log
        proc.terminate()
        assert proc.wait(20) == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        server.terminate()
        server.wait(20)


def test_http_every_call_runs_and_metrics_count_the_would_be_blocks(observing_relay):
    base, log = observing_relay

    async def body(s):
        return [await s.call_tool("echo", {"text": "same"}) for _ in range(READS)]

    results = run_http(base, body)
    assert all(not r.is_error and r.content[0].text == "same" for r in results)
    metrics = urllib.request.urlopen(base + "/metrics").read().decode()
    observed = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                if line.startswith("microloop_mcp_observed_total{")}
    lines = read_log(log)
    checks = [d for d in lines if d["event"] == "check"]
    assert len(checks) == READS and sum(d["event"] == "record" for d in lines) == READS
    would = [d for d in checks if d["action"] != "allow"]
    assert would and sum(observed.values()) == len(would)
    assert f'microloop_mcp_observed_total{{action="{would[0]["action"]}",rule="{would[0]["rule"]}"}}' in observed
    assert "microloop_mcp_blocks_total{" not in metrics, "nothing was blocked"
