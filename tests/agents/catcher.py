"""A local HTTP(S) proxy that refuses everything: point HTTPS_PROXY/HTTP_PROXY at it and no request
the agent sends through a proxy leaves the machine. It records what was asked (`CONNECT host:port`
or the absolute URL), so a test can say which outside hosts an agent tried."""
from __future__ import annotations

import socket
import threading


class Catcher:
    def __init__(self):
        self.seen: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self._sock.getsockname()[1]

    def _serve(self):
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._refuse, args=(conn,), daemon=True).start()

    def _refuse(self, conn: socket.socket):
        with conn:
            conn.settimeout(5)
            try:
                head = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                if head:
                    self.seen.append(head)
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            except OSError:
                pass

    def close(self):
        self._stop = True
        try:
            self._sock.close()
        except OSError:
            pass
