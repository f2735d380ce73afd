"""The loop thresholds, generated from the table in native/core/src/policy.rs (`THRESHOLDS`) by
native/rules/tests/policy_docs.rs: `MICROLOOP_BLESS=1 cargo test -p microloop-rules --test policy_docs`.
Do not edit."""
# ruff: noqa: E501

from typing import Dict, Tuple

#: key -> (the rule it sets, its value in strict, balanced and permissive, what it counts)
THRESHOLDS: Dict[str, Tuple[str, Tuple[int, int, int], str]] = {
    "max_identical": ("loop.identical", (10, 30, 100), "the same call (tool + canonical arguments) ran this many times in the window, whatever its results."),
    "max_no_progress": ("loop.no_progress", (1, 2, 4), "the same call returned the same result this many times with no progress (a successful write, or a changed answer) in between."),
    "max_transient_retries": ("loop.transient", (2, 3, 5), "the same call failed with the same transient error (timeout, 429, 502–504, \"rate limit\") this many times back to back."),
    "max_consecutive_errors": ("loop.error", (2, 3, 5), "the same call failed this many times with no progress in between, whatever the error texts."),
    "max_same_error": ("loop.same_error", (3, 0, 10), "a tool returned the identical error this many times in a row, whatever its arguments."),
    "max_near_duplicate": ("loop.near_duplicate", (2, 3, 5), "the same tool with near-identical arguments and a near-identical answer this many times with no progress."),
    "max_near_errors": ("loop.near_error", (2, 2, 4), "a call re-sent after it, and near-identical variations of it, failed this many times with the identical error (what the error echoes of each call's arguments masked), with no progress in between."),
    "max_cycle_period": ("loop.cycle", (4, 4, 4), "the longest cycle looked for (A-B-A-B has period 2)."),
    "max_cycle_repeats": ("loop.cycle", (2, 3, 4), "rounds of the cycle, with no answer in it changing, before it is blocked. `max_cycle_period × max_cycle_repeats` must fit in the window."),
}
