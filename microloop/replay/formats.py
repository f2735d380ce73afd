"""The logs agents already write, read into one shape: a run is a list of tool calls and results.

Each reader takes the parsed file (one JSON document, or the objects of a JSONL file) and returns the
runs in it (a tau-bench results file holds many). :func:`detect` picks the reader from the content,
never from the file name. Every reader yields, in the order the agent saw them:

* :class:`Call` -- a tool call the model made: the tool's name, its arguments, and the model tokens the
  log records for the turn that made it (split evenly among that turn's calls), when it has them;
* :class:`Result` -- what a call returned, matched to its call by id, and whether it failed.

Text-action agents (SWE-agent, mini-swe-agent before tool calling) run one shell command per turn: the
tool is the command's first word and the arguments ``{"command": <the command>}``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, TypeGuard, Union

__all__ = ["Call", "Result", "Run", "FORMATS", "detect", "parse", "load", "UnknownFormat"]


@dataclass
class Call:
    id: str
    tool: str
    args: Any  # JSON text, or a value
    tokens: Optional[int] = None
    time: Optional[str] = None


@dataclass
class Result:
    id: str
    text: str
    error: bool = False


Event = Union[Call, Result]


@dataclass
class Run:
    name: str
    format: str
    events: List[Event] = field(default_factory=list)
    tools: List[str] = field(default_factory=list)  # the tool names the log declares, if any
    # An LLM API conversation (`{"messages", "tools"}`) and its dialect (`openai`, `anthropic`): the
    # replay then reads it natively, as microloop-proxy reads a request (`Guardrail.replay`).
    conversation: Optional[dict] = None
    dialect: Optional[str] = None


class UnknownFormat(ValueError):
    """No reader fits the content; the message names the formats that were tried."""


# --- helpers ---------------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    """The text of a message or tool-result content: a string, a list of parts, or JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                t = part.get("text")
                if not isinstance(t, str):
                    t = part.get("output") if isinstance(part.get("output"), str) else None
                parts.append(t if t is not None else json.dumps(part, sort_keys=True, ensure_ascii=False))
            else:
                parts.append(str(part))
        return "\n".join(parts)
    return json.dumps(content, sort_keys=True, ensure_ascii=False)


def _looks_failed(text: str) -> bool:
    return text.lstrip().lower().startswith(("error", "traceback"))


