"""Shared by the proxy tests: a scripted upstream (fake_upstream.py) and proxies in front of it."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROXY = os.environ.get("MICROLOOP_PROXY_BIN", str(ROOT / "native/target/release/microloop-proxy"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{url} never came up")


@contextmanager
def processes(*cmds):
    procs = [subprocess.Popen(c) for c in cmds]
    try:
        yield procs
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)


@contextmanager
def upstream():
    port = free_port()
    with processes([sys.executable, str(Path(__file__).with_name("fake_upstream.py")), str(port)]):
        wait_up(f"http://127.0.0.1:{port}/__seen")
        yield f"http://127.0.0.1:{port}"


@contextmanager
def proxy(upstream_url, *args):
    port = free_port()
    with processes([PROXY, "--listen", f"127.0.0.1:{port}", "--upstream", upstream_url, *args]):
        wait_up(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"


@contextmanager
def stack(*args):
    """A scripted upstream and a proxy in front of it: (upstream URL, proxy URL)."""
    with upstream() as up, proxy(up, *args) as px:
        yield up, px


def script(upstream_url, answers):
    req = urllib.request.Request(f"{upstream_url}/__script", data=json.dumps(answers).encode(), method="POST")
    urllib.request.urlopen(req).read()


def seen(upstream_url):
    return json.loads(urllib.request.urlopen(f"{upstream_url}/__seen").read())


def sse_event(obj):
    """One `event:` + `data:` server-sent event."""
    return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n"
