"""Bad input and process life: a server that dies mid-call, lines that are not JSON, a 10 MB
message, a reused id, signals, exit statuses, stderr, a server that cannot start, a bad policy."""

from __future__ import annotations

import json
import signal
import time

from conftest import RELAY, Raw, fs_command, relayed, toy_command


def call(id_, name, **arguments):
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


def test_a_server_that_dies_mid_call_leaves_no_request_unanswered(root):
    raw = Raw(relayed(toy_command()), cwd=root)
    raw.start()
    raw.send(call(1, "slow", seconds=30))
    raw.send(call(2, "die", code=3))
    answers = {}
    t0 = time.monotonic()
    while len(answers) < 2:
        msg = raw.read_json(timeout=20)
        answers[msg["id"]] = msg
    assert time.monotonic() - t0 < 10
    for id_ in (1, 2):
        assert answers[id_]["error"]["code"] == -32000
        assert "exit status 3" in answers[id_]["error"]["message"]
    code, _ = raw.close()
    assert code == 3


def test_a_line_from_the_server_that_is_not_json_passes_and_the_relay_goes_on(root):
    raw = Raw(relayed(toy_command()), cwd=root)
    raw.start()
    raw.send(call(1, "noise", text="a"))
    assert raw.read() == b"this line is not JSON\n"
    assert raw.read_json()["result"]["content"][0]["text"] == "a"
    raw.send(b"{not json either\n")
    raw.send(call(2, "echo", text="still here"))
    assert raw.answer_to(2)["result"]["content"][0]["text"] == "still here"
    code, _ = raw.close()
    assert code == 0


def test_a_10_mb_answer_passes_whole_and_a_10_mb_call_is_judged(root):
    big = ("0123456789abcdef" * 64 + "\n") * (10 * 1024 * 1024 // 1025)
    (root / "big.txt").write_text(big)
    raw = Raw(relayed(fs_command(root)), cwd=root)
    raw.start()
    raw.send({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    raw.answer_to(1)
    raw.send(call(2, "read_text_file", path=str(root / "big.txt")))
    got = raw.answer_to(2, timeout=60)
    assert got["result"]["content"][0]["text"] == big
    # Ten megabytes of arguments are more than the default policy lets one call send.
    raw.send(call(3, "write_file", path=str(root / "copy.txt"), content=big))
    blocked = raw.answer_to(3, timeout=60)
    assert blocked["result"]["isError"] is True
    assert blocked["result"]["_meta"]["dev.microloop/verdict"]["rule"] == "budget.args_size"
    assert not (root / "copy.txt").exists()
    raw.close()

    # A policy that lets it through: the Python SDK's server echoes it back whole.
    policy = json.dumps({"budget": {"max_args_bytes": 64 * 1024 * 1024}})
    raw = Raw(relayed(toy_command(), "--policy", policy), cwd=root)
    raw.start()
    raw.send(call(1, "echo", text=big))
    assert raw.answer_to(1, timeout=120)["result"]["content"][0]["text"] == big
    raw.close()


def test_an_id_reused_while_its_request_waits_is_refused(root):
    raw = Raw(relayed(toy_command()), cwd=root)
    raw.start()
    raw.send(call(1, "slow", seconds=1))
    raw.send(call(1, "echo", text="again"))
    refused = raw.read_json()
    assert refused["id"] == 1 and refused["error"]["code"] == -32600
    assert "already in use" in refused["error"]["message"]
    assert raw.answer_to(1)["result"]["content"][0]["text"] == "slept"
    raw.send(call(1, "echo", text="again"))
    assert raw.answer_to(1)["result"]["content"][0]["text"] == "again"
    raw.close()


def test_sigterm_reaches_the_server_and_its_end_is_the_relays(root):
    raw = Raw(relayed(toy_command()), cwd=root)
    raw.start()
    raw.proc.send_signal(signal.SIGTERM)
    raw.proc.wait(20)
    assert raw.proc.returncode == 128 + signal.SIGTERM


def test_the_servers_stderr_passes_through(root):
    raw = Raw(relayed(fs_command(root)), cwd=root)
    raw.start()
    code, err = raw.close()
    assert code == 0
    assert b"Secure MCP Filesystem Server running on stdio" in err


def test_a_server_that_cannot_start_is_said_plainly():
    raw = Raw([str(RELAY), "--", "/nonexistent/mcp-server"])
    code, err = raw.close()
    assert code == 127
    assert b"cannot start `/nonexistent/mcp-server`" in err


def test_a_bad_policy_fails_open_and_says_so(root):
    raw = Raw(relayed(fs_command(root), "--policy", '{"loops": {"max_identical": "five"}}'), cwd=root)
    raw.start()
    for i in range(4):
        raw.send(call(i + 1, "read_text_file", path=str(root / "notes.txt")))
        assert not raw.answer_to(i + 1)["result"].get("isError")
    code, err = raw.close()
    assert b"microloop-mcp: policy: loops.max_identical" in err and b"unchecked" in err
