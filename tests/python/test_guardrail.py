"""The Guardrail facade: policies in every form, verdicts, sessions, stats, bad inputs."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

import microloop
from microloop import (
    AlreadyRecorded,
    ArgumentsNotSerializable,
    Guardrail,
    InvalidArgument,
    InvalidJSON,
    InvalidUTF8,
    NullArgument,
    PolicyError,
    UnknownCall,
    Verdict,
)

from conftest import history


def loop_until_blocked(guard: Guardrail, tool: str = "open_page", n: int = 3) -> list:
    out = []
    for _ in range(n):
        v = guard.check(tool, {"url": "https://example.com"})
        out.append(v)
        if v.allowed:
            guard.record(v.call_id, "Please solve the CAPTCHA")
    return out


def test_a_repeated_call_with_the_same_answer_warns_then_is_blocked(guard: Guardrail) -> None:
    first, second, third = loop_until_blocked(guard)
    assert first == Verdict("allow", "", "", first.call_id, 0) and first.call_id > 0
    assert second.action == "warn" and second.allowed and not second.blocked and second.rule == "loop.no_progress"
    assert third.action == "block" and third.blocked and not third.halted and third.call_id == 0
    assert guard.stats.calls == 2 and guard.stats.blocked == 1
    assert guard.last_warning == second


def test_verdicts_are_immutable(guard: Guardrail) -> None:
    v = guard.check("search", {"q": "x"})
    with pytest.raises(AttributeError):
        v.action = "block"  # type: ignore[misc]


@pytest.mark.parametrize(
    "policy",
    [
        "strict",
        {"preset": "strict"},
        '{"preset": "strict"}',
        'preset = "strict"',
        b"strict",
        "[loops]\nmax_no_progress = 1\n",
    ],
    ids=["a preset name", "a dict", "JSON text", "TOML text", "bytes", "a TOML table"],
)
def test_a_strict_policy_blocks_the_second_same_answer(policy: object) -> None:
    verdicts = loop_until_blocked(Guardrail(policy))
    assert [v.action for v in verdicts][1:] == ["block", "block"]


@pytest.mark.parametrize("suffix,text", [(".toml", "[loops]\nmax_no_progress = 1\n"), (".json", '{"loops": {"max_no_progress": 1}}')])
def test_a_policy_file_is_read_by_path(tmp_path: pathlib.Path, suffix: str, text: str) -> None:
    path = tmp_path / f"policy{suffix}"
    path.write_text(text)
    for policy in (path, str(path)):
        assert loop_until_blocked(Guardrail(policy))[1].blocked


@pytest.mark.parametrize(
    "policy,path",
    [
        ({"loops": {"max_identicl": 3}}, "loops.max_identicl"),
        ({"loops": {"max_identical": 1000}}, "loops.max_identical"),
        ({"tools": [{"name": "a"}, {"name": "b", "colour": 1}]}, "tools[1].colour"),
        ("[budget]\nmax_calls = 'many'\n", "budget.max_calls"),
        ("no such preset", ""),
        ("[loops\nmax = ", ""),
    ],
    ids=["an unknown key", "a value out of range", "a bad tool entry", "a wrong type in TOML", "an unknown preset", "broken TOML"],
)
def test_an_invalid_policy_raises_policy_error_naming_the_entry(policy: object, path: str) -> None:
    with pytest.raises(PolicyError) as info:
        Guardrail(policy)
    assert info.value.path.startswith(path) and info.value.message
    assert isinstance(info.value, ValueError)


def test_a_policy_error_from_a_file_names_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[loops]\nmax_identical = 1000\n")
    with pytest.raises(PolicyError) as info:
        Guardrail(path)
    assert info.value.source == str(path) and info.value.path == "loops.max_identical"
    assert str(path) in str(info.value)
    with pytest.raises(PolicyError, match="cannot read"):
        Guardrail(str(tmp_path / "missing.toml"))


def test_registered_tools_make_unknown_tools_blocked() -> None:
    guard = Guardrail(tools=["search", "open_page"])
    v = guard.check("serach", {})
    assert v.blocked and v.rule == "tool.unknown" and "search" in v.message
    assert guard.tools == ["search", "open_page"]
    guard.set_tools([])
    assert guard.check("serach", {}).allowed


def test_sessions_are_independent_and_cached_by_name() -> None:
    guard = Guardrail(tools=["open_page"])
    a, b = guard.session("thread-a"), guard.session("thread-b")
    assert a is guard.session("thread-a") and a is not b and a is not guard
    assert loop_until_blocked(a)[2].blocked
    assert b.check("open_page", {"url": "https://example.com"}).action == "allow"
    assert guard.stats.calls == 0
    assert b.check("nope", {}).rule == "tool.unknown", "a session inherits the tool names"


def test_tool_names_registered_later_reach_the_sessions_already_made() -> None:
    guard = Guardrail()
    a = guard.session("thread-a")
    assert a.check("nope", {}).allowed
    guard.set_tools(["open_page"])
    assert a.tools == ["open_page"]
    assert a.check("nope", {}).rule == "tool.unknown"
    assert guard.session("thread-b").check("nope", {}).rule == "tool.unknown"
    guard.set_tools([])
    assert a.check("nope", {}).allowed


def test_reset_forgets_the_history(guard: Guardrail) -> None:
    assert loop_until_blocked(guard)[2].blocked
    guard.reset()
    assert guard.stats == microloop.Stats(0, 0, 0, 0, guard.stats.history_hash, 0, 0)
    assert guard.check("open_page", {"url": "https://example.com"}).action == "allow"


def test_args_may_be_a_mapping_json_text_or_bytes_with_the_same_fingerprint(guard: Guardrail) -> None:
    forms = [{"b": 1, "a": [1.0, "x"]}, '{"a":[1,"x"],"b":1}', b'{ "b": 1.0, "a": [1, "x"] }', None]
    fps = {microloop.fingerprint("t", f) for f in forms[:3]}
    assert len(fps) == 1
    assert microloop.fingerprint("t", None) == microloop.fingerprint("t", {})
    assert microloop.fingerprint("t", {"a": 1}) != microloop.fingerprint("u", {"a": 1})


def test_the_stdlib_and_orjson_encoders_give_the_same_fingerprint() -> None:
    from microloop import _encode

    value = {"z": [1, 2.5, None, True], "é": "ünïcödé", "n": {"deep": [{"k": "v"}]}, 3: "int key"}
    std = _encode.dumps_stdlib(value)
    fast = _encode.encode_args(value)
    assert microloop.fingerprint("t", std) == microloop.fingerprint("t", fast)


# -- bad inputs: the documented exception, the history intact -----------------------------------


class Opaque:
    pass


@pytest.mark.parametrize(
    "tool,args,exc",
    [
        ("search", {"when": Opaque()}, ArgumentsNotSerializable),
        ("search", {"x": float("nan")} if "orjson" not in sys.modules else {"x": {1, 2}}, ArgumentsNotSerializable),
        ("search", "{not json", InvalidJSON),
        ("search", b"\xff\xfe", InvalidUTF8),
        ("search", "[" * 200 + "]" * 200, InvalidJSON),
        ("", {}, InvalidArgument),
        ("se\udc80rch", {}, InvalidUTF8),
    ],
    ids=["an object", "a set or NaN", "invalid JSON text", "bytes not UTF-8", "nesting too deep", "an empty tool name", "a lone surrogate in the tool"],
)
def test_bad_input_raises_and_leaves_the_history_intact(guard: Guardrail, tool: str, args: object, exc: type) -> None:
    guard.record(guard.check("search", {"q": "before"}).call_id, "result")
    before = history(guard)
    with pytest.raises(exc) as info:
        guard.check(tool, args)
    assert isinstance(info.value, microloop.MicroLoopError) and str(info.value)
    assert history(guard) == before
    assert guard.check("search", {"q": "after"}).allowed


def test_non_serialisable_args_are_a_type_error(guard: Guardrail) -> None:
    with pytest.raises(TypeError, match="JSON"):
        guard.check("search", {"q": Opaque()})


def test_huge_args_are_blocked_by_the_size_budget(guard: Guardrail) -> None:
    before = history(guard)
    v = guard.check("upload", {"data": "x" * (1 << 20)})
    assert v.blocked and v.rule == "budget.args_size"
    assert history(guard) == before


def test_record_errors(guard: Guardrail) -> None:
    v = guard.check("search", {"q": "x"})
    guard.record(v.call_id, {"hits": []})
    before = history(guard)
    with pytest.raises(AlreadyRecorded):
        guard.record(v.call_id, "again")
    with pytest.raises(UnknownCall):
        guard.record(0, "x")
    with pytest.raises(UnknownCall):
        guard.record(10**6, "x")
    assert history(guard) == before


def test_record_accepts_any_output(guard: Guardrail) -> None:
    for out in ("text", b"\xff bytes", None, {"a": 1}, [1, 2], 3.5, Opaque()):
        guard.record(guard.check("t", {"out": repr(type(out))}).call_id, out)
    assert guard.stats.calls == 7


def test_set_tools_rejects_a_single_string(guard: Guardrail) -> None:
    with pytest.raises(TypeError):
        guard.set_tools("search")


def test_a_closed_guard_raises_null_argument() -> None:
    with Guardrail() as guard:
        guard.check("t", {})
    with pytest.raises(NullArgument):
        guard.check("t", {})


def test_lib_and_include_paths_point_at_the_shipped_files() -> None:
    import os

    assert os.path.isfile(microloop.lib_path())
    header = os.path.join(microloop.include_path(), "microloop.h")
    assert "ml_check_call" in open(header, encoding="utf-8").read()


def test_import_microloop_imports_no_framework() -> None:
    import subprocess

    code = "import sys, microloop, microloop.adapters; bad = [m for m in ('langchain', 'langgraph', 'crewai', 'autogen_agentchat', 'agents', 'openai') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_verdict_json_roundtrip(guard: Guardrail) -> None:
    v = loop_until_blocked(guard)[2]
    assert json.loads(json.dumps(v._asdict()))["rule"] == "loop.no_progress"


def test_a_verdict_keeps_its_strings_after_later_checks_and_after_its_guard_closed() -> None:
    # A warn/block verdict keeps the library's strings and decodes them when read; later checks on
    # the same thread reuse another native verdict, and closing the guard does not free them.
    guard = Guardrail("balanced")
    _, warned, blocked = loop_until_blocked(guard)
    for i in range(300):
        guard.check("search", {"q": i})
    guard.close()
    assert (warned.action, warned.rule) == ("warn", "loop.no_progress") and "open_page" in warned.message
    assert (blocked.action, blocked.rule) == ("block", "loop.no_progress") and blocked.message == blocked.message
    assert blocked.message != warned.message


def test_a_verdict_behaves_as_the_tuple_action_rule_message_call_id_count(guard: Guardrail) -> None:
    import copy
    import pickle

    allowed, warned, blocked = loop_until_blocked(guard)
    action, rule, message, call_id, count = blocked
    assert (action, rule, call_id) == ("block", "loop.no_progress", 0) and message == blocked.message
    assert len(blocked) == 5 and blocked[1] == rule and blocked[-1] == count and list(blocked) == [*blocked]
    assert tuple(blocked) == (action, rule, message, call_id, count) == blocked
    assert pickle.loads(pickle.dumps(blocked)) == blocked == copy.deepcopy(blocked)
    assert pickle.loads(pickle.dumps(blocked)).message == message
    assert hash(blocked) == hash(Verdict(action, rule, message, call_id, count))
    assert blocked._replace(action="halt").halted and blocked != warned
    assert repr(allowed) == f"Verdict(action='allow', rule='', message='', call_id={allowed.call_id}, count=0)"
    assert blocked._asdict() == dict(zip(Verdict._fields, blocked))


def test_guards_share_an_engine_and_keep_their_own_histories() -> None:
    import threading

    from microloop import Engine

    engine = Engine("strict")
    guards = [Guardrail(engine) for _ in range(6)]
    assert all(g.engine is engine and g.policy == "strict" for g in guards)
    del engine  # each guard holds its own reference
    blocked_at: dict = {}

    def run(i: int, guard: Guardrail) -> None:
        for n in range(3):
            v = guard.check("open_page", {"url": "https://example.com"})
            if v.blocked:
                blocked_at[i] = n
                return
            guard.record(v.call_id, "Please solve the CAPTCHA")

    threads = [threading.Thread(target=run, args=(i, g)) for i, g in enumerate(guards)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert blocked_at == {i: 1 for i in range(6)}  # strict: a loop after one same answer, in each
    assert guards[0].session("a").engine is guards[0].engine


def test_an_engine_refuses_a_bad_policy_and_fingerprints_without_ignored_fields(tmp_path: pathlib.Path) -> None:
    from microloop import Engine, fingerprint

    path = tmp_path / "p.toml"
    path.write_text("[loops]\nmax_identicl = 3\n")
    with pytest.raises(PolicyError) as e:
        Engine(path)
    assert e.value.source == str(path) and "max_identicl" in str(e.value)
    engine = Engine({"loops": {"ignore_fields": ["request_id"]}})
    a, b = {"q": "x", "meta": {"request_id": 1}}, {"q": "x", "meta": {"request_id": 2}}
    assert fingerprint("search", a, engine) == fingerprint("search", b, engine)
    assert fingerprint("search", a) != fingerprint("search", b)
    guard = Guardrail(engine)
    guard.check("search", a)
    assert guard.check("search", b).count == 1  # the same call for the session, as for the fingerprint


def test_a_guard_saved_and_loaded_goes_on_where_it_was_under_its_policy_only() -> None:
    import pickle

    from microloop import Engine, InvalidSnapshot, PolicyMismatch, SnapshotVersion

    guard = Guardrail("balanced", tools=["open_page"])
    v = guard.check("open_page", {"url": "x"})
    guard.record(v.call_id, "CAPTCHA")
    pending = guard.check("open_page", {"url": "y"})  # checked, its result comes after the load
    data = guard.save()
    assert isinstance(data, bytes) and data[:4] == b"MLSS" and guard.save() == data
    with pytest.raises(PolicyMismatch):
        Guardrail.load(data, "strict")
    assert Guardrail.load(data, "strict", any_policy=True).stats.calls == 2
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 1
    future = bytearray(data)
    future[4] = 99
    for bad, exc in [(bytes(corrupt), InvalidSnapshot), (data[:-3], InvalidSnapshot), (b"GIF89a", InvalidSnapshot), (b"", InvalidSnapshot), (bytes(future), SnapshotVersion)]:
        with pytest.raises(exc):
            Guardrail.load(bad, "balanced")
    for again in (Guardrail.load(data, Engine("balanced")), pickle.loads(pickle.dumps(guard))):
        assert again.stats == guard.stats
        again.record(pending.call_id, "page y")
        assert again.check("open_page", {"url": "x"}).action == "warn"  # the loop spans the save
        assert again.check("serach", {}).rule == "tool.unknown"  # the tool names came through
    assert pickle.loads(pickle.dumps(guard)).tools == ["open_page"]
