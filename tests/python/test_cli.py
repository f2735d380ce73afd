"""The `microloop` command: demo, check-policy, replay (text and --json) on tests/data."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from microloop.cli import main

from conftest import DATA


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_shows_both_loops_stopped(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "demo")
    assert code == 0
    assert "Browser agent" in out and "Coding agent" in out
    assert out.count("BLOCK") >= 2 and "loop.no_progress" in out
    assert "Fixed the login check; the tests pass." in out
    assert "Estimated tokens saved" in out


def test_check_policy_explains_a_valid_file(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "check-policy", os.path.join(DATA, "policy_strict_browser.toml"))
    assert code == 0
    assert "valid" in out and "preset 'strict'" in out
    assert "loops.max_identical = 5" in out and "'delete_*': forbidden" in out


def test_check_policy_names_the_bad_entry(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(capsys, "check-policy", os.path.join(DATA, "policy_invalid.toml"))
    assert code == 1
    assert "policy_invalid.toml" in err and "loops.max_identical" in err


@pytest.mark.parametrize("name", ["openai_captcha_loop.json", "openai_captcha_loop.jsonl"])
def test_replay_of_an_openai_captcha_loop_blocks_at_step_5(capsys: pytest.CaptureFixture, name: str) -> None:
    code, out, _ = run(capsys, "replay", os.path.join(DATA, name))
    assert code == 0
    assert "First block at step 5" in out and "loop.no_progress" in out


def test_replay_of_an_anthropic_run_reads_tool_use_blocks(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "replay", "--json", os.path.join(DATA, "anthropic_failing_test_loop.json"))
    assert code == 0
    report = json.loads(out)["runs"][0]
    assert report["summary"]["calls"] == 10
    assert report["summary"]["first_block_step"] == 5
    steps = report["steps"]
    assert steps[0]["tool"] == "bash" and steps[4]["action"] == "block"
    assert steps[-1]["action"] == "allow", "after the edit, re-running the tests is progress"


def test_replay_of_a_clean_run_blocks_nothing(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "replay", "--json", "--policy", "strict", os.path.join(DATA, "openai_clean_run.json"))
    report = json.loads(out)["runs"][0]
    assert code == 0 and report["policy"] == "strict"
    assert report["summary"]["block"] == 0 and report["summary"]["first_block_step"] is None


def test_replay_with_a_policy_file(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "replay", "--json", "--policy", os.path.join(DATA, "policy_strict_browser.toml"), os.path.join(DATA, "openai_captcha_loop.json"))
    assert code == 0 and json.loads(out)["runs"][0]["summary"]["first_block_step"] == 3


def test_replay_of_a_missing_file_fails_cleanly(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(capsys, "replay", os.path.join(DATA, "nope.json"))
    assert code == 1 and "cannot replay" in err


def test_python_dash_m_and_the_console_script_run() -> None:
    out = subprocess.run([sys.executable, "-m", "microloop", "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("microloop ")
    script = os.path.join(os.path.dirname(sys.executable), "microloop")
    if os.path.exists(script):
        assert subprocess.run([script, "check-policy", "balanced"], capture_output=True, text=True).returncode == 0
