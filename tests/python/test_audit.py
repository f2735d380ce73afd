"""The audit log from Python: written by the library under an ``[audit]`` policy, checked by
``microloop audit verify`` (an independent verifier on ``cryptography``), tampered with."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

pytest.importorskip("cryptography")

from microloop import Guardrail, PolicyError  # noqa: E402
from microloop import audit  # noqa: E402
from microloop.cli import main  # noqa: E402


def run(capsys: pytest.CaptureFixture, *argv: str) -> Tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def key(tmp_path: Path, capsys: pytest.CaptureFixture) -> Tuple[Path, str]:
    """A signer key written by ``microloop keys new`` and its verifier string."""
    path = tmp_path / "audit.key"
    code, out, err = run(capsys, "keys", "new", "example.com/py-audit", "--out", str(path))
    assert code == 0 and "0600" in err
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    return path, out.strip()


def write_log(tmp_path: Path, key_file: Path, calls: int = 12) -> Path:
    """A log written by the library itself (the Rust writer), from two guards on one file."""
    log = tmp_path / "audit.log"
    policy = {"loops": {"max_identical": 3}, "audit": {"path": str(log), "key_file": str(key_file), "checkpoint_every": 5}}
    with Guardrail(policy) as g, Guardrail(policy) as h:
        for i in range(calls):
            v = g.check("search", {"q": "same", "ünï": [1.0, 2]})
            if v.call_id:
                g.record(v.call_id, "same answer")
            h.check("run_sql", {"sql": f"select {i}"})
    return log


def lines(path: Path) -> List[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_a_log_written_by_the_library_verifies(tmp_path: Path, key: Tuple[Path, str], capsys: pytest.CaptureFixture) -> None:
    log = write_log(tmp_path, key[0])
    code, out, _ = run(capsys, "audit", "verify", str(log), "--key", key[1])
    assert code == 0, out
    assert out.startswith(f"ok: {log}: 24 records")
    recs = [json.loads(x) for x in lines(log) if x.startswith('{"seq"')]
    assert [r["seq"] for r in recs] == list(range(24))
    assert {r["action"] for r in recs if r["tool"] == "search"} == {"allow", "warn", "block", "halt"}
    assert [r["rule"] for r in recs if r["action"] == "block"][0] == "loop.no_progress"
    assert len({r["session"] for r in recs}) == 2
    assert "same" not in log.read_text(), "arguments are logged as their hash only"
    rfc8785 = pytest.importorskip("rfc8785")
    import hashlib

    want = hashlib.sha256(rfc8785.dumps({"q": "same", "ünï": [1.0, 2]})).hexdigest()
    assert recs[0]["args_sha256"] == want and recs[0]["args_canon"] == "jcs"
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600


def test_prove_prints_a_proof_that_checks(tmp_path: Path, key: Tuple[Path, str], capsys: pytest.CaptureFixture) -> None:
    log = write_log(tmp_path, key[0])
    code, out, _ = run(capsys, "audit", "prove", str(log), "--key", key[1], "--seq", "7")
    assert code == 0
    p = json.loads(out)
    assert p["seq"] == 7 and p["tree_size"] == 24 and json.loads(p["record"])["seq"] == 7
    # Fold the audit path (RFC 9162 2.1.3.2) to the signed root.
    import hashlib

    fn, sn, r = 7, 23, bytes.fromhex(p["leaf_hash"])
    for h in map(bytes.fromhex, p["path"]):
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + h + r).digest()
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + h).digest()
        fn, sn = fn >> 1, sn >> 1
    assert r.hex() == p["root"]
    assert run(capsys, "audit", "prove", str(log), "--key", key[1], "--seq", "24")[0] == 2


def edit(path: Path, out: Path, f) -> Path:  # type: ignore[no-untyped-def]
    ls = lines(path)
    f(ls)
    out.write_text("\n".join(ls) + "\n", encoding="utf-8")
    return out


@pytest.mark.parametrize(
    "name, change, first_bad",
    [
        ("a changed record", lambda ls: ls.__setitem__(1, ls[1].replace('"call":', '"call":9')), 0),
        ("a removed record", lambda ls: ls.pop(2), 2),
        ("two records swapped", lambda ls: ls.__setitem__(slice(2, 4), [ls[3], ls[2]]), 2),
        ("an appended record", lambda ls: ls.append(ls[0].replace('"seq":0', '"seq":24')), 24),
        ("a truncated log", lambda ls: ls.__delitem__(slice(-3, None)), 20),
        ("a forged checkpoint", lambda ls: ls.__setitem__(5, ls[5].replace("\\n5\\n", "\\n6\\n")), 0),
    ],
)
def test_tampering_is_detected(tmp_path: Path, key: Tuple[Path, str], capsys: pytest.CaptureFixture, name: str, change, first_bad: int) -> None:  # type: ignore[no-untyped-def]
    log = write_log(tmp_path, key[0])
    assert lines(log)[5].startswith('{"checkpoint"')
    bad = edit(log, tmp_path / "bad.log", change)
    code, out, _ = run(capsys, "audit", "verify", str(bad), "--key", key[1])
    assert code == 1, f"{name}: {out}"
    assert out.startswith("TAMPERED") and f"first bad record: seq {first_bad})" in out, f"{name}: {out}"


def test_a_rolled_back_log_fails_against_a_pinned_checkpoint(tmp_path: Path, key: Tuple[Path, str], capsys: pytest.CaptureFixture) -> None:
    log = write_log(tmp_path, key[0])
    pinned = tmp_path / "pinned.note"
    assert run(capsys, "audit", "verify", str(log), "--key", key[1], "--save-checkpoint", str(pinned))[0] == 0
    # Cut back to an earlier checkpoint: a valid log on its own, not against the pin.
    back = edit(log, tmp_path / "back.log", lambda ls: ls.__delitem__(slice(12, None)))
    assert lines(back)[-1].startswith('{"checkpoint"')
    assert run(capsys, "audit", "verify", str(back), "--key", key[1])[0] == 0
    code, out, _ = run(capsys, "audit", "verify", str(back), "--key", key[1], "--trusted", str(pinned))
    assert code == 1 and "rolled back" in out
    code, out, _ = run(capsys, "audit", "verify", str(log), "--key", key[1], "--trusted", str(pinned))
    assert code == 0 and "consistent with the trusted checkpoint" in out


def test_bad_input_exits_2(tmp_path: Path, key: Tuple[Path, str], capsys: pytest.CaptureFixture) -> None:
    log = write_log(tmp_path, key[0], calls=2)
    assert run(capsys, "audit", "verify", str(tmp_path / "missing.log"), "--key", key[1])[0] == 2
    code, _, err = run(capsys, "audit", "verify", str(log), "--key", "not-a-key")
    assert code == 2 and "verifier key" in err
    other = tmp_path / "other.key"
    assert run(capsys, "keys", "new", "example.com/py-audit", "--out", str(other))[0] == 0
    assert run(capsys, "keys", "new", "x", "--out", str(other))[0] == 2, "a key file is never overwritten"
    assert run(capsys, "keys", "new", "bad name", "--out", str(tmp_path / "k3"))[0] == 2
    garbage = tmp_path / "garbage.note"
    garbage.write_text("not a note\n")
    code, _, err = run(capsys, "audit", "verify", str(log), "--key", key[1], "--trusted", str(garbage))
    assert code == 2 and "trusted checkpoint" in err


def test_a_key_from_another_signer_does_not_verify(tmp_path: Path, key: Tuple[Path, str], capsys: pytest.CaptureFixture) -> None:
    log = write_log(tmp_path, key[0], calls=2)
    code, out, _ = run(capsys, "keys", "new", "example.com/py-audit", "--out", str(tmp_path / "k2"))
    code, out, _ = run(capsys, "audit", "verify", str(log), "--key", out.strip())
    assert code == 1 and "no signature by" in out


def test_a_log_that_cannot_be_opened_is_a_policy_error(tmp_path: Path, key: Tuple[Path, str]) -> None:
    with pytest.raises(PolicyError) as e:
        Guardrail({"audit": {"path": str(tmp_path / "no" / "dir" / "a.log"), "key_file": str(key[0])}})
    assert e.value.path == "audit.path"
    with pytest.raises(PolicyError) as e:
        Guardrail({"audit": {"path": str(tmp_path / "a.log"), "key_file": str(tmp_path / "nope")}})
    assert e.value.path == "audit.key_file"


def test_a_process_that_exits_without_closing_still_signs_its_log(tmp_path: Path, key: Tuple[Path, str]) -> None:
    log = tmp_path / "exit.log"
    code = (
        "import microloop, os\n"
        f"g = microloop.Guardrail({{'audit': {{'path': {str(log)!r}, 'key_file': {str(key[0])!r}}}}})\n"
        "for i in range(5): g.check('t', {'i': i})\n"
        "os._exit(0) if False else None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert audit.verify(log, key[1]).records == 5
