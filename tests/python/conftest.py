"""Shared fixtures of the Python suite."""

from __future__ import annotations

import os

import pytest

import microloop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VECTORS = os.path.join(ROOT, "tests", "vectors")
DATA = os.path.join(ROOT, "tests", "data")


def history(guard: microloop.Guardrail) -> tuple:
    """What must not change when a call errors or is blocked."""
    s = guard.stats
    return (s.history_len, s.history_hash)


@pytest.fixture
def guard() -> microloop.Guardrail:
    return microloop.Guardrail("balanced")
