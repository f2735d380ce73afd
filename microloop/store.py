"""Sessions kept outside the process: one agent's history shared by many workers, or kept across
restarts, in Redis.

``Guardrail(policy, store=RedisStore(client, key="run:42"))`` loads the session from the store before
every call (``check``, ``record``, ``set_tools``, ``reset``) and saves it after, with optimistic
concurrency: the key holds a version next to the snapshot, and a save is a compare-and-set (one Lua
script) that fails when another worker saved in between; the call is then made again on the newer
session. So two workers checking the same session never lose each other's calls, and a worker
killed between its load and its save loses nothing that was acknowledged (its call never returned).

redis-py is the client (``pip install "microloop[redis]"``); any object with redis-py's
``hmget`` / ``register_script`` / ``delete`` works.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

__all__ = ["RedisStore", "StoreConflict"]

from .errors import MicroLoopError

# KEYS[1]: the session's key. ARGV: the version read (0 when the key did not exist), the new snapshot,
# a time to live in milliseconds (0: none). Sets version + 1 and the snapshot only if the version is
# still the one read; returns 1 when it did, 0 when another writer came first.
_COMPARE_AND_SET = """
local current = redis.call('HGET', KEYS[1], 'v')
if (current or '0') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(ARGV[1]) + 1), 's', ARGV[2])
if ARGV[3] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
"""


class StoreConflict(MicroLoopError):
    """A store kept refusing a save because other workers saved first, ``max_attempts`` times in a row."""


class RedisStore:
    """One session's snapshot under ``key`` in Redis (a hash: version ``v``, snapshot ``s``).

    Args:
        client: a ``redis.Redis`` (bytes responses: do not set ``decode_responses``).
        key: the session's key, e.g. ``f"microloop:{thread_id}"``.
        ttl: seconds after the last save before Redis drops the session; ``None`` keeps it.
        max_attempts: how many times a call is made again after a lost compare-and-set before
            :class:`StoreConflict` is raised.
    """

    def __init__(self, client: Any, key: str, *, ttl: Optional[float] = None, max_attempts: int = 1000) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = 0 if ttl is None else max(1, int(ttl * 1000))
        self.max_attempts = max_attempts
        self._cas = client.register_script(_COMPARE_AND_SET)

    def load(self) -> Tuple[int, Optional[bytes]]:
        """``(version, snapshot)``; ``(0, None)`` when the key does not exist."""
        version, snapshot = self.client.hmget(self.key, ["v", "s"])
        if version is None:
            return 0, None
        return int(version), snapshot

    def save(self, version: int, snapshot: bytes) -> bool:
        """Stores ``snapshot`` as version ``version + 1`` if the stored version is still ``version``."""
        return bool(self._cas(keys=[self.key], args=[version, snapshot, self.ttl_ms]))

    def child(self, name: str) -> "RedisStore":
        """The store of a named session (:meth:`Guardrail.session`): the key ``"<key>:<name>"``."""
        return RedisStore(self.client, f"{self.key}:{name}", ttl=self.ttl_ms / 1000 if self.ttl_ms else None, max_attempts=self.max_attempts)

    def clear(self) -> None:
        """Deletes the session from the store."""
        self.client.delete(self.key)

    def __repr__(self) -> str:
        return f"<RedisStore key={self.key!r}>"
