"""A scripted LLM upstream on loopback: answers each POST with the next scripted answer.

POST /__script sets the script (a list of {"status", "content_type", "body"} or {"sse": [events]});
GET /__seen returns the request bodies received since. Everything else consumes the script.

Faults, for the proxy's fault tests: an answer may add "stall" (seconds to wait before the status
line), "sse_delay" (seconds between events), "cut" (an SSE stream ends without its last events: the
connection is closed, as a crash would); GET /__open answers how many connections to this upstream
are open, that one left out.
"""
import time
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"script": [], "seen": [], "open": 0}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with LOCK:
            STATE["open"] += 1

    def finish(self):
        try:
            super().finish()
        finally:
            with LOCK:
                STATE["open"] -= 1

    def _send(self, status, ctype, body: bytes):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/__open":
            with LOCK:
                body = json.dumps({"open": STATE["open"] - 1}).encode()
            return self._send(200, "application/json", body)
        if self.path == "/__seen":
            with LOCK:
                body = json.dumps(STATE["seen"]).encode()
            return self._send(200, "application/json", body)
        self.do_POST()

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.path == "/__script":
            with LOCK:
                STATE["script"] = json.loads(raw)
                STATE["seen"] = []
            return self._send(200, "application/json", b"{}")
        with LOCK:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            STATE["seen"].append({"path": self.path, "body": body,
                                  "anthropic-version": self.headers.get("anthropic-version"),
                                  "has_auth": bool(self.headers.get("authorization") or self.headers.get("x-api-key"))})
            answer = STATE["script"].pop(0) if STATE["script"] else {"status": 500, "body": {"error": {"message": "unscripted"}}}
        if answer.get("stall"):
            time.sleep(answer["stall"])
        if "sse" in answer:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            events = answer["sse"][:answer["cut"]] if "cut" in answer else answer["sse"]
            try:
                for i, ev in enumerate(events):
                    if i and answer.get("sse_delay"):
                        time.sleep(answer["sse_delay"])
                    self.wfile.write(ev.encode())
                    self.wfile.flush()
            except OSError:
                pass  # the proxy hung up
            self.close_connection = True
            return
        body = answer["body"]
        self._send(answer.get("status", 200), answer.get("content_type", "application/json"),
                   body.encode() if isinstance(body, str) else json.dumps(body).encode())


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.serve_forever()
