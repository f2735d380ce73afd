"""Approval tokens, checked on the tool's side: the call about to run is the one the guard approved.

Under a policy with an ``[approval]`` section, every call the guard lets run carries a token
(:attr:`microloop.Verdict.approval`): a compact JWS (``alg: EdDSA``) over the session, the call id,
the tool, the SHA-256 of the arguments' RFC 8785 canonical JSON, the audience and a short lifetime.
The tool server (or the tool function itself) calls :func:`verify` before running the call:

>>> claims = verify(token, "search", raw_args, keys=VERIFIER, audience="tools.example")  # doctest: +SKIP

It refuses (:class:`ApprovalError`, with a ``reason``) a token for another tool, arguments changed
since the check, an expired token, a token already used (``jti`` in the ``seen`` set), a token
signed by a key not in ``keys``, and arguments JCS cannot represent (an integer outside
±(2**53 - 1), a duplicate key, text that is not UTF-8 JSON). It is built on PyJWT and ``rfc8785``
(``pip install 'microloop[verify]'``); Go and Node have the same check in ``bindings/``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Protocol, Tuple, Union

from .errors import MicroLoopError

__all__ = [
    "ApprovalError",
    "SeenTokens",
    "TOKEN_TYPE",
    "META_KEY",
    "verify",
    "args_sha256",
    "canonical_args",
    "jwk",
    "jwks",
    "thumbprint",
]

TOKEN_TYPE = "microloop-approval+jwt"
"""The JWS ``typ`` header of an approval token."""

META_KEY = "dev.microloop/approval"
"""Where the MCP relay puts the token: ``params._meta["dev.microloop/approval"]`` of a ``tools/call``."""

_MAX_EXACT = 2**53 - 1
_CLAIMS = ["iss", "aud", "iat", "exp", "jti", "sid", "call_id", "tool", "args_sha256"]


class ApprovalError(MicroLoopError, ValueError):
    """A token that does not approve this call.

    Attributes:
        reason: ``malformed``, ``type``, ``unknown_key``, ``signature``, ``expired``,
            ``not_yet_valid``, ``audience``, ``issuer``, ``tool``, ``arguments``,
            ``unrepresentable`` or ``replayed``.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class SeenSet(Protocol):
    """Where token ids are kept until they expire (share one between the workers of a server)."""

    def add(self, jti: str, exp: int) -> bool:
        """Records ``jti`` until ``exp`` (seconds since the epoch); False if it was already there."""
        ...  # pragma: no cover


