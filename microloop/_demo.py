"""``microloop demo``: two scripted agents (no LLM, offline) fall into the classic loops, run side by
side without and with MicroLoop."""

from __future__ import annotations

from typing import Callable, Generator, List, Optional, Tuple

from .guardrail import Guardrail, Verdict

MAX_TURNS = 25
#: An assumption for the estimate, stated in the output: every agent turn re-sends the conversation,
#: so one tool call costs the model this many tokens on average (prompt + tool result + reasoning).
TOKENS_PER_TURN = 1500

Call = Tuple[str, dict]
# An agent is a generator: it yields a call, receives (output, verdict or None), and returns its final answer.
Agent = Callable[[], "Generator[Call, Tuple[str, Optional[Verdict]], str]"]

CAPTCHA = "<html><title>Just a moment...</title> Please verify you are human: solve the CAPTCHA. Ray ID: 7f3a9c2e1b</html>"


def browser_agent():
    """Wants the price list from a page behind a CAPTCHA; re-opens it, hoping it changes."""
    url = "https://shop.example.com/prices"
    while True:
        out, verdict = yield ("open_page", {"url": url})
        if verdict is not None and verdict.blocked:
            return "I could not read the page: it is behind a CAPTCHA. Please open it yourself or give me another source."
        out, verdict = yield ("screenshot", {"full_page": False})
        if verdict is not None and verdict.blocked:
            return "The page is behind a CAPTCHA; I stopped retrying."


def coding_agent():
    """Re-runs a failing test without changing anything, until told it is a loop; then fixes the code."""
    while True:
        out, verdict = yield ("run_tests", {"path": "tests/test_login.py"})
        if verdict is not None and verdict.blocked:
            out, verdict = yield ("read_file", {"path": "src/login.py"})
            out, verdict = yield ("edit_file", {"path": "src/login.py", "patch": "- if user.password == pw:\n+ if check_password(user, pw):"})
            continue
        if "passed" in out:
            return "Fixed the login check; the tests pass."
        out, verdict = yield ("read_file", {"path": "tests/test_login.py"})
        if verdict is not None and verdict.blocked:
            return "I keep reading the same file; stopping."


class World:
    """The tools' answers: the CAPTCHA never goes away; the tests fail until login.py is edited."""

    def __init__(self) -> None:
        self.edited = False
        self.shots = 0

    def run(self, tool: str, args: dict) -> Tuple[str, bool]:
        if tool == "open_page":
            return CAPTCHA, False
        if tool == "screenshot":
            return "[image 1280x720: a CAPTCHA checkbox, 'Verify you are human']", False
        if tool == "run_tests":
            if self.edited:
                return "tests/test_login.py ..... 5 passed in 0.41s", False
            return "FAILED tests/test_login.py::test_login - AssertionError: expected 200, got 401 (0.38s)", True
        if tool == "read_file":
            return "def login(user, pw):\n    if user.password == pw:\n        return 200\n    return 401\n", False
        if tool == "edit_file":
            self.edited = True
            return "edited src/login.py (1 line)", False
        return "unknown tool", True


def run_agent(agent: Agent, guard: Optional[Guardrail]) -> Tuple[List[Tuple[Call, str, Optional[Verdict]]], str]:
    """Runs a scripted agent for at most MAX_TURNS calls; returns its steps and final answer."""
    world = World()
    gen = agent()
    steps: List[Tuple[Call, str, Optional[Verdict]]] = []
    answer = f"(stopped by its {MAX_TURNS}-turn limit, no answer)"
    try:
        call = next(gen)
        while len(steps) < MAX_TURNS:
            tool, args = call
            verdict = guard.check(tool, args) if guard is not None else None
            if verdict is not None and verdict.blocked:
                out = verdict.message
            else:
                out, failed = world.run(tool, args)
                if verdict is not None:
                    guard.record(verdict.call_id, out, error=failed)  # type: ignore[union-attr]
            steps.append((call, out, verdict))
            call = gen.send((out, verdict))
    except StopIteration as stop:
        answer = stop.value
    return steps, answer


def _fmt_call(call: Call) -> str:
    tool, args = call
    inner = ", ".join(f"{k}={v!r}" if len(repr(v)) < 40 else f"{k}=..." for k, v in args.items())
    return f"{tool}({inner})"


def main(policy: str = "balanced", write=print) -> int:
    scenarios = [
        ("Browser agent", "read the prices on a page behind a CAPTCHA", browser_agent, ["open_page", "screenshot"]),
        ("Coding agent", "make the failing login test pass", coding_agent, ["run_tests", "read_file", "edit_file"]),
    ]
    write("MicroLoop demo: two scripted agents (offline, no LLM) fall into classic loops.")
    write(f"Each is run twice: without MicroLoop, and with Guardrail(policy={policy!r}).\n")
    rows = []
    for title, goal, agent, tools in scenarios:
        write(f"== {title}: {goal}")
        bare_steps, bare_answer = run_agent(agent, None)
        guard = Guardrail(policy, tools=tools)
        steps, answer = run_agent(agent, guard)
        write(f"   without MicroLoop: {len(bare_steps)} calls, {' -> '.join(c[0] for c, _, _ in bare_steps[:4])} -> ... ")
        write(f"                      answer: {bare_answer}")
        write("   with MicroLoop:")
        for i, (call, _out, v) in enumerate(steps, 1):
            if v is None or v.action == "allow":
                mark = "ok   "
            else:
                mark = {"warn": "WARN ", "block": "BLOCK", "halt": "HALT "}[v.action]
            line = f"     {i:2} {mark} {_fmt_call(call)}"
            if v is not None and v.action != "allow":
                line += f"   [{v.rule}]"
            write(line)
            if v is not None and v.blocked:
                write(f"              -> the model reads: {v.message[:110]}...")
        write(f"                      answer: {answer}\n")
        blocked = sum(1 for _, _, v in steps if v is not None and v.blocked)
        rows.append((title, len(bare_steps), len(steps), blocked))

    write(f"{'':16}{'calls without':>15}{'calls with':>12}{'blocked':>9}{'est. tokens saved':>19}")
    total = 0
    for title, bare, with_, blocked in rows:
        saved = max(bare - with_, 0) * TOKENS_PER_TURN
        total += saved
        write(f"{title:16}{bare:>15}{with_:>12}{blocked:>9}{saved:>19,}")
    write(f"\nEstimated tokens saved: {total:,} (assuming ~{TOKENS_PER_TURN:,} tokens per agent turn).")
    write("Each loop was stopped with a message the model can act on; progress (an edit) lets the test re-run.")
    return 0
