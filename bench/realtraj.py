"""Replays recorded agent runs through MicroLoop and scores each preset.

The labelled runs of ``../shared/realtraj-dev/`` (52: 19 loops, 33 legitimate; the folder sits beside
the repository, or give its path with ``--runs`` / ``$MICROLOOP_REALTRAJ``) are read at run time,
never copied. Each step is checked with ``Guardrail.check``; when the verdict lets it run, its
recorded result is recorded. A loop is *caught* when a call at or after its ``loop_start`` is
blocked (or halted); a legitimate run is *wrongly blocked* when any of its calls is.

Every preset is run twice: as shipped, and with near matching off (``max_near_duplicate = 0``,
``max_near_errors = 0``), the exact-match-only baseline. ``--cases`` prints every run's first block
under balanced; ``--rules`` measures each loop rule alone.

    .venv/bin/python bench/realtraj.py [--runs DIR] [-v] [--cases | --rules]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from microloop import Guardrail

PRESETS = ("strict", "balanced", "permissive")
STOPPED = {"block", "halt"}


def load_runs(folder: Path) -> list[tuple[str, dict]]:
    files = sorted(folder.glob("*.json"))
    if not files:
        sys.exit(f"no runs in {folder}: put ../shared/realtraj-dev beside the repository or pass --runs")
    return [(f.stem, json.loads(f.read_text(encoding="utf-8"))) for f in files]


def replay(policy: dict, run: dict) -> tuple[int | None, int | None, str]:
    """Returns (first blocked step, first blocked step at or after loop_start, its rule)."""
    g = Guardrail(policy)
    loop_start = run.get("loop_start")
    first = caught = None
    rule = ""
    for i, step in enumerate(run["steps"]):
        v = g.check(step["tool"], step["args"])
        if v.action in STOPPED:
            if first is None:
                first, rule = i, v.rule
            if caught is None and loop_start is not None and i >= loop_start:
                caught, rule = i, v.rule
            continue
        g.record(v.call_id, step.get("result") or "", error=bool(step.get("error")))
    return first, caught, rule


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("MICROLOOP_REALTRAJ") or here.parent / "shared" / "realtraj-dev"
    parser.add_argument("--runs", type=Path, default=Path(default), help="folder of labelled runs")
    parser.add_argument("-v", action="store_true", help="list each run's first block")
    parser.add_argument("--cases", action="store_true", help="a table of every run under balanced: first block, rule")
    parser.add_argument("--rules", action="store_true", help="each loop rule alone under balanced: loops caught, legit runs blocked")
    args = parser.parse_args()

    runs = load_runs(args.runs)
    if args.cases:
        return cases_table(runs)
    if args.rules:
        return rules_table(runs)
    loops = sum(r["label"] == "loop" for _, r in runs)
    legit = len(runs) - loops
    print(f"{len(runs)} runs: {loops} loops, {legit} legitimate\n")
    print("| preset | near-duplicates | loops caught | legit runs wrongly blocked |")
    print("|---|---|---|---|")
    for preset in PRESETS:
        for near in (False, True):
            policy = {"preset": preset} if near else {"preset": preset, "loops": {"max_near_duplicate": 0, "max_near_errors": 0}}
            caught = wrong = 0
            notes = []
            for name, run in runs:
                first, hit, rule = replay(policy, run)
                if run["label"] == "loop":
                    caught += hit is not None
                    if hit is None:
                        notes.append(f"    missed        {name}")
                elif first is not None:
                    wrong += 1
                    notes.append(f"    false block   {name} (step {first}, {rule})")
            label = "on" if near else "off (exact only)"
            print(f"| {preset} | {label} | {caught}/{loops} | {wrong}/{legit} |", flush=True)
            if args.v:
                print(f"  {preset}, near-duplicates {label}:", *notes, sep="\n", file=sys.stderr, flush=True)


def cases_table(runs: list[tuple[str, dict]]) -> None:
    print("| run | label | loop_start | first block (step) | rule | verdict |")
    print("|---|---|---|---|---|---|")
    for name, run in runs:
        first, hit, rule = replay({"preset": "balanced"}, run)
        tags = " (contentious)" if "contentious" in run.get("tags", []) else ""
        if run["label"] == "loop":
            verdict = "caught" if hit is not None else "missed"
        else:
            verdict = "wrongly blocked" if first is not None else "passes"
        step = hit if hit is not None else first
        print(f"| {name} | {run['label']}{tags} | {run.get('loop_start', '')} | {'' if step is None else step} | {rule} | {verdict} |")


# The loop rules with a threshold, and their balanced values: each is measured alone (the others
# at 0), and against the others (is a caught loop caught by no other rule?).
BALANCED = {
    "loop.identical": ("max_identical", 30),
    "loop.no_progress": ("max_no_progress", 2),
    "loop.transient": ("max_transient_retries", 3),
    "loop.error": ("max_consecutive_errors", 3),
    "loop.same_error": ("max_same_error", 5),
    "loop.near_duplicate": ("max_near_duplicate", 3),
    "loop.near_error": ("max_near_errors", 2),
    "loop.cycle": ("max_cycle_repeats", 3),
}


def rules_table(runs: list[tuple[str, dict]]) -> None:
    alone: dict[str, tuple[set[str], set[str]]] = {}
    for rule, (key, value) in BALANCED.items():
        loops = {k: 0 for k, _ in BALANCED.values()}
        loops[key] = value
        caught, blocked = set(), set()
        for name, run in runs:
            first, hit, _ = replay({"preset": "balanced", "loops": loops}, run)
            if run["label"] == "loop" and hit is not None:
                caught.add(name)
            elif run["label"] == "legit" and first is not None:
                blocked.add(name)
        alone[rule] = (caught, blocked)
    print("| rule (balanced threshold) | loops caught alone | of which no other rule catches | legit runs blocked alone |")
    print("|---|---|---|---|")
    for rule, (caught, blocked) in alone.items():
        others = set().union(*(c for r, (c, _) in alone.items() if r != rule))
        key, value = BALANCED[rule]
        print(f"| `{rule}` ({key} = {value}) | {len(caught)} | {len(caught - others)} | {len(blocked)} {sorted(blocked) or ''} |")


if __name__ == "__main__":
    main()
