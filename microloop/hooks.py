"""MicroLoop as a coding agent's hook: where ``microloop-hook`` is, and its registration in the
settings of Claude Code, Codex CLI, Gemini CLI, Cursor and Cline.

``install`` writes or merges the agent's settings file (keeping everything else in it) so the
agent runs ``microloop-hook AGENT`` on each tool event; ``uninstall`` removes exactly the entries
whose command is a ``microloop-hook``; ``status`` says what is installed where. ``sessions`` and
``read_state`` read the hook's state files (format: ``docs/coding-agents.md``).
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import shutil
import stat
import subprocess
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HOOK_NAME = "microloop-hook.exe" if sys.platform == "win32" else "microloop-hook"
AGENTS = ("claude-code", "codex", "gemini", "cursor", "cline")
STATE_MAGIC = b"microloop-hook 1\n"

# Events registered per agent (settings-file agents). Claude Code and Codex use "matcher"
# groups; Gemini too (its timeout is in milliseconds); Cursor lists commands per event.
_EVENTS = {
    "claude-code": ("PreToolUse", "PostToolUse", "PostToolUseFailure", "SessionEnd"),
    "codex": ("PreToolUse", "PostToolUse", "SessionEnd"),
    "gemini": ("BeforeTool", "AfterTool", "SessionEnd"),
    # The shell and MCP events, not preToolUse as well: a shell call would be counted twice.
    "cursor": ("beforeShellExecution", "afterShellExecution", "beforeMCPExecution", "afterMCPExecution", "sessionEnd"),
}
# Cline runs executables named after the event from its hooks directory.
_CLINE_HOOKS = ("PreToolUse", "PostToolUse", "TaskCancel", "TaskComplete")
_CLINE_MARK = "# microloop-hook: added by `microloop hooks install cline`"
# Seconds (Claude Code, Codex), milliseconds (Gemini), seconds (Cursor).
_TIMEOUT_S = 10


class HookError(Exception):
    """A settings file that cannot be read or changed safely, or no hook executable."""


def hook_path() -> str:
    """The absolute path of the ``microloop-hook`` executable: ``$MICROLOOP_HOOK``, else the one
    ``pip install`` put beside this interpreter's scripts, else one on ``PATH``."""
    env = os.environ.get("MICROLOOP_HOOK")
    if env:
        if not os.access(env, os.X_OK):
            raise HookError(f"MICROLOOP_HOOK={env} is not an executable file")
        return os.path.abspath(env)
    candidates = [sysconfig.get_path("scripts"), os.path.dirname(os.path.abspath(sys.executable))]
    for d in candidates:
        p = os.path.join(d, HOOK_NAME)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return os.path.abspath(p)
    found = shutil.which(HOOK_NAME)
    if found:
        return os.path.abspath(found)
    raise HookError(
        f"{HOOK_NAME} not found beside {sys.executable} nor on PATH: reinstall microloop "
        "(`pip install microloop`), or set MICROLOOP_HOOK to its path"
    )


def state_dir() -> Path:
    """Where the hook keeps its sessions: ``$MICROLOOP_STATE_DIR``, else
    ``$XDG_STATE_HOME/microloop/hooks``, else ``~/.local/state/microloop/hooks`` (the hook's own rule)."""
    d = os.environ.get("MICROLOOP_STATE_DIR")
    if d:
        return Path(d)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "microloop" / "hooks"


