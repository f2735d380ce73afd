"""A throwaway redis-server on a free loopback port, for every test and benchmark that needs a real
one (tests/python, tests/adapters, tests/proxy, bench/). Standard library only: each suite's own
virtualenv can import it (``sys.path`` gets this folder).

    with redis_server() as port:
        client = redis.Redis(port=port)
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from typing import Iterator

NEEDED = "redis-server is needed (Debian's package; .ci/run installs it)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def available() -> bool:
    return shutil.which("redis-server") is not None


@contextlib.contextmanager
def redis_server() -> Iterator[int]:
    """Starts redis-server on 127.0.0.1 without persistence, waits until it accepts connections
    (10 s at most), yields its port and stops it."""
    server = shutil.which("redis-server")
    assert server, NEEDED
    port = free_port()
    cmd = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL) as p:
        try:
            for _ in range(200):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as c:
                        c.sendall(b"PING\r\n")
                        if c.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                time.sleep(0.05)
            else:
                raise RuntimeError(f"redis-server did not answer on port {port} within 10 s")
            yield port
        finally:
            p.terminate()
            p.wait(timeout=10)
