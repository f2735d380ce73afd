"""The real CLIs of Claude Code, Codex CLI and Gemini CLI, each driven by a scripted stuck model
that asks for the same failing `make test` until a cap: without the hook the command runs to the
cap; with MicroLoop's hook, installed by `microloop hooks install` as a user would, it runs at most
3 times, the denied call's reason reaches the model as the tool result, and the model's next turn is
a different action it took after reading it."""
import pytest

from agents import CAP, NOTES, PIVOT
from stuck_model import GAVE_UP, PIVOTED

AGENT_NAMES = ["claude-code", "codex", "gemini"]
# What the hook's deny reason opens with (native/hook): who speaks, so the model does not take it
# for the user's refusal.
REASON = "MicroLoop loop guard (an automatic check, not the user)"


@pytest.mark.parametrize("hooked", [False])
@pytest.mark.parametrize("agent", AGENT_NAMES)
def test_without_the_hook_the_stuck_command_runs_to_the_cap(agent, hooked, agent_run):
    r = agent_run
    assert r.returncode == 0, r.describe()
    assert r.runs == CAP, r.describe()
    kinds = [t.kind for t in r.model.loop_turns()]
    assert kinds == ["stuck"] * CAP + ["final"], r.describe()
    assert not any(REASON in (t.last_result or "") for t in r.model.turns), r.describe()
    assert GAVE_UP.format(n=CAP) in r.stdout, r.describe()


@pytest.mark.parametrize("hooked", [True])
@pytest.mark.parametrize("agent", AGENT_NAMES)
def test_with_the_hook_the_model_reads_the_reason_and_pivots(agent, hooked, agent_run):
    r = agent_run
    assert r.returncode == 0, r.describe()
    assert 1 <= r.runs <= 3, r.describe()
    turns = r.model.loop_turns()
    kinds = [t.kind for t in turns]
    # Every stuck call ran but the last one, which the hook denied; the very next turn is the pivot.
    assert kinds == ["stuck"] * (r.runs + 1) + ["pivot", "final"], r.describe()
    pivot = turns[r.runs + 1]
    assert REASON in pivot.last_result, r.describe()
    assert "[loop." in pivot.last_result, r.describe()  # the rule that fired, named for the model
    # The different command was let through and ran: its output came back to the model.
    assert NOTES.strip() in turns[-1].last_result, r.describe()
    assert PIVOTED in r.stdout, r.describe()
    assert PIVOT in r.stdout, r.describe()
    # The hook kept the session's history between its processes, and the agent's SessionEnd
    # reached it: the history is gone.
    hooks_state = r.home / ".local" / "state" / "microloop" / "hooks"
    assert hooks_state.is_dir(), r.describe()
    assert list(hooks_state.glob("*.state")) == [], r.describe()
