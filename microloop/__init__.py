"""MicroLoop: a runtime safety layer for AI agents. Every tool call is checked before it runs.

Loops (the same call again and again with the same answer, the same error retried, A-B-A-B
cycles), hallucinated tools and runaway budgets are blocked; a policy checks arguments.

>>> from microloop import Guardrail, Blocked
>>> guard = Guardrail("balanced")
>>> @guard.verify
... def run_tests(path: str) -> str:
...     return "FAILED test_login: AssertionError"
>>> run_tests("tests/"), run_tests("tests/")
('FAILED test_login: AssertionError', 'FAILED test_login: AssertionError')
>>> try:
...     run_tests("tests/")
... except Blocked as e:
...     print(e.rule)
loop.no_progress

Framework adapters live in ``microloop.adapters`` (imported only on demand).
"""

from __future__ import annotations

import os
from typing import Optional

from ._version import __version__
from .errors import (
    AlreadyRecorded,
    ArgumentsNotSerializable,
    Blocked,
    Halted,
    InternalError,
    InvalidArgument,
    InvalidJSON,
    InvalidSnapshot,
    InvalidUTF8,
    LoopDetected,
    MicroLoopError,
    NativeError,
    NullArgument,
    PolicyError,
    PolicyMismatch,
    RuleViolation,
    SnapshotVersion,
    UnknownCall,
)
from .guardrail import Action, Engine, Guardrail, Stats, Verdict

__all__ = [
    "__version__",
    "Guardrail",
    "Engine",
    "Verdict",
    "Action",
    "Stats",
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
    "lib_path",
    "include_path",
    "hook_path",
    "fingerprint",
]

_LIB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib")


def lib_path() -> str:
    """The path of the shared C library (``libmicroloop.so`` / ``.dylib`` / ``microloop.dll``)
    this package ships, for C, Go or Node programs that want the copy ``pip install`` brought.

    Raises:
        FileNotFoundError: the package was installed without it.
    """
    for name in ("libmicroloop.so", "libmicroloop.dylib", "microloop.dll"):
        path = os.path.join(_LIB_DIR, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no shared library in {_LIB_DIR}: reinstall microloop")


def include_path() -> str:
    """The directory holding ``microloop.h``, for ``-I``: ``cc -I$(python -c 'import microloop;
    print(microloop.include_path())') ...``."""
    if not os.path.exists(os.path.join(_LIB_DIR, "microloop.h")):
        raise FileNotFoundError(f"no microloop.h in {_LIB_DIR}: reinstall microloop")
    return _LIB_DIR


def hook_path() -> str:
    """The absolute path of ``microloop-hook``, the coding agents' hook executable ``pip install``
    put beside the interpreter (``microloop hooks install AGENT`` registers it).

    Raises:
        FileNotFoundError: it is neither there nor on ``PATH`` (nor named by ``$MICROLOOP_HOOK``).
    """
    from .hooks import HookError
    from .hooks import hook_path as find

    try:
        return find()
    except HookError as e:
        raise FileNotFoundError(str(e)) from None


def fingerprint(tool: str, args: object = None, engine: Optional[Engine] = None) -> int:
    """The canonical 64-bit fingerprint of a call, as every binding computes it: key order, white
    space and ``1`` vs ``1.0`` do not change it. Every field counts unless ``engine`` is given: then
    its policy's ``ignore_fields`` are left out, as a session under it does.

    >>> fingerprint("search", {"q": "x", "n": 1}) == fingerprint("search", '{"n": 1.0, "q": "x"}')
    True
    >>> e = Engine({"loops": {"ignore_fields": ["request_id"]}})
    >>> fingerprint("search", {"q": "x", "request_id": 1}, e) == fingerprint("search", {"q": "x", "request_id": 2}, e)
    True
    """
    from ._binding import ffi, lib, raise_status
    from ._encode import encode_args

    t = tool.encode("utf-8")
    a = encode_args(args)
    out = ffi.new("uint64_t *")
    errp = ffi.new("ml_error **")
    status = lib.ml_fingerprint(engine._e if engine is not None else ffi.NULL, t, len(t), a, len(a), out, errp)
    if status:
        raise_status(status, errp)
    return int(out[0])
