"""Approval tokens from Python: issued by the library under an ``[approval]`` policy
(``Verdict.approval``), checked by ``microloop.approval.verify`` on PyJWT and ``rfc8785``, and the
shared vectors (tests/vectors/approval) that Rust, Go and Node check too."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

jwt = pytest.importorskip("jwt")
pytest.importorskip("rfc8785")
pytest.importorskip("cryptography")

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from microloop import Guardrail, PolicyError, approval, audit  # noqa: E402
from microloop.approval import ApprovalError, SeenTokens, verify  # noqa: E402

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "approval" / "approval.json").read_text(encoding="utf-8"))
AUD = "tools.test"


def raw(case: Dict[str, Any]) -> bytes:
    if "args_text" in case:
        return case["args_text"].encode("utf-8")
    return bytes.fromhex(case["args_hex"])


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["name"])
def test_vector_tokens_verify_and_hash_the_same(case: Dict[str, Any]) -> None:
    args = raw(case)
    assert approval.canonical_args(args).decode("utf-8") == case["canonical"]
    assert approval.args_sha256(args) == case["args_sha256"]
    # The decoded value hashes the same as the text.
    assert approval.args_sha256(json.loads(args)) == case["args_sha256"]
    for keys in (VECTORS["verifier"], VECTORS["jwks"], {VECTORS["kid"]: VECTORS["verifier"]}, [VECTORS["jwks"]["keys"][0]]):
        claims = verify(case["token"], case["tool"], args, keys=keys, audience=VECTORS["audience"], seen=SeenTokens())
        assert claims["args_sha256"] == case["args_sha256"]
        assert (claims["call_id"], claims["action"], claims.get("audit_seq")) == (case["call_id"], case["action"], case["audit_seq"])
    # PyJWT alone, with the JWK: nothing of MicroLoop's in the way.
    key = jwt.PyJWK(VECTORS["jwks"]["keys"][0]).key
    plain = jwt.decode(case["token"], key, algorithms=["EdDSA"], audience=VECTORS["audience"])
    assert plain["tool"] == case["tool"] and jwt.get_unverified_header(case["token"])["kid"] == VECTORS["kid"]


@pytest.mark.parametrize("case", VECTORS["unrepresentable"], ids=lambda c: c["name"])
def test_vector_unrepresentable_arguments_are_refused(case: Dict[str, Any]) -> None:
    with pytest.raises(ApprovalError) as e:
        approval.canonical_args(raw(case))
    assert e.value.reason == "unrepresentable"
    token = VECTORS["cases"][0]["token"]
    with pytest.raises(ApprovalError) as e:
        verify(token, VECTORS["cases"][0]["tool"], raw(case), keys=VECTORS["verifier"], audience=AUD, seen=None)
    assert e.value.reason == "unrepresentable"


def test_the_vectors_kid_is_the_rfc7638_thumbprint() -> None:
    assert approval.jwk(VECTORS["verifier"]) == VECTORS["jwks"]["keys"][0]
    assert approval.thumbprint(audit.Verifier.parse(VECTORS["verifier"]).public) == VECTORS["kid"]


@pytest.fixture
def keyed(tmp_path: Path) -> Tuple[Dict[str, Any], str]:
    """A policy with ``[approval]`` and the verifier string of its key."""
    verifier = audit.new_key("example.com/approval", tmp_path / "approval.key")
    policy = {"loops": {"max_identical": 2}, "approval": {"key_file": str(tmp_path / "approval.key"), "audience": AUD}}
    return policy, str(verifier)


def test_an_allowed_call_carries_a_token_the_tool_side_accepts(keyed: Tuple[Dict[str, Any], str]) -> None:
    policy, verifier = keyed
    with Guardrail(policy) as g:
        args = {"q": "café", "n": [1.0, 2], "ünï": {"b": 1, "a": 2}}
        v = g.check("search", args)
        assert v.action == "allow" and v.approval and v.approval_error is None
        claims = verify(v.approval, "search", args, keys=verifier, audience=AUD)
        assert claims["call_id"] == v.call_id and claims["tool"] == "search" and claims["action"] == "allow"
        assert claims["exp"] - claims["iat"] == 60 and "audit_seq" not in claims
        # The same arguments as the agent sent them (text, other order, other spacing).
        text = '{"ünï": {"a": 2, "b": 1}, "n": [1, 2.0], "q": "caf\\u00e9"}'
        assert verify(v.approval, "search", text, keys=verifier, audience=AUD, seen=None)["jti"] == claims["jti"]


def test_the_tool_side_refuses_what_was_not_approved(keyed: Tuple[Dict[str, Any], str], tmp_path: Path) -> None:
    policy, verifier = keyed
    with Guardrail(policy) as g:
        args = {"path": "/etc/hosts"}
        token = g.check("read_file", args).approval
        assert token

        def reason(*, tool: str = "read_file", a: Any = args, keys: Any = verifier, aud: str = AUD, seen: Any = None) -> str:
            with pytest.raises(ApprovalError) as e:
                verify(token, tool, a, keys=keys, audience=aud, seen=seen)
            return e.value.reason

        assert reason(tool="write_file") == "tool"
        assert reason(a={"path": "/etc/shadow"}) == "arguments"
        assert reason(a='{"path": "/etc/hosts", "path": "/etc/hosts"}') == "unrepresentable"
        assert reason(aud="other.example") == "audience"
        other = audit.new_key("example.com/other", tmp_path / "other.key")
        assert reason(keys=str(other)) == "unknown_key"
        # The other key under the token's kid: the signature fails.
        assert reason(keys={jwt.get_unverified_header(token)["kid"]: str(other)}) == "signature"
        seen = SeenTokens()
        verify(token, "read_file", args, keys=verifier, audience=AUD, seen=seen)
        assert reason(seen=seen) == "replayed"
        # A changed byte in the claims.
        h, p, s = token.split(".")
        assert_reason = reason
        token = f"{h}.{p[:-2]}{'A' if p[-2] != 'A' else 'B'}{p[-1]}.{s}"
        assert assert_reason() in ("signature", "malformed")


def test_an_expired_token_or_one_of_another_type_is_refused(tmp_path: Path) -> None:
    sk = Ed25519PrivateKey.generate()
    pub = sk.public_key()
    jwks = approval.jwks(pub)
    kid = jwks["keys"][0]["kid"]
    now = int(time.time())
    claims = {"iss": "microloop", "aud": AUD, "iat": now - 120, "exp": now - 60, "jti": "x", "sid": "s", "call_id": 1,
              "tool": "t", "args_sha256": approval.args_sha256({}), "action": "allow"}
    expired = jwt.encode(claims, sk, algorithm="EdDSA", headers={"kid": kid, "typ": approval.TOKEN_TYPE})
    with pytest.raises(ApprovalError) as e:
        verify(expired, "t", {}, keys=jwks, audience=AUD, seen=None)
    assert e.value.reason == "expired"
    # Within the leeway it passes.
    assert verify(expired, "t", {}, keys=jwks, audience=AUD, seen=None, leeway=90)["jti"] == "x"
    fresh = dict(claims, iat=now, exp=now + 60)
    plain_jwt = jwt.encode(fresh, sk, algorithm="EdDSA", headers={"kid": kid})
    with pytest.raises(ApprovalError) as e:
        verify(plain_jwt, "t", {}, keys=jwks, audience=AUD, seen=None)
    assert e.value.reason == "type"
    with pytest.raises(ApprovalError) as e:
        verify("not a token", "t", {}, keys=jwks, audience=AUD)
    assert e.value.reason == "malformed"


def test_blocked_calls_get_no_token_and_warned_calls_do(keyed: Tuple[Dict[str, Any], str]) -> None:
    policy, verifier = keyed
    with Guardrail(policy) as g:
        seen = []
        for _ in range(6):
            v = g.check("poll", {"job": 1})
            seen.append(v.action)
            if v.allowed:
                assert v.approval and verify(v.approval, "poll", {"job": 1}, keys=verifier, audience=AUD)["action"] == v.action
                g.record(v.call_id, "pending")
            else:
                assert v.approval is None and v.approval_error is None
                break
        assert "warn" in seen and seen[-1] in ("block", "halt")


def test_arguments_jcs_cannot_represent_get_a_reason_not_a_token(keyed: Tuple[Dict[str, Any], str]) -> None:
    policy, _ = keyed
    with Guardrail(policy) as g:
        for args in ('{"id": 9007199254740993}', '{"a": 1, "a": 2}', {"id": 2**60}):
            v = g.check("lookup", args)
            assert v.action == "allow" and v.approval is None
            assert v.approval_error and "RFC 8785" in v.approval_error


def test_without_approval_a_verdict_has_no_token() -> None:
    with Guardrail("balanced") as g:
        v = g.check("search", {"q": 1})
        assert v.approval is None and v.approval_error is None


def test_the_token_names_the_audit_record(keyed: Tuple[Dict[str, Any], str], tmp_path: Path) -> None:
    policy, verifier = keyed
    audit_key = audit.new_key("example.com/audit", tmp_path / "audit.key")
    log = tmp_path / "audit.log"
    policy = dict(policy, audit={"path": str(log), "key_file": str(tmp_path / "audit.key")})

    def run() -> List[Dict[str, Any]]:
        # The log closes (its last checkpoint signed) with the last guard and engine using it.
        with Guardrail(policy) as g:
            out = []
            for i in range(3):
                v = g.check("search", {"q": i})
                out.append(verify(v.approval, "search", {"q": i}, keys=verifier, audience=AUD))
                g.record(v.call_id, f"answer {i}")
            return out

    tokens = run()
    records = {r["seq"]: r for r in map(json.loads, log.read_text().splitlines()) if "seq" in r}
    for claims in tokens:
        r = records[claims["audit_seq"]]
        assert (r["session"], r["call"], r["tool"], r["args_sha256"]) == (claims["sid"], claims["call_id"], "search", claims["args_sha256"])
    assert audit.verify(log, audit_key).records == 3


def test_the_section_is_checked_when_the_policy_is_loaded(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as e:
        Guardrail({"approval": {"key_file": str(tmp_path / "missing.key"), "audience": AUD}})
    assert e.value.path == "approval.key_file"
    with pytest.raises(PolicyError) as e:
        Guardrail({"approval": {"key_file": "k", "audience": AUD, "ttl_seconds": 0}})
    assert e.value.path == "approval.ttl_seconds"
