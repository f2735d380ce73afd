"""Small agent logs written for the tests, each in its agent's documented format.

Every writer takes a script of turns and returns ``(text, calls)``: the log, and the calls as the
agent made them, ``(tool, args, output, error, tokens)`` per call and grouped by turn, which is what
the tests feed to :class:`microloop.Guardrail` directly to get the library's own verdicts.

Shell scripts are turns of ``(command, output, exit_code)``; tool scripts are turns of
``(tool, args, output, error)``. A turn's model usage is ``1000 + 10 * turn`` input tokens and
``50`` output tokens.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

ShellTurn = List[Tuple[str, str, int]]
ToolTurn = List[Tuple[str, Dict[str, Any], str, bool]]
Expected = List[List[Tuple[str, Any, str, bool, Optional[int]]]]

FAIL = "Error: 1 failed\nFAILED tests/test_login.py::test_redirect - AssertionError: assert 302 == 200"

# A coding agent: reads two files at once, runs the failing tests five times unchanged, edits, passes.
SHELL_SCRIPT: List[ShellTurn] = [
    [("cat app/login.py", "def login(user):\n    return redirect('/home')\n", 0),
     ("cat tests/test_login.py", "def test_redirect(client):\n    assert client.get('/').status_code == 200\n", 0)],
    *[[("pytest -q tests/test_login.py", FAIL, 1)] for _ in range(5)],
    [("sed -i 's/redirect/render/' app/login.py", "", 0)],
    [("pytest -q tests/test_login.py", "1 passed in 0.02s", 0)],
]

# A customer-service agent (tau-bench style): looks a reservation up, retries the same refused
# booking four times, then gives up and transfers.
TOOL_SCRIPT: List[ToolTurn] = [
    [("get_user_details", {"user_id": "mia_li_3668"}, '{"name": "Mia Li", "reservations": ["NO6JO3"]}', False)],
    [("get_reservation_details", {"reservation_id": "NO6JO3"}, '{"flights": [{"flight_number": "HAT136"}]}', False),
     ("search_direct_flight", {"origin": "JFK", "destination": "SEA", "date": "2024-05-20"}, '[{"flight_number": "HAT083"}]', False)],
    *[[("book_reservation", {"user_id": "mia_li_3668", "flights": [{"flight_number": "HAT083", "date": "2024-05-20"}]},
        "Error: flight HAT083 not available on date 2024-05-20", True)] for _ in range(4)],
    [("transfer_to_human_agents", {"summary": "booking refused"}, "Transfer successful", False)],
]


def usage(turn: int) -> Tuple[int, int]:
    return 1000 + 10 * turn, 50


def _split(tokens: int, n: int) -> List[int]:
    share, extra = divmod(tokens, n)
    return [share + (1 if i < extra else 0) for i in range(n)]


def _ts(n: int) -> str:
    return f"2025-11-03T10:{n // 60:02d}:{n % 60:02d}.000Z"


def jsonl(lines: List[Any]) -> str:
    return "\n".join(json.dumps(x) for x in lines) + "\n"


# --- shell agents -----------------------------------------------------------------------------------


def claude_code(script: List[ShellTurn] = SHELL_SCRIPT) -> Tuple[str, Expected]:
    """A Claude Code transcript: one JSONL line per assistant content block (sharing the message id
    and usage), tool results in user lines with ``toolUseResult``."""
    sid = "3f2c1a9e-7b64-4d2e-9a51-0c8e2b7d6f14"
    lines: List[Any] = []
    parent = None
    n = 0

    def line(kind: str, message: dict, **extra: Any) -> None:
        nonlocal parent, n
        n += 1
        uuid = f"00000000-0000-4000-8000-{n:012d}"
        lines.append({"parentUuid": parent, "isSidechain": False, "userType": "external", "cwd": "/home/dev/shop",
                      "sessionId": sid, "version": "2.0.14", "gitBranch": "main", "type": kind, "message": message,
                      "uuid": uuid, "timestamp": _ts(n), **extra})
        parent = uuid

    line("user", {"role": "user", "content": "The login test fails: fix it."})
    expected: Expected = []
    for t, turn in enumerate(script):
        i, o = usage(t)
        u = {"input_tokens": 4, "cache_creation_input_tokens": i - 4, "cache_read_input_tokens": 0, "output_tokens": o,
             "service_tier": "standard"}
        toks = _split(i + o, len(turn))
        calls = []
        for k, (cmd, out, code) in enumerate(turn):
            args = {"command": cmd, "description": f"Run {cmd.split()[0]}"}
            line("assistant", {"id": f"msg_01T{t:04d}", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                               "content": [{"type": "tool_use", "id": f"toolu_01A{t:03d}{k}", "name": "Bash", "input": args}],
                               "stop_reason": None, "stop_sequence": None, "usage": u}, requestId=f"req_011C{t:04d}")
            calls.append(("Bash", args, out, code != 0, toks[k]))
        for k, (cmd, out, code) in enumerate(turn):
            line("user", {"role": "user", "content": [{"tool_use_id": f"toolu_01A{t:03d}{k}", "type": "tool_result",
                                                       "content": out if code == 0 else f"Exit code {code}\n{out}", "is_error": code != 0}]},
                 toolUseResult={"stdout": out, "stderr": "", "interrupted": False, "isImage": False})
            if code != 0:
                c = calls[k]
                calls[k] = (c[0], c[1], f"Exit code {code}\n{out}", c[3], c[4])
        expected.append(calls)
    line("assistant", {"id": "msg_01END", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                       "content": [{"type": "text", "text": "Fixed: the test passes."}], "usage": {"input_tokens": 5, "output_tokens": 9}})
    return jsonl([{"type": "summary", "summary": "Fix login redirect", "leafUuid": "x"}] + lines), expected


def codex_cli(script: List[ShellTurn] = SHELL_SCRIPT) -> Tuple[str, Expected]:
    """A Codex CLI rollout: ``session_meta``, ``turn_context``, ``response_item`` payloads
    (``function_call`` to ``exec_command``, ``function_call_output``), ``event_msg`` token counts."""
    lines: List[Any] = [
        {"timestamp": _ts(0), "type": "session_meta", "payload": {"id": "0199a213-81c0-7800-8aa1-bbab2a035a53", "timestamp": _ts(0),
                                                                   "cwd": "/home/dev/shop", "originator": "codex_cli_rs", "cli_version": "0.46.0",
                                                                   "instructions": None, "source": "cli", "model_provider": "openai"}},
        {"timestamp": _ts(0), "type": "response_item", "payload": {"type": "message", "role": "user",
                                                                    "content": [{"type": "input_text", "text": "The login test fails: fix it."}]}},
        {"timestamp": _ts(0), "type": "turn_context", "payload": {"cwd": "/home/dev/shop", "approval_policy": "on-request", "model": "gpt-5-codex"}},
    ]
    expected: Expected = []
    n = 0
    for t, turn in enumerate(script):
        i, o = usage(t)
        toks = _split(i + o, len(turn))
        calls = []
        lines.append({"timestamp": _ts(n), "type": "response_item", "payload": {"type": "reasoning", "summary": [], "content": None, "encrypted_content": "gAAAA"}})
        for k, (cmd, out, code) in enumerate(turn):
            n += 1
            args = {"cmd": cmd, "workdir": "/home/dev/shop"}
            lines.append({"timestamp": _ts(n), "type": "response_item", "payload": {"type": "function_call", "name": "exec_command",
                                                                                     "arguments": json.dumps(args), "call_id": f"call_{t}_{k}"}})
        for k, (cmd, out, code) in enumerate(turn):
            n += 1
            text = f"Chunk ID: {t:02x}a{k}f9\nWall time: 0.{t}{k}12 seconds\nProcess exited with code {code}\nOriginal token count: {len(out) // 4}\nOutput:\n{out}"
            lines.append({"timestamp": _ts(n), "type": "response_item", "payload": {"type": "function_call_output", "call_id": f"call_{t}_{k}", "output": text}})
            # the replay leaves out the header lines that change on every call, as microloop-hook does
            calls.append(("exec_command", json.dumps({"cmd": cmd, "workdir": "/home/dev/shop"}), out, code != 0, toks[k]))
        lines.append({"timestamp": _ts(n), "type": "event_msg", "payload": {"type": "token_count", "info": {
            "total_token_usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
            "last_token_usage": {"input_tokens": i, "cached_input_tokens": 0, "output_tokens": o, "reasoning_output_tokens": 0, "total_tokens": i + o},
            "model_context_window": 272000}, "rate_limits": None}})
        expected.append(calls)
    return jsonl(lines), expected


def gemini_cli(script: List[ShellTurn] = SHELL_SCRIPT) -> Tuple[str, Expected]:
    """A Gemini CLI chat (``~/.gemini/tmp/<hash>/chats/session-*.json``): ``gemini`` messages with
    ``toolCalls`` (``run_shell_command``; the shell's answer ends with ``Exit Code: N``) and ``tokens``."""
    messages: List[Any] = [{"id": "m0", "timestamp": _ts(0), "type": "user", "content": "The login test fails: fix it."}]
    expected: Expected = []
    for t, turn in enumerate(script):
        i, o = usage(t)
        toks = _split(i + o, len(turn))
        calls, records = [], []
        for k, (cmd, out, code) in enumerate(turn):
            cid = f"run_shell_command-17621{t:03d}{k}-5a1e"
            args = {"command": cmd, "description": f"Running {cmd.split()[0]}"}
            text = f"Command: {cmd}\nDirectory: (root)\nOutput: {out or '(empty)'}\nError: (none)\nExit Code: {code}\nSignal: (none)\nProcess Group PGID: {4200 + 10 * t + k}"
            records.append({"id": cid, "name": "run_shell_command", "args": args,
                            "result": [{"functionResponse": {"id": cid, "name": "run_shell_command", "response": {"output": text}}}],
                            "status": "success", "timestamp": _ts(t + 1), "resultDisplay": out, "displayName": "Shell",
                            "description": "This tool executes a given shell command as `bash -c <command>`.", "renderOutputAsMarkdown": False})
            # the replay leaves out the process-group line, which changes on every run
            calls.append(("run_shell_command", args, text.replace(f"\nProcess Group PGID: {4200 + 10 * t + k}", ""), code != 0, toks[k]))
        messages.append({"id": f"g{t}", "timestamp": _ts(t + 1), "type": "gemini", "content": "", "toolCalls": records, "thoughts": [],
                         "tokens": {"input": i, "output": o, "cached": 0, "thoughts": 0, "tool": 0, "total": i + o}, "model": "gemini-2.5-pro"})
        expected.append(calls)
    doc = {"sessionId": "8c4b1f0e-2d3a-4b5c-9e7f-1a2b3c4d5e6f", "projectHash": "9f" * 32, "startTime": _ts(0), "lastUpdated": _ts(99), "messages": messages}
    return json.dumps(doc, indent=2), expected


def gemini_cli_jsonl(script: List[ShellTurn] = SHELL_SCRIPT) -> Tuple[str, Expected]:
    """A Gemini CLI chat as recent versions write it (``session-*.jsonl``, seen from Gemini CLI
    0.61.0): a header line, each message appended as a line and appended again with the same ``id``
    once its ``toolCalls`` have results, the user's ``functionResponse`` turns, and ``$set`` lines."""
    text, expected = gemini_cli(script)
    doc = json.loads(text)
    lines: List[Any] = [{k: doc[k] for k in ("sessionId", "projectHash", "startTime", "lastUpdated")} | {"kind": "main"},
                        {"$set": {"messages": [doc["messages"][0]], "lastUpdated": doc["startTime"]}}]
    for m in doc["messages"][1:]:
        bare = {k: v for k, v in m.items() if k != "toolCalls"}
        lines += [bare, {"$set": {"lastUpdated": m["timestamp"]}}, m]
        responses = [r for tc in m["toolCalls"] for r in tc["result"]]
        lines.append({"id": m["id"] + "-r", "timestamp": m["timestamp"], "type": "user", "content": responses})
    return jsonl(lines), expected


def openhands(script: List[ShellTurn] = SHELL_SCRIPT) -> Tuple[str, Expected]:
    """An OpenHands trajectory: events with ``id`` and ``source``; ``run`` actions (the
    ``execute_bash`` tool, with the model response's usage in ``tool_call_metadata``) and ``run``
    observations whose ``cause`` is the action's id and whose ``extras.metadata.exit_code`` is set."""
    events: List[Any] = [{"id": 0, "timestamp": "2025-04-01T12:00:00", "source": "user", "message": "Fix the login test.", "action": "message",
                          "args": {"content": "Fix the login test.", "image_urls": None, "wait_for_response": False}}]
    expected: Expected = []
    n = 0
    for t, turn in enumerate(script):
        i, o = usage(t)
        calls = []
        ids = []
        for k, (cmd, out, code) in enumerate(turn):
            n += 1
            meta = {"function_name": "execute_bash", "tool_call_id": f"toolu_{t}_{k}", "total_calls_in_response": len(turn),
                    "model_response": {"id": f"chatcmpl-{t}", "model": "claude-3-5-sonnet", "object": "chat.completion",
                                       "usage": {"completion_tokens": o, "prompt_tokens": i, "total_tokens": i + o}}}
            events.append({"id": n, "timestamp": f"2025-04-01T12:00:{n:02d}", "source": "agent", "message": f"Running command: {cmd}",
                           "action": "run", "tool_call_metadata": meta,
                           "args": {"command": cmd, "is_input": False, "thought": "Let me check.", "blocking": False, "hidden": False,
                                    "confirmation_state": "confirmed"}, "timeout": 120})
            ids.append(n)
            calls.append(("execute_bash", {"command": cmd}, out, code != 0, (i + o) // len(turn)))
        for k, (cmd, out, code) in enumerate(turn):
            n += 1
            events.append({"id": n, "timestamp": f"2025-04-01T12:00:{n:02d}", "source": "agent", "message": f"Command `{cmd}` executed with exit code {code}.",
                           "cause": ids[k], "observation": "run", "content": out,
                           "extras": {"command": cmd, "metadata": {"exit_code": code, "pid": -1, "username": "openhands", "hostname": "sandbox",
                                                                   "working_dir": "/workspace", "py_interpreter_path": "/usr/bin/python", "prefix": "",
                                                                   "suffix": f"\n[The command completed with exit code {code}.]"}, "hidden": False},
                           "success": code == 0})
        expected.append(calls)
    return json.dumps(events, indent=1), expected


def _first_word(cmd: str) -> str:
    return cmd.split()[0]


def swe_agent(script: List[ShellTurn] = SHELL_SCRIPT) -> Tuple[str, Expected]:
    """A SWE-agent ``.traj``: ``trajectory`` steps with ``action``, ``observation``, ``thought``,
    ``response``; ``history``; ``info.model_stats``. One command per step. SWE-agent's
    observations carry no exit code: a failure shows as ``Error``/``Traceback`` text."""
    steps, expected = [], []
    for turn in script:
        for cmd, out, code in turn:
            steps.append({"action": cmd + "\n", "observation": out, "response": f"DISCUSSION\nLet me run it.\n\n```\n{cmd}\n```",
                          "thought": "DISCUSSION\nLet me run it.\n\n", "execution_time": 0.1, "state": '{"open_file": "n/a", "working_dir": "/shop"}',
                          "messages": []})
            expected.append([(_first_word(cmd), {"command": cmd}, out, out.startswith("Error"), None)])
    doc = {"environment": "swe_main", "trajectory": steps, "history": [{"role": "system", "content": "SETTING: ...", "agent": "primary"}],
           "info": {"exit_status": "submitted", "submission": "diff --git a/app/login.py", "model_stats": {"total_cost": 0.4, "instance_cost": 0.4,
                                                                                                          "tokens_sent": 40000, "tokens_received": 900, "api_calls": len(steps)}},
           "replay_config": "{}"}
    return json.dumps(doc, indent=2), expected


def mini_swe_agent(script: List[ShellTurn] = SHELL_SCRIPT) -> Tuple[str, Expected]:
    """A mini-swe-agent ``.traj.json``: ``messages`` where each assistant reply holds exactly one
    ```` ```bash ```` block and the next user message is ``<returncode>N</returncode>\\n<output>...``;
    ``info``; ``trajectory_format``."""
    messages: List[Any] = [{"role": "system", "content": "You are a helpful assistant that can interact with a computer."},
                           {"role": "user", "content": "<pr_description>The login test fails.</pr_description>"}]
    expected: Expected = []
    t = 0
    for turn in script:
        for cmd, out, code in turn:
            i, o = usage(t)
            t += 1
            messages.append({"role": "assistant", "content": f"THOUGHT: Let me look.\n\n```bash\n{cmd}\n```",
                             "extra": {"response": {"id": f"chatcmpl-{t}", "usage": {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o}}}})
            answer = f"<returncode>{code}</returncode>\n<output>\n{out}</output>"
            messages.append({"role": "user", "content": answer})
            expected.append([(_first_word(cmd), {"command": cmd}, answer, code != 0, i + o)])
    doc = {"info": {"exit_status": "Submitted", "submission": "", "model_stats": {"instance_cost": 0.1, "api_calls": t}, "mini_version": "1.14.2",
                    "config": {"agent": {"step_limit": 250}}},
           "messages": messages, "trajectory_format": "mini-swe-agent-1"}
    return json.dumps(doc, indent=2), expected


# --- function-calling agents ------------------------------------------------------------------------


def _openai_messages(script: List[ToolTurn], with_usage: bool) -> Tuple[List[Any], Expected]:
    msgs: List[Any] = [{"role": "system", "content": "You are an airline agent."}, {"role": "user", "content": "Book me HAT083."}]
    expected: Expected = []
    for t, turn in enumerate(script):
        i, o = usage(t)
        toks = _split(i + o, len(turn))
        m: Dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{t}_{k}", "type": "function", "function": {"name": tool, "arguments": json.dumps(args)}} for k, (tool, args, _, _) in enumerate(turn)]}
        if with_usage:
            m["usage"] = {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o}
        msgs.append(m)
        for k, (tool, args, out, err) in enumerate(turn):
            msgs.append({"role": "tool", "tool_call_id": f"call_{t}_{k}", "name": tool, "content": out})
        expected.append([(tool, json.dumps(args), out, err, toks[k] if with_usage else None) for k, (tool, args, out, err) in enumerate(turn)])
    msgs.append({"role": "assistant", "content": "I have transferred you to a human agent."})
    return msgs, expected


def openai_messages(script: List[ToolTurn] = TOOL_SCRIPT) -> Tuple[str, Expected]:
    msgs, expected = _openai_messages(script, False)
    return json.dumps({"messages": msgs, "tools": [{"type": "function", "function": {"name": n}} for n in sorted({c[0] for turn in script for c in turn})]}), expected


def openai_jsonl(script: List[ToolTurn] = TOOL_SCRIPT) -> Tuple[str, Expected]:
    """One conversation per line (OpenAI fine-tuning / LangSmith dataset export): two runs."""
    msgs, expected = _openai_messages(script, False)
    return jsonl([{"messages": msgs}, {"messages": msgs}]), expected + expected


def anthropic_messages(script: List[ToolTurn] = TOOL_SCRIPT) -> Tuple[str, Expected]:
    msgs: List[Any] = [{"role": "user", "content": "Book me HAT083."}]
    expected: Expected = []
    for t, turn in enumerate(script):
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": "Let me check."}] + [
            {"type": "tool_use", "id": f"toolu_{t}_{k}", "name": tool, "input": args} for k, (tool, args, _, _) in enumerate(turn)]})
        msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{t}_{k}", "content": [{"type": "text", "text": out}],
                                                  "is_error": err} for k, (_, _, out, err) in enumerate(turn)]})
        expected.append([(tool, args, out, err, None) for tool, args, out, err in turn])
    return json.dumps(msgs), expected


