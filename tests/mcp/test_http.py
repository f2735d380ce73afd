"""Streamable HTTP: microloop-mcp --listen/--upstream in front of a Python SDK streamable-HTTP server,
driven by the Python SDK's streamable-HTTP client."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from conftest import RELAY, TOY_SERVER

SECRET = "Bearer s3cret-token-value"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    server_port, relay_port = free_port(), free_port()
    logs = tmp_path_factory.mktemp("http")
    server = subprocess.Popen([sys.executable, str(TOY_SERVER), "http", str(server_port)],
                              stdout=subprocess.DEVNULL, stderr=open(logs / "server.err", "wb"))
    proc = None
    try:
        wait_http(f"http://127.0.0.1:{server_port}/mcp")
        err = open(logs / "relay.err", "wb")
        proc = subprocess.Popen([str(RELAY), "--listen", f"127.0.0.1:{relay_port}",
                                 "--upstream", f"http://127.0.0.1:{server_port}/mcp"], stderr=err)
        base = f"http://127.0.0.1:{relay_port}"
        wait_http(base + "/healthz")
        yield base, logs / "relay.err"
        proc.terminate()
        assert proc.wait(20) == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        server.terminate()
        server.wait(20)


async def with_session(base, body):
    with anyio.fail_after(60):
        async with httpx2.AsyncClient(headers={"Authorization": SECRET}, timeout=30) as http:
            async with streamable_http_client(base + "/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    await session.list_tools()
                    return await body(session)


def run(base, body):
    return anyio.run(with_session, base, body)


def test_a_repeated_call_over_http_runs_twice_then_is_blocked(relay):
    base, _ = relay

    async def body(s):
        return [await s.call_tool("echo", {"text": "same"}) for _ in range(3)]

    first, second, third = run(base, body)
    assert not first.is_error and first.content[0].text == "same"
    assert not second.is_error and second.content[0].text == "same"
    assert third.is_error and "echo" in third.content[0].text
    assert third.meta["dev.microloop/verdict"]["action"] == "block"


def test_each_session_has_its_own_history(relay):
    base, _ = relay

    async def twice(s):
        return [await s.call_tool("echo", {"text": "per session"}) for _ in range(2)]

    for _ in range(2):
        assert not any(r.is_error for r in run(base, twice))


def test_auth_headers_reach_the_server_and_never_the_log(relay):
    base, log = relay

    async def body(s):
        return await s.call_tool("whoami", {})

    assert run(base, body).content[0].text == SECRET
    assert b"s3cret" not in log.read_bytes()


def test_sse_events_are_relayed_as_they_stream(relay):
    base, _ = relay
    seen = []

    async def body(s):
        async def progress(p, total, message):
            seen.append((p, time.monotonic()))

        result = await s.call_tool("paced", {"steps": 2, "delay": 1.5}, progress_callback=progress)
        return result, time.monotonic()

    result, done_at = run(base, body)
    assert result.content[0].text == "paced"
    assert [p for p, _ in seen] == [1, 2]
    assert done_at - seen[0][1] > 2.5, "the first progress event waited for the end of the stream"


def test_an_unknown_tool_over_http_names_the_nearest(relay):
    base, _ = relay

    async def body(s):
        with pytest.raises(MCPError) as e:
            await s.call_tool("ecko", {"text": "x"})
        return e.value

    err = run(base, body)
    assert err.code == -32602 and err.data["nearest"][0] == "echo"


def test_healthz_and_metrics(relay):
    base, _ = relay

    async def body(s):
        return [await s.call_tool("fail", {"reason": "metrics"}) for _ in range(3)]

    run(base, body)
    assert urllib.request.urlopen(base + "/healthz").read() == b"ok\n"
    metrics = urllib.request.urlopen(base + "/metrics").read().decode()
    assert 'microloop_mcp_blocks_total{rule="' in metrics
    assert "microloop_mcp_tool_calls_total" in metrics
    assert 'microloop_mcp_requests_total{status="200"}' in metrics


def test_an_unreachable_server_gets_each_request_a_json_rpc_error(tmp_path):
    port, dead = free_port(), free_port()
    proc = subprocess.Popen([str(RELAY), "--listen", f"127.0.0.1:{port}", "--upstream", f"http://127.0.0.1:{dead}/mcp"],
                            stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        body = b'{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}'
        req = urllib.request.Request(f"http://127.0.0.1:{port}/mcp", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=20)
        assert e.value.code == 502
        answer = json.loads(e.value.read())
        assert answer["id"] == 42 and answer["error"]["code"] == -32000
    finally:
        proc.terminate()
        proc.wait(20)
