"""Guardrail.verify: check, run, record; raise on block; keep the function's metadata."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from microloop import Blocked, Guardrail, Halted, LoopDetected, RuleViolation, Verdict


def test_a_sync_tool_runs_until_its_loop_is_blocked(guard: Guardrail) -> None:
    ran = []

    @guard.verify
    def open_page(url: str, wait: int = 0) -> str:
        """Open a page."""
        ran.append(url)
        return "Please solve the CAPTCHA"

    assert open_page("https://a.example") == "Please solve the CAPTCHA"
    assert open_page(url="https://a.example", wait=0) == "Please solve the CAPTCHA"  # same call
    with pytest.raises(LoopDetected) as info:
        open_page("https://a.example")
    assert info.value.verdict.rule == "loop.no_progress" and info.value.verdict.blocked
    assert isinstance(info.value, Blocked) and len(ran) == 2
    assert guard.last_warning is not None and guard.last_warning.action == "warn"


def test_metadata_and_signature_are_kept(guard: Guardrail) -> None:
    def search(query: str, limit: int = 10) -> list:
        """Search the web."""
        return []

    wrapped = guard.verify(search)
    assert wrapped.__name__ == "search" and wrapped.__doc__ == "Search the web."
    assert inspect.signature(wrapped) == inspect.signature(search)
    assert wrapped.__wrapped__ is search  # type: ignore[attr-defined]


def test_an_async_tool_stays_async() -> None:
    guard = Guardrail("strict")

    @guard.verify
    async def run_tests(path: str) -> str:
        """Run the tests."""
        await asyncio.sleep(0)
        return "1 failed"

    assert inspect.iscoroutinefunction(run_tests) and run_tests.__doc__ == "Run the tests."

    async def scenario() -> None:
        assert await run_tests("tests/") == "1 failed"
        with pytest.raises(LoopDetected):
            await run_tests("tests/")

    asyncio.run(scenario())


def test_an_exception_is_recorded_as_an_error_and_reraised() -> None:
    guard = Guardrail("balanced")

    @guard.verify
    def fetch(url: str) -> str:
        raise TimeoutError("timed out after 30s")

    for _ in range(3):
        with pytest.raises(TimeoutError):
            fetch("https://slow.example")
    assert guard.stats.errors == 3
    with pytest.raises(Blocked) as info:
        fetch("https://slow.example")
    assert info.value.rule.startswith("loop.")


def test_an_async_exception_is_recorded_too() -> None:
    guard = Guardrail()

    @guard.verify
    async def boom() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError):
        asyncio.run(boom())
    assert guard.stats.errors == 1


def test_a_denied_tool_raises_rule_violation_without_running() -> None:
    guard = Guardrail({"tools": [{"name": "rm_rf", "allow": False, "message": "never"}]})
    ran = []

    @guard.verify
    def rm_rf(path: str) -> None:
        ran.append(path)

    with pytest.raises(RuleViolation) as info:
        rm_rf("/")
    assert info.value.rule == "tool.denied" and not ran


def test_ignored_blocks_end_in_halted() -> None:
    guard = Guardrail({"tools": [{"name": "rm_rf", "allow": False}]})

    @guard.verify
    def rm_rf(path: str) -> None: ...

    errors = []
    for _ in range(10):
        try:
            rm_rf("/")
        except Blocked as e:
            errors.append(e)
    assert isinstance(errors[-1], Halted) and errors[-1].verdict.halted


def test_on_warn_is_called_and_the_call_runs() -> None:
    warnings: list = []
    guard = Guardrail(on_warn=warnings.append)

    @guard.verify
    def status() -> str:
        return "pending"

    status()
    assert status() == "pending"
    assert len(warnings) == 1 and isinstance(warnings[0], Verdict) and warnings[0].action == "warn"


def test_methods_and_kwargs_are_checked_without_self(guard: Guardrail) -> None:
    class Browser:
        @guard.verify(tool="browser.open")
        def open(self, url: str, **options: object) -> str:
            return "same"

    b = Browser()
    b.open("u", tab=1)
    b.open(url="u", tab=1)
    with pytest.raises(LoopDetected):
        Browser().open("u", tab=1)  # another instance, the same call
    assert b.open("u", tab=2) == "same"


def test_a_wrong_call_raises_the_functions_own_type_error(guard: Guardrail) -> None:
    @guard.verify
    def f(a: int) -> int:
        return a

    with pytest.raises(TypeError):
        f(1, 2, 3)  # type: ignore[call-arg]


def test_the_fast_argument_binding_agrees_with_inspect() -> None:
    """verify's own binding of arguments gives the fingerprint inspect.Signature.bind would."""

    def tool(a: int, b: str = "x", *, c: float = 1.0, **extra: object) -> None: ...

    cases = [((1,), {}), ((2, "y"), {"c": 2.0}), ((), {"a": 3, "z": [1]}), ((4,), {"b": "x", "q": 3})]
    for args, kwargs in cases:
        guard = Guardrail()
        guard.verify(tool)(*args, **kwargs)
        bound = inspect.signature(tool).bind(*args, **kwargs)
        bound.apply_defaults()
        expected = dict(bound.arguments)
        expected.update(expected.pop("extra"))
        assert guard.check("tool", expected).count == 1, (args, kwargs)
