"""MicroLoop's exceptions: one tree, each exception carrying the data a caller needs.

::

    MicroLoopError
    ├── PolicyError                  the policy was refused (.path names the bad entry)
    ├── ArgumentsNotSerializable     arguments that cannot be encoded as JSON (also a TypeError)
    ├── NativeError                  a status from the C library (.status, .status_name)
    │   ├── NullArgument             ML_ERR_NULL_ARG (e.g. a closed Guardrail)
    │   ├── InvalidUTF8              ML_ERR_INVALID_UTF8
    │   ├── InvalidJSON              ML_ERR_INVALID_JSON: arguments are not JSON, or nest too deep
    │   ├── UnknownCall              ML_ERR_UNKNOWN_CALL: record() with an id never issued
    │   ├── AlreadyRecorded          ML_ERR_ALREADY_RECORDED
    │   ├── InvalidArgument          ML_ERR_INVALID_ARG: e.g. an empty tool name
    │   ├── InvalidSnapshot          ML_ERR_INVALID_SNAPSHOT: not a snapshot, corrupt or truncated
    │   ├── SnapshotVersion          ML_ERR_SNAPSHOT_VERSION: a snapshot from a newer MicroLoop
    │   ├── PolicyMismatch           ML_ERR_POLICY_MISMATCH: a snapshot saved under another policy
    │   └── InternalError            ML_ERR_PANIC: a bug in the library, caught at the boundary
    └── Blocked                      a call was refused (.verdict); raised by ``Guardrail.verify``
        ├── LoopDetected             rule ``loop.*``
        ├── RuleViolation            every other block: ``tool.*``, ``budget.*``, schema, field rules
        └── Halted                   action ``halt``: stop the run

Errors from the library leave the session's history unchanged.

>>> from microloop import Guardrail, InvalidJSON
>>> try:
...     Guardrail().check("search", "{not json")
... except InvalidJSON as e:
...     print(e.status_name)
invalid_json
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Type

if TYPE_CHECKING:
    from .guardrail import Verdict

__all__ = [
    "MicroLoopError",
    "PolicyError",
    "ArgumentsNotSerializable",
    "NativeError",
    "NullArgument",
    "InvalidUTF8",
    "InvalidJSON",
    "UnknownCall",
    "AlreadyRecorded",
    "InvalidArgument",
    "InvalidSnapshot",
    "SnapshotVersion",
    "PolicyMismatch",
    "InternalError",
    "Blocked",
    "LoopDetected",
    "RuleViolation",
    "Halted",
]


class MicroLoopError(Exception):
    """The base of every exception MicroLoop raises."""


class PolicyError(MicroLoopError, ValueError):
    """A policy was refused.

    Attributes:
        path: where in the policy document (``loops.max_identical``, ``tools[2].name``); empty for
            the document as a whole.
        message: what is wrong, for a person fixing the policy.
        source: the file the policy came from, or ``None``.
    """

    def __init__(self, path: str, message: str, source: Optional[str] = None) -> None:
        self.path = path
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        named = message if not path or message.startswith(path) else f"{path}: {message}"
        super().__init__(f"{where}{named}")


class ArgumentsNotSerializable(MicroLoopError, TypeError):
    """The arguments of a call (or a tool list) cannot be encoded as JSON; nothing was checked."""


class NativeError(MicroLoopError):
    """A failure status from the C library (``include/microloop.h``).

    Attributes:
        status: the ``ml_status`` code.
        status_name: its name as in the shared vectors (``invalid_json``...).
        message: the library's message.
    """

    status: int = -1
    status_name: str = "unknown"

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        if status is not None:
            self.status = status
        self.message = message
        super().__init__(message)


class NullArgument(NativeError):
    """``ML_ERR_NULL_ARG``: a required pointer was NULL (a closed ``Guardrail`` is used)."""

    status, status_name = 1, "null_arg"


class InvalidUTF8(NativeError, ValueError):
    """``ML_ERR_INVALID_UTF8``: a tool name or arguments are not valid UTF-8."""

    status, status_name = 2, "invalid_utf8"


class InvalidJSON(NativeError, ValueError):
    """``ML_ERR_INVALID_JSON``: the arguments (or a tool list) are not JSON, or nest deeper than 128."""

    status, status_name = 3, "invalid_json"


class UnknownCall(NativeError, LookupError):
    """``ML_ERR_UNKNOWN_CALL``: no call with this id was issued (0 is a blocked call's id)."""

    status, status_name = 5, "unknown_call"


class AlreadyRecorded(NativeError):
    """``ML_ERR_ALREADY_RECORDED``: the call already has a result."""

    status, status_name = 6, "already_recorded"


class InvalidArgument(NativeError, ValueError):
    """``ML_ERR_INVALID_ARG``: an argument out of its domain, such as an empty tool name."""

    status, status_name = 7, "invalid_argument"


class InvalidSnapshot(NativeError, ValueError):
    """``ML_ERR_INVALID_SNAPSHOT``: the bytes are not a session snapshot, or are corrupt or truncated."""

    status, status_name = 8, "invalid_snapshot"


class SnapshotVersion(NativeError, ValueError):
    """``ML_ERR_SNAPSHOT_VERSION``: the snapshot was written by a newer MicroLoop."""

    status, status_name = 9, "snapshot_version"


class PolicyMismatch(NativeError, ValueError):
    """``ML_ERR_POLICY_MISMATCH``: the snapshot was saved under another policy (``any_policy=True``
    loads it anyway)."""

    status, status_name = 10, "policy_mismatch"


class InternalError(NativeError):
    """``ML_ERR_PANIC``: a bug inside the library, caught before it crossed the boundary."""

    status, status_name = 99, "panic"


NATIVE_ERRORS: Dict[int, Type[NativeError]] = {
    cls.status: cls
    for cls in (
        NullArgument, InvalidUTF8, InvalidJSON, UnknownCall, AlreadyRecorded, InvalidArgument,
        InvalidSnapshot, SnapshotVersion, PolicyMismatch, InternalError,
    )
}


class Blocked(MicroLoopError):
    """A call was refused (``block`` or ``halt``); the tool did not run.

    Attributes:
        verdict: the :class:`~microloop.Verdict`; ``verdict.message`` is written for the model.
        rule: the deciding rule's id (``loop.no_progress``, ``tool.unknown``...).
        message: the verdict's message.
    """

    def __init__(self, verdict: "Verdict") -> None:
        self.verdict = verdict
        self.rule = verdict.rule
        self.message = verdict.message
        super().__init__(f"[{verdict.rule}] {verdict.message}")

    def __reduce__(self):
        return (type(self), (self.verdict,))


class LoopDetected(Blocked):
    """A loop detector (rule ``loop.*``) blocked the call."""


class RuleViolation(Blocked):
    """A policy rule blocked the call: ``tool.unknown``, ``tool.denied``, ``budget.*``, schema, field rules."""


class Halted(Blocked):
    """The run must stop (action ``halt``): the agent kept trying blocked calls, or a budget ran out."""


def blocked_error(verdict: "Verdict") -> Blocked:
    """The exception for a refused verdict: ``Halted``, ``LoopDetected`` or ``RuleViolation``."""
    if verdict.action == "halt":
        return Halted(verdict)
    if verdict.rule.startswith("loop."):
        return LoopDetected(verdict)
    return RuleViolation(verdict)
