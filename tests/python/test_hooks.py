"""``microloop hooks``: the hook executable shipped beside the interpreter, its registration in
each agent's settings (merged, idempotent, undone exactly), and the state files read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import microloop
from microloop import hooks
from microloop.cli import main

AGENT_FILES = {
    "claude-code": ".claude/settings.json",
    "codex": ".codex/hooks.json",
    "gemini": ".gemini/settings.json",
    "cursor": ".cursor/hooks.json",
}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A scratch HOME and state directory: nothing of the user's is read or written."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MICROLOOP_STATE_DIR", str(tmp_path / "state"))
    for var in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME", "MICROLOOP_HOOK", "MICROLOOP_POLICY", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)
    return home


def test_the_hook_executable_is_installed_beside_the_interpreter():
    path = microloop.hook_path()
    assert os.path.isabs(path) and os.access(path, os.X_OK)
    assert Path(path).parent == Path(sys.executable).parent, "pip puts it in the environment's bin/"
    out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "claude-code | codex | gemini | cursor | cline" in out.stdout


def test_hook_path_says_how_to_fix_a_missing_executable(monkeypatch, tmp_path):
    monkeypatch.setenv("MICROLOOP_HOOK", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="MICROLOOP_HOOK"):
        microloop.hook_path()


def run_cli(*argv, capsys):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("agent", sorted(AGENT_FILES))
def test_install_merges_is_idempotent_and_uninstall_restores(agent, tmp_path, capsys):
    project = tmp_path / "proj"
    settings = project / AGENT_FILES[agent]
    settings.parent.mkdir(parents=True)
    theirs = {
        "model": "their-choice",
        "permissions": {"allow": ["Bash(ls:*)"]},
        "hooks": {
            ("beforeShellExecution" if agent == "cursor" else "PreToolUse"): [
                {"command": "./audit.sh"} if agent == "cursor" else {"matcher": "Bash", "hooks": [{"type": "command", "command": "./audit.sh"}]}
            ]
        },
    }
    if agent == "cursor":
        theirs["version"] = 1
    settings.write_text(json.dumps(theirs))

    code, out, err = run_cli("hooks", "install", agent, "--project", str(project), capsys=capsys)
    assert code == 0, err
    assert "installed" in out
    first = json.loads(settings.read_text())
    assert first["model"] == "their-choice" and first["permissions"] == theirs["permissions"]
    path, cmds = hooks.installed(agent, str(project))
    assert path == settings
    exe = microloop.hook_path()
    assert cmds and all(f"{exe} {agent}" in c for c in cmds), cmds
    text = settings.read_text()
    assert "./audit.sh" in text, "the user's own hook stays"

    code, out, _ = run_cli("hooks", "install", agent, "--project", str(project), capsys=capsys)
    assert code == 0 and "updated" in out
    assert json.loads(settings.read_text()) == first, "installing twice changes nothing"

    code, out, _ = run_cli("hooks", "uninstall", agent, "--project", str(project), capsys=capsys)
    assert code == 0 and "removed" in out
    assert json.loads(settings.read_text()) == theirs
    code, out, _ = run_cli("hooks", "uninstall", agent, "--project", str(project), capsys=capsys)
    assert "no MicroLoop hook" in out


def test_each_agent_gets_its_own_events_and_format(tmp_path):
    p = str(tmp_path)
    exe = "/opt/ml/bin/microloop-hook"
    for agent in AGENT_FILES:
        hooks.install(agent, p, policy="strict", exe=exe)
    claude = json.loads((tmp_path / ".claude/settings.json").read_text())
    assert sorted(claude["hooks"]) == ["PostToolUse", "PostToolUseFailure", "PreToolUse", "SessionEnd"]
    assert claude["hooks"]["PreToolUse"] == [
        {"matcher": "*", "hooks": [{"type": "command", "command": f"{exe} claude-code --policy strict", "timeout": 10}]}
    ]
    codex = json.loads((tmp_path / ".codex/hooks.json").read_text())
    assert sorted(codex["hooks"]) == ["PostToolUse", "PreToolUse", "SessionEnd"]
    assert codex["hooks"]["PreToolUse"][0]["matcher"] == "*", "every tool: Bash, apply_patch, MCP"
    gemini = json.loads((tmp_path / ".gemini/settings.json").read_text())
    assert sorted(gemini["hooks"]) == ["AfterTool", "BeforeTool", "SessionEnd"]
    assert gemini["hooks"]["BeforeTool"][0]["hooks"][0]["timeout"] == 10000, "milliseconds"
    cursor = json.loads((tmp_path / ".cursor/hooks.json").read_text())
    assert cursor["version"] == 1
    assert cursor["hooks"]["beforeShellExecution"] == [{"command": f"{exe} cursor --policy strict", "timeout": 10}]
    assert "preToolUse" not in cursor["hooks"], "a shell call would be counted twice"


def test_a_policy_file_is_registered_by_its_absolute_path(tmp_path, monkeypatch, capsys):
    (tmp_path / "guard.toml").write_text('preset = "strict"\n')
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("hooks", "install", "claude-code", "--policy", "guard.toml", capsys=capsys)
    assert code == 0, err
    _, cmds = hooks.installed("claude-code", str(tmp_path))
    assert f"--policy {tmp_path / 'guard.toml'}" in cmds[0]
    code, _, err = run_cli("hooks", "install", "claude-code", "--policy", "no-such-preset", capsys=capsys)
    assert code == 1 and "invalid policy" in err


def test_a_file_that_was_not_there_is_gone_after_uninstall(tmp_path):
    hooks.install("claude-code", str(tmp_path), exe="/x/microloop-hook")
    assert (tmp_path / ".claude/settings.json").exists()
    hooks.uninstall("claude-code", str(tmp_path))
    assert not (tmp_path / ".claude/settings.json").exists()


def test_a_broken_settings_file_is_left_alone(tmp_path, capsys):
    s = tmp_path / ".claude/settings.json"
    s.parent.mkdir()
    s.write_text("{ not json")
    code, _, err = run_cli("hooks", "install", "claude-code", "--project", str(tmp_path), capsys=capsys)
    assert code == 1 and "nothing was changed" in err
    assert s.read_text() == "{ not json"


def test_user_scope_honours_the_agents_own_variables(tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex-home"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-home"))
    monkeypatch.setenv("GEMINI_CLI_HOME", str(tmp_path / "gemini-home"))
    assert main(["hooks", "install", "codex", "--user"]) == 0
    assert main(["hooks", "install", "claude-code", "--user"]) == 0
    assert main(["hooks", "install", "gemini", "--user"]) == 0
    assert (tmp_path / "codex-home/hooks.json").exists()
    assert (tmp_path / "claude-home/settings.json").exists()
    assert (tmp_path / "gemini-home/.gemini/settings.json").exists()
    monkeypatch.delenv("CODEX_HOME")
    assert hooks.settings_path("codex") == isolated / ".codex/hooks.json"
    assert hooks.settings_path("cursor") == isolated / ".cursor/hooks.json"


def test_cline_gets_executable_scripts_that_run_the_hook(tmp_path):
    hooks.install("cline", str(tmp_path))
    d = tmp_path / ".clinerules/hooks"
    for name in ("PreToolUse", "PostToolUse", "TaskCancel", "TaskComplete"):
        assert os.access(d / name, os.X_OK)
    event = {"clineVersion": "3.36.0", "hookName": "PreToolUse", "timestamp": "1", "taskId": "t-1", "workspaceRoots": [str(tmp_path)],
             "userId": "u", "preToolUse": {"toolName": "execute_command", "parameters": {"command": "ls"}}}
    out = subprocess.run([str(d / "PreToolUse")], input=json.dumps(event), capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"cancel": False}
    # A script of the user's is never overwritten.
    (d / "PostToolUse").write_text("#!/bin/sh\necho mine\n")
    with pytest.raises(hooks.HookError, match="not MicroLoop's"):
        hooks.install("cline", str(tmp_path))
    hooks.uninstall("cline", str(tmp_path))
    assert sorted(p.name for p in d.iterdir()) == ["PostToolUse"]


def test_status_and_log_read_what_the_installed_hook_did(tmp_path, capsys):
    project = tmp_path / "p"
    project.mkdir()
    assert main(["hooks", "install", "claude-code", "--project", str(project)]) == 0
    settings = json.loads((project / ".claude/settings.json").read_text())
    command = settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    capsys.readouterr()

    def event(name, i, **extra):
        e = {"session_id": "sess-42", "cwd": str(project), "hook_event_name": name, "tool_name": "Bash",
             "tool_input": {"command": "make test"}, "tool_use_id": f"toolu_{i}", **extra}
        # The command exactly as the agent runs it: through a shell.
        return subprocess.run(command, shell=True, input=json.dumps(e), capture_output=True, text=True, timeout=30)

    denied = None
    for i in range(5):
        out = event("PreToolUse", i)
        assert out.returncode == 0, out.stderr
        if out.stdout:
            denied = json.loads(out.stdout)
            break
        event("PostToolUseFailure", i, error="make: *** [test] Error 2")
    assert denied and denied["hookSpecificOutput"]["permissionDecision"] == "deny"

    code, out, _ = run_cli("hooks", "status", "--project", str(project), capsys=capsys)
    assert code == 0
    assert any(line.startswith("claude-code  project  installed") for line in out.splitlines()), out
    assert "sess-42" in out
    code, out, _ = run_cli("hooks", "log", "sess-42", capsys=capsys)
    assert code == 0
    assert "block loop." in out and "make test" in out and "not the user" in out
    code, out, _ = run_cli("hooks", "log", "sess-42", "--json", capsys=capsys)
    (s,) = json.loads(out)
    assert s["agent"] == "claude-code" and s["stats"]["blocked"] == 1
    (block,) = [e for e in s["log"] if e["action"] == "block"]
    assert block["reason"] == denied["hookSpecificOutput"]["permissionDecisionReason"]
    code, _, err = run_cli("hooks", "log", "nobody", capsys=capsys)
    assert code == 1 and "no session" in err


CODEX = Path(os.environ.get("MICROLOOP_AGENTS_BIN") or Path(__file__).resolve().parents[2] / ".tools/agents/node_modules/.bin") / "codex"


@pytest.mark.skipif(not CODEX.exists(), reason="the pinned Codex CLI is installed by `make agents-install` (make test-agents)")
def test_codex_install_trusts_the_hooks_through_the_real_codex(tmp_path, monkeypatch, capsys):
    codex_home = tmp_path / "codex-home"
    monkeypatch.setenv("CODEX_HOME", str(codex_home))
    monkeypatch.setenv("CODEX", str(CODEX))
    monkeypatch.chdir(tmp_path)
    assert main(["hooks", "install", "codex", "--user"]) == 0
    out = capsys.readouterr().out
    assert "codex: trusted" in out and "preToolUse" in out, out
    config = (codex_home / "config.toml").read_text()
    assert config.count("trusted_hash") == 3, config
    assert main(["hooks", "install", "codex", "--user"]) == 0
    assert "already trusted" in capsys.readouterr().out
