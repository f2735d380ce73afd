"""The real Claude Code and Codex CLI (tests/agents' pinned npm install) through the proxy, in front
of tests/agents' scripted stuck model, streaming as the CLIs do. Straight at the model the stuck
command runs to the cap (tests/agents, unhooked); through the proxy it runs at most 3 times: the
proxy withholds the next identical call, re-asks the model with the verdict as that call's result,
and the model's answer (a different command) is what the CLI gets.

Run by `make test-proxy-agents` (it needs tests/agents' npm install). tests/agents' `agents.py` is
loaded under another name: in this environment `agents` is the OpenAI Agents SDK.
"""
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness

AGENTS_DIR = harness.ROOT / "tests" / "agents"
sys.path.append(str(AGENTS_DIR))  # after site-packages: `agents` stays the OpenAI Agents SDK
_spec = importlib.util.spec_from_file_location("agent_clis", AGENTS_DIR / "agents.py")
clis = sys.modules["agent_clis"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(clis)
from catcher import Catcher  # noqa: E402
from stuck_model import PIVOTED, StuckModel  # noqa: E402

AGENTS_BIN = Path(os.environ.get("MICROLOOP_AGENTS_BIN") or harness.ROOT / ".tools" / "agents" / "node_modules" / ".bin").resolve()
# What the proxy's block verdict opens with: the stuck model pivots once it reads it in a tool result
# (it ignores the proxy's earlier warning, "[microloop] Note: …", as a stubborn model would).
NOTE = "[microloop] Blocked: "


class Via:
    """The model as the agent sees it: its URL is the proxy's."""

    def __init__(self, model, url):
        self._model, self.url = model, url

    def __getattr__(self, name):
        return getattr(self._model, name)


@pytest.fixture(scope="module")
def catcher():
    c = Catcher()
    yield c
    c.close()


@pytest.mark.parametrize("name", ["claude-code", "codex", "gemini"])
def test_the_stuck_command_is_stopped_and_the_model_pivots(name, tmp_path, catcher):
    agent = clis.AGENTS[name](AGENTS_BIN, Path("/nonexistent-hook"))
    exe = AGENTS_BIN / agent.exe
    assert exe.exists(), f"{exe} is missing: run `make agents-install`"
    home, project = tmp_path / "home", tmp_path / "project"
    for d in (home, home / "tmp", project):
        d.mkdir(parents=True)
    (project / "Makefile").write_text(clis.MAKEFILE)
    (project / "NOTES.md").write_text(clis.NOTES)
    model = StuckModel(stuck=clis.STUCK, pivot=clis.PIVOT, cap=clis.CAP, marker=NOTE).start()
    try:
        with harness.proxy(model.url) as proxy:
            via = Via(model, proxy)
            run = clis.Run(name, False, 0, model, -1, "", "", catcher.seen, 0.0, home, project)
            agent.setup(home, project, via, False, run)
            env = clis.base_env(home, catcher.url) | agent.env(home, via)
            t0 = time.monotonic()
            p = subprocess.run(agent.argv(), cwd=project, env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=clis.RUN_TIMEOUT)
            run.returncode, run.stdout, run.stderr, run.seconds = p.returncode, p.stdout, p.stderr, time.monotonic() - t0
            log = project / "runs.log"
            run.runs = log.read_text().count("run\n") if log.exists() else 0
    finally:
        model.stop()
    r = run
    assert r.returncode == 0, r.describe()
    assert 1 <= r.runs <= 3, r.describe()
    turns = model.loop_turns()
    kinds = [t.kind for t in turns]
    # Every stuck call the CLI got ran; the one after them the proxy withheld and re-asked: the
    # model read the verdict as that call's result and pivoted, the CLI ran the pivot, then done.
    assert kinds == ["stuck"] * (r.runs + 1) + ["pivot", "final"], r.describe()
    assert "[microloop] Note: " in turns[r.runs].last_result, r.describe()  # the warning came first
    assert NOTE in turns[r.runs + 1].last_result, r.describe()
    assert clis.NOTES.strip() in turns[-1].last_result, r.describe()
    assert PIVOTED in r.stdout, r.describe()
