"""A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``):
the browser reads commands on its fd 3 and writes answers and events on fd 4, each a JSON message
ended by a NUL byte. Standard library only, so nothing but Debian's ``chromium`` is needed."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional


def chromium_path() -> str:
    path = os.environ.get("MICROLOOP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("no chromium: install Debian's `chromium` (.ci/run does) or set MICROLOOP_CHROMIUM")
    return path


class Browser:
    def __init__(self, width: int = 1280, height: int = 1000) -> None:
        self.profile = tempfile.mkdtemp(prefix="microloop-chromium-")
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def wire() -> None:  # in the child: its fd 3 reads our commands, its fd 4 writes to us
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [chromium_path(), "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"]
        self.log = open(os.path.join(self.profile, "stderr.log"), "w+b")  # a pipe could fill and stall it
        self.proc = subprocess.Popen(args, preexec_fn=wire, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=self.log)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next = 0
        self.events: List[Dict[str, Any]] = []
        self.session: Optional[str] = None

    def _read(self, timeout: float) -> Dict[str, Any]:
        import select

        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    self.log.seek(0)
                    err = self.log.read().decode(errors="replace")
                    raise RuntimeError(f"chromium closed the pipe: {err[-2000:]}")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: Optional[Dict[str, Any]] = None, session: Any = "page", timeout: float = 30) -> Dict[str, Any]:
        self._next += 1
        msg: Dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        sid = self.session if session == "page" else session
        if sid:
            msg["sessionId"] = sid
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read(timeout)
            if m.get("id") == self._next:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, timeout: float = 30) -> Dict[str, Any]:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(max(0.01, deadline - time.monotonic()))
            if m.get("method") == method:
                return m
            self.events.append(m)

    def open_page(self) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=None)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=None)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"script error: {r['exceptionDetails']}")
        return r["result"].get("value")

    def screenshot(self, path: str, full_page: bool = False) -> None:
        params: Dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def drain(self, seconds: float = 0.3) -> None:
        """Collect the events that arrive in the next moments (late errors, late requests)."""
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                self.events.append(self._read(max(0.01, deadline - time.monotonic())))
        except TimeoutError:
            pass

    def close(self) -> None:
        try:
            self.send("Browser.close", session=None, timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
