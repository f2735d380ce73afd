"""Loading a policy: a preset name, a dict, a path to a ``.toml``/``.json`` file, or TOML/JSON text.

The C library takes a policy as JSON text (or a bare preset name); TOML is parsed here with
``tomllib`` and sent as JSON. The library validates everything and names the bad entry.

>>> policy_bytes({"preset": "strict", "loops": {"max_no_progress": 1}})
b'{"preset":"strict","loops":{"max_no_progress":1}}'
>>> policy_bytes('[loops]\\nmax_identical = 5')
b'{"loops":{"max_identical":5}}'
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any, Optional, Tuple, Union

from .errors import PolicyError

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover
    try:
        import tomli as _toml
    except ImportError:
        _toml = None

PolicyLike = Union[str, bytes, "os.PathLike[str]", Mapping]

PRESETS = ("strict", "balanced", "permissive")
_FILE_SUFFIXES = (".toml", ".json")


def _toml_to_json(text: str, source: Optional[str]) -> bytes:
    if _toml is None:  # pragma: no cover
        raise PolicyError("", "TOML policies need Python 3.11+ or the `tomli` package", source)
    try:
        doc = _toml.loads(text)
    except Exception as e:  # tomllib.TOMLDecodeError
        raise PolicyError("", f"the policy is not valid TOML: {e}", source) from None
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _text_to_bytes(text: str, source: Optional[str] = None) -> bytes:
    stripped = text.strip()
    if not stripped or stripped[0] in '{"[' and not _looks_like_toml_table(stripped):
        return stripped.encode("utf-8")  # JSON (or empty: balanced)
    if "=" not in stripped and "\n" not in stripped:
        return stripped.encode("utf-8")  # a bare preset name: the library checks it
    return _toml_to_json(text, source)


def _looks_like_toml_table(text: str) -> bool:
    # `[loops]` or `[[tools]]` opening a TOML document, not a JSON array
    first = text.split("\n", 1)[0].strip()
    return first.startswith("[") and first.endswith("]") and "=" in text and not first.startswith("[{")


def _read_file(path: str) -> bytes:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise PolicyError("", f"cannot read the policy file: {e.strerror or e}", path) from None
    if path.lower().endswith(".toml"):
        return _toml_to_json(text, path)
    if path.lower().endswith(".json"):
        return text.strip().encode("utf-8")
    return _text_to_bytes(text, path)


def load_policy(policy: Any) -> Tuple[bytes, Optional[str]]:
    """Returns ``(JSON bytes for ml_session_new, the file it came from or None)``."""
    if policy is None:
        return b"balanced", None
    if isinstance(policy, Mapping):
        try:
            return json.dumps(dict(policy), separators=(",", ":"), ensure_ascii=False).encode("utf-8"), None
        except (TypeError, ValueError) as e:
            raise PolicyError("", f"the policy dict cannot be encoded as JSON: {e}") from None
    if isinstance(policy, os.PathLike):
        path = os.fspath(policy)
        return _read_file(path), path
    if isinstance(policy, (bytes, bytearray)):
        policy = bytes(policy).decode("utf-8", "surrogateescape")
    if isinstance(policy, str):
        one_line = "\n" not in policy and "=" not in policy and not policy.lstrip().startswith(("{", "["))
        if one_line and policy.strip().lower().endswith(_FILE_SUFFIXES):
            return _read_file(policy.strip()), policy.strip()
        return _text_to_bytes(policy), None
    raise PolicyError("", f"a policy is a preset name, a dict, a path or policy text, not {type(policy).__name__}")


def policy_bytes(policy: Any) -> bytes:
    """The JSON (or preset name) that ``policy`` gives the C library."""
    return load_policy(policy)[0]
