"""The ``microloop`` command: ``demo``, ``check-policy FILE``, ``replay FILE``, ``audit``, ``keys``, ``hooks``.

    microloop demo                         two scripted agents loop, without and with MicroLoop
    microloop check-policy policy.toml     validate a policy and explain what it sets
    microloop replay ~/.claude/projects    what a policy would have done on recorded agent runs
    microloop audit verify audit.log --key KEY   check the audit log (exit 0 ok, 1 tampered, 2 bad input)
    microloop mcp wrap claude-code         run a client's MCP servers under microloop-mcp (unwrap undoes it)
    microloop hooks install claude-code    MicroLoop as a coding agent's hook (see docs/coding-agents.md)
    microloop hooks status | log SESSION   what is installed where; what a session's hook blocked
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, List, Optional

from . import _audit_cli, mcp_config
from ._thresholds import THRESHOLDS
from ._version import __version__
from .errors import MicroLoopError, PolicyError
from .guardrail import Guardrail
from .policy import load_policy

LOOP_KEYS = {
    "window": "calls kept in the history",
    # One line per loop threshold, from the table the core's policy parser is generated from.
    **{key: f"{meaning.rstrip('.')} ({rule})" for key, (rule, _, meaning) in THRESHOLDS.items()},
    "ignore_fields": "argument fields left out of fingerprints at any depth",
    "normalize_results": "mask volatile output (UUIDs, timestamps, hex ids, durations) before comparing",
    "mask_patterns": "extra regexes masked in results",
    "max_blocked": "blocked calls the agent may try before the run is halted (halt.ignored_blocks)",
}
BUDGET_KEYS = {
    "max_calls": "calls in the session (budget.calls, then halt)",
    "max_tool_calls": "calls to any one tool (budget.tool_calls)",
    "max_errors": "failed calls in the session (budget.errors, then halt)",
    "max_calls_per_minute": "calls per minute (budget.rate)",
    "max_args_bytes": "size of one call's arguments (budget.args_size)",
}


def explain_policy(doc: Any) -> List[str]:
    if isinstance(doc, str):
        return [f"preset {doc!r}: the built-in thresholds (see README, 'What is blocked')"]
    lines = [f"starts from preset {doc.get('preset', 'balanced')!r}; everything not named below keeps its value"]
    for section, keys in (("loops", LOOP_KEYS), ("budget", BUDGET_KEYS)):
        for k, v in (doc.get(section) or {}).items():
            lines.append(f"  {section}.{k} = {json.dumps(v)}: {keys.get(k, '')}" + ("  (0: off)" if v == 0 else ""))
    if "deny_unknown_tools" in doc:
        lines.append(f"  deny_unknown_tools = {json.dumps(doc['deny_unknown_tools'])}: block calls to tools the agent did not register (tool.unknown)")
    for i, t in enumerate(doc.get("tools") or []):
        what = []
        if t.get("allow") is False:
            what.append("forbidden (tool.denied)")
        if "effect" in t:
            what.append(f"effect {t['effect']}")
        if "max_calls" in t:
            what.append(f"at most {t['max_calls']} calls")
        what += [f"{k} {t[k]}" for k in LOOP_KEYS if k in t]
        if "schema" in t:
            what.append("arguments checked against a JSON Schema")
        if t.get("rules"):
            what.append(f"{len(t['rules'])} field rule(s) on " + ", ".join(r.get("field", "?") for r in t["rules"]))
        lines.append(f"  tools[{i}] {t.get('name')!r}: " + ("; ".join(what) or "no overrides"))
    return lines


def _parsed(text: str) -> Any:
    """The policy document to explain (the library has already validated it): JSON, TOML, or a
    preset name."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except ValueError:
        return text.strip()


def cmd_check_policy(args: argparse.Namespace) -> int:
    try:
        Guardrail(args.file)
        text, _ = load_policy(args.file)
    except PolicyError as e:
        print(f"invalid policy: {e}", file=sys.stderr)
        return 1
    doc = _parsed(text.decode("utf-8"))
    print(f"{args.file}: valid")
    for line in explain_policy(doc):
        print(line)
    return 0


