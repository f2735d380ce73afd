"""A worker process of test_store.py: checks and records calls on a session kept in Redis.

Usage: store_worker.py PORT KEY WORKER N ACK_FILE. Checks N calls with arguments unique to this
worker and records each one's result; after each check and each record returns (is acknowledged),
appends `version op call_id index` to ACK_FILE: the store version its save created (so the test can
make the same calls one after another in the store's order), `check` or `record`.
"""

from __future__ import annotations

import sys

import redis

from microloop import Guardrail
from microloop.store import RedisStore


def args_of(worker: int, i: int) -> dict:
    return {"worker": worker, "i": i}


def result_of(worker: int, i: int) -> str:
    return f"result {worker}.{i}"


class VersionedStore(RedisStore):
    """Remembers the version its last successful save created."""

    committed = 0

    def save(self, version: int, snapshot: bytes) -> bool:
        ok = super().save(version, snapshot)
        if ok:
            self.committed = version + 1
        return ok


def main() -> None:
    port, key, worker, n, ack_file = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    store = VersionedStore(redis.Redis(port=port), key)
    guard = Guardrail("balanced", store=store)
    with open(ack_file, "a", buffering=1) as ack:
        for i in range(n):
            v = guard.check("search", args_of(worker, i))
            assert v.allowed, v
            ack.write(f"{store.committed} check {v.call_id} {i}\n")
            guard.record(v.call_id, result_of(worker, i))
            ack.write(f"{store.committed} record {v.call_id} {i}\n")


if __name__ == "__main__":
    main()
