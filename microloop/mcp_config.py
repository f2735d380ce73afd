"""``microloop mcp wrap|unwrap CLIENT``: run each MCP server a client starts under ``microloop-mcp``.

    microloop mcp wrap claude-code --project .      .mcp.json
    microloop mcp wrap cursor --user                ~/.cursor/mcp.json
    microloop mcp unwrap claude-code --project .    back as it was

A wrapped entry's command becomes ``microloop-mcp [--policy P] -- COMMAND ARGS...``; nothing else in
the file changes meaning. ``unwrap`` takes the server's own command back out of each wrapped entry,
and when the file has not changed since ``wrap`` wrote it, puts the original bytes back exactly (kept
under ``$XDG_STATE_HOME/microloop/mcp-wrap``). Servers reached by URL (HTTP) are left alone: put
``microloop-mcp --listen ... --upstream URL`` in front of them instead.

Clients and their files (``--project DIR`` / ``--user``):

==============  ==========================  ===================================================
client          project                     user
==============  ==========================  ===================================================
claude-code     DIR/.mcp.json               ~/.claude.json
claude-desktop  (none)                      Claude's claude_desktop_config.json for this OS
cursor          DIR/.cursor/mcp.json        ~/.cursor/mcp.json
vscode          DIR/.vscode/mcp.json        Code's User/mcp.json for this OS
gemini          DIR/.gemini/settings.json   ~/.gemini/settings.json
codex           DIR/.codex/config.toml      $CODEX_HOME/config.toml (~/.codex/config.toml)
==============  ==========================  ===================================================
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import re
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

RELAY = "microloop-mcp"

__all__ = ["CLIENTS", "config_path", "wrap", "unwrap", "add_parser"]


@dataclass(frozen=True)
class Client:
    #: the key that holds the servers (``mcpServers``, ``servers``, ``mcp_servers``)
    key: str
    #: the file under a project directory, or None when the client has no project scope
    project: Optional[str]
    #: the user-level file
    user: Callable[[], Path]
    toml: bool = False


def _home() -> Path:
    return Path(os.path.expanduser("~"))


def _claude_desktop() -> Path:
    if sys.platform == "darwin":
        return _home() / "Library/Application Support/Claude/claude_desktop_config.json"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", _home() / "AppData/Roaming")) / "Claude/claude_desktop_config.json"
    return Path(os.environ.get("XDG_CONFIG_HOME") or _home() / ".config") / "Claude/claude_desktop_config.json"


def _vscode_user() -> Path:
    if sys.platform == "darwin":
        return _home() / "Library/Application Support/Code/User/mcp.json"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", _home() / "AppData/Roaming")) / "Code/User/mcp.json"
    return Path(os.environ.get("XDG_CONFIG_HOME") or _home() / ".config") / "Code/User/mcp.json"


def _codex_user() -> Path:
    return Path(os.environ.get("CODEX_HOME") or _home() / ".codex") / "config.toml"


CLIENTS: Dict[str, Client] = {
    "claude-code": Client("mcpServers", ".mcp.json", lambda: _home() / ".claude.json"),
    "claude-desktop": Client("mcpServers", None, _claude_desktop),
    "cursor": Client("mcpServers", ".cursor/mcp.json", lambda: _home() / ".cursor/mcp.json"),
    "vscode": Client("servers", ".vscode/mcp.json", _vscode_user),
    "gemini": Client("mcpServers", ".gemini/settings.json", lambda: _home() / ".gemini/settings.json"),
    "codex": Client("mcp_servers", ".codex/config.toml", _codex_user, toml=True),
}


class ConfigError(Exception):
    """A config file that cannot be read or changed; the message says which and why."""


def config_path(client: str, project: Optional[str] = None, user: bool = False) -> Path:
    """The file ``client`` keeps its MCP servers in: the project's (default: the current
    directory) or, with ``user``, the user's."""
    c = _client(client)
    if user or c.project is None:
        if project is not None and c.project is None:
            raise ConfigError(f"{client} has no project configuration; use --user")
        return c.user()
    return Path(project or ".") / c.project