def tau_bench(script: List[ToolTurn] = TOOL_SCRIPT) -> Tuple[str, Expected]:
    """tau-bench results: a list of ``{"task_id", "reward", "info", "traj", "trial"}``: two runs."""
    msgs, expected = _openai_messages(script, False)
    doc = [{"task_id": 7, "reward": 0.0, "info": {"task": {"user_id": "mia_li_3668"}}, "traj": msgs, "trial": 0},
           {"task_id": 8, "reward": 1.0, "info": {}, "traj": msgs[:4], "trial": 0}]
    return json.dumps(doc, indent=1), expected + [expected[0]]


def tau2_bench(script: List[ToolTurn] = TOOL_SCRIPT) -> Tuple[str, Expected]:
    """tau2-bench results: ``simulations`` whose assistant messages carry flat ``tool_calls``
    (arguments as an object, ``requestor``) and ``usage``; tool messages carry the call's ``id`` and
    ``error``."""
    msgs: List[Any] = [{"role": "assistant", "content": "Hi! How can I help you today?", "turn_idx": 0},
                       {"role": "user", "content": "Book me HAT083.", "turn_idx": 1}]
    expected: Expected = []
    for t, turn in enumerate(script):
        i, o = usage(t)
        toks = _split(i + o, len(turn))
        msgs.append({"role": "assistant", "content": None, "turn_idx": len(msgs), "timestamp": _ts(t), "cost": 0.001,
                     "usage": {"prompt_tokens": i, "completion_tokens": o},
                     "tool_calls": [{"id": f"call_{t}{k}", "name": tool, "arguments": args, "requestor": "assistant"} for k, (tool, args, _, _) in enumerate(turn)]})
        for k, (tool, args, out, err) in enumerate(turn):
            msgs.append({"role": "tool", "id": f"call_{t}{k}", "content": out, "requestor": "assistant", "error": err, "turn_idx": len(msgs)})
        expected.append([(tool, args, out, err, toks[k]) for k, (tool, args, out, err) in enumerate(turn)])
    doc = {"timestamp": _ts(0), "info": {"num_trials": 1, "agent_info": {"implementation": "llm_agent", "llm": "gpt-4.1"}},
           "tasks": [{"id": "3"}], "simulations": [{"id": "sim-1", "task_id": "3", "trial": 0, "termination_reason": "user_stop",
                                                      "agent_cost": 0.02, "reward_info": {"reward": 0.0}, "messages": msgs}]}
    return json.dumps(doc, indent=1), expected


