"""`microloop replay` reads each agent's own log format, and its verdicts are the library's.

Every sample is written here in its agent's documented format (tests/python/replay_samples.py); the
same calls are fed to Guardrail.check/record directly, and the replay must give the same verdict on
every call (action, rule, message, count), and the tokens the log records.
"""

from __future__ import annotations

import json
import os
from typing import Any, List, Tuple

import pytest

from microloop import Guardrail
from microloop.cli import main
from microloop.replay import FORMATS, UnknownFormat, detect, parse, replay_text
from microloop.replay.formats import load

import replay_samples as samples


def library_verdicts(expected: samples.Expected, policy: Any = "balanced") -> List[Tuple[Any, ...]]:
    """The library's own verdicts on the calls: each turn's calls checked, then the allowed ones'
    results recorded, as an agent guarded by MicroLoop does."""
    g = Guardrail(policy)
    out = []
    for turn in expected:
        ran = []
        for tool, args, result, error, _ in turn:
            v = g.check(tool, args)
            out.append((tool, v.action, v.rule, v.message, v.count))
            if v.allowed:
                ran.append((v.call_id, result, error))
        for call_id, result, error in ran:
            g.record(call_id, result, error=error)
    return out


def runs_of(expected: samples.Expected, fmt: str) -> List[samples.Expected]:
    """The expected calls split into the log's runs (a few formats hold two)."""
    n = len(samples.SHELL_SCRIPT) if fmt in ("claude-code", "codex-cli", "gemini-cli", "gemini-cli-jsonl", "openhands") else len(samples.TOOL_SCRIPT)
    if fmt in ("swe-agent", "mini-swe-agent"):
        return [expected]
    if fmt == "tau-bench":
        return [expected[:n], expected[n:]]
    return [expected[i:i + n] for i in range(0, len(expected), n)]


FORMAT_OF = {"openai-jsonl": "openai-jsonl", "anthropic-messages": "openai-messages", "gemini-cli-jsonl": "gemini-cli"}


@pytest.mark.parametrize("writer", sorted(samples.WRITERS))
def test_a_log_replays_with_the_library_s_verdicts(writer: str) -> None:
    text, expected = samples.WRITERS[writer]()
    fmt = FORMAT_OF.get(writer, writer)
    reports = replay_text(text, "balanced", f"sample.{writer}")
    assert reports and {r.format for r in reports} == {fmt}
    groups = runs_of(expected, writer)
    assert len(reports) == len(groups)
    for report, group in zip(reports, groups):
        got = [(s.tool, s.action, s.rule, s.message, s.count) for s in report.steps]
        assert got == library_verdicts(group)
        assert [s.tokens for s in report.steps] == [c[4] for turn in group for c in turn]
        assert [s.error for s in report.steps] == [c[3] for turn in group for c in turn]
    first = reports[0].summary()
    if len(groups[0]) > 2:  # the full scripts loop: the balanced preset must block the repeats
        assert first["block"] >= 1 and first["calls_saved"] >= 1, first
        assert first["rules"] and all(r.startswith("loop.") or r.startswith("halt.") for r in first["rules"])


@pytest.mark.parametrize("writer", sorted(samples.WRITERS))
def test_the_format_is_detected_from_the_content(writer: str) -> None:
    text, _ = samples.WRITERS[writer]()
    assert detect(load(text)) == {"openai-jsonl": "openai-messages", "anthropic-messages": "openai-messages",
                                  "gemini-cli-jsonl": "gemini-cli"}.get(writer, writer)


def test_tokens_saved_are_the_blocked_turns_tokens() -> None:
    text, expected = samples.claude_code()
    (report,) = replay_text(text)
    s = report.summary()
    blocked = [st for st in report.steps if st.action in ("block", "halt")]
    assert blocked and s["tokens_saved"] == sum(st.tokens for st in blocked)
    assert s["tokens"] == sum(sum(samples.usage(t)) for t in range(len(samples.SHELL_SCRIPT)))


def test_a_log_with_no_usage_reports_no_tokens() -> None:
    text, _ = samples.tau_bench()
    assert all(r.summary()["tokens_saved"] is None for r in replay_text(text))


