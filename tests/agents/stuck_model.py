"""A scripted model on loopback that is stuck: it keeps asking to run the same failing command.

One HTTP server speaks three wire formats, each streamed the way the real APIs stream:
Anthropic Messages (`POST /v1/messages`, Claude Code), OpenAI Responses (`POST /v1/responses`,
Codex CLI) and Gemini (`POST /v1beta/models/M:streamGenerateContent`, Gemini CLI).

The model decides each turn from the conversation it is sent (so a retried request gets the same
answer), like a model would:
- while the latest tool result does not carry the loop guard's reason, it asks for `stuck` again,
  up to `cap` times, then gives up with a final text;
- as soon as the latest tool result carries the reason (`marker`), it pivots: it asks for a
  different command (`pivot`), and once that result is back it ends with a final text.

Every turn is logged (`turns`): what the model answered and the latest tool result it had read,
so a test can tell which text reached the model and what it did next.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GAVE_UP = "I ran the command {n} times and it keeps failing the same way; I give up."
PIVOTED = "The loop guard stopped my retries, so I read the notes instead of rerunning the command."


@dataclass
class Turn:
    """One answer of the model: `kind` is stuck, pivot, final or aside (a request outside the loop)."""
    kind: str
    last_result: str | None
    text: str = ""


@dataclass
class Conversation:
    """What the model reads in a request, whatever the wire format."""
    commands: list[str] = field(default_factory=list)  # the shell commands it asked for, in order
    last_result: str | None = None  # the text of the latest tool result
    has_tools: bool = True


class StuckModel:
    def __init__(self, stuck: str, pivot: str, cap: int = 15, marker: str = "MicroLoop loop guard"):
        self.stuck, self.pivot, self.cap, self.marker = stuck, pivot, cap, marker
        self.turns: list[Turn] = []
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- the model
    def decide(self, c: Conversation) -> Turn:
        if not c.has_tools:
            return Turn("aside", c.last_result, "ok")
        pivoted = self.pivot in c.commands
        if pivoted:
            return Turn("final", c.last_result, PIVOTED)
        if c.last_result is not None and self.marker in c.last_result:
            return Turn("pivot", c.last_result)
        n = c.commands.count(self.stuck)
        if n >= self.cap:
            return Turn("final", c.last_result, GAVE_UP.format(n=n))
        return Turn("stuck", c.last_result)

    def command_of(self, turn: Turn) -> str:
        return self.pivot if turn.kind == "pivot" else self.stuck

    def loop_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.kind != "aside"]

    # --- the server
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "StuckModel":
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._json(404, {"error": {"message": f"no GET {self.path} here"}})

            def do_HEAD(self):
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    return self._json(400, {"error": {"message": "not JSON"}})
                path = self.path.split("?", 1)[0]
                with model._lock:
                    model.requests.append({"path": self.path, "body": body})
                if path.endswith("/messages/count_tokens"):
                    return self._json(200, {"input_tokens": 100})
                if path.endswith("/messages"):
                    return self._anthropic(body)
                if path.endswith("/responses"):
                    return self._responses(body)
                if ":streamGenerateContent" in path or ":generateContent" in path:
                    return self._gemini(body, stream=":streamGenerateContent" in path)
                if path.endswith(":countTokens"):
                    return self._json(200, {"totalTokens": 100})
                return self._json(404, {"error": {"message": f"no POST {self.path} here"}})

            def _json(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events):
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")
                self.end_headers()
                for name, data in events:
                    head = f"event: {name}\n" if name else ""
                    self.wfile.write(f"{head}data: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
                self.close_connection = True

            def _turn(self, conv: Conversation) -> Turn:
                with model._lock:
                    t = model.decide(conv)
                    model.turns.append(t)
                    return t

            # Anthropic Messages, streamed.
            def _anthropic(self, body):
                turn = self._turn(anthropic_conversation(body))
                i = len(model.turns)
                msg = {"id": f"msg_{i:04d}", "type": "message", "role": "assistant", "model": body.get("model", "claude"),
                       "content": [], "stop_reason": None, "stop_sequence": None,
                       "usage": {"input_tokens": 50, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
                if not body.get("stream"):
                    if turn.kind in ("stuck", "pivot"):
                        block = {"type": "tool_use", "id": f"toolu_{i:04d}", "name": "Bash",
                                 "input": {"command": model.command_of(turn), "description": "Run a command"}}
                        msg.update(content=[block], stop_reason="tool_use")
                    else:
                        msg.update(content=[{"type": "text", "text": turn.text}], stop_reason="end_turn")
                    return self._json(200, msg)
                events = [("message_start", {"type": "message_start", "message": msg})]
                if turn.kind in ("stuck", "pivot"):
                    args = json.dumps({"command": model.command_of(turn), "description": "Run a command"})
                    events += [
                        ("content_block_start", {"type": "content_block_start", "index": 0,
                                                 "content_block": {"type": "tool_use", "id": f"toolu_{i:04d}", "name": "Bash", "input": {}}}),
                        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "input_json_delta", "partial_json": args}}),
                        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                    ]
                    stop = "tool_use"
                else:
                    events += [
                        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": turn.text}}),
                        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                    ]
                    stop = "end_turn"
                events += [
                    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 20}}),
                    ("message_stop", {"type": "message_stop"}),
                ]
                self._sse(events)

            # OpenAI Responses, streamed.
            def _responses(self, body):
                turn = self._turn(responses_conversation(body))
                i = len(model.turns)
                rid = f"resp_{i:04d}"
                if turn.kind in ("stuck", "pivot"):
                    item = {"type": "function_call", "id": f"fc_{i:04d}", "call_id": f"call_{i:04d}", "name": "exec_command",
                            "arguments": json.dumps({"cmd": model.command_of(turn)}), "status": "completed"}
                else:
                    item = {"type": "message", "id": f"msg_{i:04d}", "role": "assistant", "status": "completed",
                            "content": [{"type": "output_text", "text": turn.text, "annotations": []}]}
                usage = {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 20,
                         "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 70}
                self._sse([
                    ("response.created", {"type": "response.created", "response": {"id": rid, "status": "in_progress", "output": []}}),
                    ("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}),
                    ("response.completed", {"type": "response.completed",
                                            "response": {"id": rid, "status": "completed", "output": [item], "usage": usage}}),
                ])

            # Gemini generateContent, streamed as SSE (alt=sse) or whole.
            def _gemini(self, body, stream):
                turn = self._turn(gemini_conversation(body))
                if turn.kind in ("stuck", "pivot"):
                    part = {"functionCall": {"name": "run_shell_command", "args": {"command": model.command_of(turn), "description": "Run a command"}}}
                else:
                    part = {"text": turn.text}
                chunk = {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
                         "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 20, "totalTokenCount": 70},
                         "modelVersion": "gemini-2.5-flash"}
                if stream:
                    return self._sse([(None, chunk)])
                self._json(200, chunk)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()


def _text_of(content) -> str:
    """The text of a tool result's content: a string, or a list of text blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_of(c.get("text", c.get("content")) if isinstance(c, dict) else c) for c in content)
    if isinstance(content, dict):
        return _text_of(content.get("text", content.get("content", json.dumps(content))))
    return str(content)


