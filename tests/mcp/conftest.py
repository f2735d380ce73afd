"""Fixtures for tests/mcp: the relay binary, the reference filesystem server from npm, the toy
server on the Python SDK, and a raw newline-delimited JSON-RPC session for byte comparisons."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RELAY = Path(os.environ.get("MICROLOOP_MCP", ROOT / "native/target/release/microloop-mcp"))
FS_SERVER = HERE / "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
TOY_SERVER = HERE / "servers/toy.py"


def pytest_configure(config):
    missing = [str(p) for p in (RELAY, FS_SERVER) if not p.exists()]
    if missing:
        raise pytest.UsageError(f"missing {', '.join(missing)}: run `make test-mcp`")


@pytest.fixture
def root(tmp_path) -> Path:
    """The directory the filesystem server may touch, with one file in it."""
    d = tmp_path / "files"
    d.mkdir()
    (d / "notes.txt").write_text("first line\nsecond line\n")
    return d.resolve()


def fs_command(root: Path) -> list[str]:
    return ["node", str(FS_SERVER), str(root)]


def toy_command() -> list[str]:
    return [sys.executable, str(TOY_SERVER)]


def relayed(command: list[str], *relay_args: str) -> list[str]:
    return [str(RELAY), *relay_args, "--", *command]


INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "scripted", "version": "1"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


class Raw:
    """A client that writes JSON-RPC lines to a process and reads its lines back, with timeouts."""

    def __init__(self, command: list[str], cwd: Path | None = None, env: dict | None = None):
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=cwd, env=env)
        self.lines: list[bytes] = []
        self._queue: queue.Queue[bytes] = queue.Queue()
        self._stderr = b""
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump(self):
        for line in iter(self.proc.stdout.readline, b""):
            self._queue.put(line)
        self._queue.put(b"")

    def _pump_err(self):
        self._stderr = self.proc.stderr.read()

    def send(self, msg) -> None:
        data = msg if isinstance(msg, bytes) else json.dumps(msg).encode() + b"\n"
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def read(self, timeout: float = 20.0) -> bytes:
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no line from the process") from None
        if not line:
            self._queue.put(b"")
            raise EOFError("the process closed its stdout")
        self.lines.append(line)
        return line

    def read_json(self, timeout: float = 20.0) -> dict:
        return json.loads(self.read(timeout))

    def answer_to(self, id_, timeout: float = 20.0) -> dict:
        """Reads until the answer to request `id_` (notifications before it are kept in lines)."""
        while True:
            msg = self.read_json(timeout)
            if msg.get("id") == id_ and "method" not in msg:
                return msg

    def start(self) -> dict:
        self.send(INIT)
        init = self.answer_to(0)
        self.send(INITIALIZED)
        return init

    def close(self, timeout: float = 20.0) -> tuple[int, bytes]:
        """Closes stdin, waits for the end; returns the exit status and stderr."""
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        while True:
            try:
                self.read(timeout=5)
            except (EOFError, TimeoutError):
                break
        time.sleep(0.05)
        return self.proc.returncode, self._stderr
