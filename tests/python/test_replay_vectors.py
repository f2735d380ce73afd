"""`microloop replay` and the proxy judge the same recorded conversations the same way.

The vectors (tests/vectors/replay/*.json) are OpenAI Chat Completions and Anthropic Messages
conversations with the verdict on every call as microloop-proxy gives it (checked on the proxy's own
path by native/proxy/tests/replay_vectors.rs). Here the same files go through the command line,
`Guardrail.replay` and `replay_text`: every verdict must be the proxy's.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any, Dict, List, Tuple

import pytest

from microloop import Guardrail
from microloop.cli import main
from microloop.replay import replay_text

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = sorted(glob.glob(os.path.join(HERE, "..", "vectors", "replay", "*.json")))


def load(path: str) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        doc: Dict[str, Any] = json.load(f)
    return doc


def policy_text(v: Dict[str, Any]) -> str:
    p = v["policy"]
    return p if isinstance(p, str) else json.dumps(p)


def expected(v: Dict[str, Any]) -> List[Tuple[str, str, str, int]]:
    return [(e["tool"], e["action"], e["rule"], e["count"]) for e in v["expected"]]


def test_there_are_vectors_of_both_dialects() -> None:
    assert {load(p)["dialect"] for p in VECTORS} == {"openai", "anthropic"}


@pytest.mark.parametrize("path", VECTORS, ids=[os.path.basename(p)[:-5] for p in VECTORS])
def test_guardrail_replay_gives_the_proxy_s_verdicts(path: str) -> None:
    v = load(path)
    report = Guardrail(policy_text(v)).replay(v["conversation"], v["dialect"])
    got = [(c["id"], c["tool"], c["action"], c["rule"], c["count"]) for c in report["calls"]]
    assert got == [(e["id"], e["tool"], e["action"], e["rule"], e["count"]) for e in v["expected"]]


@pytest.mark.parametrize("path", VECTORS, ids=[os.path.basename(p)[:-5] for p in VECTORS])
def test_microloop_replay_gives_the_proxy_s_verdicts(path: str, tmp_path: Any, capsys: pytest.CaptureFixture) -> None:
    v = load(path)
    log = tmp_path / "conversation.json"
    log.write_text(json.dumps(v["conversation"]), encoding="utf-8")
    policy = v["policy"]
    if isinstance(policy, dict):
        (tmp_path / "policy.json").write_text(json.dumps(policy), encoding="utf-8")
        policy = str(tmp_path / "policy.json")
    assert main(["replay", "--json", "--policy", policy, str(log)]) in (0, 1)
    out = json.loads(capsys.readouterr().out)
    (run,) = out["runs"]
    assert [(s["tool"], s["action"], s["rule"], s["count"]) for s in run["steps"]] == expected(v)
    # The answers of the calls that would not have run are what the report says was saved.
    stopped = [s for s in run["steps"] if s["action"] in ("block", "halt")]
    assert stopped and all(s["result_chars"] > 0 for s in stopped)


@pytest.mark.parametrize("path", VECTORS, ids=[os.path.basename(p)[:-5] for p in VECTORS])
def test_the_bare_message_list_replays_the_same(path: str) -> None:
    v = load(path)
    if v["dialect"] == "openai":  # the request's tools are part of the OpenAI vectors' verdicts
        pytest.skip("tool.unknown needs the request's tools")
    (report,) = replay_text(json.dumps(v["conversation"]["messages"]), policy_text(v))
    assert [(s.tool, s.action, s.rule, s.count) for s in report.steps] == expected(v)
