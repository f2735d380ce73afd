"""The labelled real runs, written back in their agents' own formats, through ``microloop replay``.

Each run of ``../shared/realtraj-dev/`` (beside the repository, or ``--runs`` / ``$MICROLOOP_REALTRAJ``;
read at run time, never copied) came from tau-bench, tau2-bench, mini-swe-agent, OpenHands, SWE-agent
or an issue thread. This writes each back as that agent's log (tau-bench results, tau2-bench results,
a mini-swe-agent ``.traj.json``, an OpenHands event list, a SWE-agent ``.traj``, OpenAI messages) into
a temporary folder, replays the folder with ``replay_paths`` (the format detected from the content),
and compares every call's verdict with the library's on the labelled steps (``Guardrail.check``,
then ``record`` with the labelled result and error flag, as ``bench/realtraj.py`` does).

A difference can only come from what a format does not carry: tau-bench and SWE-agent logs have no
error flag, so the replay reads a failure from the answer's text; the labels inferred theirs from
the original logs.

    .venv/bin/python bench/replay_realtraj.py [--runs DIR] [--policy balanced] [-v]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Tuple

from microloop import Guardrail
from microloop.replay import replay_paths


def library(policy: Any, run: dict) -> List[Tuple[str, str]]:
    g = Guardrail(policy)
    out = []
    for step in run["steps"]:
        v = g.check(step["tool"], step["args"])
        out.append((v.action, v.rule))
        if v.allowed:
            g.record(v.call_id, step.get("result") or "", error=bool(step.get("error")))
    return out


def _messages(steps: List[dict]) -> List[dict]:
    msgs: List[dict] = [{"role": "user", "content": "(task)"}]
    for i, s in enumerate(steps):
        msgs.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{i}", "type": "function", "function": {"name": s["tool"], "arguments": json.dumps(s["args"])}}]})
        msgs.append({"role": "tool", "tool_call_id": f"call_{i}", "name": s["tool"], "content": s.get("result") or ""})
    return msgs


def as_tau_bench(steps: List[dict]) -> Any:
    return [{"task_id": 0, "reward": 0.0, "info": {}, "traj": _messages(steps), "trial": 0}]


def as_tau2_bench(steps: List[dict]) -> Any:
    msgs: List[dict] = [{"role": "user", "content": "(task)", "turn_idx": 0}]
    for i, s in enumerate(steps):
        msgs.append({"role": "assistant", "content": None, "tool_calls": [{"id": f"c{i}", "name": s["tool"], "arguments": s["args"], "requestor": "assistant"}]})
        msgs.append({"role": "tool", "id": f"c{i}", "content": s.get("result") or "", "requestor": "assistant", "error": bool(s.get("error"))})
    return {"info": {}, "tasks": [], "simulations": [{"id": "s", "task_id": "0", "trial": 0, "messages": msgs}]}


def as_mini_swe_agent(steps: List[dict]) -> Any:
    text_actions = all(s["args"].get("command", "").split(None, 1)[:1] == [s["tool"]] for s in steps)
    if not text_actions:  # the tool-calling versions write OpenAI tool calls
        return {"info": {"mini_version": "2.0.0"}, "messages": _messages(steps), "trajectory_format": "mini-swe-agent-1.1"}
    msgs: List[dict] = [{"role": "system", "content": "(system)"}, {"role": "user", "content": "(task)"}]
    for s in steps:
        msgs.append({"role": "assistant", "content": f"THOUGHT: (thought)\n\n```bash\n{s['args']['command']}\n```"})
        result = s.get("result") or ""
        if not result.startswith("<returncode>"):  # most labelled answers kept mini-swe-agent's wrapper
            result = f"<returncode>{1 if s.get('error') else 0}</returncode>\n<output>\n{result}</output>"
        msgs.append({"role": "user", "content": result})
    return {"info": {"mini_version": "1.14.2"}, "messages": msgs, "trajectory_format": "mini-swe-agent-1"}


def as_openhands(steps: List[dict]) -> Any:
    events: List[dict] = [{"id": 0, "source": "user", "action": "message", "args": {"content": "(task)"}}]
    for i, s in enumerate(steps):
        aid = 2 * i + 1
        events.append({"id": aid, "source": "agent", "action": "run", "args": dict(s["args"]),
                       "tool_call_metadata": {"function_name": s["tool"], "tool_call_id": f"t{i}", "total_calls_in_response": 1}})
        events.append({"id": aid + 1, "source": "agent", "observation": "run", "cause": aid, "content": s.get("result") or "",
                       "extras": {"metadata": {"exit_code": 1 if s.get("error") else 0}}})
    return events


def as_swe_agent(steps: List[dict]) -> Any:
    return {"trajectory": [{"action": s["args"]["command"], "observation": s.get("result") or "", "response": "", "thought": ""} for s in steps],
            "history": [], "info": {}}


def writer(name: str) -> Tuple[str, Any]:
    if name.startswith("tau2_"):
        return "tau2-bench", as_tau2_bench
    if name.startswith("tau_"):
        return "tau-bench", as_tau_bench
    if "_mini_" in name:
        return "mini-swe-agent", as_mini_swe_agent
    if name.startswith("openhands_"):
        return "openhands", as_openhands
    if name.startswith("sweagent_"):
        return "swe-agent", as_swe_agent
    return "openai-messages", lambda steps: _messages(steps)


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("MICROLOOP_REALTRAJ") or here.parent / "shared" / "realtraj-dev"
    p.add_argument("--runs", type=Path, default=Path(default))
    p.add_argument("--policy", default="balanced")
    p.add_argument("-v", action="store_true", help="list each differing call")
    a = p.parse_args()
    files = sorted(a.runs.glob("*.json"))
    if not files:
        sys.exit(f"no runs in {a.runs}: put ../shared/realtraj-dev beside the repository or pass --runs")
    folder = tempfile.mkdtemp(prefix="microloop-realtraj-")
    try:
        expected: Dict[str, Tuple[str, List[Tuple[str, str]]]] = {}
        for f in files:
            run = json.loads(f.read_text(encoding="utf-8"))
            fmt, write = writer(f.stem)
            out = os.path.join(folder, f.stem + ".json")
            with open(out, "w", encoding="utf-8") as fh:
                json.dump(write(run["steps"]), fh)
            expected[f.stem] = (fmt, library(a.policy, run))
        reports = replay_paths([folder], a.policy)
        by_format: Dict[str, List[int]] = {}
        for r in reports:
            stem = os.path.basename(r.source)[: -len(".json")]
            fmt, lib = expected[stem]
            got = [(s.action, s.rule) for s in r.steps]
            same = sum(x == y for x, y in zip(got, lib)) if len(got) == len(lib) else 0
            row = by_format.setdefault(f"{fmt} (read as {r.format})", [0, 0, 0, 0])
            row[0] += 1
            row[1] += len(lib)
            row[2] += same
            row[3] += got == lib
            if a.v and got != lib:
                for i, (x, y) in enumerate(zip(got, lib)):
                    if x != y:
                        print(f"  {stem} call {i + 1}: replay {x}, library {y}")
        print(f"{len(reports)} runs replayed from {len(files)} files, policy {a.policy}\n")
        print("| written as | runs | calls | same verdict | runs identical |")
        print("|---|---|---|---|---|")
        for k in sorted(by_format):
            n, c, same, ident = by_format[k]
            print(f"| {k} | {n} | {c} | {same}/{c} | {ident}/{n} |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
