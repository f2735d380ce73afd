"""One tool call through a guard: check, run, record the failure or the result, nudge.

The one implementation of that sequence, behind :meth:`Guardrail.verify` and every framework adapter.
A framework that runs the tool itself between two hooks keeps the :class:`ToolCall` from the first
hook (under its own tool-call id) and finishes it in the second.

>>> from microloop import Guardrail
>>> guard = Guardrail("balanced")
>>> for _ in range(2):
...     call = ToolCall(guard, "open_page", {"url": "https://example.com"})
...     page = call.run(lambda: "Please solve the CAPTCHA")
...     call.done(page)
>>> call.verdict.action, call.nudged(page).startswith("Please solve the CAPTCHA\\n\\n")
('warn', True)
>>> ToolCall(guard, "open_page", {"url": "https://example.com"}).blocked
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, TypeVar

if TYPE_CHECKING:
    from .guardrail import Guardrail, Verdict

T = TypeVar("T")

__all__ = ["ToolCall", "error_text"]


def error_text(exc: BaseException) -> str:
    """What a failed call is recorded as: ``"TypeName: message"``."""
    return f"{type(exc).__name__}: {exc}"


class ToolCall:
    """A call checked by ``guard`` when made; run it (if not :attr:`blocked`), then :meth:`done`.

    Attributes:
        guard: the guard (or session) that checked it and records its outcome.
        verdict: the :class:`~microloop.Verdict`.
    """

    __slots__ = ("guard", "verdict")

    def __init__(self, guard: "Guardrail", tool: Any, args: Any) -> None:
        self.guard = guard
        self.verdict: Verdict = guard.check(tool, args)

    @property
    def blocked(self) -> bool:
        """The call must not run (block or halt): give ``verdict.message`` to the model instead."""
        return self.verdict.blocked

    @property
    def halted(self) -> bool:
        """The run must stop."""
        return self.verdict.action == "halt"

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``; an exception it raises is recorded as the call's failure, then re-raised."""
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            self.failed(exc)
            raise

    async def arun(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """``await fn(*args, **kwargs)``, recording an exception as :meth:`run` does."""
        try:
            return await fn(*args, **kwargs)
        except BaseException as exc:
            self.failed(exc)
            raise

    def failed(self, exc: BaseException) -> None:
        """Records ``exc`` as the call's failed result. Never raises: the tool's own exception is the one
        the caller sees (a result recorded already, or a closed guard, is left as it is)."""
        try:
            self.guard.record(self.verdict.call_id, error_text(exc), error=True)
        except Exception:
            pass

    def done(self, output: Any, *, error: bool = False) -> None:
        """Records what the call returned (``error``: it failed)."""
        self.guard.record(self.verdict.call_id, output, error=error)

    @property
    def nudge(self) -> str:
        """A ``warn`` verdict's message, to show the model with the result; ``""`` otherwise."""
        v = self.verdict
        return v.message if v.action == "warn" else ""

    def nudged(self, text: str) -> str:
        """The result's text followed by the nudge (unchanged when there is none)."""
        nudge = self.nudge
        if not nudge:
            return text
        return f"{text}\n\n{nudge}" if text else nudge
