"""JSON encoding of arguments and outputs: orjson when installed (``microloop[fast]``), else ``json``.

Fingerprints are identical either way, since the core canonicalizes the JSON it is given (key order,
white space, ``1`` vs ``1.0``). A value orjson refuses (an integer over 64 bits) falls back to ``json``.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from .errors import ArgumentsNotSerializable

try:  # pragma: no cover - depends on the environment
    import orjson as _orjson

    _ORJSON_OPTS = _orjson.OPT_NON_STR_KEYS
    _orjson_dumps: Optional[Any] = _orjson.dumps
except ImportError:  # pragma: no cover
    _orjson_dumps = None
    _ORJSON_OPTS = 0

ENCODER = "orjson" if _orjson_dumps is not None else "json"

_json_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_json_dumps_lenient = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def dumps_stdlib(value: Any) -> bytes:
    """Compact JSON with the standard library (what is used without orjson)."""
    return _json_dumps(value).encode("utf-8")


def encode_args(args: Any) -> bytes:
    """The JSON bytes of a call's arguments: str/bytes pass through as already-encoded JSON."""
    if args is None:
        return b"{}"
    cls = args.__class__
    if cls is bytes:
        return args
    if cls is str:
        return args.encode("utf-8", "surrogatepass")
    if cls is bytearray or cls is memoryview:
        return bytes(args)
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(args, option=_ORJSON_OPTS)
        except TypeError:
            pass  # orjson refuses some values json accepts (big ints): try json below
    try:
        return _json_dumps(args).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError) as e:
        raise ArgumentsNotSerializable(
            f"the arguments cannot be encoded as JSON ({e}); pass a JSON-serialisable value or JSON text"
        ) from None


def encode_output(output: Any) -> bytes:
    """The bytes recorded for a tool's output: str as UTF-8, bytes as is, None as empty, else JSON
    (objects JSON cannot encode are recorded as their ``str()``)."""
    if output is None:
        return b""
    cls = output.__class__
    if cls is str:
        return output.encode("utf-8", "surrogatepass")
    if cls is bytes:
        return output
    if cls is bytearray or cls is memoryview:
        return bytes(output)
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(output, option=_ORJSON_OPTS, default=str)
        except TypeError:
            pass
    try:
        return _json_dumps_lenient(output).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return str(output).encode("utf-8", "surrogatepass")
