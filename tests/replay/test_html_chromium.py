"""`microloop replay --html` opened in a real headless Chromium: it renders without script errors or
network requests, draws one mark per call colored by its verdict, shows a call's details on click,
sorts the runs by savings; a screenshot is saved as a test artifact."""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

import pytest

import replay_samples as samples
from cdp import Browser
from conftest import ARTIFACTS
from microloop.cli import main
from microloop.replay import replay_text, totals
from microloop.replay.html import render_html

HOSTILE = "</script><script>window.__pwned = 1</script><!-- <b>not markup</b>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        b.open_page()
        yield b
    finally:
        b.close()


def write_logs(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    for name in ("claude_code", "codex_cli", "tau_bench", "swe_agent", "openhands"):
        text, _ = getattr(samples, name)()
        with open(os.path.join(folder, f"{name}.{'jsonl' if name == 'codex_cli' or name == 'claude_code' else 'json'}"), "w") as f:
            f.write(text)
    # an answer that tries to close the data block and run a script: it must stay text
    script = [[("cat notes.txt", HOSTILE, 0)]] + samples.SHELL_SCRIPT
    with open(os.path.join(folder, "session-notes.jsonl"), "w") as f:
        f.write(samples.claude_code(script)[0])


def problems(b: Browser) -> list:
    bad = []
    for e in b.events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.exceptionThrown":
            bad.append(("exception", p.get("exceptionDetails", {}).get("text"), p.get("exceptionDetails", {}).get("exception", {}).get("description")))
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            bad.append(("console", [a.get("value") for a in p.get("args", [])]))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            bad.append(("log", p["entry"].get("text"), p["entry"].get("url")))
        elif m == "Network.requestWillBeSent" and not p.get("request", {}).get("url", "").startswith(("file:", "data:", "about:")):
            bad.append(("network", p["request"]["url"]))
    return bad


def test_the_report_renders_in_chromium_with_one_mark_per_call(browser: Browser, tmp_path: Any, capsys: pytest.CaptureFixture) -> None:
    logs = os.path.join(str(tmp_path), "logs")
    write_logs(logs)
    page = os.path.join(str(tmp_path), "report.html")
    assert main(["replay", "--json", "--html", page, logs]) == 0
    doc = json.loads(capsys.readouterr().out)
    runs = doc["runs"]
    assert len(runs) == 7 and doc["total"]["block"] > 0

    browser.events.clear()
    browser.navigate("file://" + page)
    browser.drain()
    assert browser.evaluate("document.body.dataset.rendered") == "true"
    assert problems(browser) == []
    assert browser.evaluate("window.__pwned === undefined"), "an answer in the log ran as a script"

    # one mark per call, in order, colored by the verdict
    assert browser.evaluate("document.querySelectorAll('.mark').length") == doc["total"]["calls"]
    for i, r in enumerate(runs):
        classes = browser.evaluate(f"[...document.querySelectorAll('#run-{i} .mark')].map(m => m.classList[1])")
        assert classes == [s["action"] for s in r["steps"]]
        colors = browser.evaluate(f"[...new Set([...document.querySelectorAll('#run-{i} .mark')].map(m => getComputedStyle(m).backgroundColor))].length")
        assert colors == len({s["action"] for s in r["steps"]})

    # clicking a blocked call shows its tool, arguments, answer and the verdict's message
    i, j = next((i, j) for i, r in enumerate(runs) for j, s in enumerate(r["steps"]) if s["action"] == "block")
    step = runs[i]["steps"][j]
    shown = browser.evaluate(f"""(() => {{ document.querySelector('#run-{i} .mark[data-step="{j}"]').click();
        const d = document.getElementById('detail');
        return {{hidden: d.hidden, head: d.firstChild.textContent, message: d.querySelector('pre.message').textContent,
                 args: d.querySelector('pre.args').textContent, answer: d.querySelector('pre.answer').textContent}}; }})()""")
    assert not shown["hidden"] and step["tool"] in shown["head"] and step["rule"] in shown["head"]
    assert shown["message"] == step["message"] and shown["args"] == step["args"]
    assert shown["answer"].startswith(step["result"][:100])
    # the hostile answer is shown as text
    h = next(k for k, r in enumerate(runs) if r["name"] == "session-notes.jsonl")
    text = browser.evaluate(f"""(() => {{ document.querySelector('#run-{h} .mark[data-step="0"]').click();
        return document.querySelector('#detail pre.answer').textContent; }})()""")
    assert text == HOSTILE

    # the table of runs, most calls saved first
    saved = browser.evaluate("[...document.querySelectorAll('#runs tbody tr')].map(tr => +tr.children[6].textContent.replace(/,/g, ''))")
    assert saved == sorted((r["summary"]["calls_saved"] for r in runs), reverse=True)
    assert browser.evaluate("document.querySelectorAll('#totals .card b')[1].textContent") == f"{doc['total']['calls']:,}"
    assert problems(browser) == []

    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "replay-report.png")
    browser.evaluate(f"""document.querySelector('#run-{i} .mark[data-step="{j}"]').click(); window.scrollTo(0, 0)""")
    browser.screenshot(shot)
    with open(shot, "rb") as f:
        png = f.read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_a_large_report_renders_every_mark(browser: Browser, tmp_path: Any) -> None:
    text, _ = samples.claude_code(samples.SHELL_SCRIPT * 20)
    reports = [r for _ in range(30) for r in replay_text(text)]
    page = os.path.join(str(tmp_path), "big.html")
    with open(page, "w") as f:
        f.write(render_html(reports, totals(reports)))
    browser.events.clear()
    browser.navigate("file://" + page)
    browser.drain()
    assert problems(browser) == []
    assert browser.evaluate("document.querySelectorAll('.mark').length") == sum(len(r.steps) for r in reports)
