"""Property tests: invariants that hold for every input."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

import microloop
from microloop import Guardrail

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=8))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
calls = st.lists(
    st.tuples(st.sampled_from(["search", "open_page", "run_tests", "edit_file"]), st.dictionaries(st.text(max_size=4), json_value, max_size=4), st.sampled_from(["same", "other", "error"])),
    min_size=1,
    max_size=25,
)


def shuffled(value: object, rng: random.Random) -> object:
    """The same JSON value with every object's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def run(trajectory: list, policy: str = "strict") -> list:
    guard = Guardrail(policy)
    out = []
    for tool, args, result in trajectory:
        v = guard.check(tool, args)
        out.append((v.action, v.rule, v.count))
        if v.allowed:
            guard.record(v.call_id, result, error=result == "error")
    return out


@settings(max_examples=150, deadline=None)
@given(calls, st.integers(0, 2**32))
def test_key_order_never_changes_the_verdict_sequence(trajectory: list, seed: int) -> None:
    rng = random.Random(seed)
    reordered = [(tool, shuffled(args, rng), result) for tool, args, result in trajectory]
    as_text = [(tool, json.dumps(args, indent=1), result) for tool, args, result in reordered]
    assert run(trajectory) == run(reordered) == run(as_text)


@settings(max_examples=100, deadline=None)
@given(calls)
def test_the_same_input_always_gives_the_same_verdicts(trajectory: list) -> None:
    assert run(trajectory, "balanced") == run(trajectory, "balanced")


@settings(max_examples=100, deadline=None)
@given(calls)
def test_a_blocked_call_never_changes_the_history(trajectory: list) -> None:
    guard = Guardrail("strict")
    for tool, args, result in trajectory:
        before = guard.stats
        v = guard.check(tool, args)
        if v.blocked:
            after = guard.stats
            assert (after.history_len, after.history_hash) == (before.history_len, before.history_hash)
        else:
            guard.record(v.call_id, result, error=result == "error")


@settings(max_examples=100, deadline=None)
@given(json_value)
def test_the_fingerprint_ignores_key_order_and_encoder(value: object) -> None:
    from microloop import _encode

    value = {"v": value}  # (None means {} and a str is JSON text: wrap the value)
    assert microloop.fingerprint("t", value) == microloop.fingerprint("t", shuffled(value, random.Random(1)))
    assert microloop.fingerprint("t", value) == microloop.fingerprint("t", _encode.dumps_stdlib(value))
