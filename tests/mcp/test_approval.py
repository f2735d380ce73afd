"""Approval tokens through microloop-mcp: with `[approval]` in the policy, every tools/call the relay
lets through reaches the server with its token in `params._meta["dev.microloop/approval"]`, read there
by a server on the official Python SDK and checked with PyJWT and rfc8785 (nothing of MicroLoop's)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import anyio
import jwt
import rfc8785
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import RELAY, Raw, relayed, toy_command

VECTORS = json.loads((Path(__file__).parents[1] / "vectors/approval/approval.json").read_text(encoding="utf-8"))
KEY = "dev.microloop/approval"


def policy(tmp_path: Path, approval: bool = True) -> Path:
    key = tmp_path / "approval.key"
    key.write_text(VECTORS["signer_key"] + "\n")
    key.chmod(0o600)
    p = tmp_path / "policy.toml"
    text = "[loops]\nmax_identical = 2\n"
    if approval:
        text += f'[approval]\nkey_file = "{key}"\naudience = "tools.test"\n'
    p.write_text(text)
    return p


def check(token: str, tool: str, args: dict) -> dict:
    """The token checked with PyJWT against the key's JWK, and its hash with rfc8785."""
    key = jwt.PyJWK(VECTORS["jwks"]["keys"][0]).key
    claims = jwt.decode(token, key, algorithms=["EdDSA"], audience="tools.test", issuer="microloop")
    assert jwt.get_unverified_header(token)["typ"] == "microloop-approval+jwt"
    assert claims["tool"] == tool
    assert claims["args_sha256"] == hashlib.sha256(rfc8785.dumps(args)).hexdigest()
    return claims


def sdk_calls(tmp_path: Path, calls: list[tuple[str, dict]], approval: bool = True) -> list:
    params = StdioServerParameters(command=str(RELAY), args=["--policy", str(policy(tmp_path, approval)), "--", *toy_command()])

    async def run():
        with anyio.fail_after(60):
            async with stdio_client(params) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    await session.list_tools()
                    return [await session.call_tool(name, args) for name, args in calls]

    return anyio.run(run)


def meta_of(result) -> dict:
    assert not result.is_error, result
    return json.loads("".join(c.text for c in result.content if c.type == "text"))


def test_the_server_receives_a_token_for_exactly_its_call(tmp_path: Path) -> None:
    args = [{"text": "héllo 😀"}, {"text": "second"}]
    results = sdk_calls(tmp_path, [("approved", a) for a in args])
    claims = [check(meta_of(r)[KEY], "approved", a) for r, a in zip(results, args)]
    assert claims[0]["jti"] != claims[1]["jti"] and claims[0]["sid"] == claims[1]["sid"]
    assert claims[1]["call_id"] > claims[0]["call_id"]


def test_without_approval_nothing_is_added(tmp_path: Path) -> None:
    (result,) = sdk_calls(tmp_path, [("approved", {"text": "x"})], approval=False)
    assert KEY not in meta_of(result)


def test_the_clients_own_meta_is_kept_and_blocked_calls_never_reach_the_server(tmp_path: Path) -> None:
    raw = Raw(relayed(toy_command(), "--policy", str(policy(tmp_path))))
    try:
        raw.start()
        raw.send({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        raw.answer_to(1)
        tokens = []
        for i in range(2, 6):
            raw.send({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                      "params": {"name": "approved", "arguments": {"text": "same"}, "_meta": {"progressToken": i, "x.example/k": [1]}}})
            answer = raw.answer_to(i)["result"]
            if answer.get("isError"):
                assert answer["_meta"]["dev.microloop/verdict"]["action"] in ("block", "halt")
                break
            meta = json.loads(answer["content"][0]["text"])
            assert meta["x.example/k"] == [1], meta
            tokens.append(check(meta[KEY], "approved", {"text": "same"}))
        assert len(tokens) >= 2 and any(t["action"] == "warn" for t in tokens)
    finally:
        raw.close()
