"""Python benchmarks (pytest-benchmark): `make bench-python`; results in bench/RESULTS.md, "## Python".

* guard.check on 256-byte arguments (every call distinct, so every call is allowed and enters the history);
* guard.check + record, the full cost per tool call;
* the verify decorator against a bare call;
* a pure-Python implementation of the identical-call and no-progress rules (the dict-and-counter code
  a user would write instead), on the same calls;
* argument encoding: json vs orjson.

`test_check_percentiles` times calls one by one and prints p50/p99 (pytest-benchmark reports the
median and mean of batches only).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict

import pytest

from microloop import Guardrail, _encode

N_ARGS = 4096


def make_args(i: int) -> dict:
    """About 256 bytes of JSON, different for each i."""
    args = {"query": f"price of item {i} in the catalogue", "page": i % 7, "filters": {"lang": "en", "in_stock": True, "tags": ["a", "b", "c"]}, "note": ""}
    size = len(json.dumps(args, separators=(",", ":")))
    args["note"] = "x" * (256 - size)
    return args


ARGS = [make_args(i) for i in range(N_ARGS)]
assert all(len(json.dumps(a, separators=(",", ":"))) == 256 for a in ARGS[:10])


def fresh_guard() -> Guardrail:
    # Balanced rules; each of the 4096 calls comes back only after it left the 256-call window, so
    # nothing fires. Near-duplicate detection is off: the calls differ in one word and get one answer.
    return Guardrail({"loops": {"max_near_duplicate": 0}})


def test_check_256_byte_args(benchmark) -> None:
    guard = fresh_guard()
    it = iter(range(10**9))

    def check() -> None:
        guard.check("search", ARGS[next(it) % N_ARGS])

    benchmark(check)


def test_check_and_record(benchmark) -> None:
    guard = fresh_guard()
    it = iter(range(10**9))

    def call() -> None:
        v = guard.check("search", ARGS[next(it) % N_ARGS])
        guard.record(v.call_id, "3 results: ...")

    benchmark(call)


def test_check_prencoded_json_bytes(benchmark) -> None:
    guard = fresh_guard()
    encoded = [json.dumps(a).encode() for a in ARGS]
    it = iter(range(10**9))
    benchmark(lambda: guard.check("search", encoded[next(it) % N_ARGS]))


def test_native_check_and_record(benchmark) -> None:
    """The two C calls alone (pre-encoded arguments, one reused verdict): the floor under check + record."""
    from microloop._binding import ffi, lib

    guard = fresh_guard()
    encoded = [_encode.encode_args(a) for a in ARGS]
    v = ffi.new("ml_verdict *", [ffi.sizeof("ml_verdict")])
    s = guard._s
    out = b"3 results: ..."
    it = iter(range(10**9))

    def call() -> None:
        a = encoded[next(it) % N_ARGS]
        lib.ml_check_call(s, b"search", 6, a, len(a), v, ffi.NULL)
        lib.ml_record_result(s, v.call_id, out, len(out), False, ffi.NULL)

    benchmark(call)


def test_check_and_record_prencoded(benchmark) -> None:
    guard = fresh_guard()
    encoded = [_encode.encode_args(a) for a in ARGS]
    it = iter(range(10**9))

    def call() -> None:
        v = guard.check("search", encoded[next(it) % N_ARGS])
        guard.record(v.call_id, "3 results: ...")

    benchmark(call)


def search(query: str, page: int = 0, filters: dict | None = None, note: str = "") -> str:
    return "3 results"


def test_bare_function_call(benchmark) -> None:
    it = iter(range(10**9))
    benchmark(lambda: search(**ARGS[next(it) % N_ARGS]))


def test_verify_decorator(benchmark) -> None:
    wrapped = fresh_guard().verify(search)
    it = iter(range(10**9))
    benchmark(lambda: wrapped(**ARGS[next(it) % N_ARGS]))


class PurePythonLoopGuard:
    """What a user writes without MicroLoop: identical-call counts and no-progress by result hashes."""

    def __init__(self, max_identical: int = 30, max_no_progress: int = 2) -> None:
        self.max_identical = max_identical
        self.max_no_progress = max_no_progress
        self.counts: dict = defaultdict(int)
        self.same_result: dict = defaultdict(int)
        self.last_result: dict = {}

    def check(self, tool: str, args: dict) -> tuple:
        key = tool + json.dumps(args, sort_keys=True, separators=(",", ":"))
        fp = hashlib.blake2b(key.encode(), digest_size=8).digest()
        if self.counts[fp] >= self.max_identical or self.same_result[fp] >= self.max_no_progress:
            return ("block", fp)
        self.counts[fp] += 1
        return ("allow", fp)

    def record(self, fp: bytes, output: str) -> None:
        h = hash(output)
        if self.last_result.get(fp) == h:
            self.same_result[fp] += 1
        else:
            self.same_result[fp] = 0
            self.last_result[fp] = h


def test_pure_python_rules_check_and_record(benchmark) -> None:
    guard = PurePythonLoopGuard(max_identical=10**9, max_no_progress=10**9)
    it = iter(range(10**9))

    def call() -> None:
        _, fp = guard.check("search", ARGS[next(it) % N_ARGS])
        guard.record(fp, "3 results: ...")

    benchmark(call)


@pytest.mark.parametrize("encoder", ["json", "orjson"])
def test_encode_256_byte_args(benchmark, encoder: str) -> None:
    if encoder == "orjson":
        orjson = pytest.importorskip("orjson")
        fn = lambda a: orjson.dumps(a, option=orjson.OPT_NON_STR_KEYS)  # noqa: E731
    else:
        fn = _encode.dumps_stdlib
    it = iter(range(10**9))
    benchmark(lambda: fn(ARGS[next(it) % N_ARGS]))


def timed_checks(guard: Guardrail, start: int, n: int) -> list[int]:
    """`guard.check` on the arguments from `start` on, `n` calls each timed alone (ns), sorted."""
    clock = time.perf_counter_ns
    samples = []
    for i in range(start, start + n):
        a = ARGS[i % N_ARGS]
        t0 = clock()
        guard.check("search", a)
        samples.append(clock() - t0)
    samples.sort()
    return samples


def p50_p99_us(samples: list[int]) -> tuple[float, float]:
    return samples[len(samples) // 2] / 1000, samples[len(samples) * 99 // 100] / 1000


def test_check_percentiles() -> None:
    """guard.check, timed call by call: the budget is p50 < 5 us, p99 < 20 us."""
    guard = fresh_guard()
    for i in range(2000):
        guard.check("search", ARGS[i % N_ARGS])
    samples = timed_checks(guard, 0, 50000)
    p50, p99 = p50_p99_us(samples)
    print(f"\nguard.check 256-byte args ({_encode.ENCODER}): p50 {p50:.2f} us, p99 {p99:.2f} us, max {samples[-1] / 1000:.1f} us")
    assert p50 < 5 and p99 < 20, (p50, p99)


def full_window_guard() -> Guardrail:
    """A guard whose 256-call window is full, every call with its result recorded."""
    guard = fresh_guard()
    for i in range(300):
        v = guard.check("search", ARGS[i % N_ARGS])
        guard.record(v.call_id, f"{i} results: ...")
    return guard


def test_save_full_window(benchmark) -> None:
    """guard.save() of a full 256-call window (issue #22); prints the snapshot's size."""
    guard = full_window_guard()
    data = benchmark(guard.save)
    print(f"\nsnapshot of a full window: {len(data)} bytes")


def test_load_full_window(benchmark) -> None:
    """Guardrail.load() of that snapshot under a shared engine (no policy compile)."""
    guard = full_window_guard()
    data = guard.save()
    engine = guard.engine
    benchmark(lambda: Guardrail.load(data, engine))


def test_check_through_a_redis_store_percentiles() -> None:
    """guard.check through RedisStore against a local redis-server (issue #22), timed call by call
    next to the in-memory check; the session holds a full 256-call window."""
    import os
    import sys

    redis = pytest.importorskip("redis")
    from microloop.store import RedisStore

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import redis_server

    if not redis_server.available():
        pytest.skip("no redis-server")
    with redis_server.redis_server() as port:
        client = redis.Redis(port=port)
        guards = {"in memory": fresh_guard(), "redis store": Guardrail({"loops": {"max_near_duplicate": 0}}, store=RedisStore(client, "bench"))}
        for name, guard in guards.items():
            for i in range(300):
                guard.record(guard.check("search", ARGS[i % N_ARGS]).call_id, "3 results: ...")
            p50, p99 = p50_p99_us(timed_checks(guard, 300, 3000))
            print(f"\nguard.check, {name}: p50 {p50:.1f} us, p99 {p99:.1f} us")