# ---- where each agent keeps its settings ---------------------------------------------------


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def settings_path(agent: str, project: Optional[str] = None) -> Path:
    """The file (Cline: the directory) that registers hooks for ``agent``: in ``project``, or the
    user's when ``project`` is None (honouring CLAUDE_CONFIG_DIR, CODEX_HOME, GEMINI_CLI_HOME)."""
    if agent not in AGENTS:
        raise HookError(f"unknown agent {agent!r}: use one of {', '.join(AGENTS)}")
    if project is not None:
        root = Path(project).resolve()
        return root / {
            "claude-code": ".claude/settings.json",
            "codex": ".codex/hooks.json",
            "gemini": ".gemini/settings.json",
            "cursor": ".cursor/hooks.json",
            "cline": ".clinerules/hooks",
        }[agent]
    if agent == "claude-code":
        return Path(os.environ.get("CLAUDE_CONFIG_DIR") or _home() / ".claude") / "settings.json"
    if agent == "codex":
        return Path(os.environ.get("CODEX_HOME") or _home() / ".codex") / "hooks.json"
    if agent == "gemini":
        return Path(os.environ.get("GEMINI_CLI_HOME") or _home()) / ".gemini" / "settings.json"
    if agent == "cursor":
        return _home() / ".cursor" / "hooks.json"
    return _home() / "Documents" / "Cline" / "Hooks"


def hook_command(agent: str, policy: Optional[str] = None, exe: Optional[str] = None) -> str:
    """The command line the agent runs: the executable by its absolute path, the agent, the policy."""
    cmd = [exe or hook_path(), agent]
    if policy:
        # A policy file is named by its absolute path: the agent runs hooks from anywhere.
        if os.path.exists(policy):
            policy = os.path.abspath(policy)
        cmd += ["--policy", policy]
    return " ".join(shlex.quote(c) for c in cmd)


def _is_ours(command: Any) -> bool:
    if not isinstance(command, str):
        return False
    try:
        first = shlex.split(command)[0]
    except (ValueError, IndexError):
        return False
    return os.path.basename(first) in ("microloop-hook", "microloop-hook.exe")


# ---- JSON settings files -------------------------------------------------------------------


def _read_json(path: Path) -> Dict[str, Any]:
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text) if text.strip() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HookError(f"cannot read {path}: {e}; fix or move it, nothing was changed") from e
    if not isinstance(doc, dict):
        raise HookError(f"{path} is not a JSON object; nothing was changed")
    return doc


