"""The official TypeScript SDK client (@modelcontextprotocol/sdk on npm) through microloop-mcp to
the reference filesystem server over stdio."""

from __future__ import annotations

import json
import subprocess

from conftest import FS_SERVER, HERE, RELAY


def test_the_typescript_client_gets_two_reads_then_the_block_and_the_nearest_names(root):
    out = subprocess.run(["node", str(HERE / "ts_client.mjs"), str(RELAY), str(FS_SERVER), str(root)],
                         capture_output=True, text=True, timeout=120, cwd=HERE)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert "read_text_file" in got["tools"]
    first, second, third = got["reads"]
    assert not first.get("isError") and first["content"][0]["text"] == "first line\nsecond line\n"
    assert not second.get("isError") and second["content"][0]["text"] == "first line\nsecond line\n"
    assert third["isError"] is True
    assert "Do not repeat" in third["content"][0]["text"]
    assert third["_meta"]["dev.microloop/verdict"]["action"] == "block"
    assert not got["write"].get("isError")
    assert got["after_write"]["content"][0]["text"] == "changed\n"
    assert got["unknown"]["code"] == -32602
    assert "Unknown tool: read_txt_file." in got["unknown"]["message"]
    assert got["unknown"]["data"]["nearest"][0] == "read_text_file"
