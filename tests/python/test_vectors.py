"""Every shared vector (tests/vectors/*.json) through the Python API, as native/ffi/tests/vectors.rs runs
them through the C ABI: the same verdicts, the same errors, the same invariants."""

from __future__ import annotations

import glob
import json
import os
import pickle
from typing import Any, Optional

import pytest

import microloop
from microloop import Guardrail, NativeError, PolicyError

from conftest import VECTORS, history

FILES = sorted(glob.glob(os.path.join(VECTORS, "*.json")))


def test_there_are_vectors_to_run() -> None:
    assert len(FILES) >= 40


def args_of(step: dict) -> Any:
    """The arguments a step describes, as the Python API takes them (text stays text)."""
    if "args_text" in step:
        return step["args_text"]
    if "args_hex" in step:
        return bytes.fromhex(step["args_hex"])
    if "args_nested" in step:
        n = step["args_nested"]
        return "[" * n + "]" * n
    if "args_big" in step:
        return '{"data":"' + "x" * (step["args_big"] - 11) + '"}'
    args = step.get("args", {})
    # A str would be taken as JSON text already encoded: encode it, as the Rust runner serializes it.
    return json.dumps(args) if isinstance(args, str) else args


def result_of(step: dict) -> Optional[Any]:
    if "result" not in step:
        return None
    r = step["result"]
    return r if isinstance(r, str) else json.dumps(r)


def status_of(e: BaseException) -> str:
    if isinstance(e, PolicyError):
        return "invalid_policy"
    assert isinstance(e, NativeError), f"not a native error: {e!r}"
    return e.status_name


def reloaded(guard: Guardrail) -> Guardrail:
    """The guard pickled and unpickled (a snapshot under the same policy): the counters come through."""
    again = pickle.loads(pickle.dumps(guard))
    assert again.stats == guard.stats and again.policy == guard.policy and again.tools == guard.tools
    return again


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(f)[:-5] for f in FILES])
@pytest.mark.parametrize("pickled", [False, True], ids=["", "pickled-each-step"])
def test_vector(path: str, pickled: bool) -> None:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    policy = doc["policy"]
    if "policy_error" in doc:
        with pytest.raises(PolicyError) as info:
            Guardrail(policy)
        assert (info.value.path, info.value.message) == (doc["policy_error"]["path"], doc["policy_error"]["message"])
        return
    guard = Guardrail(policy)
    last_call_id = 0
    for i, step in enumerate(doc["steps"]):
        where = f"step {i} ({json.dumps(step)[:200]})"
        if pickled or "save_and_load" in step:
            guard = reloaded(guard)
            if "save_and_load" in step:
                continue
        before = history(guard)
        if "tools" in step:
            guard.set_tools(step["tools"])
            continue
        if "reset" in step:
            guard.reset()
            continue
        if "expect_stats" in step:
            stats = guard.stats._asdict()
            for name, want in step["expect_stats"].items():
                assert stats[name] == want, f"{where}: stats.{name} is {stats[name]}"
            continue
        if "record_id" in step or "record_last" in step:
            call_id = step.get("record_id", last_call_id)
            if "expect_error" not in step:
                guard.record(call_id, result_of(step) or "", error=step.get("error", False))
                continue
            with pytest.raises(NativeError) as info:
                guard.record(call_id, result_of(step) or "", error=step.get("error", False))
            assert status_of(info.value) == step["expect_error"], where
            assert history(guard) == before, f"{where}: a failed record changed the history"
            continue

        tool = bytes.fromhex(step["tool_hex"]) if "tool_hex" in step else step["call"]
        args = args_of(step)
        if "expect_error" in step:
            with pytest.raises(NativeError) as info:
                guard.check(tool, args)
            assert status_of(info.value) == step["expect_error"], where
            assert info.value.message, f"{where}: an error without a message"
            assert history(guard) == before, f"{where}: an erroring call changed the history"
            continue

        v = guard.check(tool, args)
        got = f"{v.action} {v.rule} count={v.count}: {v.message}"
        assert v.action == step["expect"], f"{where}: got {got}"
        if "rule" in step:
            assert v.rule == step["rule"], f"{where}: got {got}"
        elif v.action == "allow":
            assert v.rule == "", f"{where}: got {got}"
        if "count" in step:
            assert v.count == step["count"], f"{where}: got {got}"
        for needle in step.get("message_contains", []):
            assert needle in v.message, f"{where}: message lacks {needle!r}: {got}"
        if v.action != "allow":
            assert v.message, f"{where}: a non-allow verdict without a message"
        if v.blocked:
            assert v.call_id == 0 and history(guard) == before, f"{where}: a blocked call entered the history"
            assert isinstance(microloop.errors.blocked_error(v), microloop.Blocked)
            continue
        assert v.allowed
        last_call_id = v.call_id
        out = result_of(step)
        if out is not None:
            guard.record(v.call_id, out, error=step.get("error", False))
