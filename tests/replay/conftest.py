"""The HTML report in a real headless Chromium (Debian's `chromium`); `make test-replay`."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))  # the sample logs (replay_samples.py)
ARTIFACTS = os.environ.get("MICROLOOP_ARTIFACTS") or os.path.join(ROOT, "build", "test-artifacts")
