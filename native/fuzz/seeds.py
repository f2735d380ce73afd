#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into native/fuzz/corpus/<target>/ (not committed).

From the shared vectors (tests/vectors), the example and test policies, the conversations in
tests/data, and a plain request, answer and stream of each proxy dialect and an MCP session; and
every input a run found a crash with (native/fuzz/regressions/<target>/, committed), so each run,
`make fuzz-smoke` included, replays them first.
Usage: seeds.py [REPO_ROOT]  (default: two levels up from this file).
"""
import hashlib
import json
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent.parent
CORPUS = HERE / "corpus"
DIALECTS = ["openai", "responses", "anthropic", "gemini"]  # the order of microloop_proxy::dialect::DIALECTS

seeds: dict[str, list[bytes]] = {}


def seed(target: str, data: bytes) -> None:
    seeds.setdefault(target, []).append(data)


def vectors():
    for f in sorted((ROOT / "tests" / "vectors").glob("*.json")):
        yield json.loads(f.read_text())


def policy_text(p) -> str:
    return p if isinstance(p, str) else json.dumps(p)


def args_bytes(step) -> bytes:
    if "args_text" in step:
        return step["args_text"].encode()
    if "args_hex" in step:
        return bytes.fromhex(step["args_hex"])
    return json.dumps(step.get("args", {})).encode()


def result_bytes(r) -> bytes:
    return r.encode() if isinstance(r, str) else json.dumps(r).encode()


# ---- ffi_calls: the layout fuzz_targets/ffi_calls.rs reads --------------------------------------
def data(b: bytes) -> bytes:
    b = b[:65535]
    return bytes([0]) + struct.pack("<H", len(b)) + b


def ffi_input(step, key) -> bytes:
    if key == "args" and "args_nested" in step:
        return bytes([7]) + struct.pack("<H", min(step["args_nested"], 65535)) + bytes([0, 1])
    if key == "args" and "args_big" in step:
        return bytes([6]) + struct.pack("<H", min(step["args_big"] // 64, 65535)) + b"x"
    if key == "tool":
        return data(bytes.fromhex(step["tool_hex"]) if "tool_hex" in step else step["call"].encode())
    return data(args_bytes(step))


def ffi_seed(v) -> bytes | None:
    text = policy_text(v["policy"])
    if "audit" in text:
        return None
    out = bytearray([255]) + data(text.encode())
    for s in v.get("steps", []):
        if "tools" in s:
            out += bytes([5]) + data(json.dumps(s["tools"]).encode())
        elif "reset" in s:
            out += bytes([6])
        elif "save_and_load" in s:
            out += bytes([7])
        elif "call" in s:
            out += bytes([0]) + ffi_input(s, "tool") + ffi_input(s, "args")
            if "result" in s and s.get("expect") in ("allow", "warn"):
                out += bytes([3, 0]) + data(result_bytes(s["result"])) + bytes([1 if s.get("error") else 0])
        elif "record_id" in s:
            out += bytes([4, 255]) + struct.pack("<Q", s["record_id"]) + data(result_bytes(s.get("result", ""))) + bytes([1 if s.get("error") else 0])
        elif "record_last" in s:
            out += bytes([3, 0]) + data(result_bytes(s.get("result", ""))) + bytes([1 if s.get("error") else 0])
    return bytes(out)


# ---- the proxy's dialects -----------------------------------------------------------------------
CALL_ARGS = {"command": "pytest tests/test_login.py -q"}
REQUESTS = {
    "openai": {"model": "m", "stream": True, "tools": [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}],
               "messages": [{"role": "user", "content": "fix it"},
                            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "bash", "arguments": json.dumps(CALL_ARGS)}}]},
                            {"role": "tool", "tool_call_id": "c1", "content": "FAILED test_login"}]},
    "responses": {"model": "m", "stream": True, "store": True, "previous_response_id": "resp_1",
                  "tools": [{"type": "function", "name": "bash", "parameters": {"type": "object"}}],
                  "input": [{"role": "user", "content": "fix it"},
                            {"type": "function_call", "call_id": "c1", "name": "bash", "arguments": json.dumps(CALL_ARGS)},
                            {"type": "function_call_output", "call_id": "c1", "output": "FAILED test_login"}]},
    "anthropic": {"model": "m", "max_tokens": 100, "stream": True, "tools": [{"name": "bash", "input_schema": {"type": "object"}}],
                  "messages": [{"role": "user", "content": "fix it"},
                               {"role": "assistant", "content": [{"type": "text", "text": "Running."}, {"type": "tool_use", "id": "t1", "name": "bash", "input": CALL_ARGS}]},
                               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "FAILED"}], "is_error": True}]}]},
    "gemini": {"tools": [{"functionDeclarations": [{"name": "bash", "parameters": {"type": "object"}}]}],
               "contents": [{"role": "user", "parts": [{"text": "fix it"}]},
                            {"role": "model", "parts": [{"functionCall": {"name": "bash", "args": CALL_ARGS}}]},
                            {"role": "user", "parts": [{"functionResponse": {"name": "bash", "response": {"error": "FAILED"}}}]}]},
}
RESPONSES = {
    "openai": {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "tool_calls",
               "message": {"role": "assistant", "content": None, "tool_calls": [{"id": "c2", "type": "function", "function": {"name": "bash", "arguments": json.dumps(CALL_ARGS)}}]}}],
               "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}},
    "responses": {"id": "resp_2", "object": "response", "status": "completed", "output": [
                  {"type": "reasoning", "id": "rs_1", "summary": []},
                  {"type": "function_call", "id": "fc_1", "call_id": "c2", "name": "bash", "arguments": json.dumps(CALL_ARGS), "status": "completed"}],
                  "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}},
    "anthropic": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "tool_use",
                  "content": [{"type": "text", "text": "Again."}, {"type": "tool_use", "id": "t2", "name": "bash", "input": CALL_ARGS}],
                  "usage": {"input_tokens": 10, "output_tokens": 5}},
    "gemini": {"candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [{"text": "Again."}, {"functionCall": {"name": "bash", "args": CALL_ARGS}}]}}],
               "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5}},
}


def sse(events, named: bool) -> bytes:
    out = ""
    for e in events:
        if isinstance(e, str):
            out += f"data: {e}\n\n"
        elif named:
            out += f"event: {e['type']}\ndata: {json.dumps(e)}\n\n"
        else:
            out += f"data: {json.dumps(e)}\n\n"
    return out.encode()


ARGS = json.dumps(CALL_ARGS)
STREAMS = {
    "openai": sse([
        {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Again."}}]},
        {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c2", "type": "function", "function": {"name": "bash", "arguments": ARGS[:10]}}]}}]},
        {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ARGS[10:]}}]}}]},
        {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
        "[DONE]"], named=False),
    "responses": sse([
        {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_2", "status": "in_progress", "output": []}},
        {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0, "item": {"type": "function_call", "id": "fc_1", "call_id": "c2", "name": "bash", "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "sequence_number": 2, "output_index": 0, "item_id": "fc_1", "delta": ARGS},
        {"type": "response.function_call_arguments.done", "sequence_number": 3, "output_index": 0, "item_id": "fc_1", "arguments": ARGS},
        {"type": "response.output_item.done", "sequence_number": 4, "output_index": 0, "item": {"type": "function_call", "id": "fc_1", "call_id": "c2", "name": "bash", "arguments": ARGS, "status": "completed"}},
        {"type": "response.completed", "sequence_number": 5, "response": RESPONSES["responses"]}], named=True),
    "anthropic": sse([
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "m", "usage": {"input_tokens": 1, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Again."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "ping"},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t2", "name": "bash", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ARGS[:7]}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ARGS[7:]}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        {"type": "message_stop"}], named=True),
    "gemini": sse([
        {"candidates": [{"index": 0, "content": {"role": "model", "parts": [{"text": "Again."}]}}]},
        {"candidates": [{"index": 0, "content": {"role": "model", "parts": [{"functionCall": {"name": "bash", "args": CALL_ARGS}}]}, "finishReason": "STOP"}],
         "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1}}], named=False),
}


def proxy_seeds():
    for i, d in enumerate(DIALECTS):
        seed("proxy_request", bytes([i]) + json.dumps(REQUESTS[d]).encode())
        seed("proxy_response", bytes([i]) + json.dumps(RESPONSES[d]).encode())
        seed("proxy_response", bytes([i | 0x80]) + json.dumps(REQUESTS[d]).encode() + b"\xff" + json.dumps(RESPONSES[d]).encode())
        for sel in (i, i | 4 << 2 | 1 << 5, i | 2 << 2 | 2 << 5, i | 7 << 2 | 3 << 5):
            seed("proxy_stream", bytes([sel]) + STREAMS[d])
    for name, i in (("openai_captcha_loop.json", 0), ("openai_clean_run.json", 0), ("anthropic_failing_test_loop.json", 2)):
        doc = json.loads((ROOT / "tests" / "data" / name).read_text())
        req = doc if isinstance(doc, dict) else {"model": "m", "messages": doc}
        seed("proxy_request", bytes([i]) + json.dumps(req).encode())


# ---- the MCP relay ------------------------------------------------------------------------------
def mcp_seeds():
    tools = {"tools": [{"name": "read_file", "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
                        "annotations": {"readOnlyHint": True}},
                       {"name": "write_file", "inputSchema": {"type": "object"}, "annotations": {"destructiveHint": True}}]}
    call = lambda i, name, args: "C" + json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": name, "arguments": args}})
    result = lambda i, text, err=False: "S" + json.dumps({"jsonrpc": "2.0", "id": i, "result": {"content": [{"type": "text", "text": text}], "isError": err}})
    lines = ["C" + json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}}}),
             "S" + json.dumps({"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": "2025-06-18", "capabilities": {"tools": {"listChanged": True}}}}),
             "C" + json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
             "S" + json.dumps({"jsonrpc": "2.0", "id": 1, "result": tools})]
    for i in range(2, 6):
        lines += [call(i, "read_file", {"path": "a.txt"}), result(i, "no such file", True)]
    lines += [call(6, "read_file", {"path": 7}), call(7, "nope", {}), call("x", "write_file", {"a": 1}), call("x", "write_file", {"a": 1}),
              "C" + json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "x"}}),
              "S" + json.dumps({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}),
              "S" + json.dumps({"jsonrpc": "2.0", "id": "x", "error": {"code": -32000, "message": "boom"}}),
              "N" + json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "read_file"}}), "X", call(10, "read_file", {"path": "b"})]
    seed("mcp_guard", "\n".join(lines).encode())
    seed("mcp_guard", b"H" + "\n".join(lines).encode())


SHELL_LINES = [
    "ls -la", "cat README.md | grep -n loop", "git status && git diff HEAD~1", "sed -n 1,20p f.py", "sed -i s/a/b/ f.py",
    "find . -name '*.py' -exec rm {} \\;", "echo hi > out.txt", "echo hi 2>&1 >/dev/null", "grep -n \"a(b);\" f",
    "cat <<EOF > f\nbody\nEOF", "FOO=1 make test", "echo $(rm -rf x)", "echo `ls`", "sort -o out in", "echo 'unterminated",
    "python -c 'print(1)'", "bash -c \"cat a\"", "ls; rm -rf build", "(cd a && ls) || true", "cat a &>> log",
]


def main():
    policies = set()
    for v in vectors():
        s = ffi_seed(v)
        if s:
            seed("ffi_calls", s)
        policies.add(policy_text(v["policy"]))
        for step in v.get("steps", []):
            if "call" not in step:
                continue
            a = args_bytes(step)
            seed("fingerprint_diff", bytes([len(seeds.get("fingerprint_diff", [])) % 4]) + a)
            if "result" in step:
                seed("fingerprint_diff", b"\x00" + result_bytes(step["result"]))
            cmd = step.get("args", {}).get("command") if isinstance(step.get("args"), dict) else None
            if isinstance(cmd, str):
                seed("shell_effect", f"{step['call']}\0{cmd}".encode())
    for f in [*sorted((ROOT / "examples" / "policies").glob("*.toml")), *sorted((ROOT / "tests" / "data").glob("*.toml"))]:
        policies.add(f.read_text())
    for p in sorted(policies):
        seed("policy", p.encode())
    for line in SHELL_LINES:
        seed("shell_effect", line.encode())
        seed("shell_effect", f"run_shell_command\0{line}".encode())
    proxy_seeds()
    mcp_seeds()
    for f in sorted((HERE / "regressions").glob("*/*")):
        seed(f.parent.name, f.read_bytes())
    for target, items in sorted(seeds.items()):
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        for item in items:
            (d / ("seed-" + hashlib.sha1(item).hexdigest()[:16])).write_bytes(item)
        print(f"{target}: {len(items)} seeds")


if __name__ == "__main__":
    main()
