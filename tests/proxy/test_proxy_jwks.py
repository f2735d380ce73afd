"""The proxy publishes the `[approval]` key as a JWK Set at /.well-known/microloop/jwks.json, read
by PyJWT's PyJWKClient, which then verifies tokens the Rust core issued (tests/vectors/approval)."""
import json
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest

from harness import stack

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors/approval/approval.json").read_text(encoding="utf-8"))
PATH = "/.well-known/microloop/jwks.json"


def test_the_jwks_serves_the_approval_key(tmp_path):
    key = tmp_path / "approval.key"
    key.write_text(VECTORS["signer_key"] + "\n")
    key.chmod(0o600)
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[approval]\nkey_file = "{key}"\naudience = "tools.test"\n')
    with stack("--policy", str(policy)) as (_, px):
        with urllib.request.urlopen(px + PATH) as r:
            assert r.headers["content-type"] == "application/json"
            assert json.loads(r.read()) == VECTORS["jwks"]
        client = jwt.PyJWKClient(px + PATH)
        for case in VECTORS["cases"]:
            signing = client.get_signing_key_from_jwt(case["token"])
            claims = jwt.decode(case["token"], signing.key, algorithms=["EdDSA"], audience="tools.test")
            assert claims["args_sha256"] == case["args_sha256"]


def test_without_approval_there_is_no_jwks():
    with stack() as (_, px):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(px + PATH)
        assert e.value.code == 404
