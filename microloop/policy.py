"""Loading a policy: a preset name, a dict, a path to a ``.toml``/``.json`` file, or TOML/JSON text.

The C library parses and validates policy text (JSON, TOML or a preset name) and names the bad
entry; this module only finds the text: it encodes a dict as JSON and reads a file.

>>> policy_bytes({"preset": "strict", "loops": {"max_no_progress": 1}})
b'{"preset":"strict","loops":{"max_no_progress":1}}'
>>> policy_bytes('[loops]\\nmax_identical = 5')
b'[loops]\\nmax_identical = 5'
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Optional, Tuple, Union

from .errors import PolicyError

PolicyLike = Union[str, bytes, "os.PathLike[str]", Mapping]

PRESETS = ("strict", "balanced", "permissive")
_FILE_SUFFIXES = (".toml", ".json")


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise PolicyError("", f"cannot read the policy file: {e.strerror or e}", path) from None


def load_policy(policy: Any) -> Tuple[bytes, Optional[str]]:
    """Returns ``(the policy text for ml_session_new, the file it came from or None)``."""
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
        return policy.encode("utf-8", "surrogateescape"), None
    raise PolicyError("", f"a policy is a preset name, a dict, a path or policy text, not {type(policy).__name__}")


def policy_bytes(policy: Any) -> bytes:
    """The policy text (JSON, TOML or a preset name) that ``policy`` gives the C library."""
    return load_policy(policy)[0]
