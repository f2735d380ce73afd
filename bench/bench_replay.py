"""How long ``microloop replay`` takes on many runs: 1,000 runs of 100 calls each.

Writes the runs as Claude Code transcripts and as Codex CLI rollouts (one file per run, in a temporary
folder), then times the command's own work, ``replay_paths`` (read, detect, parse, check and record
every call) and the HTML page, against a baseline measured in the same run: the same calls fed to
``Guardrail.check``/``record`` directly with no log to read.

    .venv/bin/python bench/bench_replay.py [--runs 1000] [--calls 100]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))

import replay_samples as samples  # noqa: E402
from microloop import Guardrail  # noqa: E402
from microloop.replay import replay_paths, totals  # noqa: E402
from microloop.replay.html import render_html  # noqa: E402


def script(calls: int, seed: int) -> list:
    """A coding run of ``calls`` shell calls: mostly distinct commands, with a stuck test loop."""
    turns = []
    for k in range(calls):
        if k % 25 in (10, 11, 12, 13, 14, 15):
            turns.append([("pytest -q tests/test_login.py", samples.FAIL, 1)])
        else:
            turns.append([(f"cat src/module_{seed}_{k}.py", f"# module {k}\ndef f{k}():\n    return {k}\n" * 3, 0)])
    return turns


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--calls", type=int, default=100)
    a = p.parse_args()
    folder = tempfile.mkdtemp(prefix="microloop-bench-replay-")
    try:
        expected = []
        for writer, ext in ((samples.claude_code, "jsonl"), (samples.codex_cli, "jsonl")):
            sub = os.path.join(folder, writer.__name__)
            os.makedirs(sub)
            for r in range(a.runs):
                text, exp = writer(script(a.calls, r))
                with open(os.path.join(sub, f"run-{r:04d}.{ext}"), "w", encoding="utf-8") as f:
                    f.write(text)
                if writer is samples.claude_code:
                    expected.append(exp)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)

        # baseline: the same calls straight into the library, no log to read
        t0, c0 = time.perf_counter(), time.process_time()
        g = Guardrail("balanced")
        for exp in expected:
            g.reset()
            for turn in exp:
                for tool, args, out, err, _ in turn:
                    v = g.check(tool, args)
                    if v.allowed:
                        g.record(v.call_id, out, error=err)
        base, base_cpu = time.perf_counter() - t0, time.process_time() - c0

        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
        if cpu:
            print(f"cpu: {cpu}")
        print(f"{a.runs} runs x {a.calls} calls per format; {size / 1e6:.1f} MB of logs in all\n")
        print("| what | wall time | CPU time | per call (CPU) |")
        print("|---|---|---|---|")
        print(f"| baseline: Guardrail.check/record on the same calls, no log ({a.runs * a.calls:,} calls) | {base:.2f} s | {base_cpu:.2f} s | {base_cpu / (a.runs * a.calls) * 1e6:.1f} µs |")
        for writer in ("claude_code", "codex_cli"):
            t0, c0 = time.perf_counter(), time.process_time()
            reports = replay_paths([os.path.join(folder, writer)])
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            n = sum(len(r.steps) for r in reports)
            assert len(reports) == a.runs and n == a.runs * a.calls, (len(reports), n)
            print(f"| `microloop replay` on the {writer.replace('_', ' ')} logs: read, detect, parse, check, record | {dt:.2f} s | {dc:.2f} s | {dc / n * 1e6:.1f} µs |")
            t0, c0 = time.perf_counter(), time.process_time()
            page = render_html(reports, totals(reports))
            dh, dhc = time.perf_counter() - t0, time.process_time() - c0
            print(f"| its `--html` page ({len(page) / 1e6:.1f} MB) | {dh:.2f} s | {dhc:.2f} s | {dhc / n * 1e6:.1f} µs |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