def langsmith(script: List[ToolTurn] = TOOL_SCRIPT) -> Tuple[str, Expected]:
    """LangSmith runs exported as JSONL (``Client.list_runs``): a chain, llm runs, and ``tool`` runs
    with ``inputs``, ``outputs.output``, ``error``, ``start_time``, all sharing a ``trace_id``."""
    trace = "1f0a8c2e-0000-4000-8000-000000000001"
    runs: List[Any] = [{"id": trace, "name": "AgentExecutor", "run_type": "chain", "trace_id": trace, "parent_run_id": None,
                        "start_time": "2025-05-01T09:00:00.000000", "inputs": {"input": "Book me HAT083."}, "outputs": {}, "error": None}]
    expected: Expected = []
    n = 0
    for t, turn in enumerate(script):
        n += 1
        runs.append({"id": f"llm-{t}", "name": "ChatOpenAI", "run_type": "llm", "trace_id": trace, "parent_run_id": trace,
                     "start_time": f"2025-05-01T09:00:{n:02d}.000000", "inputs": {"messages": []}, "outputs": {"generations": []}, "error": None})
        for k, (tool, args, out, err) in enumerate(turn):
            n += 1
            runs.append({"id": f"tool-{t}-{k}", "name": tool, "run_type": "tool", "trace_id": trace, "parent_run_id": trace,
                         "start_time": f"2025-05-01T09:00:{n:02d}.000000", "inputs": {"input": json.dumps(args)},
                         "outputs": None if err else {"output": out}, "error": out if err else None})
        expected.append([(tool, args, out, err, None) for tool, args, out, err in turn])
    return jsonl(runs), expected


