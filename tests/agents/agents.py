"""How each real coding-agent CLI is set up and run offline against the scripted model.

Every run gets its own scratch HOME and project, an environment built from nothing (no variable of
the machine leaks in but PATH), outside hosts refused by a local catcher set as HTTPS_PROXY, and a
timeout: a hung CLI fails its test instead of hanging the suite.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
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
INSTALL_TIMEOUT = 120  # seconds for `microloop hooks install` (Codex: its app-server trusts the hooks)


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
    scope = "--user"  # where `microloop hooks install` puts the hook: the user's or the project's settings

    def __init__(self, bin_dir: Path, hook_bin: Path):
        self.bin_dir, self.hook_bin = bin_dir, hook_bin

    def install_hook(self, home: Path, project: Path, model: StuckModel, run: Run) -> None:
        """`microloop hooks install AGENT`, as a user runs it: in the scratch HOME, the agent's CLI on
        PATH (Codex's hooks get trusted through it), the hook executable `make lib` built."""
        scope = ["--project", str(project)] if self.scope == "--project" else ["--user"]
        env = base_env(home) | self.env(home, model) | {"MICROLOOP_HOOK": str(self.hook_bin)}
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env['PATH']}"
        p = subprocess.run([sys.executable, "-m", "microloop", "hooks", "install", self.name, *scope], cwd=project,
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        run.notes.append(f"$ microloop hooks install {self.name} {' '.join(scope)}\n{p.stdout}{p.stderr}")
        if p.returncode != 0:
            raise RuntimeError(f"microloop hooks install {self.name} failed ({p.returncode}): {p.stdout}{p.stderr}")

    def setup(self, home: Path, project: Path, model: StuckModel, hooked: bool, run: Run) -> None:
        raise NotImplementedError

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self, home: Path, model: StuckModel) -> dict[str, str]:
        return {}


class ClaudeCode(Agent):
    name, exe, scope = "claude-code", "claude", "--project"

    def setup(self, home, project, model, hooked, run):
        if hooked:
            self.install_hook(home, project, model, run)

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
        if hooked:
            # Codex runs a hook the user has not trusted not at all, silently: the install trusts
            # it through Codex's app-server, as `/hooks` would.
            self.install_hook(home, project, model, run)

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
        (home / ".gemini").mkdir()
        (home / ".gemini" / "settings.json").write_text(json.dumps(settings, indent=2))
        if hooked:
            # Merged into the settings above, which it must keep: without the auth type Gemini CLI
            # would not start.
            self.install_hook(home, project, model, run)

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
