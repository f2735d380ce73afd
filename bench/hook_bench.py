"""One coding-agent hook invocation, as the agent pays for it: process start, read the state of a
256-call session, check the call, write the state, answer. ``microloop-hook`` against, in the same
run, a Python hook script that only imports ``json``, reads the event and exits, and ``/bin/true``
(what starting any process costs this harness).

    python bench/hook_bench.py [N=1000] [HOOK=native/target/release/microloop-hook]

Prints the machine and two lines per hook: wall time as the agent waits for it (p50, p90, p99, max in
ms), and the CPU time the hook process used (user + system, from getrusage; on a loaded machine the
wall time mostly measures waiting for a core). Record them in bench/RESULTS.md under "## Coding-agent
hook".
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
HOOK = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "native", "target", "release", "microloop-hook")
PY_HOOK = "import json, sys\njson.load(sys.stdin)\n"


def event(i: int, name: str = "PreToolUse") -> bytes:
    e = {"session_id": "bench", "transcript_path": "/t.jsonl", "cwd": "/", "hook_event_name": name, "tool_name": "Bash",
         "tool_input": {"command": f"cat src/module_{i}.py", "description": "read a module"}, "tool_use_id": f"toolu_{i:06d}"}
    if name == "PostToolUse":
        e["tool_response"] = {"stdout": f"def f{i}(): return {i}\n" * 8, "stderr": "", "interrupted": False}
    return json.dumps(e).encode()


def percentiles(samples: list) -> str:
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] * 1000  # noqa: E731
    return f"p50 {pick(0.50):.2f} ms  p90 {pick(0.90):.2f} ms  p99 {pick(0.99):.2f} ms  max {s[-1] * 1000:.2f} ms"


def timed(argv: list, inputs: list, env: dict) -> tuple:
    wall, cpu = [], []
    for data in inputs:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        r = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        wall.append(time.perf_counter() - t)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        if r.returncode != 0 or r.stderr or r.stdout:
            raise SystemExit(f"{argv[0]}: unexpected answer {r.returncode} {r.stdout!r} {r.stderr!r}")
    return wall, cpu


def main() -> None:
    state = tempfile.mkdtemp(prefix="microloop-hook-bench-")
    env = {**os.environ, "MICROLOOP_STATE_DIR": state}
    env.pop("MICROLOOP_POLICY", None)
    try:
        # A session with 256 calls and their results: the history window is full.
        for i in range(256):
            for name in ("PreToolUse", "PostToolUse"):
                subprocess.run([HOOK, "claude-code"], input=event(i, name), check=True, env=env, capture_output=True)
        load0 = f"{os.getloadavg()[0]:.1f}"
        (snapshot,) = [f for f in os.listdir(state) if f.endswith(".state")]
        size = os.path.getsize(os.path.join(state, snapshot))
        inputs = [event(1000 + i) for i in range(N)]
        script = os.path.join(state, "hook.py")
        with open(script, "w") as f:
            f.write(PY_HOOK)
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
        print(f"machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}; Python {platform.python_version()}")
        print(f"{HOOK} ({os.path.getsize(HOOK)} bytes); state file: {size} bytes (256-call window); {N} invocations each, interleaved in rounds of 50")
        rows: dict = {name: ([], []) for name in ("/bin/true", "microloop-hook claude-code", "python3 hook.py (import json)")}
        argvs = {"/bin/true": [shutil.which("true") or "/bin/true"], "microloop-hook claude-code": [HOOK, "claude-code"],
                 "python3 hook.py (import json)": [sys.executable, script]}
        for start in range(0, N, 50):
            chunk = inputs[start:start + 50]
            for name, argv in argvs.items():
                wall, cpu = timed(argv, chunk, env)
                rows[name][0].extend(wall)
                rows[name][1].extend(cpu)
        print(f"load average before: {load0}; after: {os.getloadavg()[0]:.1f}")
        for name, (wall, cpu) in rows.items():
            print(f"{name:32} wall {percentiles(wall)}")
            print(f"{'':32} cpu  {percentiles(cpu)}")
    finally:
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
