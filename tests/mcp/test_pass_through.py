"""Everything the relay does not act on passes byte for byte: a scripted session's byte stream is
the same with and without microloop-mcp, for the reference filesystem server and for the Python
SDK's server (resources, prompts, progress, logging notifications, cancellation)."""

from __future__ import annotations

import pytest

from conftest import INIT, INITIALIZED, Raw, fs_command, relayed, toy_command


def request(id_, method, params=None):
    msg = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def fs_script(root):
    notes = str(root / "notes.txt")
    return [
        INIT, INITIALIZED,
        request(1, "tools/list"),
        request(2, "ping"),
        request(3, "resources/list"),
        request(4, "prompts/list"),
        request("four", "tools/call", {"name": "read_text_file", "arguments": {"path": notes}}),
        request(5, "tools/call", {"name": "list_directory", "arguments": {"path": str(root)}}),
        request(6, "tools/call", {"name": "get_file_info", "arguments": {"path": notes}, "_meta": {"progressToken": "p1"}}),
        request(7, "tools/call", {"name": "read_text_file", "arguments": {"path": str(root / "nope")}}),
        b"this line is not JSON\n",
        request(8, "ping"),
    ]


def toy_script():
    return [
        INIT, INITIALIZED,
        request(1, "tools/list"),
        request(2, "resources/list"),
        request(3, "resources/read", {"uri": "toy://greeting"}),
        request(4, "prompts/list"),
        request(5, "prompts/get", {"name": "review", "arguments": {"code": "x = 1"}}),
        request(6, "logging/setLevel", {"level": "info"}),
        request(7, "tools/call", {"name": "work", "arguments": {"steps": 3}, "_meta": {"progressToken": 77}}),
        request(8, "tools/call", {"name": "echo", "arguments": {"text": "héllo ✓"}}),
        request(9, "tools/call", {"name": "fail", "arguments": {"reason": "no"}}),
        {"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {"name": "slow", "arguments": {"seconds": 30}}},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 10, "reason": "changed my mind"}},
        request(11, "ping"),
    ]


def drop_slow(script):
    # The cancelled request gets no answer: it is sent without waiting for one.
    return [dict(m, _nowait=True) if isinstance(m, dict) and m.get("id") == 10 else m for m in script]


def send_script(command, script, cwd):
    raw = Raw(command, cwd=cwd)
    try:
        for msg in script:
            if isinstance(msg, dict) and msg.pop("_nowait", False):
                raw.send(msg)
                continue
            raw.send(msg)
            if isinstance(msg, dict) and "id" in msg:
                raw.answer_to(msg["id"])
    finally:
        raw.close()
    return raw.lines


@pytest.mark.parametrize("server", ["filesystem", "python-sdk"])
def test_a_scripted_session_is_byte_for_byte_the_same_through_the_relay(server, root):
    if server == "filesystem":
        command, script = fs_command(root), lambda: fs_script(root)
    else:
        command, script = toy_command(), lambda: drop_slow(toy_script())
    direct = send_script(command, script(), root)
    through = send_script(relayed(command), script(), root)
    assert len(direct) >= 8
    assert through == direct
    if server == "python-sdk":
        text = b"".join(direct)
        assert b"notifications/progress" in text and b"notifications/message" in text
