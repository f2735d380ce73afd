"""`microloop replay` on the logs the real CLIs wrote during the unguarded runs: Claude Code's
transcript, Codex CLI's rollout, Gemini CLI's chat, each found where the agent keeps it under its
scratch HOME. The replay reads the format from the content, sees the stuck command run CAP times,
and would have blocked it, at the latest where microloop-hook denied it in the guarded run."""
from pathlib import Path

import pytest

from agents import CAP, STUCK
from microloop.replay import replay_paths

WHERE = {
    "claude-code": (".claude/projects/*/*.jsonl", "claude-code"),
    "codex": (".codex/sessions/**/*.jsonl", "codex-cli"),
    "gemini": (".gemini/tmp/*/chats/session-*.json*", "gemini-cli"),  # .jsonl in 0.61.0, .json in older versions
}


@pytest.mark.parametrize("hooked", [False])
@pytest.mark.parametrize("agent", list(WHERE))
def test_replay_reads_the_log_the_real_cli_wrote(agent, hooked, agent_run, agent_runs):
    r = agent_run
    pattern, fmt = WHERE[agent]
    files = sorted(Path(r.home).glob(pattern))
    assert files, f"no {agent} log under {pattern}\n" + r.describe()
    problems = []
    reports = [x for x in replay_paths([str(f) for f in files], "balanced", on_problem=lambda *p: problems.append(p)) if x.steps]
    assert not problems and len(reports) == 1, (problems, [(x.name, x.format) for x in reports])
    report = reports[0]
    assert report.format == fmt
    stuck = [s for s in report.steps if STUCK in s.args]
    assert len(stuck) == CAP == r.runs, [(s.tool, s.args) for s in report.steps]
    assert all(s.error for s in stuck), "make test exits 2: each run failed"
    assert "FAIL test_split" in stuck[0].result
    stopped = [i for i, s in enumerate(stuck) if s.action in ("block", "halt")]
    assert stopped, [(s.action, s.rule) for s in stuck]
    guarded = agent_runs.get((agent, True))
    if guarded is not None and guarded.done() and not guarded.exception():
        # the hook denied the call after the ones it let run; the replay blocks no later
        assert stopped[0] <= guarded.result().runs, (stopped[0], guarded.result().runs)
