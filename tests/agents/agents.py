"""How each real coding-agent CLI is set up and run offline against the scripted model.

Every run gets its own scratch HOME and project, an environment built from nothing (no variable of
the machine leaks in but PATH), outside hosts refused by a local catcher set as HTTPS_PROXY, and a
timeout: a hung CLI fails its test instead of hanging the suite.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from stuck_model import StuckModel

TASK = "The tests fail. Make them pass."
STUCK = "make test"
PIVOT = "cat NOTES.md"
NOTES = "The parser splits fields on tabs, not on commas.\n"
# The command fails the same way every time and leaves a line in runs.log each time it runs: the
# runs are counted by what the command did, not by what the model was told. Its message goes to
# stderr like make's own: on two streams, an agent that merges them (Codex) could read them in either
# order, and a stuck model's answers would differ by chance.
MAKEFILE = "test:\n\t@echo run >> runs.log\n\t@echo 'FAIL test_split: expected 3 fields, got 2' >&2\n\t@exit 1\n"
CAP = 15
RUN_TIMEOUT = 180  # seconds for one CLI run
HOOK_TIMEOUT = 30  # seconds the agent gives one hook process


@dataclass
class Run:
    agent: str
    hooked: bool
    runs: int
    model: StuckModel
    returncode: int
    stdout: str
    stderr: str
    caught: list[str]
    seconds: float
    home: Path
    project: Path
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        turns = [(t.kind, (t.last_result or "")[:160]) for t in self.model.loop_turns()]
        return (f"{self.agent} hooked={self.hooked} rc={self.returncode} runs={self.runs} in {self.seconds:.1f}s\n"
                f"turns={turns}\ncaught={self.caught}\nnotes={self.notes}\n"
                f"stderr={self.stderr[-3000:]}\nstdout={self.stdout[-2000:]}")


class Agent:
    name = ""  # as `microloop-hook` and `microloop hooks install` name it
    exe = ""

    def __init__(self, bin_dir: Path, hook_bin: Path):
        self.bin_dir, self.hook_bin = bin_dir, hook_bin

    def hook_command(self) -> str:
        return f"{self.hook_bin} {self.name}"

    def setup(self, home: Path, project: Path, model: StuckModel, hooked: bool, run: Run) -> None:
        raise NotImplementedError

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self, home: Path, model: StuckModel) -> dict[str, str]:
        return {}


class ClaudeCode(Agent):
    name, exe = "claude-code", "claude"

    def setup(self, home, project, model, hooked, run):
        if not hooked:
            return
        # Until `microloop hooks install claude-code --project DIR` is on main: what it writes.
        hook = [{"type": "command", "command": self.hook_command(), "timeout": HOOK_TIMEOUT}]
        tools = [{"matcher": "*", "hooks": hook}]
        settings = {"hooks": {"PreToolUse": tools, "PostToolUse": tools, "PostToolUseFailure": tools,
                              "SessionEnd": [{"hooks": hook}]}}
        (project / ".claude").mkdir()
        (project / ".claude" / "settings.json").write_text(json.dumps(settings, indent=2))

    def argv(self):
        return [str(self.bin_dir / self.exe), "-p", TASK, "--output-format", "stream-json", "--verbose",
                "--allowedTools", "Bash"]

    def env(self, home, model):
        return {"ANTHROPIC_BASE_URL": model.url, "ANTHROPIC_API_KEY": "sk-ant-offline-test",
                "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


class Codex(Agent):
    name, exe = "codex", "codex"

    def setup(self, home, project, model, hooked, run):
        codex_home = home / ".codex"
        codex_home.mkdir()
        (codex_home / "config.toml").write_text(
            'model = "gpt-5.1-codex"\nmodel_provider = "scripted"\n\n[model_providers.scripted]\nname = "scripted"\n'
            f'base_url = "{model.url}/v1"\nwire_api = "responses"\nenv_key = "SCRIPTED_API_KEY"\nsupports_websockets = false\n')
        if not hooked:
            return
        # Until `microloop hooks install codex --user` is on main: what it writes.
        hook = [{"type": "command", "command": self.hook_command(), "timeout": HOOK_TIMEOUT}]
        tools = [{"matcher": "*", "hooks": hook}]
        # Codex CLI 0.169.0 runs SessionEnd hooks too (its app-server lists `sessionEnd`).
        events = {"PreToolUse": tools, "PostToolUse": tools, "SessionEnd": [{"hooks": hook}]}
        (codex_home / "hooks.json").write_text(json.dumps({"hooks": events}, indent=2))
        # Codex runs a hook the user has not trusted not at all, silently. A user trusts it in
        # `/hooks`; here it is trusted the same way through Codex's own app-server.
        run.notes.append(trust_codex_hooks(self.bin_dir / self.exe, self._env_for(home, model), project))

    def _env_for(self, home, model):
        return base_env(home) | self.env(home, model)

    def argv(self):
        return [str(self.bin_dir / self.exe), "exec", "--json", "--skip-git-repo-check",
                "--dangerously-bypass-approvals-and-sandbox", TASK]

    def env(self, home, model):
        return {"CODEX_HOME": str(home / ".codex"), "SCRIPTED_API_KEY": "sk-offline-test"}


class Gemini(Agent):
    name, exe = "gemini", "gemini"

    def setup(self, home, project, model, hooked, run):
        settings = {
            "security": {"auth": {"selectedType": "gemini-api-key"}},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
        }
        if not hooked:
            # Gemini CLI's own detector ends the whole request after a few identical calls; without
            # it the stuck model shows what an unguarded agent does. With the hook it stays on, as
            # a user has it: the hook must act first.
            settings["model"] = {"disableLoopDetection": True}
        else:
            # Until `microloop hooks install gemini --user` is on main: what it writes.
            hook = [{"type": "command", "command": self.hook_command(), "timeout": HOOK_TIMEOUT * 1000}]
            tools = [{"matcher": "*", "hooks": hook}]
            settings["hooks"] = {"BeforeTool": tools, "AfterTool": tools, "SessionEnd": [{"hooks": hook}]}
        (home / ".gemini").mkdir()
        (home / ".gemini" / "settings.json").write_text(json.dumps(settings, indent=2))

    def argv(self):
        # An explicit model: with `auto` Gemini CLI first asks a classifier model to route.
        return [str(self.bin_dir / self.exe), "-p", TASK, "--output-format", "stream-json", "--yolo",
                "--skip-trust", "-m", "gemini-2.5-flash"]

    def env(self, home, model):
        return {"GEMINI_API_KEY": "offline-test", "GOOGLE_GEMINI_BASE_URL": model.url}


AGENTS = {a.name: a for a in (ClaudeCode, Codex, Gemini)}


def base_env(home: Path, proxy: str | None = None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb",
           "XDG_STATE_HOME": str(home / ".local" / "state"), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_DATA_HOME": str(home / ".local" / "share"),
           "TMPDIR": str(home / "tmp"), "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    if proxy:
        env |= {"HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "http_proxy": proxy, "ALL_PROXY": proxy}
    return env


def run_agent(agent: Agent, hooked: bool, scratch: Path, proxy_url: str, caught: list[str]) -> Run:
    home, project = scratch / "home", scratch / "project"
    for d in (home, home / "tmp", project):
        d.mkdir(parents=True)
    (project / "Makefile").write_text(MAKEFILE)
    (project / "NOTES.md").write_text(NOTES)
    model = StuckModel(stuck=STUCK, pivot=PIVOT, cap=CAP).start()
    run = Run(agent.name, hooked, 0, model, -1, "", "", caught, 0.0, home, project)
    try:
        agent.setup(home, project, model, hooked, run)
        env = base_env(home, proxy_url) | agent.env(home, model)
        start = time.monotonic()
        try:
            p = subprocess.run(agent.argv(), cwd=project, env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=RUN_TIMEOUT)
            run.returncode, run.stdout, run.stderr = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            run.stdout = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            run.stderr = f"TIMEOUT after {RUN_TIMEOUT}s\n" + ((e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or ""))
        run.seconds = time.monotonic() - start
        log = project / "runs.log"
        run.runs = log.read_text().count("run\n") if log.exists() else 0
    finally:
        model.stop()
    return run


def trust_codex_hooks(codex: Path, env: dict[str, str], cwd: Path, timeout: float = 60) -> str:
    """Trusts every hook Codex lists as untrusted, as `/hooks` does: `hooks/list` gives each hook's
    key and current hash, `config/batchWrite` records them as trusted in the user's config.toml."""
    p = subprocess.Popen([str(codex), "app-server"], cwd=cwd, env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in p.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout

    def call(i, method, params):
        p.stdin.write(json.dumps({"jsonrpc": "2.0", "id": i, "method": method, "params": params}) + "\n")
        p.stdin.flush()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"codex app-server: no answer to {method} in {timeout}s")
            try:
                msg = json.loads(lines.get(timeout=left))
            except queue.Empty:
                continue
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"codex app-server {method}: {msg['error']}")
                return msg["result"]

    try:
        call(1, "initialize", {"clientInfo": {"name": "microloop-tests", "version": "0"}})
        p.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "initialized"}) + "\n")
        listed = call(2, "hooks/list", {"cwds": [str(cwd)]})
        hooks = [h for entry in listed["data"] for h in entry["hooks"] if h.get("trustStatus") != "trusted"]
        if hooks:
            edits = [{"keyPath": f"hooks.state.{json.dumps(h['key'])}.trusted_hash", "mergeStrategy": "upsert",
                      "value": h["currentHash"]} for h in hooks]
            call(3, "config/batchWrite", {"edits": edits})
        return f"codex: trusted {len(hooks)} hook(s): " + ", ".join(f"{h['eventName']} {h['command']}" for h in hooks)
    finally:
        p.stdin.close()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