def _strings(v) -> list[str]:
    """Every string inside a JSON value, in order."""
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return [s for x in v.values() for s in _strings(x)]
    if isinstance(v, list):
        return [s for x in v for s in _strings(x)]
    return []


def anthropic_conversation(body: dict) -> Conversation:
    c = Conversation(has_tools=bool(body.get("tools")))
    for m in body.get("messages", []):
        content = m.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use" and block.get("name") == "Bash":
                c.commands.append(block.get("input", {}).get("command", ""))
            elif block.get("type") == "tool_result":
                c.last_result = _text_of(block.get("content"))
    return c


def responses_conversation(body: dict) -> Conversation:
    c = Conversation(has_tools=bool(body.get("tools")) or any(
        isinstance(i, dict) and i.get("type") == "additional_tools" for i in body.get("input", [])))
    for item in body.get("input", []):
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call":
            try:
                c.commands.append(json.loads(item.get("arguments") or "{}").get("cmd", ""))
            except ValueError:
                c.commands.append("")
        elif item.get("type") == "function_call_output":
            c.last_result = _text_of(item.get("output"))
    return c


def gemini_conversation(body: dict) -> Conversation:
    c = Conversation(has_tools=bool(body.get("tools")))
    for content in body.get("contents", []):
        for part in content.get("parts", []) or []:
            if "functionCall" in part:
                c.commands.append((part["functionCall"].get("args") or {}).get("command", ""))
            elif "functionResponse" in part:
                c.last_result = "\n".join(_strings(part["functionResponse"].get("response")))
    return c