def test_a_stricter_policy_gives_the_library_s_verdicts_too() -> None:
    text, expected = samples.codex_cli()
    (report,) = replay_text(text, "strict")
    assert [(s.tool, s.action, s.rule, s.message, s.count) for s in report.steps] == library_verdicts(expected, "strict")


@pytest.mark.parametrize("text, says", [
    ("", "empty"),
    ("not json at all", "not JSON or JSONL"),
    ('{"hello": "world"}', "no known agent log format fits"),
    ('[1, 2, 3]', "no known agent log format fits"),
    ('{"a": 1}\n{oops\n', "line 2 is not JSON"),
])
def test_a_file_no_format_fits_gets_an_error_naming_the_formats(text: str, says: str) -> None:
    with pytest.raises(UnknownFormat) as e:
        parse(text)
    assert says in str(e.value)
    for name, _, _, _ in FORMATS:
        assert name in str(e.value)


def test_a_log_that_looks_right_but_is_broken_is_an_error_not_a_crash() -> None:
    with pytest.raises(UnknownFormat, match="swe-agent"):
        parse("[]", fmt="swe-agent")


def test_arguments_that_are_not_json_are_reported_and_the_replay_goes_on() -> None:
    msgs = [{"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "search", "arguments": "{not json"}}]},
            {"role": "tool", "tool_call_id": "1", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "2", "function": {"name": "search", "arguments": "{}"}}]}]
    (report,) = replay_text(json.dumps(msgs))
    assert [s.action for s in report.steps] == ["error", "allow"]
    assert report.steps[0].rule == "InvalidJSON"


def write(tmp_path: Any, name: str, text: str) -> str:
    path = os.path.join(str(tmp_path), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def test_a_folder_replays_every_run_in_it_and_skips_what_is_not_a_log(tmp_path: Any, capsys: pytest.CaptureFixture) -> None:
    for w in ("claude-code", "codex-cli", "tau-bench"):
        text, _ = samples.WRITERS[w]()
        write(tmp_path, f"logs/{w}/run.{'jsonl' if 'c' in w[:2] else 'json'}", text)
    write(tmp_path, "logs/settings.json", '{"theme": "dark"}')
    code = main(["replay", "--json", os.path.join(str(tmp_path), "logs")])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code == 0
    assert sorted(r["format"] for r in doc["runs"]) == ["claude-code", "codex-cli", "tau-bench", "tau-bench"]
    assert doc["total"]["runs"] == 4 and doc["total"]["calls"] == sum(r["summary"]["calls"] for r in doc["runs"])
    assert doc["total"]["block"] == sum(r["summary"]["block"] for r in doc["runs"]) > 0
    assert "skipped" in err and "settings.json" in err
    assert "\r[" not in err, "no progress bar when stderr is not a terminal"


def test_a_glob_replays_the_matching_files(tmp_path: Any, capsys: pytest.CaptureFixture) -> None:
    for i in range(3):
        write(tmp_path, f"projects/p{i}/s{i}.jsonl", samples.claude_code()[0])
    code = main(["replay", os.path.join(str(tmp_path), "projects", "*", "*.jsonl")])
    out, _ = capsys.readouterr()
    assert code == 0 and "Total: 3 runs (3 with a block)" in out
    assert "[loop." in out and "BLOCK" in out


def test_a_named_file_that_is_not_a_log_fails_with_the_formats(tmp_path: Any, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path, "notes.json", '{"todo": []}')
    code = main(["replay", path])
    _, err = capsys.readouterr()
    assert code == 1 and "cannot replay" in err and "claude-code" in err and "tau2-bench" in err


def test_the_progress_bar_shows_on_a_terminal_only(tmp_path: Any) -> None:
    import io
    from microloop.replay import replay_paths

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    paths = [write(tmp_path, f"r{i}.json", samples.tau_bench()[0]) for i in range(3)]
    bar = Tty()
    assert len(replay_paths(paths, progress=bar)) == 6
    assert "3/3" in bar.getvalue()
    plain = io.StringIO()
    replay_paths(paths, progress=plain)
    assert plain.getvalue() == ""
