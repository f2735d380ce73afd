"""The wheel `make wheel` built, installed into a fresh virtualenv, used as a new user would.

Run by ``tests/wheel/run.sh`` with the virtualenv's pytest, on a PATH that holds no cargo, rustc
or C compiler (the script checks), from a directory outside the checkout: what runs here comes
from the installed wheel alone. ``MICROLOOP_C_DEMO`` is a C program the script compiled against the
header and library the wheel shipped (before the PATH was cut down).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import microloop

BIN = os.path.dirname(sys.executable)


def test_no_toolchain_on_path() -> None:
    for tool in ("cargo", "rustc", "cc", "gcc", "clang", "zig"):
        assert shutil.which(tool) is None, f"{tool} is on PATH: the test would not show the wheel needs none"


def test_the_package_comes_from_the_wheel() -> None:
    site = os.path.dirname(os.path.dirname(microloop.__file__))
    assert site.endswith("site-packages"), microloop.__file__
    from microloop import _native

    assert _native.__file__.endswith(".abi3.so"), _native.__file__
    assert os.path.dirname(_native.__file__) == os.path.dirname(microloop.__file__)


def test_a_loop_is_blocked() -> None:
    guard = microloop.Guardrail("balanced", tools=["open_page", "search"])
    captcha = "Please verify you are human: solve the CAPTCHA to continue."
    actions = []
    for _ in range(5):
        v = guard.check("open_page", {"url": "https://shop.example/item/42"})
        actions.append(v.action)
        if v.allowed:
            guard.record(v.call_id, captcha)
    assert "block" in actions, actions
    assert actions[0] == "allow"


def test_microloop_demo() -> None:
    out = subprocess.run([os.path.join(BIN, "microloop"), "demo"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "BLOCK" in out.stdout.upper(), out.stdout


def test_shared_library_and_header() -> None:
    lib = microloop.lib_path()
    assert os.path.basename(lib) == "libmicroloop.so"
    assert os.path.exists(os.path.join(microloop.include_path(), "microloop.h"))
    # Stripped: no symbol table left in the shipped library.
    with open(lib, "rb") as f:
        assert b".symtab" not in f.read(), "libmicroloop.so is not stripped"


def test_c_program_linked_against_the_shipped_library() -> None:
    demo = os.environ["MICROLOOP_C_DEMO"]
    out = subprocess.run([demo], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "BLOCK" in out.stdout, out.stdout


@pytest.mark.parametrize("command", ["microloop-proxy", "microloop-hook", "microloop-mcp", "microloop-commands"])
def test_native_commands_are_on_bin(command: str) -> None:
    path = shutil.which(command)
    assert path == os.path.join(BIN, command), (command, path)
    out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert f"usage: {command}" in out.stdout + out.stderr


def test_the_commands_are_one_executable_run_through_a_link_too(tmp_path) -> None:
    # The three commands are launchers of microloop-commands; a link to one elsewhere still finds it.
    with open(os.path.join(BIN, "microloop-commands"), "rb") as f:
        assert f.read(4) == b"\x7fELF"
    for command, usage in (("microloop-hook", "usage: microloop-hook"), ("microloop-mcp", "usage: microloop-mcp")):
        link = tmp_path / command
        link.symlink_to(os.path.join(BIN, command))
        out = subprocess.run([str(link), "--help"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert usage in out.stdout + out.stderr
    # The executable copied under a command's name is that command.
    copy = tmp_path / "bin" / "microloop-mcp"
    copy.parent.mkdir()
    shutil.copy(os.path.join(BIN, "microloop-commands"), copy)
    out = subprocess.run([str(copy), "--version"], capture_output=True, text=True, timeout=30)
    assert out.stdout.startswith("microloop-mcp "), out.stdout + out.stderr


class _Upstream(BaseHTTPRequestHandler):
    """A tiny OpenAI-style upstream: every chat completion answers with one tool call."""

    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Upstream.requests.append({"path": self.path, "body": body})
        answer = {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None,
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": "search", "arguments": "{\"q\": \"weather\"}"}}]}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_proxied_request() -> None:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = _free_port()
    proxy = subprocess.Popen(
        [os.path.join(BIN, "microloop-proxy"), "--listen", f"127.0.0.1:{port}",
         "--upstream", f"http://127.0.0.1:{upstream.server_address[1]}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        request = {"model": "gpt-test", "messages": [{"role": "user", "content": "weather?"}],
                   "tools": [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]}
        deadline = time.monotonic() + 30
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(request).encode(),
                                             headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    answer = json.loads(r.read())
                break
            except OSError:
                assert proxy.poll() is None, proxy.stdout.read() if proxy.stdout else ""
                assert time.monotonic() < deadline, "the proxy did not answer in 30 s"
                time.sleep(0.1)
        call = answer["choices"][0]["message"]["tool_calls"][0]
        assert call["function"]["name"] == "search"
        assert [r["path"] for r in _Upstream.requests] == ["/v1/chat/completions"]
        assert _Upstream.requests[0]["body"]["messages"] == request["messages"]
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        upstream.shutdown()


def test_hook_denies_a_repeated_failing_command(tmp_path) -> None:
    hook = shutil.which("microloop-hook")
    assert hook
    env = dict(os.environ, MICROLOOP_STATE_DIR=str(tmp_path))
    cmd = "npm install -D @vitest/coverage-v8"
    for i in range(6):
        pre = {"session_id": "w", "transcript_path": "/t.jsonl", "cwd": str(tmp_path), "hook_event_name": "PreToolUse",
               "tool_name": "Bash", "tool_input": {"command": cmd, "description": "run it"}, "tool_use_id": f"toolu_{i}"}
        out = subprocess.run([hook, "claude-code"], input=json.dumps(pre), capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        if out.stdout.strip():
            decision = json.loads(out.stdout)["hookSpecificOutput"]
            assert decision["permissionDecision"] == "deny"
            assert i <= 3, f"denied only at attempt {i + 1}"
            return
        post = {"session_id": "w", "cwd": str(tmp_path), "hook_event_name": "PostToolUseFailure", "tool_name": "Bash",
                "tool_input": {"command": cmd, "description": "run it"}, "tool_use_id": f"toolu_{i}",
                "error": "npm ERR! code ERESOLVE"}
        out = subprocess.run([hook, "claude-code"], input=json.dumps(post), capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
    pytest.fail("the hook never denied the repeated failing command")