def _num(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0


def _split(calls: List[Call], tokens: Optional[int]) -> None:
    """The turn's tokens, shared evenly by the calls it made."""
    if tokens and calls:
        share, extra = divmod(tokens, len(calls))
        for i, c in enumerate(calls):
            c.tokens = share + (1 if i < extra else 0)


def _usage_tokens(usage: Any) -> Optional[int]:
    """Input + output tokens of an OpenAI, Anthropic or LiteLLM usage object."""
    if not isinstance(usage, dict):
        return None
    if _num(usage.get("total_tokens")):
        return usage["total_tokens"]
    n = sum(_num(usage.get(k)) for k in (
        "input_tokens", "output_tokens", "prompt_tokens", "completion_tokens",
        "cache_read_input_tokens", "cache_creation_input_tokens"))
    return n or None


def _command_call(cid: str, command: str, tokens: Optional[int] = None) -> Call:
    command = command.strip()
    word = command.split(None, 1)[0] if command else "?"
    return Call(cid, word, {"command": command}, tokens)


def _is_dict_list(x: Any) -> TypeGuard[List[dict]]:
    return isinstance(x, list) and bool(x) and all(isinstance(m, dict) for m in x)


def _dict(x: Any) -> dict:
    """``x`` when it is a dict, else an empty one."""
    return x if isinstance(x, dict) else {}


# --- OpenAI / Anthropic messages (and the JSONL of them) ------------------------------------------


def _message_events(messages: List[dict]) -> List[Event]:
    """OpenAI chat messages (``tool_calls``, legacy ``function_call``, ``tool`` messages), Anthropic
    messages (``tool_use`` / ``tool_result`` blocks) and tau2-bench's flat tool calls."""
    out: List[Event] = []
    last_fc = ""
    for i, m in enumerate(messages):
        role = m.get("role")
        turn: List[Call] = []
        for k, tc in enumerate(m.get("tool_calls") or []):
            if not isinstance(tc, dict):
                continue
            fn = tc["function"] if isinstance(tc.get("function"), dict) else tc  # tau2: flat
            args = fn.get("arguments")
            turn.append(Call(str(tc.get("id") or f"{i}.{k}"), fn.get("name") or "", args if args is not None else "{}"))
        if isinstance(m.get("function_call"), dict):
            fn = m["function_call"]
            last_fc = f"{i}.fc"
            turn.append(Call(last_fc, fn.get("name") or "", fn.get("arguments") or "{}"))
        content = m.get("content")
        results: List[Result] = []
        if isinstance(content, list):
            for block in content:
                if not isinstance(block, dict):
                    continue
                if block.get("type") == "tool_use":
                    turn.append(Call(str(block.get("id", f"{i}")), block.get("name") or "", block.get("input", {})))
                elif block.get("type") == "tool_result":
                    text = _text_of(block.get("content"))
                    results.append(Result(str(block.get("tool_use_id", "")), text, bool(block.get("is_error")) or _looks_failed(text)))
        if role in ("tool", "function"):
            text = _text_of(content)
            rid = m.get("tool_call_id") or m.get("id") or last_fc  # tau2's tool message carries `id`
            results.append(Result(str(rid), text, bool(m.get("error")) or _looks_failed(text)))
        _split(turn, _usage_tokens(m.get("usage")))
        out.extend(turn)
        out.extend(results)
    return out


def _declared_tools(tools: Any) -> List[str]:
    names = []
    for t in tools if isinstance(tools, list) else []:
        if isinstance(t, dict):
            name = t.get("name") or (t.get("function") or {}).get("name")
            if name:
                names.append(name)
    return names


def _is_messages(x: Any) -> bool:
    return _is_dict_list(x) and all("role" in m for m in x)


def api_dialect(messages: List[dict]) -> Optional[str]:
    """``openai`` for a Chat Completions conversation (``tool_calls`` with ``function``, ``tool``
    messages answering by ``tool_call_id``), ``anthropic`` for a Messages one (``tool_use`` and
    ``tool_result`` blocks); None for anything else (tau2-bench's flat calls, legacy
    ``function_call``, a mix), which is read here."""
    openai = anthropic = other = False
    for m in messages:
        for tc in m.get("tool_calls") or []:
            if isinstance(tc, dict) and isinstance(tc.get("function"), dict):
                openai = True
            else:
                other = True
        if m.get("role") == "tool":
            openai = True
            other |= not m.get("tool_call_id")
        other |= "function_call" in m or m.get("role") == "function"
        content = m.get("content")
        if isinstance(content, list):
            anthropic |= any(isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result") for b in content)
    if other or openai == anthropic:
        return None
    return "openai" if openai else "anthropic"


def _messages_run(name: str, fmt: str, conversation: dict) -> Run:
    messages = conversation["messages"]
    run = Run(name, fmt, _message_events(messages), _declared_tools(conversation.get("tools")))
    run.dialect = api_dialect(messages)
    run.conversation = conversation if run.dialect else None
    return run


def read_messages(doc: Any, name: str) -> List[Run]:
    if isinstance(doc, dict):
        return [_messages_run(name, "openai-messages", doc)]
    if _is_messages(doc):
        return [_messages_run(name, "openai-messages", {"messages": doc})]
    # JSONL whose lines are whole conversations (OpenAI fine-tuning / LangSmith dataset exports)
    return [_messages_run(f"{name}#{i + 1}", "openai-jsonl", d) for i, d in enumerate(doc)]


def is_messages(doc: Any) -> bool:
    if isinstance(doc, dict):
        return _is_messages(doc.get("messages")) and "trajectory_format" not in doc and "sessionId" not in doc
    if _is_messages(doc):
        return True
    return _is_dict_list(doc) and all(_is_messages(d.get("messages")) for d in doc)


# --- Claude Code: ~/.claude/projects/<project>/<session>.jsonl -------------------------------------


def is_claude_code(doc: Any) -> bool:
    return _is_dict_list(doc) and any(
        d.get("type") in ("user", "assistant") and isinstance(d.get("message"), dict) and ("sessionId" in d or "uuid" in d)
        for d in doc)


def read_claude_code(doc: List[dict], name: str) -> List[Run]:
    """One line per message part: an assistant message with several blocks is written as several
    lines sharing ``message.id`` (and its ``usage``); tool results come back in ``user`` lines."""
    events: List[Event] = []
    by_message: Dict[str, Tuple[List[Call], Optional[int]]] = {}
    for d in doc:
        msg = d.get("message")
        if d.get("type") not in ("user", "assistant") or not isinstance(msg, dict):
            continue
        if d.get("isSidechain"):  # a subagent's turns: its own run, not this one's
            continue
        content = msg.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use":
                c = Call(str(block.get("id", "")), block.get("name") or "", block.get("input", {}), time=d.get("timestamp"))
                events.append(c)
                mid = str(msg.get("id") or d.get("uuid"))
                turn = by_message.get(mid)
                if turn is None:  # every line of a message repeats its usage: read it once
                    turn = by_message[mid] = ([], _usage_tokens(msg.get("usage")))
                turn[0].append(c)
            elif block.get("type") == "tool_result":
                text = _text_of(block.get("content"))
                events.append(Result(str(block.get("tool_use_id", "")), text, bool(block.get("is_error"))))
    for calls, tokens in by_message.values():
        _split(calls, tokens)
    return [Run(name, "claude-code", events)]


# --- Codex CLI: ~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl, and OpenAI Responses items ----------

_CODEX_KINDS = ("session_meta", "response_item", "event_msg", "turn_context", "compacted")
_EXIT = re.compile(r"(?:process exited with code|exit code:?)\s*(-?\d+)", re.I)


def is_codex(doc: Any) -> bool:
    return _is_dict_list(doc) and any(d.get("type") in _CODEX_KINDS and "payload" in d for d in doc)


_CODEX_HEADER = ("Chunk ID:", "Wall time:", "Original token count:")
_GEMINI_VOLATILE = ("Process Group PGID:", "Background PIDs:")


def _codex_shell(text: str) -> Tuple[str, Optional[int]]:
    """Codex's shell output opens with lines that change on every call (``Chunk ID``, ``Wall time``,
    token counts) before ``Output:``: they are left out (as microloop-hook does), and the exit code
    read from ``Process exited with code N``."""
    if not text.startswith(_CODEX_HEADER + ("Process exited",)):
        return text, None
    code = None
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(_CODEX_HEADER):
            continue
        if line.startswith("Process exited with code "):
            try:
                code = int(line[len("Process exited with code "):].strip())
            except ValueError:
                pass
            continue
        body = lines[i + 1:] if line == "Output:" else lines[i:]
        return "\n".join(body), code
    return "", code


def _gemini_shell(text: str) -> str:
    """Gemini CLI's shell output ends with lines that change on every run (``Process Group PGID``,
    ``Background PIDs``): left out, as microloop-hook does."""
    if "Process Group PGID:" not in text and "Background PIDs:" not in text:
        return text
    return "\n".join(line for line in text.split("\n") if not line.startswith(_GEMINI_VOLATILE))


def _codex_output(out: Any) -> Tuple[str, bool]:
    """A function_call_output's text and whether the command failed. The shell tool's output is plain
    text (``Process exited with code 1`` ...) in recent versions, JSON ``{"output", "metadata":
    {"exit_code"}}`` in older ones; an object may carry ``success``."""
    success = None
    if isinstance(out, dict):
        success = out.get("success")
        out = out.get("content") if "content" in out else out.get("output", out)
    text, code = _codex_shell(_text_of(out))
    if code is None and text.startswith("{"):
        try:
            j = json.loads(text)
            if isinstance(j, dict) and isinstance(j.get("metadata"), dict):
                code = j["metadata"].get("exit_code")
        except ValueError:
            pass
    if code is None:
        m = _EXIT.search(text[:400])
        code = int(m.group(1)) if m else None
    failed = success is False or (isinstance(code, int) and code != 0) or _looks_failed(text)
    return text, failed


def _responses_item(item: dict, pending: List[Call], events: List[Event], time: Optional[str]) -> None:
    kind = item.get("type")
    if kind in ("function_call", "custom_tool_call"):
        args = item.get("arguments") if kind == "function_call" else json.dumps({"input": item.get("input", "")})
        c = Call(str(item.get("call_id") or item.get("id") or len(events)), item.get("name") or "", args or "{}", time=time)
        pending.append(c)
        events.append(c)
    elif kind == "local_shell_call":
        action = item.get("action") or {}
        c = Call(str(item.get("call_id") or item.get("id") or len(events)), "local_shell", action, time=time)
        pending.append(c)
        events.append(c)
    elif kind in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
        text, failed = _codex_output(item.get("output"))
        events.append(Result(str(item.get("call_id", "")), text, failed))


def read_codex(doc: List[dict], name: str) -> List[Run]:
    """Rollout lines ``{"timestamp", "type", "payload"}``: ``response_item`` payloads are Responses API
    items (``function_call`` / ``function_call_output`` matched by ``call_id``); an ``event_msg`` of
    type ``token_count`` gives the tokens of the turn just finished."""
    events: List[Event] = []
    pending: List[Call] = []
    for d in doc:
        p = d.get("payload")
        if not isinstance(p, dict):
            continue
        if d.get("type") == "response_item":
            _responses_item(p, pending, events, d.get("timestamp"))
        elif d.get("type") == "event_msg" and p.get("type") == "token_count":
            info = _dict(p.get("info"))
            _split(pending, _usage_tokens(info.get("last_token_usage")))
            pending = []
    return [Run(name, "codex-cli", events)]


def is_responses(doc: Any) -> bool:
    """OpenAI Responses API items (``input`` / ``output`` lists, or Codex's first rollouts: one item per
    line after a header line)."""
    items = doc.get("input") if isinstance(doc, dict) else doc
    return _is_dict_list(items) and any(d.get("type") in ("function_call", "function_call_output") for d in items)


def read_responses(doc: Any, name: str) -> List[Run]:
    items = list(doc.get("input") or []) + list(doc.get("output") or []) if isinstance(doc, dict) else doc
    events: List[Event] = []
    for item in items:
        _responses_item(item, [], events, item.get("timestamp"))
    return [Run(name, "openai-responses", events)]


# --- Gemini CLI: ~/.gemini/tmp/<project>/chats/session-*.json, and Gemini API contents -------------


def is_gemini_cli(doc: Any) -> bool:
    if _is_dict_list(doc):  # the JSONL chats of recent versions
        return "sessionId" in doc[0] and "projectHash" in doc[0] and any(d.get("type") == "gemini" for d in doc)
    return isinstance(doc, dict) and "sessionId" in doc and _is_dict_list(doc.get("messages")) and any(
        m.get("type") == "gemini" for m in doc["messages"])


def _gemini_jsonl_messages(lines: List[dict]) -> List[dict]:
    """Recent Gemini CLI versions append to ``session-*.jsonl``: a header line (``sessionId``,
    ``projectHash``...), then each message as a line, written again with the same ``id`` when it
    grows (its ``toolCalls`` and their results come later), and ``{"$set": {...}}`` lines that set
    fields of the conversation (``messages`` replaces the list)."""
    order: List[str] = []
    by_id: Dict[str, dict] = {}
    for d in lines[1:]:
        if "$set" in d:
            msgs = d["$set"].get("messages") if isinstance(d["$set"], dict) else None
            if isinstance(msgs, list):
                order, by_id = [], {}
                for m in msgs:
                    if isinstance(m, dict):
                        mid = str(m.get("id", len(order)))
                        order.append(mid)
                        by_id[mid] = m
            continue
        if "type" in d:
            mid = str(d.get("id", f"#{len(order)}"))
            if mid not in by_id:
                order.append(mid)
            by_id[mid] = d
    return [by_id[i] for i in order]


def read_gemini_cli(doc: dict, name: str) -> List[Run]:
    """``messages`` of type ``user`` / ``gemini`` / ``info`` / ``error``; a ``gemini`` message lists the
    ``toolCalls`` it made, each with ``args``, ``status`` and ``result`` (``functionResponse`` parts), and
    the turn's ``tokens``."""
    events: List[Event] = []
    messages = _gemini_jsonl_messages(doc) if isinstance(doc, list) else doc["messages"]
    for m in messages:
        if m.get("type") != "gemini":
            continue
        turn = []
        results = []
        for k, tc in enumerate(m.get("toolCalls") or []):
            if not isinstance(tc, dict):
                continue
            cid = str(tc.get("id") or f"{m.get('id')}.{k}")
            turn.append(Call(cid, tc.get("name") or "", tc.get("args") if tc.get("args") is not None else {}, time=tc.get("timestamp")))
            texts = []
            for part in tc.get("result") or []:
                resp = (part.get("functionResponse") or {}).get("response") if isinstance(part, dict) else None
                if isinstance(resp, dict):
                    texts.append(_text_of(resp.get("output", resp.get("error", resp))))
                elif isinstance(part, dict) and "text" in part:
                    texts.append(str(part["text"]))
            if tc.get("status") != "cancelled":
                text = _gemini_shell("\n".join(texts))
                code = _EXIT.search(text[-400:])  # the shell tool reports "Exit Code: N" at the end
                results.append(Result(cid, text, tc.get("status") == "error" or bool(code and int(code.group(1)) != 0)))
        tokens = _dict(m.get("tokens"))
        _split(turn, _num(tokens.get("total")) or None)
        events.extend(turn)
        events.extend(results)
    return [Run(name, "gemini-cli", events)]


def is_gemini_contents(doc: Any) -> bool:
    items = doc.get("contents") if isinstance(doc, dict) else doc
    return _is_dict_list(items) and all("parts" in c for c in items) and any(c.get("role") == "model" for c in items)


def read_gemini_contents(doc: Any, name: str) -> List[Run]:
    """Gemini API ``contents`` (Gemini CLI's ``/chat save`` checkpoints): ``functionCall`` parts in
    ``model`` turns, ``functionResponse`` parts in the next ``user`` turn, matched by id or in order."""
    items = doc.get("contents") if isinstance(doc, dict) else doc
    events: List[Event] = []
    waiting: Dict[str, List[str]] = {}  # tool name -> ids of its calls with no response yet
    n = 0
    for c in items or []:
        for part in c.get("parts") or []:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("functionCall"), dict):
                fc = part["functionCall"]
                n += 1
                cid = str(fc.get("id") or f"fc{n}")
                waiting.setdefault(fc.get("name") or "", []).append(cid)
                events.append(Call(cid, fc.get("name") or "", fc.get("args") or {}))
            elif isinstance(part.get("functionResponse"), dict):
                fr = part["functionResponse"]
                queue = waiting.get(fr.get("name") or "", [])
                cid = str(fr.get("id")) if fr.get("id") in queue else (queue[0] if queue else "")
                if cid in queue:
                    queue.remove(cid)
                resp = fr.get("response")
                failed = isinstance(resp, dict) and "error" in resp and "output" not in resp
                text = _text_of(resp.get("output", resp.get("error", resp)) if isinstance(resp, dict) else resp)
                events.append(Result(cid, text, failed))
    return [Run(name, "gemini-contents", events)]


# --- OpenHands: a trajectory (list of events), or evaluation output with `history` ----------------

_OH_SKIP_ACTIONS = {"message", "system", "finish", "recall", "change_agent_state", "null", "think", "condensation"}


def _is_openhands_events(x: Any) -> bool:
    return _is_dict_list(x) and all(("action" in e or "observation" in e) and "source" in e for e in x)


def is_openhands(doc: Any) -> bool:
    if isinstance(doc, dict):
        return _is_openhands_events(doc.get("history")) or _is_openhands_events(doc.get("trajectory"))
    if _is_openhands_events(doc):
        return True
    return _is_dict_list(doc) and all(_is_openhands_events(d.get("history")) for d in doc)


def _openhands_events(history: List[dict]) -> List[Event]:
    """Agent actions (``run``, ``read``, ``edit``, ``browse``...; ``args`` hold the arguments, and
    ``tool_call_metadata`` the function-calling name and the model response's usage) and observations
    whose ``cause`` is the action's ``id``."""
    events: List[Event] = []
    for e in history:
        if "action" in e and e.get("source") == "agent":
            action = e.get("action")
            if action in _OH_SKIP_ACTIONS:
                continue
            meta = _dict(e.get("tool_call_metadata"))
            tool = meta.get("function_name") or action
            args = dict(e.get("args") or {})
            for k in ("thought", "is_input", "blocking", "hidden", "confirmation_state", "security_risk", "is_static", "cwd", "impl_source", "reasoning_content"):
                args.pop(k, None)
            tokens = None
            resp = _dict(meta.get("model_response"))
            usage = _usage_tokens(resp.get("usage"))
            if usage:
                share = max(1, _num(meta.get("total_calls_in_response")) or 1)
                tokens = usage // share
            events.append(Call(str(e.get("id")), str(tool or ""), args, tokens, e.get("timestamp")))
        elif "observation" in e and e.get("cause") is not None:
            obs = e.get("observation")
            if obs in ("agent_state_changed", "recall", "null", "user_rejected"):
                continue
            text = _text_of(e.get("content", e.get("message", "")))
            extras = _dict(e.get("extras"))
            meta = _dict(extras.get("metadata"))
            code = meta.get("exit_code", extras.get("exit_code"))
            failed = obs == "error" or (isinstance(code, int) and code not in (0, -1))
            events.append(Result(str(e.get("cause")), text, failed))
    return events


def read_openhands(doc: Any, name: str) -> List[Run]:
    if isinstance(doc, dict):
        hist = doc.get("history") if _is_openhands_events(doc.get("history")) else doc.get("trajectory")
        return [Run(str(doc.get("instance_id") or name), "openhands", _openhands_events(hist or []))]
    if _is_openhands_events(doc):
        return [Run(name, "openhands", _openhands_events(doc))]
    return [Run(f"{name}#{d.get('instance_id') or i + 1}", "openhands", _openhands_events(d["history"])) for i, d in enumerate(doc)]


# --- SWE-agent .traj ----------------------------------------------------------------------------------


def is_swe_agent(doc: Any) -> bool:
    return isinstance(doc, dict) and _is_dict_list(doc.get("trajectory")) and all(
        "action" in s and "observation" in s for s in doc["trajectory"])


def read_swe_agent(doc: dict, name: str) -> List[Run]:
    """``trajectory``: one step per turn with the ``action`` run (a command, possibly multi-line) and
    its ``observation``. A step with ``tool_calls`` in its ``messages`` (function calling) gives those
    instead. Failure is read from the observation (a traceback, ``Error``, ``command not found``)."""
    events: List[Event] = []
    for i, s in enumerate(doc["trajectory"]):
        action = s.get("action")
        if not isinstance(action, str) or not action.strip():
            continue
        obs = _text_of(s.get("observation"))
        cid = f"step{i}"
        events.append(_command_call(cid, action))
        failed = _looks_failed(obs) or "command not found" in obs[:300] or obs.lstrip().startswith(("Usage:", "Your proposed edit has introduced new syntax error"))
        events.append(Result(cid, obs, failed))
    return [Run(name, "swe-agent", events)]


# --- mini-swe-agent .traj.json ------------------------------------------------------------------------

_BASH_BLOCK = re.compile(r"```(?:bash|sh|mswea_bash_command)\s*\n(.*?)\n```", re.S)
_RETURNCODE = re.compile(r"<returncode>\s*(-?\d+)\s*</returncode>")


def is_mini_swe_agent(doc: Any) -> bool:
    if not isinstance(doc, dict) or not _is_messages(doc.get("messages")):
        return False
    info = _dict(doc.get("info"))
    return str(doc.get("trajectory_format", "")).startswith("mini-swe-agent") or "mini_version" in info


def read_mini_swe_agent(doc: dict, name: str) -> List[Run]:
    """``messages``: the model's reply holds one ```` ```bash ```` block, run; the next user message
    returns ``<returncode>N</returncode><output>...</output>``. Versions with tool calling write
    OpenAI ``tool_calls`` and ``tool`` messages instead, read as such."""
    messages = doc["messages"]
    if any(m.get("tool_calls") for m in messages):
        return [_messages_run(name, "mini-swe-agent", {"messages": messages})]
    events: List[Event] = []
    waiting: Optional[str] = None
    for i, m in enumerate(messages):
        content = _text_of(m.get("content"))
        if m.get("role") == "assistant":
            blocks = _BASH_BLOCK.findall(content)
            waiting = None
            if len(blocks) == 1:  # mini-swe-agent runs a reply only when it has exactly one block
                extra = _dict(m.get("extra"))
                resp = _dict(extra.get("response"))
                waiting = f"m{i}"
                events.append(_command_call(waiting, blocks[0], _usage_tokens(resp.get("usage") or m.get("usage"))))
        elif m.get("role") in ("user", "tool") and waiting:
            rc = _RETURNCODE.search(content[:200])
            events.append(Result(waiting, content, bool(rc and int(rc.group(1)) != 0)))
            waiting = None
    return [Run(name, "mini-swe-agent", events)]


# --- tau-bench and tau2-bench results -----------------------------------------------------------------


def is_tau_bench(doc: Any) -> bool:
    if isinstance(doc, dict):
        return _is_messages(doc.get("traj"))
    return _is_dict_list(doc) and all(_is_messages(d.get("traj")) or d.get("traj") == [] for d in doc)


def _task_runs(name: str, fmt: str, items: List[dict], key: str) -> List[Run]:
    """A benchmark's results, one run per task (``name#task<id>[.<trial>]``) from its messages."""
    return [_messages_run(f"{name}#task{d.get('task_id', i)}" + (f".{d['trial']}" if "trial" in d else ""), fmt, {"messages": d.get(key) or []})
            for i, d in enumerate(items)]


def read_tau_bench(doc: Any, name: str) -> List[Run]:
    """A results file: a list of ``{"task_id", "reward", "traj": [OpenAI messages], "trial"}``."""
    return _task_runs(name, "tau-bench", [doc] if isinstance(doc, dict) else doc, "traj")


def is_tau2_bench(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("simulations"), list) and all(
        isinstance(s, dict) and isinstance(s.get("messages"), list) for s in doc["simulations"])


def read_tau2_bench(doc: dict, name: str) -> List[Run]:
    """A results file: ``simulations``, each with ``messages`` whose ``tool_calls`` are flat
    (``id``, ``name``, ``arguments`` as an object, ``requestor``) and whose ``tool`` messages carry the
    call's ``id`` and an ``error`` flag; assistant messages may carry ``usage``."""
    return _task_runs(name, "tau2-bench", doc["simulations"], "messages")


# --- LangSmith runs ---------------------------------------------------------------------------------


def is_langsmith(doc: Any) -> bool:
    return _is_dict_list(doc) and all("run_type" in d and "inputs" in d for d in doc)


def read_langsmith(doc: List[dict], name: str) -> List[Run]:
    """Exported runs (``Client.list_runs``): the ``tool`` runs of each trace, in ``start_time`` order;
    ``inputs`` are the arguments, ``outputs.output`` the answer, ``error`` a failure. Token counts of
    the ``llm`` run that produced a call (its ``parent`` chain's previous llm run) are not attributed."""
    traces: Dict[str, List[dict]] = {}
    for d in doc:
        traces.setdefault(str(d.get("trace_id") or d.get("id")), []).append(d)
    runs = []
    for _t, (trace, items) in enumerate(traces.items()):
        events: List[Event] = []
        for d in sorted(items, key=lambda d: str(d.get("start_time") or "")):
            if d.get("run_type") != "tool":
                continue
            cid = str(d.get("id") or len(events))
            inputs = d.get("inputs")
            if isinstance(inputs, dict) and set(inputs) == {"input"}:
                inner = inputs["input"]
                if isinstance(inner, str) and inner.lstrip().startswith("{"):
                    try:
                        inputs = json.loads(inner)
                    except ValueError:
                        pass
            events.append(Call(cid, d.get("name") or "", inputs if inputs is not None else {}, time=d.get("start_time")))
            outputs = d.get("outputs")
            out = outputs.get("output", outputs) if isinstance(outputs, dict) else outputs
            if isinstance(out, dict) and "content" in out:  # a serialized ToolMessage
                out = out.get("content")
            err = d.get("error")
            events.append(Result(cid, _text_of(err) if err and out is None else _text_of(out), bool(err)))
        runs.append(Run(name if len(traces) == 1 else f"{name}#{trace[:8]}", "langsmith", events))
    return runs


# --- MicroLoop's own observe log ------------------------------------------------------------------------


def is_observe_log(doc: Any) -> bool:
    return _is_dict_list(doc) and all(d.get("microloop") == "observe" for d in doc)


def read_observe_log(doc: List[dict], name: str) -> List[Run]:
    """The log a policy with ``mode = "observe"`` writes: one line per call, and one per result, each
    naming its ``session``; every session is a run."""
    sessions: Dict[str, List[Event]] = {}
    for d in doc:
        ev = sessions.setdefault(str(d.get("session") or ""), [])
        if d.get("event") == "check":
            ev.append(Call(str(d.get("call")), d.get("tool") or "", d.get("args") if d.get("args") is not None else {}, time=d.get("time")))
        elif d.get("event") == "record":
            ev.append(Result(str(d.get("call")), _text_of(d.get("output")), bool(d.get("error"))))
    return [Run(name if s == "" and len(sessions) == 1 else f"{name}#{s}", "microloop-observe", ev) for s, ev in sessions.items()]


# --- detection ----------------------------------------------------------------------------------------

Reader = Callable[[Any, str], List[Run]]

# (name, what it reads, test, reader), most specific first
FORMATS: List[Tuple[str, str, Callable[[Any], bool], Reader]] = [
    ("microloop-observe", "the log of a policy in observe mode", is_observe_log, read_observe_log),
    ("claude-code", "Claude Code session transcripts (~/.claude/projects/*/*.jsonl)", is_claude_code, read_claude_code),
    ("codex-cli", "Codex CLI rollouts (~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl)", is_codex, read_codex),
    ("gemini-cli", "Gemini CLI chats (~/.gemini/tmp/*/chats/session-*.json or .jsonl)", is_gemini_cli, read_gemini_cli),
    ("gemini-contents", "Gemini API contents (Gemini CLI checkpoints)", is_gemini_contents, read_gemini_contents),
    ("openhands", "OpenHands trajectories (event lists, or evaluation output with `history`)", is_openhands, read_openhands),
    ("swe-agent", "SWE-agent .traj files", is_swe_agent, read_swe_agent),
    ("mini-swe-agent", "mini-swe-agent .traj.json files", is_mini_swe_agent, read_mini_swe_agent),
    ("tau2-bench", "tau2-bench results (`simulations`)", is_tau2_bench, read_tau2_bench),
    ("tau-bench", "tau-bench results (a list of `traj`)", is_tau_bench, read_tau_bench),
    ("langsmith", "LangSmith runs (`run_type`, `inputs`, `outputs`)", is_langsmith, read_langsmith),
    ("openai-responses", "OpenAI Responses API items (function_call / function_call_output)", is_responses, read_responses),
    ("openai-messages", "OpenAI or Anthropic message lists, JSON or JSONL (one message or one conversation per line)", is_messages, read_messages),
]


def describe_formats() -> str:
    return "; ".join(f"{name} ({what})" for name, what, _, _ in FORMATS)


def load(text: str) -> Any:
    """A JSON document, or the list of a JSONL file's objects."""
    text = text.lstrip("\ufeff").strip()
    if not text:
        raise UnknownFormat("the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        if text.startswith("{"):  # JSONL: one parse of all its lines is much faster than one per line
            try:
                return json.loads("[" + ",".join(line for line in text.splitlines() if line.strip()) + "]")
            except json.JSONDecodeError:
                pass  # find the bad line below
        lines = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError as e:
                if n == 1 and not text.startswith(("{", "[")):
                    raise UnknownFormat(f"not JSON or JSONL ({first.msg} at line {first.lineno})") from None
                raise UnknownFormat(f"line {n} is not JSON: {e.msg}") from None
        return lines


def detect(doc: Any) -> Optional[str]:
    """The name of the first format whose test fits the document."""
    for name, _, test, _ in FORMATS:
        try:
            if test(doc):
                return name
        except (AttributeError, TypeError, KeyError):
            continue
    return None


def parse(text: str, name: str = "-", fmt: Optional[str] = None) -> List[Run]:
    """The runs in a log's text, its format detected from the content (or forced with ``fmt``)."""
    try:
        doc = load(text)
    except UnknownFormat as e:
        raise UnknownFormat(f"{e}; known formats: {describe_formats()}") from None
    found = fmt or detect(doc)
    if found is None:
        raise UnknownFormat(f"no known agent log format fits; known formats: {describe_formats()}")
    for fname, _, _, reader in FORMATS:
        if fname == found:
            try:
                return reader(doc, name)
            except (AttributeError, TypeError, KeyError) as e:
                raise UnknownFormat(f"looks like {found} but cannot be read: {type(e).__name__}: {e}") from None
    raise UnknownFormat(f"unknown format {found!r}; known formats: {', '.join(n for n, _, _, _ in FORMATS)}")


def formats() -> Iterable[str]:
    return [name for name, _, _, _ in FORMATS]
