"""``microloop audit verify|prove`` and ``microloop keys new``: the audit log's commands.

Exit codes of ``audit verify``/``audit prove``: 0 the log verifies, 1 it was tampered with (the
first bad record is printed), 2 bad input (a missing file, a malformed key or checkpoint).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

OK, TAMPERED, BAD_INPUT = 0, 1, 2


def _checked(args: argparse.Namespace, work: Callable[[], int]) -> int:
    """Runs ``work``, turning the verifier's two failures into their exit codes."""
    from . import audit

    try:
        return work()
    except audit.BadInput as e:
        print(f"microloop audit: {e}", file=sys.stderr)
        return BAD_INPUT
    except audit.Tampered as e:
        print(f"TAMPERED: {args.log}: {e}")
        return TAMPERED


def _verify(args: argparse.Namespace) -> int:
    from . import audit

    def work() -> int:
        v = audit.verify(args.log, args.key, args.trusted)
        if args.save_checkpoint:
            with open(args.save_checkpoint, "w", encoding="utf-8") as f:
                f.write(v.last_note)
        pinned = " and consistent with the trusted checkpoint" if args.trusted else ""
        print(f"ok: {args.log}: {v.records} records, {v.checkpoints} signed checkpoints{pinned}; last checkpoint:")
        print(v.last_note, end="")
        return OK

    return _checked(args, work)


def _prove(args: argparse.Namespace) -> int:
    from . import audit

    def work() -> int:
        json.dump(audit.prove(args.log, args.key, args.seq).to_json(), sys.stdout, indent=2, ensure_ascii=False)
        print()
        return OK

    return _checked(args, work)


def _keys_new(args: argparse.Namespace) -> int:
    from . import audit

    try:
        v = audit.new_key(args.name, args.out)
    except audit.BadInput as e:
        print(f"microloop keys: {e}", file=sys.stderr)
        return BAD_INPUT
    print(f"wrote the signer key to {args.out} (mode 0600: keep it secret); its verifier key:", file=sys.stderr)
    print(v)
    return OK


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("audit", help="verify the audit log, prove a record is in it")
    a = p.add_subparsers(dest="audit_command", required=True)
    v = a.add_parser("verify", help="check every record, root and signature (exit 0 ok, 1 tampered, 2 bad input)")
    v.add_argument("log")
    v.add_argument("--key", required=True, help="the verifier key string, or a file holding it")
    v.add_argument("--trusted", help="a file holding a signed checkpoint pinned earlier: the log must still contain its tree")
    v.add_argument("--save-checkpoint", metavar="FILE", help="write the last checkpoint to FILE, to pin next time")
    v.set_defaults(func=_verify)
    pr = a.add_parser("prove", help="an inclusion proof of one record (JSON, hashes in hex)")
    pr.add_argument("log")
    pr.add_argument("--key", required=True, help="the verifier key string, or a file holding it")
    pr.add_argument("--seq", type=int, required=True)
    pr.set_defaults(func=_prove)
    p = sub.add_parser("keys", help="signing keys for the audit log")
    k = p.add_subparsers(dest="keys_command", required=True)
    n = k.add_parser("new", help="write a new Ed25519 signer key (0600) and print its verifier key")
    n.add_argument("name", help="the key's name, by convention the log's origin (example.com/agent-audit)")
    n.add_argument("--out", required=True, help="the signer key file to create (never overwritten)")
    n.set_defaults(func=_keys_new)