class SeenTokens:
    """An in-memory :class:`SeenSet` for one process; entries go once expired (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: Dict[str, int] = {}
        self._next_sweep = 0.0

    def add(self, jti: str, exp: int) -> bool:
        now = time.time()
        with self._lock:
            if now >= self._next_sweep:
                self._seen = {k: e for k, e in self._seen.items() if e >= now - 300}
                self._next_sweep = now + 30
            if jti in self._seen:
                return False
            self._seen[jti] = exp
            return True

    def __len__(self) -> int:
        return len(self._seen)


_DEFAULT_SEEN = SeenTokens()
_DEFAULT: Any = object()


def _jwt() -> Any:
    try:
        import jwt
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError("verifying approval tokens needs PyJWT: pip install 'microloop[verify]'") from e
    return jwt


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _reject_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"the key {k!r} appears twice in one object")
        out[k] = v
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_ints(v: Any) -> None:
    if isinstance(v, bool):
        return
    if isinstance(v, int):
        if abs(v) > _MAX_EXACT:
            raise ValueError(f"the integer {v} is outside I-JSON's exact range ±(2^53 - 1)")
    elif isinstance(v, dict):
        for x in v.values():
            _check_ints(x)
    elif isinstance(v, (list, tuple)):
        for x in v:
            _check_ints(x)


def canonical_args(args: Any) -> bytes:
    """The RFC 8785 canonical form of a call's arguments, as the guard hashed them.

    ``args`` is the arguments as the tool received them: JSON text (``str`` or ``bytes``, read
    strictly: duplicate keys, ``NaN`` and non-UTF-8 bytes are refused) or a decoded value (a
    ``dict``...). ``None`` means ``{}``, as in :meth:`microloop.Guardrail.check`.

    Raises:
        ApprovalError: ``unrepresentable``: JCS has no single form for these arguments.
    """
    import rfc8785

    try:
        if args is None:
            value: Any = {}
        elif isinstance(args, (bytes, bytearray, memoryview)):
            value = json.loads(bytes(args).decode("utf-8"), object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
        elif isinstance(args, str):
            value = json.loads(args, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
        else:
            value = args
        _check_ints(value)
        return bytes(rfc8785.dumps(value))
    except (ValueError, TypeError, rfc8785.CanonicalizationError) as e:
        raise ApprovalError("unrepresentable", f"the arguments have no RFC 8785 canonical form ({e})") from None


def args_sha256(args: Any) -> str:
    """The lower-case hex SHA-256 of :func:`canonical_args` (the token's ``args_sha256`` claim,
    and the audit log's)."""
    return hashlib.sha256(canonical_args(args)).hexdigest()


def thumbprint(public: bytes) -> str:
    """The RFC 7638 thumbprint of an Ed25519 public key (the default ``kid``)."""
    canon = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64url(public)}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canon.encode()).digest())


def _public_of(key: Any) -> bytes:
    """The 32 bytes of an Ed25519 public key given as a verifier string or a key object."""
    if isinstance(key, str):
        from .audit import Verifier

        return Verifier.parse(key).public
    if isinstance(key, (bytes, bytearray)) and len(key) == 32:
        return bytes(key)
    from cryptography.hazmat.primitives import serialization

    return bytes(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def jwk(key: Any, kid: Optional[str] = None) -> Dict[str, str]:
    """An Ed25519 public key (a verifier string such as ``microloop keys new`` prints, 32 raw bytes,
    or a ``cryptography`` public key) as a JWK; ``kid`` defaults to its RFC 7638 thumbprint, as
    the guard's does."""
    public = _public_of(key)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(public), "kid": kid or thumbprint(public), "alg": "EdDSA", "use": "sig"}


def jwks(*keys: Any) -> Dict[str, List[Dict[str, str]]]:
    """A JWK Set of public keys (each as :func:`jwk` takes it, or a ``(key, kid)`` pair)."""
    return {"keys": [jwk(*k) if isinstance(k, tuple) else jwk(k) for k in keys]}


KeySource = Union[str, Mapping[str, Any], Iterable[Any], Any]


def _key_for(keys: KeySource, kid: str) -> Any:
    """The public key ``keys`` holds for ``kid``, or None."""
    jwt = _jwt()
    if hasattr(keys, "get_signing_key"):  # a jwt.PyJWKClient (a remote JWKS)
        try:
            return keys.get_signing_key(kid).key
        except jwt.PyJWKClientError:
            return None
    if isinstance(keys, str):
        public = _public_of(keys)
        return jwt.PyJWK(jwk(public)).key if thumbprint(public) == kid else None
    if isinstance(keys, Mapping):
        if "keys" in keys and isinstance(keys["keys"], list):
            return _key_for(keys["keys"], kid)
        if "kty" in keys:
            k = dict(keys)
            if k.get("kty") != "OKP" or k.get("crv") != "Ed25519" or not isinstance(k.get("x"), str):
                return None
            x = k["x"]
            if k.get("kid", thumbprint(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))) != kid:
                return None
            return jwt.PyJWK(k, algorithm="EdDSA").key
        if kid in keys:
            v = keys[kid]
            if isinstance(v, Mapping):
                return jwt.PyJWK(dict(v), algorithm="EdDSA").key
            return jwt.PyJWK(jwk(_public_of(v), kid)).key
        return None
    if isinstance(keys, Iterable):
        for item in keys:
            found = _key_for(item, kid)
            if found is not None:
                return found
        return None
    raise TypeError(f"keys: a verifier string, a JWK, a JWK Set, a {{kid: key}} mapping, a PyJWKClient or a list of these, not {type(keys).__name__}")