def _replay_formats() -> List[str]:
    from .replay.formats import formats

    return list(formats())


def cmd_replay(args: argparse.Namespace) -> int:
    from . import replay as rp

    problems: List[str] = []
    failed = False

    def on_problem(path: str, reason: str, named: bool) -> None:
        nonlocal failed
        failed = failed or named
        problems.append(path)
        print(f"{'cannot replay' if named else 'skipped'} {path}: {reason}", file=sys.stderr)

    try:
        reports = rp.replay_paths(args.files, args.policy, args.format, on_problem)
    except PolicyError as e:
        print(f"invalid policy: {e}", file=sys.stderr)
        return 1
    total = rp.totals(reports)
    if args.html:
        from .replay.html import write_html

        try:
            write_html(args.html, reports, total)
        except OSError as e:
            print(f"cannot write {args.html}: {e}", file=sys.stderr)
            return 1
    if args.json:
        json.dump({"policy": reports[0].policy if reports else args.policy, "runs": [r.to_json() for r in reports], "total": total}, sys.stdout, indent=2)
        print()
    else:
        for r in reports:
            if args.verbose or r.summary()["calls_saved"] or r.summary()["warn"] or len(reports) <= 20:
                print(rp.format_report(r, verbose=args.verbose))
                print()
        print(rp.format_totals(total, problems))
        if args.html:
            print(f"HTML report: {args.html}")
    return 1 if failed or not reports else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from . import _demo

    return _demo.main(args.policy)


def _scope(args: argparse.Namespace) -> Optional[str]:
    """The project directory, or None for the user's settings (--user)."""
    if args.user:
        return None
    return args.project or "."


def cmd_hooks(args: argparse.Namespace) -> int:
    from . import hooks

    try:
        if args.hooks_command == "install":
            if args.policy:
                Guardrail(args.policy)  # a policy the hook could not load would fail open on every call
            print(hooks.install(args.agent, _scope(args), args.policy))
            if args.agent == "codex":
                _trust_codex(hooks, _scope(args))
            return 0
        if args.hooks_command == "uninstall":
            print(hooks.uninstall(args.agent, _scope(args)))
            return 0
        if args.hooks_command == "status":
            return _hooks_status(hooks, args)
        return _hooks_log(hooks, args)
    except PolicyError as e:
        print(f"invalid policy: {e}", file=sys.stderr)
        return 1
    except (hooks.HookError, OSError) as e:
        print(f"microloop hooks: {e}", file=sys.stderr)
        return 1


def _trust_codex(hooks: Any, project: Optional[str]) -> None:
    """Codex runs a hook only once the user trusted it (`/hooks`): done here when `codex` is found."""
    import os
    import shutil

    codex = os.environ.get("CODEX") or shutil.which("codex")
    if not codex:
        print("codex: not found on PATH; Codex runs new hooks only once trusted: open codex and trust them in /hooks")
        return
    try:
        events = hooks.trust_codex(codex, cwd=project)
    except (hooks.HookError, OSError) as e:
        print(f"codex: could not trust the hooks ({e}); trust them in codex with /hooks")
        return
    print(f"codex: trusted {', '.join(events)}" if events else "codex: the hooks were already trusted")


def _hooks_status(hooks: Any, args: argparse.Namespace) -> int:
    try:
        exe: str = hooks.hook_path()
    except hooks.HookError as e:
        exe = f"not found ({e})"
    print(f"hook executable: {exe}")
    project = args.project or "."
    for agent in hooks.AGENTS:
        for scope, where in (("project", project), ("user", None)):
            path, cmds = hooks.installed(agent, where)
            state = "installed" if cmds else "not installed"
            print(f"{agent:12} {scope:8} {state:14} {path}")
            for c in cmds:
                print(f"{'':36}{c}")
    found = hooks.sessions()
    print(f"sessions: {len(found)} in {hooks.state_dir()}")
    for s in found[:10]:
        st = s.stats
        print(f"  {s.agent:12} {s.session}  calls {st.get('calls', '?')}, blocked {st.get('blocked', '?')}, errors {st.get('errors', '?')}")
    return 0