def gemini_contents(script: List[ToolTurn] = TOOL_SCRIPT) -> Tuple[str, Expected]:
    """Gemini API ``contents`` (what Gemini CLI's ``/chat save`` writes): ``functionCall`` parts in
    ``model`` turns, ``functionResponse`` parts in the next ``user`` turn."""
    contents: List[Any] = [{"role": "user", "parts": [{"text": "Book me HAT083."}]}]
    expected: Expected = []
    for turn in script:
        contents.append({"role": "model", "parts": [{"functionCall": {"name": tool, "args": args}} for tool, args, _, _ in turn]})
        contents.append({"role": "user", "parts": [{"functionResponse": {"name": tool, "response": {"error": out} if err else {"output": out}}}
                                                   for tool, args, out, err in turn]})
        expected.append([(tool, args, out, err, None) for tool, args, out, err in turn])
    return json.dumps(contents), expected


def openai_responses(script: List[ToolTurn] = TOOL_SCRIPT) -> Tuple[str, Expected]:
    """OpenAI Responses API ``input`` items: ``function_call`` / ``function_call_output`` by ``call_id``."""
    items: List[Any] = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Book me HAT083."}]}]
    expected: Expected = []
    for t, turn in enumerate(script):
        for k, (tool, args, _, _) in enumerate(turn):
            items.append({"type": "function_call", "id": f"fc_{t}{k}", "call_id": f"call_{t}{k}", "name": tool, "arguments": json.dumps(args)})
        for k, (tool, args, out, err) in enumerate(turn):
            items.append({"type": "function_call_output", "call_id": f"call_{t}{k}", "output": out})
        # The Responses API has no error flag: an answer that reads as an error is one.
        expected.append([(tool, json.dumps(args), out, out.startswith("Error"), None) for tool, args, out, err in turn])
    return json.dumps({"model": "gpt-4.1", "input": items}), expected


WRITERS = {
    "claude-code": claude_code,
    "codex-cli": codex_cli,
    "gemini-cli": gemini_cli,
    "gemini-cli-jsonl": gemini_cli_jsonl,
    "gemini-contents": gemini_contents,
    "openhands": openhands,
    "swe-agent": swe_agent,
    "mini-swe-agent": mini_swe_agent,
    "tau-bench": tau_bench,
    "tau2-bench": tau2_bench,
    "langsmith": langsmith,
    "openai-responses": openai_responses,
    "openai-messages": openai_messages,
    "openai-jsonl": openai_jsonl,
    "anthropic-messages": anthropic_messages,
}