def _client(name: str) -> Client:
    try:
        return CLIENTS[name]
    except KeyError:
        raise ConfigError(f"unknown client {name!r}; one of: {', '.join(CLIENTS)}") from None


def _is_relay(command: Any) -> bool:
    return isinstance(command, str) and Path(command).name in (RELAY, RELAY + ".exe")


def _wrapped(command: str, args: List[str], relay: str, relay_args: List[str]) -> Tuple[str, List[str]]:
    return relay, [*relay_args, "--", command, *args]


def _unwrapped(args: List[Any]) -> Optional[Tuple[str, List[Any]]]:
    if "--" not in args:
        return None
    rest = args[args.index("--") + 1:]
    if not rest:
        return None
    return rest[0], rest[1:]


# --- State: the original bytes, to put back exactly when the file is as wrap left it.

def _state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(_home() / ".local/state")
    return Path(base) / "microloop" / "mcp-wrap"


def _state_file(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return _state_dir() / f"{key}.json"


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# --- JSON files

def _json_servers(doc: Any, key: str, path: Path) -> Dict[str, Any]:
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the file is not a JSON object")
    servers = doc.get(key)
    if servers is None:
        return {}
    if not isinstance(servers, dict):
        raise ConfigError(f"{path}: `{key}` is not an object")
    return servers


def _indent_of(text: str) -> Any:
    m = re.search(r"^[{\[]\s*\n([ \t]+)\S", text)
    if not m:
        return 2
    ws = m.group(1)
    return "\t" if ws.startswith("\t") else len(ws)


def _dump_json(doc: Any, like: str) -> str:
    return json.dumps(doc, indent=_indent_of(like), ensure_ascii=False) + ("\n" if like.endswith("\n") or not like else "")


# --- Codex's TOML: only the command and args lines of [mcp_servers.NAME] tables are rewritten.

_TABLE = re.compile(r"^\s*\[\s*mcp_servers\s*\.\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*'|[A-Za-z0-9_-]+)\s*\]\s*(#.*)?$")
_ANY_TABLE = re.compile(r"^\s*\[")


def _toml_name(raw: str) -> str:
    if raw.startswith('"'):
        return json.loads(raw)
    if raw.startswith("'"):
        return raw[1:-1]
    return raw


def _toml_tables(lines: List[str]) -> Dict[str, Tuple[int, int]]:
    """Each ``[mcp_servers.NAME]`` table's line range [start, end)."""
    out: Dict[str, Tuple[int, int]] = {}
    i = 0
    while i < len(lines):
        m = _TABLE.match(lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not _ANY_TABLE.match(lines[j]):
                j += 1
            out[_toml_name(m.group(1))] = (i, j)
            i = j
        else:
            i += 1
    return out


def _toml_key_span(lines: List[str], start: int, end: int, key: str) -> Optional[Tuple[int, int]]:
    """The lines [a, b) holding ``key = value`` in the table (an array may span lines)."""
    pat = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start + 1, end):
        if pat.match(lines[i]):
            depth = 0
            j = i
            while j < end:
                depth += _bracket_depth(lines[j])
                j += 1
                if depth <= 0:
                    break
            return i, j
    return None


def _bracket_depth(line: str) -> int:
    depth, quote, esc = 0, None, False
    for ch in line:
        if quote:
            if esc:
                esc = False
            elif ch == "\\" and quote == '"':
                esc = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
    return depth


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _rewrite_toml(text: str, edits: Dict[str, Tuple[str, Optional[List[str]]]]) -> str:
    """Sets each named table's command and args (``None``: no args line)."""
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    tables = _toml_tables(lines)
    # Later tables first, so earlier line numbers stay valid.
    for name, (start, end) in sorted(tables.items(), key=lambda kv: -kv[1][0]):
        if name not in edits:
            continue
        command, args = edits[name]
        new_args = [] if args is None else [f"args = [{', '.join(_toml_str(a) for a in args)}]{newline}"]
        a_span = _toml_key_span(lines, start, end, "args")
        c_span = _toml_key_span(lines, start, end, "command")
        assert c_span is not None
        if a_span:
            lines[a_span[0]:a_span[1]] = new_args
            c_span = _toml_key_span(lines, start, end, "command")
            assert c_span is not None
            lines[c_span[0]:c_span[1]] = [f"command = {_toml_str(command)}{newline}"]
        else:
            lines[c_span[0]:c_span[1]] = [f"command = {_toml_str(command)}{newline}", *new_args]
    return "".join(lines)


def _toml_loads(text: str) -> Dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(text)
    try:  # Python 3.10: the same parser, as the tomli package
        tomli = importlib.import_module("tomli")
    except ImportError:
        raise ConfigError("Codex's config.toml needs Python 3.11+ or the tomli package to be read") from None
    result: Dict[str, Any] = tomli.loads(text)
    return result


# --- wrap / unwrap

def _load(path: Path, toml: bool) -> Tuple[bytes, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (nothing to wrap)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it ({e.strerror})") from None
    text = raw.decode("utf-8-sig")
    try:
        if toml:
            return raw, _toml_loads(text)
        return raw, json.loads(text) if text.strip() else {}
    except ValueError as e:
        raise ConfigError(f"{path}: not valid {'TOML' if toml else 'JSON'} ({e}); nothing changed") from None


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".microloop-tmp")
    tmp.write_bytes(data)
    try:
        shutil.copymode(path, tmp)
    except OSError:
        pass
    os.replace(tmp, path)


def _default_relay() -> str:
    """The relay ``pip install`` put beside this interpreter's scripts, else one on ``PATH``."""
    for d in (sysconfig.get_path("scripts"), os.path.dirname(os.path.abspath(sys.executable))):
        p = os.path.join(d, RELAY)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return os.path.abspath(p)
    found = shutil.which(RELAY)
    return os.path.abspath(found) if found else RELAY


def wrap(path: Path, client: str, policy: Optional[str] = None, relay: Optional[str] = None,
         only: Optional[List[str]] = None) -> List[str]:
    """Rewrites the stdio servers in ``path`` to run under the relay. Returns lines saying what
    was done to each server."""
    c = _client(client)
    raw, doc = _load(path, c.toml)
    text = raw.decode("utf-8-sig")
    servers = doc.get(c.key, {}) if c.toml else _json_servers(doc, c.key, path)
    relay = relay or _default_relay()
    relay_args = ["--policy", policy] if policy else []
    report: List[str] = []
    edits: Dict[str, Tuple[str, Optional[List[str]]]] = {}
    for name, entry in servers.items():
        if only and name not in only:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
            report.append(f"{name}: not a command (an HTTP server?); left as it is")
            continue
        if _is_relay(entry["command"]):
            report.append(f"{name}: already wrapped")
            continue
        args = entry.get("args", [])
        if not isinstance(args, list):
            report.append(f"{name}: `args` is not a list; left as it is")
            continue
        edits[name] = _wrapped(entry["command"], args, relay, relay_args)
        report.append(f"{name}: wrapped")
    if not edits:
        return report or [f"{path}: no MCP servers under `{c.key}`"]
    if c.toml:
        new_text = _rewrite_toml(text, edits)
        check = _toml_loads(new_text).get(c.key, {})
        for name, (command, args) in edits.items():
            if check.get(name, {}).get("command") != command or check[name].get("args") != args:
                raise ConfigError(f"{path}: could not rewrite [mcp_servers.{name}] (an inline table?); nothing changed")
    else:
        for name, (command, args) in edits.items():
            servers[name]["command"] = command
            servers[name]["args"] = args
        new_text = _dump_json(doc, text)
    new = new_text.encode()
    state = _state_file(path)
    previous = _read_state(state)
    # A second wrap keeps the first original: unwrap goes back to before any wrap.
    original = previous["original"] if previous and previous.get("wrapped_sha256") == _sha(raw) else raw.decode("utf-8-sig")
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"path": str(path.resolve()), "original": original, "bom": raw.startswith(b"\xef\xbb\xbf"),
                                 "wrapped_sha256": _sha(new)}))
    _write(path, new)
    return report