def verify(
    token: str,
    tool: str,
    args: Any,
    *,
    keys: KeySource,
    audience: str,
    issuer: Optional[str] = "microloop",
    leeway: float = 5.0,
    seen: Any = _DEFAULT,
) -> Dict[str, Any]:
    """Checks that ``token`` approves running ``tool`` with ``args``; returns its claims.

    Args:
        token: the compact JWS (:attr:`microloop.Verdict.approval`, or MCP's
            ``params._meta["dev.microloop/approval"]``).
        tool: the tool about to run.
        args: its arguments as received: JSON text (``str``/``bytes``: hash what was sent, before a
            framework rewrites it) or the decoded value.
        keys: the guard's public keys: a verifier string (``microloop keys new`` prints it), a JWK,
            a JWK Set (what the proxy serves at ``/.well-known/microloop/jwks.json``), a
            ``{kid: key}`` mapping, a ``jwt.PyJWKClient``, or a list of these. Keys are chosen by the
            token's ``kid``: during a rotation give the old and the new.
        audience: this server's audience; the token's ``aud`` must equal it.
        issuer: the expected ``iss`` (``None``: any).
        leeway: seconds of clock skew allowed on ``exp`` and ``iat``.
        seen: where used token ids are kept (:class:`SeenSet`): by default one in-memory set per
            process; ``None`` turns the replay check off (a second look at the same token).

    Raises:
        ApprovalError: the token does not approve this call (its ``reason`` says why).
    """
    jwt = _jwt()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as e:
        raise ApprovalError("malformed", f"not a compact JWS ({e})") from None
    if header.get("alg") != "EdDSA" or header.get("typ") != TOKEN_TYPE:
        raise ApprovalError("type", f"not an approval token (alg {header.get('alg')!r}, typ {header.get('typ')!r})")
    kid = header.get("kid")
    key = _key_for(keys, kid) if isinstance(kid, str) else None
    if key is None:
        raise ApprovalError("unknown_key", f"signed by a key not among the trusted keys (kid {kid!r})")
    options: Dict[str, Any] = {"require": _CLAIMS}
    try:
        claims: Dict[str, Any] = jwt.decode(
            token, key, algorithms=["EdDSA"], audience=audience, issuer=issuer, leeway=leeway, options=options
        )
    except jwt.ExpiredSignatureError:
        raise ApprovalError("expired", "the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise ApprovalError("not_yet_valid", "the token is issued in the future") from None
    except jwt.InvalidAudienceError as e:
        raise ApprovalError("audience", f"the token is for another audience ({e})") from None
    except jwt.InvalidIssuerError as e:
        raise ApprovalError("issuer", f"the token has another issuer ({e})") from None
    except jwt.InvalidSignatureError:
        raise ApprovalError("signature", "the signature does not verify") from None
    except jwt.InvalidTokenError as e:
        raise ApprovalError("malformed", str(e)) from None
    if claims["tool"] != tool:
        raise ApprovalError("tool", f"the token approves {claims['tool']!r}, not {tool!r}")
    got = args_sha256(args)
    if not isinstance(claims["args_sha256"], str) or not hmac.compare_digest(got, claims["args_sha256"]):
        raise ApprovalError("arguments", "the arguments are not the ones approved (their RFC 8785 SHA-256 differs)")
    if seen is _DEFAULT:
        seen = _DEFAULT_SEEN
    if seen is not None and not seen.add(str(claims["jti"]), int(claims["exp"])):
        raise ApprovalError("replayed", f"the token {claims['jti']} was already used")
    return claims
