"""Shadow mode: a policy with mode = "observe" computes, logs and counts every verdict and never
blocks; `microloop replay` reads its log and finds the verdicts it logged."""

from __future__ import annotations

import io
import json
import os
from typing import Any, List

import pytest

import microloop
from microloop import Guardrail
from microloop._observe import ObservingGuardrail, observe_mode
from microloop.cli import main
from microloop.errors import PolicyError, UnknownCall
from microloop.replay import replay_paths

import replay_samples as samples

CALLS = [c for turn in samples.TOOL_SCRIPT for c in turn] * 2  # the refused booking, twice over


def enforcing_verdicts(policy: Any) -> List[tuple]:
    g = Guardrail(policy)
    out = []
    for tool, args, result, error in CALLS:
        v = g.check(tool, args)
        out.append((v.action, v.rule, v.message, v.count))
        if v.allowed:
            g.record(v.call_id, result, error=error)
    return out


def observe(g: Guardrail) -> None:
    for tool, args, result, error in CALLS:
        v = g.check(tool, args)
        assert v.action == "allow" and v.call_id, "observe mode never blocks"
        g.record(v.call_id, result, error=error)


@pytest.mark.parametrize("policy", [
    {"mode": "observe"},
    {"preset": "strict", "mode": "observe"},
    'mode = "observe"\npreset = "strict"\n[loops]\nmax_no_progress = 2\n',
    '{"mode": "observe", "loops": {"max_identical": 3}}',
])
def test_observe_mode_never_blocks_and_logs_the_enforcing_verdicts(policy: Any, tmp_path: Any) -> None:
    log = os.path.join(str(tmp_path), "shadow.jsonl")
    g = Guardrail(policy, observe_log=log)
    assert isinstance(g, ObservingGuardrail)
    observe(g)
    g.close()
    with open(log, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    checks = [(d["action"], d["rule"], d["message"], d["count"]) for d in lines if d["event"] == "check"]
    enforce = {k: v for k, v in observe_doc(policy).items() if k != "mode"}
    enforcing = enforcing_verdicts(enforce)
    first = next(i for i, c in enumerate(enforcing) if c[0] in ("block", "halt"))
    assert checks[:first + 1] == enforcing[:first + 1], "the same verdicts up to the first block"
    assert any(a == "block" for a, _, _, _ in checks), "the script must loop"
    assert sum(d["event"] == "record" for d in lines) == len(CALLS), "every call ran and has its result"
    assert len({d["call"] for d in lines if d["event"] == "check"}) == len(CALLS), "each call has its own id"


def observe_doc(policy: Any) -> dict:
    if isinstance(policy, dict):
        return policy
    if policy.lstrip().startswith("{"):
        return json.loads(policy)
    import tomllib
    return tomllib.loads(policy)


def test_the_would_be_verdict_is_on_the_allowed_verdict() -> None:
    g = Guardrail({"mode": "observe"})
    seen = []
    for tool, args, result, error in CALLS:
        v = g.check(tool, args)
        assert v.action == "allow" and v.allowed and not v.blocked and v.call_id
        if v.observed:
            assert v.rule and v.message, "the would-be rule and message are kept"
        else:
            assert v.rule == v.message == ""
        seen.append(v.observed)
        g.record(v.call_id, result, error=error)
    assert "block" in seen and g.stats.calls == g.stats.results == len(CALLS)
    assert Guardrail("balanced").check("t", {}).observed == ""


def test_stats_count_the_observed_verdicts() -> None:
    buf = io.StringIO()
    g = Guardrail({"mode": "observe"}, observe_log=buf)
    observe(g)
    logged = [d["action"] for d in map(json.loads, buf.getvalue().splitlines()) if d["event"] == "check"]
    not_allow = [a for a in logged if a != "allow"]
    assert g.stats.observed == len(not_allow) > 0
    assert g.observed_counts == {a: not_allow.count(a) for a in ("warn", "block", "halt")}
    assert g.stats.blocked == not_allow.count("block") + not_allow.count("halt")
    assert g.stats.calls == len(CALLS)
    assert g.last_observed is not None and g.last_observed.observed != ""
    g.reset()
    assert g.stats.observed == 0 and g.last_observed is None


def test_replay_of_the_observe_log_finds_the_logged_verdicts(tmp_path: Any, capsys: pytest.CaptureFixture) -> None:
    log = os.path.join(str(tmp_path), "shadow.jsonl")
    g = Guardrail({"mode": "observe"}, observe_log=log)
    observe(g.session("agent-a"))
    observe(g.session("agent-b"))
    g.close()
    with open(log, encoding="utf-8") as f:
        logged = [json.loads(line) for line in f]
    reports = replay_paths([log], policy={"mode": "observe"})
    assert [r.format for r in reports] == ["microloop-observe"] * 2
    assert sorted(r.name for r in reports) == ["shadow.jsonl#agent-a", "shadow.jsonl#agent-b"]
    for r in reports:
        session = r.name.split("#")[1]
        mine = [(d["tool"], d["action"], d["rule"], d["message"]) for d in logged if d["event"] == "check" and d["session"] == session]
        assert [(s.tool, s.action, s.rule, s.message) for s in r.steps] == mine
    html = os.path.join(str(tmp_path), "shadow.html")
    policy = os.path.join(str(tmp_path), "shadow.toml")
    with open(policy, "w", encoding="utf-8") as f:
        f.write('mode = "observe"\n')
    assert main(["replay", "--policy", policy, "--html", html, log]) == 0
    out, _ = capsys.readouterr()
    assert "Total: 2 runs (2 with a block)" in out
    with open(html, encoding="utf-8") as f:
        assert "microloop-observe" in f.read()


def test_observe_log_to_a_text_file_and_from_the_environment(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    g = Guardrail({"mode": "observe"}, observe_log=buf)
    g.check("search", {"q": "x"})
    assert json.loads(buf.getvalue())["tool"] == "search"
    path = os.path.join(str(tmp_path), "env.jsonl")
    monkeypatch.setenv("MICROLOOP_OBSERVE_LOG", path)
    g = Guardrail({"mode": "observe"})
    g.check("search", {"q": "y"})
    g.close()
    with open(path, encoding="utf-8") as f:
        assert json.loads(f.readline())["args"] == {"q": "y"}


def test_the_decorator_runs_a_looping_tool_every_time_under_observe() -> None:
    g = Guardrail({"mode": "observe"})
    runs = []

    @g.verify
    def fetch(url: str) -> str:
        runs.append(url)
        return "Please solve the CAPTCHA"

    for _ in range(8):
        fetch("https://example.com")
    assert len(runs) == 8 and g.observed_counts["block"] > 0


def test_a_result_for_an_id_never_issued_is_refused() -> None:
    g = Guardrail({"mode": "observe"})
    with pytest.raises(UnknownCall):
        g.record(99, "x")


@pytest.mark.parametrize("policy, observing", [
    ("balanced", False), ({"mode": "enforce"}, False), ('{"mode": "observe"}', True),
    ('# mode = "observe"\npreset = "strict"', False), ('[loops]\nmode = "observe"', False),
])
def test_observe_mode_is_read_from_the_policy(policy: Any, observing: bool) -> None:
    assert observe_mode(policy) is observing


def test_an_unknown_mode_is_refused_by_the_library() -> None:
    with pytest.raises(PolicyError) as e:
        Guardrail({"mode": "shadow"})
    assert e.value.path == "mode" and "observe" in str(e.value)
    assert isinstance(Guardrail({"mode": "enforce"}), Guardrail) and not isinstance(Guardrail("strict"), ObservingGuardrail)
    assert microloop.Stats(1, 2, 3, 4, 5, 6, 7).observed == 0


def test_an_engine_a_snapshot_and_a_pickle_keep_observe_mode() -> None:
    import pickle

    from microloop import Engine

    engine = Engine({"mode": "observe"})
    g = Guardrail(engine)
    assert isinstance(g, ObservingGuardrail)
    observe(g)
    again = Guardrail.load(g.save(), engine)
    assert isinstance(again, ObservingGuardrail)
    seen = []
    for guard in (g, again):
        guard.last_observed = None
        for tool, args, out, err in [CALLS[3]] * 3:  # the refused booking again
            v = guard.check(tool, args)
            assert v.action == "allow"
            guard.record(v.call_id, out, error=err)
        seen.append(guard.last_observed)
    assert seen[0] is not None and seen[0] == seen[1]
    copy = pickle.loads(pickle.dumps(g))
    assert isinstance(copy, ObservingGuardrail) and copy.stats.history_hash == g.stats.history_hash
    assert isinstance(g.session("s"), ObservingGuardrail) and g.session("s") is g.session("s")


def test_observe_mode_with_a_store_is_refused_plainly() -> None:
    with pytest.raises(ValueError, match="store"):
        Guardrail({"mode": "observe"}, store=object())


@pytest.mark.parametrize("how", ["--observe", "policy"])
def test_the_hook_in_observe_mode_lets_every_call_run_records_its_result_and_replay_reads_its_log(tmp_path: Any, how: str) -> None:
    """The real microloop-hook, fed Claude Code's documented PreToolUse / PostToolUseFailure events for a
    failing `make test` run over and over: it never denies, every result is recorded (the would-be
    blocked calls ran), and `microloop replay` under the same policy finds the verdicts it logged."""
    import subprocess

    log = tmp_path / "observe.jsonl"
    policy = tmp_path / "shadow.toml"
    policy.write_text('mode = "observe"\n')
    args = [microloop.hook_path(), "claude-code"] + (["--observe"] if how == "--observe" else ["--policy", str(policy)])
    env = {**os.environ, "MICROLOOP_STATE_DIR": str(tmp_path / "state"), "MICROLOOP_OBSERVE_LOG": str(log)}
    env.pop("MICROLOOP_POLICY", None)

    def event(name: str, i: int, **extra: Any) -> Any:
        e = {"session_id": "sess-7", "cwd": str(tmp_path), "hook_event_name": name, "tool_name": "Bash",
             "tool_input": {"command": "make test"}, "tool_use_id": f"toolu_{i}", **extra}
        out = subprocess.run(args, input=json.dumps(e), capture_output=True, text=True, timeout=30, env=env)
        assert out.returncode == 0 and out.stdout == "", (out.stdout, out.stderr)
        return out

    for i in range(6):
        event("PreToolUse", i)
        event("PostToolUseFailure", i, error="make: *** [test] Error 2")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    checks = [d for d in lines if d["event"] == "check"]
    records = [d for d in lines if d["event"] == "record"]
    assert len(checks) == 6 and [d["call"] for d in records] == [d["call"] for d in checks], "every call ran and has its result"
    actions = [d["action"] for d in checks]
    assert "block" in actions or "halt" in actions, actions
    reports = replay_paths([str(log)], policy=str(policy))
    assert [s.action for s in reports[0].steps] == actions
