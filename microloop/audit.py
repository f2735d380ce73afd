"""Verifying MicroLoop's audit log, independently of the library that wrote it.

The log (``[audit]`` in a policy; format in ``docs/audit.md``) is one JSON object per line: records,
whose bytes are RFC 6962 Merkle leaves, and checkpoints, C2SP ``tlog-checkpoint`` notes signed with
Ed25519 (C2SP ``signed-note``). This module re-derives everything from the file with
``cryptography`` and ``hashlib`` (``pip install microloop[verify]``)::

    from microloop import audit
    result = audit.verify("audit.log", key="example.com/audit+1a2b3c4d+AQ...")
    result.records, result.last_note        # pin last_note: verify(..., trusted=that) next time
    audit.prove("audit.log", key=..., seq=42)  # an inclusion proof, hashes in hex

``verify`` raises :class:`Tampered` (the log was changed: the first bad record and why) or
:class:`BadInput` (a missing file, a malformed key or pinned checkpoint).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

__all__ = [
    "BadInput",
    "Checkpoint",
    "Proof",
    "Tampered",
    "Verified",
    "Verifier",
    "new_key",
    "prove",
    "verify",
]

_DASH = "\u2014 "
_ED25519 = 0x01


class BadInput(ValueError):
    """The input could not be read: a missing file, a malformed key or checkpoint."""


class Tampered(Exception):
    """The log is not what its checkpoints signed."""

    def __init__(self, line: int, message: str, first_bad_seq: Optional[int] = None) -> None:
        self.line = line
        self.message = message
        self.first_bad_seq = first_bad_seq
        where = f"line {line}: {message}"
        if first_bad_seq is not None:
            where += f" (first bad record: seq {first_bad_seq})"
        super().__init__(where)


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise BadInput("verifying needs the 'cryptography' package: pip install 'microloop[verify]'") from e
    return ed25519


def _key_id(name: str, public: bytes) -> int:
    d = hashlib.sha256(name.encode() + b"\n" + bytes([_ED25519]) + public).digest()
    return int(struct.unpack(">I", d[:4])[0])


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() or c == "+" for c in name)


def _split_key(text: str, what: str) -> Tuple[str, int, bytes]:
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise BadInput(f"not a {what} key: expected <name>+<key id>+<base64 key>")
    name, hex_id, b64 = parts
    if not _valid_name(name):
        raise BadInput(f"the {what} key's name {name!r} is not valid")
    if len(hex_id) != 8:
        raise BadInput(f"the {what} key's id {hex_id!r} is not 8 hex digits")
    try:
        key_id = int(hex_id, 16)
        raw = base64.b64decode(b64, validate=True)
    except ValueError as e:
        raise BadInput(f"the {what} key is not valid: {e}") from None
    if len(raw) != 33 or raw[0] != _ED25519:
        raise BadInput(f"the {what} key is not an Ed25519 key (algorithm 1, 32 bytes)")
    return name, key_id, raw[1:]


@dataclass(frozen=True)
class Verifier:
    """A note verifier key: ``<name>+<8 hex digits>+<base64(0x01 || public key)>`` (Go's format)."""

    name: str
    key_id: int
    public: bytes

    @classmethod
    def parse(cls, text: str) -> "Verifier":
        """Reads a verifier key string, or a file holding one."""
        if "+" not in text and os.path.exists(text):
            with open(text, encoding="utf-8") as f:
                text = f.read()
        name, key_id, public = _split_key(text, "verifier")
        if _key_id(name, public) != key_id:
            raise BadInput("the verifier key's id does not match its name and key")
        return cls(name, key_id, public)

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{base64.b64encode(bytes([_ED25519]) + self.public).decode()}"

    def open(self, note: str) -> str:
        """Checks a signed note and returns its text; signatures by other keys are ignored, one by
        this key must verify. Raises ``ValueError``."""
        split = note.rfind("\n\n")
        if split < 0:
            raise ValueError("not a signed note: no blank line before the signatures")
        text, sigs = note[: split + 1], note[split + 2 :]
        if not sigs.endswith("\n"):
            raise ValueError("not a signed note: the signatures do not end in a newline")
        pk = _crypto().Ed25519PublicKey.from_public_bytes(self.public)
        found = False
        for line in sigs[:-1].split("\n"):
            if not line.startswith(_DASH) or " " not in line[len(_DASH) :]:
                raise ValueError(f"not a signature line: {line!r}")
            name, b64 = line[len(_DASH) :].split(" ", 1)
            try:
                raw = base64.b64decode(b64, validate=True)
            except ValueError:
                raise ValueError(f"a signature is not valid base64: {line!r}") from None
            if len(raw) < 4:
                raise ValueError(f"a signature is too short: {line!r}")
            if name != self.name or struct.unpack(">I", raw[:4])[0] != self.key_id:
                continue
            try:
                pk.verify(raw[4:], text.encode())
            except Exception:
                raise ValueError(f"the signature by {self.name} does not verify") from None
            found = True
        if not found:
            raise ValueError(f"the note has no signature by {self.name}+{self.key_id:08x}")
        return text


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint: origin, tree size, root hash."""

    origin: str
    size: int
    root: bytes

    @classmethod
    def parse(cls, text: str) -> "Checkpoint":
        lines = text.split("\n")
        if len(lines) < 4:
            raise ValueError("a checkpoint has three lines: origin, tree size, root hash")
        origin, size, root = lines[:3]
        if not origin:
            raise ValueError("the checkpoint's origin is empty")
        if not size.isdigit() or (size != "0" and size.startswith("0")):
            raise ValueError(f"the checkpoint's tree size {size!r} is not a number")
        try:
            raw = base64.b64decode(root, validate=True)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise ValueError("the checkpoint's root is not a base64 SHA-256 hash")
        return cls(origin, int(size), raw)


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class _Frontier:
    """An RFC 6962 tree that grows a leaf at a time, keeping its perfect subtrees' roots."""

    def __init__(self) -> None:
        self.size = 0
        self.roots: List[bytes] = []

    def push(self, h: bytes) -> None:
        s = self.size
        while s & 1:
            h = _node(self.roots.pop(), h)
            s >>= 1
        self.roots.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self.roots:
            return hashlib.sha256(b"").digest()
        acc = self.roots[-1]
        for left in reversed(self.roots[:-1]):
            acc = _node(left, acc)
        return acc


def _root_of(leaves: List[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return _node(_root_of(leaves[:k]), _root_of(leaves[k:]))


def _path(leaves: List[bytes], index: int) -> List[bytes]:
    if len(leaves) <= 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < k:
        return _path(leaves[:k], index) + [_root_of(leaves[k:])]
    return _path(leaves[k:], index - k) + [_root_of(leaves[:k])]


@dataclass
class Verified:
    """A log that verified: its size and its last signed checkpoint (pin ``last_note``)."""

    records: int
    checkpoints: int
    last: Checkpoint
    last_note: str
    lines: List[bytes] = field(default_factory=list, repr=False)
    leaves: List[bytes] = field(default_factory=list, repr=False)


def _read(path: "os.PathLike[str] | str") -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror or e}") from None


def _lines(data: bytes) -> Iterator[bytes]:
    if data:
        yield from data[:-1].split(b"\n")


def _trusted(trusted: Any, key: Verifier) -> Optional[Checkpoint]:
    if trusted is None or isinstance(trusted, Checkpoint):
        return trusted
    text = str(trusted)
    if "\n" not in text:
        text = _read(text).decode("utf-8", "replace")
    try:
        return Checkpoint.parse(key.open(text))
    except ValueError as e:
        raise BadInput(f"the trusted checkpoint: {e}") from None


def verify(log: "os.PathLike[str] | str", key: "Verifier | str", trusted: Any = None, *, keep: bool = False) -> Verified:
    """Verifies a log: records counting up from 0, every checkpoint signed by ``key`` over exactly
    the records before it, no record after the last checkpoint, and (with ``trusted``, a signed
    checkpoint's text, a file holding one, or a :class:`Checkpoint`) the tree it pinned still there.

    Raises :class:`Tampered` or :class:`BadInput`."""
    key = key if isinstance(key, Verifier) else Verifier.parse(key)
    pinned = _trusted(trusted, key)
    data = _read(log)
    if data and not data.endswith(b"\n"):
        n_lines = data.count(b"\n") + 1
        records = sum(1 for ln in data.split(b"\n") if ln.startswith(b'{"seq":'))
        raise Tampered(n_lines, "the log ends in a partial line (truncated)", records)
    f = _Frontier()
    pinned_seen = pinned is None

    def check_pin(line_no: int) -> None:
        nonlocal pinned_seen
        if pinned is not None and not pinned_seen and f.size == pinned.size:
            pinned_seen = True
            if f.root() != pinned.root:
                raise Tampered(line_no, f"the log's first {pinned.size} records differ from the trusted checkpoint's (the log was rewritten)")

    check_pin(0)
    covered = checkpoints = 0
    last: Optional[Tuple[str, Checkpoint]] = None
    origin: Optional[str] = None
    lines: List[bytes] = []
    leaves: List[bytes] = []
    line_no = 0
    for line in _lines(data):
        line_no += 1
        nxt = f.size
        if line.startswith(b'{"seq":'):
            try:
                rec = json.loads(line)
                seq = rec["seq"]
            except (ValueError, KeyError, TypeError) as e:
                raise Tampered(line_no, f"a record that does not parse: {e}", nxt) from None
            if seq != nxt or type(seq) is not int:
                first = min(nxt, seq) if isinstance(seq, int) else nxt
                raise Tampered(line_no, f"record seq {seq} where seq {nxt} was expected (a record was removed, reordered or inserted)", first)
            h = _leaf(line)
            f.push(h)
            if keep:
                lines.append(line)
                leaves.append(h)
            check_pin(line_no)
        elif line.startswith(b'{"checkpoint":'):
            try:
                note = json.loads(line)["checkpoint"]
                cp = Checkpoint.parse(key.open(note))
            except (ValueError, KeyError, TypeError) as e:
                raise Tampered(line_no, f"a checkpoint that does not verify: {e}", covered) from None
            if origin is not None and cp.origin != origin:
                raise Tampered(line_no, f"a checkpoint of another log ({cp.origin!r}, not {origin!r})", covered)
            origin = cp.origin
            if cp.size != nxt:
                raise Tampered(line_no, f"a checkpoint for {cp.size} records after {nxt} records", min(covered, cp.size))
            if cp.root != f.root():
                raise Tampered(line_no, f"the records seq {covered}..{max(nxt - 1, 0)} do not match the checkpoint's root (one of them was changed)", covered)
            covered = nxt
            checkpoints += 1
            last = (note, cp)
        else:
            raise Tampered(line_no, "neither a record nor a checkpoint", nxt)
    if last is None:
        raise Tampered(line_no, "the log has no signed checkpoint", 0)
    if f.size > covered:
        raise Tampered(line_no, f"records seq {covered}..{f.size - 1} follow the last checkpoint: no signature covers them (appended, or the writer did not close)", covered)
    if pinned is not None:
        if pinned.origin != last[1].origin:
            raise Tampered(0, f"the trusted checkpoint is of another log ({pinned.origin!r}, not {last[1].origin!r})")
        if not pinned_seen:
            raise Tampered(line_no, f"the log has {f.size} records but the trusted checkpoint has {pinned.size}: it was rolled back or truncated", f.size)
    return Verified(f.size, checkpoints, last[1], last[0], lines, leaves)


@dataclass(frozen=True)
class Proof:
    """An RFC 6962 inclusion proof of one record in the tree of the log's last checkpoint."""

    seq: int
    record: str
    leaf_hash: str
    tree_size: int
    root: str
    path: List[str]
    checkpoint: str

    def to_json(self) -> Dict[str, Any]:
        return dict(self.__dict__)


def prove(log: "os.PathLike[str] | str", key: "Verifier | str", seq: int) -> Proof:
    """Verifies the log, then proves record ``seq`` is in its last checkpoint's tree."""
    v = verify(log, key, keep=True)
    if not 0 <= seq < v.last.size:
        raise BadInput(f"the log's last checkpoint covers seq 0..{v.last.size - 1}; there is no seq {seq}")
    leaves = v.leaves[: v.last.size]
    return Proof(
        seq=seq,
        record=v.lines[seq].decode("utf-8"),
        leaf_hash=leaves[seq].hex(),
        tree_size=v.last.size,
        root=v.last.root.hex(),
        path=[h.hex() for h in _path(leaves, seq)],
        checkpoint=v.last_note,
    )


def new_key(name: str, path: "os.PathLike[str] | str") -> Verifier:
    """Writes a new Ed25519 signer key to ``path`` (created ``0600``, never overwritten) in Go's
    ``PRIVATE+KEY+<name>+<id>+<base64>`` format and returns its verifier key."""
    if not _valid_name(name):
        raise BadInput(f"the key name {name!r} must be non-empty, without spaces or '+'")
    ed = _crypto()
    from cryptography.hazmat.primitives import serialization

    sk = ed.Ed25519PrivateKey.generate()
    seed = sk.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pk = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = _key_id(name, pk)
    text = f"PRIVATE+KEY+{name}+{key_id:08x}+{base64.b64encode(bytes([_ED25519]) + seed).decode()}\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise BadInput(f"cannot create {path}: {e.strerror or e}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
    return Verifier(name, key_id, pk)