def _read_state(state: Path) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(state.read_text())
    except (OSError, ValueError):
        return None


def unwrap(path: Path, client: str) -> List[str]:
    """Takes the relay out of every wrapped server in ``path``; the original bytes come back when
    the file is as ``wrap`` left it."""
    c = _client(client)
    raw, doc = _load(path, c.toml)
    state = _state_file(path)
    saved = _read_state(state)
    if saved and saved.get("wrapped_sha256") == _sha(raw):
        original = saved["original"].encode()
        _write(path, (b"\xef\xbb\xbf" if saved.get("bom") else b"") + original)
        state.unlink()
        return [f"{path}: restored as it was before wrap"]
    text = raw.decode("utf-8-sig")
    servers = doc.get(c.key, {}) if c.toml else _json_servers(doc, c.key, path)
    # An entry that had no args gets none back (an empty list means the same to every client).
    edits: Dict[str, Tuple[str, Optional[List[str]]]] = {}
    report: List[str] = []
    for name, entry in servers.items():
        if isinstance(entry, dict) and _is_relay(entry.get("command")):
            back = _unwrapped(entry.get("args", []))
            if back is None:
                report.append(f"{name}: runs {RELAY} without a server command; left as it is")
                continue
            edits[name] = (back[0], back[1] or None)
            report.append(f"{name}: unwrapped")
    if not edits:
        return report or [f"{path}: no wrapped servers"]
    if c.toml:
        new_text = _rewrite_toml(text, edits)
    else:
        for name, (command, args) in edits.items():
            servers[name]["command"] = command
            if args is None:
                servers[name].pop("args", None)
            else:
                servers[name]["args"] = args
        new_text = _dump_json(doc, text)
    _write(path, new_text.encode())
    if saved:
        state.unlink()
    report.append(f"{path}: the file changed since wrap, so the entries were restored, not its bytes")
    return report