def _write_json(path: Path, doc: Dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".microloop-tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _hooks_table(doc: Dict[str, Any], path: Path) -> Dict[str, Any]:
    hooks = doc.get("hooks", {})
    if not isinstance(hooks, dict):
        raise HookError(f"{path}: `hooks` is not an object; nothing was changed")
    return hooks


def _strip_ours(agent: str, doc: Dict[str, Any], path: Path) -> int:
    """Removes the hook's entries from a settings document; returns how many."""
    if "hooks" not in doc:
        return 0
    hooks = _hooks_table(doc, path)
    removed = 0
    for event in list(hooks):
        entries = hooks[event]
        if not isinstance(entries, list):
            continue
        kept = []
        for entry in entries:
            if not isinstance(entry, dict):
                kept.append(entry)
                continue
            if agent == "cursor":  # a flat list of {"command": ...}
                if _is_ours(entry.get("command")):
                    removed += 1
                    continue
                kept.append(entry)
                continue
            inner = entry.get("hooks")
            if not isinstance(inner, list):
                kept.append(entry)
                continue
            mine = [h for h in inner if isinstance(h, dict) and _is_ours(h.get("command"))]
            if not mine:
                kept.append(entry)
                continue
            removed += len(mine)
            rest = [h for h in inner if h not in mine]
            if rest:
                kept.append({**entry, "hooks": rest})
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    if not hooks:
        del doc["hooks"]
        if agent == "cursor" and set(doc) == {"version"}:
            del doc["version"]
    return removed


def _add_ours(agent: str, doc: Dict[str, Any], path: Path, command: str) -> None:
    hooks = doc.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise HookError(f"{path}: `hooks` is not an object; nothing was changed")
    for event in _EVENTS[agent]:
        if agent == "cursor":
            doc.setdefault("version", 1)
            hooks.setdefault(event, []).append({"command": command, "timeout": _TIMEOUT_S})
            continue
        if agent == "gemini":
            handler = {"name": "microloop", "type": "command", "command": command, "timeout": _TIMEOUT_S * 1000,
                       "description": "MicroLoop loop guard"}
        else:
            handler = {"type": "command", "command": command, "timeout": _TIMEOUT_S}
        group: Dict[str, Any] = {"hooks": [handler]}
        if event not in ("SessionEnd",):  # tool events: every tool
            group = {"matcher": "*", **group}
        entries = hooks.setdefault(event, [])
        if not isinstance(entries, list):
            raise HookError(f"{path}: `hooks.{event}` is not a list; nothing was changed")
        entries.append(group)


# ---- Cline: executable scripts -------------------------------------------------------------


def _cline_script(command: str) -> str:
    return f'#!/bin/sh\n{_CLINE_MARK}\nexec {command} "$@"\n'


def _cline_ours(path: Path) -> bool:
    try:
        return _CLINE_MARK in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


# ---- install / uninstall / status ----------------------------------------------------------


@dataclass
class Change:
    agent: str
    path: Path
    action: str  # "installed", "updated", "removed", "absent"
    command: Optional[str] = None

    def __str__(self) -> str:
        if self.action == "absent":
            return f"{self.agent}: no MicroLoop hook in {self.path}"
        what = f" ({self.command})" if self.command else ""
        return f"{self.agent}: {self.action} in {self.path}{what}"


def install(agent: str, project: Optional[str] = None, policy: Optional[str] = None, exe: Optional[str] = None) -> Change:
    """Registers the hook for ``agent`` in ``project`` (or the user's settings). Idempotent: an
    earlier MicroLoop entry is replaced, everything else is kept."""
    path = settings_path(agent, project)
    command = hook_command(agent, policy, exe)
    if agent == "cline":
        conflicts = [n for n in _CLINE_HOOKS if (path / n).exists() and not _cline_ours(path / n)]
        if conflicts:
            raise HookError(
                f"{path} already has hook scripts {', '.join(conflicts)} that are not MicroLoop's: "
                f"add `{command}` to them by hand; nothing was changed"
            )
        existed = any((path / n).exists() for n in _CLINE_HOOKS)
        path.mkdir(parents=True, exist_ok=True)
        for n in _CLINE_HOOKS:
            p = path / n
            p.write_text(_cline_script(command), encoding="utf-8")
            p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return Change(agent, path, "updated" if existed else "installed", command)
    doc = _read_json(path)
    had = _strip_ours(agent, doc, path)
    _add_ours(agent, doc, path, command)
    _write_json(path, doc)
    return Change(agent, path, "updated" if had else "installed", command)


def uninstall(agent: str, project: Optional[str] = None) -> Change:
    """Removes the hook's entries for ``agent``; a settings file left empty is deleted."""
    path = settings_path(agent, project)
    if agent == "cline":
        mine = [path / n for n in _CLINE_HOOKS if (path / n).exists() and _cline_ours(path / n)]
        for p in mine:
            p.unlink()
        return Change(agent, path, "removed" if mine else "absent")
    if not path.exists():
        return Change(agent, path, "absent")
    doc = _read_json(path)
    if not _strip_ours(agent, doc, path):
        return Change(agent, path, "absent")
    if doc:
        _write_json(path, doc)
    else:
        path.unlink()
    return Change(agent, path, "removed")


def installed(agent: str, project: Optional[str] = None) -> Tuple[Path, List[str]]:
    """The settings path and the MicroLoop hook commands registered there."""
    path = settings_path(agent, project)
    if agent == "cline":
        cmds = []
        for n in _CLINE_HOOKS:
            p = path / n
            if p.exists() and _cline_ours(p):
                cmds += [f"{n}: {line[5:]}" for line in p.read_text(encoding="utf-8").splitlines() if line.startswith("exec ")]
        return path, cmds
    try:
        doc = _read_json(path)
    except HookError:
        return path, []
    found: List[str] = []
    hooks = doc.get("hooks")
    if not isinstance(hooks, dict):
        return path, []
    for event, entries in hooks.items():
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            inner = [entry] if agent == "cursor" else entry.get("hooks") or []
            for h in inner:
                if isinstance(h, dict) and _is_ours(h.get("command")):
                    found.append(f"{event}: {h['command']}")
    return path, found


# ---- Codex: hooks run only once trusted --------------------------------------------------------


def trust_codex(codex: str, cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None, timeout: float = 60) -> List[str]:
    """Marks MicroLoop's Codex hooks as trusted, as Codex's ``/hooks`` does (Codex runs an untrusted
    hook not at all): its app-server lists each hook's key and current hash (``hooks/list``), and
    ``config/batchWrite`` records them in the user's config.toml. Only hooks whose command is a
    ``microloop-hook`` are touched. Returns the events trusted."""
    p = subprocess.Popen([codex, "app-server"], cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    assert p.stdin is not None and p.stdout is not None
    stdin, stdout = p.stdin, p.stdout
    lines: "queue.Queue[str]" = queue.Queue()
    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout

    def call(i: int, method: str, params: Dict[str, Any]) -> Any:
        stdin.write(json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n")
        stdin.flush()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HookError(f"codex app-server: no answer to {method} in {timeout:.0f}s")
            try:
                msg = json.loads(lines.get(timeout=left))
            except queue.Empty:
                continue
            except json.JSONDecodeError:
                continue
            if msg.get("id") == i:
                if "error" in msg:
                    raise HookError(f"codex app-server {method}: {msg['error']}")
                return msg["result"]

    try:
        call(1, "initialize", {"clientInfo": {"name": "microloop", "version": "0"}})
        stdin.write(json.dumps({"jsonrpc": "2.0", "method": "initialized"}) + "\n")
        listed = call(2, "hooks/list", {"cwds": [cwd or os.getcwd()]})
        mine = [h for entry in listed.get("data", []) for h in entry.get("hooks", [])
                if _is_ours(h.get("command")) and h.get("trustStatus") != "trusted"]
        if mine:
            edits = [{"keyPath": f"hooks.state.{json.dumps(h['key'])}.trusted_hash", "mergeStrategy": "upsert",
                      "value": h["currentHash"]} for h in mine]
            call(3, "config/batchWrite", {"edits": edits})
        return [str(h.get("eventName")) for h in mine]
    finally:
        stdin.close()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# ---- the hook's state files ----------------------------------------------------------------


@dataclass
class SessionState:
    path: Path
    agent: str
    session: str
    updated_ms: int
    stats: Dict[str, Any]
    log: List[Dict[str, Any]]
    pending: List[Any]


def read_state(path: Path) -> SessionState:
    """Reads one state file's text part (the binary history after it is the core's snapshot)."""
    with open(path, "rb") as f:
        head = f.readline()
        line = f.readline()
    if head != STATE_MAGIC or not line.endswith(b"\n"):
        raise ValueError(f"{path} is not a microloop-hook state file")
    meta = json.loads(line)
    return SessionState(
        path=Path(path),
        agent=meta.get("agent", "?"),
        session=meta.get("session", "?"),
        updated_ms=int(meta.get("updated_ms") or 0),
        stats=meta.get("stats") or {},
        log=meta.get("log") or [],
        pending=meta.get("pending") or [],
    )


def sessions(directory: Optional[Path] = None) -> List[SessionState]:
    """Every readable session in the state directory, the newest first."""
    d = directory or state_dir()
    out = []
    if d.is_dir():
        for p in d.glob("*.state"):
            try:
                out.append(read_state(p))
            except (OSError, ValueError):
                continue
    out.sort(key=lambda s: s.updated_ms, reverse=True)
    return out


def find_sessions(query: str, directory: Optional[Path] = None) -> List[SessionState]:
    """Sessions whose id is ``query`` (or starts with it; a subagent's id is ``SESSION/AGENT``)."""
    all_ = sessions(directory)
    exact = [s for s in all_ if s.session == query or s.session.startswith(query + "/")]
    return exact or [s for s in all_ if s.session.startswith(query)]