def _hooks_log(hooks: Any, args: argparse.Namespace) -> int:
    import datetime

    found = hooks.find_sessions(args.session)
    if not found:
        print(f"microloop hooks: no session {args.session!r} in {hooks.state_dir()} (`microloop hooks status` lists them)", file=sys.stderr)
        return 1
    if args.json:
        json.dump([{"agent": s.agent, "session": s.session, "file": str(s.path), "updated_ms": s.updated_ms,
                    "stats": s.stats, "log": s.log} for s in found], sys.stdout, indent=2)
        print()
        return 0
    for s in found:
        st = s.stats
        print(f"{s.agent} session {s.session} ({s.path})")
        print(f"  calls {st.get('calls', 0)}, blocked {st.get('blocked', 0)}, errors {st.get('errors', 0)}, "
              f"results {st.get('results', 0)}, waiting for a result {len(s.pending)}")
        if not s.log:
            print("  nothing blocked or warned")
        for e in s.log:
            at = datetime.datetime.fromtimestamp(e.get("at_ms", 0) / 1000).strftime("%Y-%m-%d %H:%M:%S")
            print(f"  {at} {e.get('action', '?'):5} {e.get('rule', '?')}: {e.get('call', e.get('tool', '?'))}")
            print(f"      {e.get('reason') or e.get('message', '')}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="microloop", description="MicroLoop: checks every tool call of an AI agent before it runs.")
    parser.add_argument("--version", action="version", version=f"microloop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="two scripted agents fall into loops, without and with MicroLoop")
    p.add_argument("--policy", default="balanced", help="preset name or policy file (default: balanced)")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("check-policy", help="validate a policy file (TOML or JSON) and explain it")
    p.add_argument("file")
    p.set_defaults(func=cmd_check_policy)
    p = sub.add_parser("replay", help="what a policy would have done on recorded agent runs")
    p.add_argument("files", nargs="+", metavar="LOG", help="log files, folders or globs (Claude Code, Codex CLI, Gemini CLI, OpenHands, "
                   "SWE-agent, mini-swe-agent, tau-bench, tau2-bench, LangSmith, OpenAI/Anthropic messages; '-' reads stdin)")
    p.add_argument("--policy", default="balanced", help="preset name or policy file (default: balanced)")
    p.add_argument("--format", default=None, choices=_replay_formats(), help="read every file as this format instead of detecting it")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    p.add_argument("-v", "--verbose", action="store_true", help="list allowed steps too")
    p.set_defaults(func=cmd_replay)
    _audit_cli.register(sub)
    mcp_config.add_parser(sub)

    p = sub.add_parser("hooks", help="MicroLoop as the hook of a coding agent (Claude Code, Codex, Gemini CLI, Cursor, Cline)")
    hs = p.add_subparsers(dest="hooks_command", required=True)
    agents = ("claude-code", "codex", "gemini", "cursor", "cline")
    for name, helptext in (("install", "register the hook in the agent's settings"), ("uninstall", "remove exactly what install added")):
        q = hs.add_parser(name, help=helptext)
        q.add_argument("agent", choices=agents)
        scope = q.add_mutually_exclusive_group()
        scope.add_argument("--project", metavar="DIR", help="the project's settings (default: the current directory)")
        scope.add_argument("--user", action="store_true", help="the user's settings (all projects)")
        if name == "install":
            q.add_argument("--policy", metavar="P", help="preset name or policy file (default: .microloop.toml found upward from the agent's cwd, else balanced)")
        q.set_defaults(func=cmd_hooks)
    q = hs.add_parser("status", help="where the hook is installed, and the sessions it keeps")
    q.add_argument("--project", metavar="DIR", help="the project to look at (default: the current directory)")
    q.set_defaults(func=cmd_hooks)
    q = hs.add_parser("log", help="what the hook blocked in a session")
    q.add_argument("session", help="the agent's session id (or its start)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_hooks)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `microloop replay ... | head`
        return 0
    except MicroLoopError as e:
        print(f"microloop: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