# --- the command line

def add_parser(sub: Any) -> None:
    """Adds ``mcp wrap`` and ``mcp unwrap`` to the ``microloop`` command's subparsers."""
    p = sub.add_parser("mcp", help="run the MCP servers of a client (Claude Code, Cursor, ...) under microloop-mcp")
    msub = p.add_subparsers(dest="mcp_command", required=True)
    for name, helptext in (("wrap", "run each stdio server of CLIENT under microloop-mcp"),
                           ("unwrap", "take microloop-mcp out again, restoring the file")):
        q = msub.add_parser(name, help=helptext)
        q.add_argument("client", choices=list(CLIENTS))
        scope = q.add_mutually_exclusive_group()
        scope.add_argument("--project", metavar="DIR", help="the project's config (default: the current directory)")
        scope.add_argument("--user", action="store_true", help="the user's config")
        scope.add_argument("--config", metavar="FILE", help="this config file (in the client's format)")
        if name == "wrap":
            q.add_argument("--policy", help="policy for the relay (preset, file or text)")
            q.add_argument("--relay", help=f"the {RELAY} executable (default: the one on PATH, as an absolute path)")
            q.add_argument("--server", action="append", metavar="NAME", help="only this server (repeatable)")
        q.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    try:
        path = Path(args.config) if args.config else config_path(args.client, args.project, args.user)
        if args.mcp_command == "wrap":
            lines = wrap(path, args.client, policy=args.policy, relay=args.relay, only=args.server)
        else:
            lines = unwrap(path, args.client)
    except ConfigError as e:
        print(f"microloop mcp: {e}", file=sys.stderr)
        return 1
    print(f"{path}:")
    for line in lines:
        print(f"  {line}")
    return 0
