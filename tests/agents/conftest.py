"""The real coding-agent CLIs, run offline and in parallel: every (agent, hooked) run the selected
tests need starts at once in a small thread pool, and each test waits for its own."""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from agents import AGENTS, RUN_TIMEOUT, run_agent  # noqa: E402
from catcher import Catcher  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
AGENTS_BIN = Path(os.environ.get("MICROLOOP_AGENTS_BIN") or ROOT / ".tools" / "agents" / "node_modules" / ".bin")
HOOK_BIN = Path(os.environ.get("MICROLOOP_HOOK_BIN") or ROOT / "native" / "target" / "release" / "microloop-hook")
JOBS = int(os.environ.get("MICROLOOP_AGENTS_JOBS", "3"))


def _require(path: Path, how: str):
    if not path.exists():
        pytest.exit(f"{path} is missing: {how}", returncode=1)


@pytest.fixture(scope="session")
def catcher():
    c = Catcher()
    yield c
    c.close()


@pytest.fixture(scope="session")
def agent_runs(request, tmp_path_factory, catcher):
    """Futures of the runs, keyed by (agent, hooked)."""
    _require(HOOK_BIN, "run `make lib`")
    wanted = []
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        key = (params.get("agent"), params.get("hooked"))
        if key[0] in AGENTS and key[1] is not None and key not in wanted:
            _require(AGENTS_BIN / AGENTS[key[0]].exe, "run `make agents-install`")
            wanted.append(key)
    pool = ThreadPoolExecutor(max_workers=max(1, JOBS))
    futures = {}
    for name, hooked in wanted:
        scratch = tmp_path_factory.mktemp(f"{name}-{'hook' if hooked else 'bare'}")
        futures[(name, hooked)] = pool.submit(run_agent, AGENTS[name](AGENTS_BIN, HOOK_BIN), hooked, scratch,
                                              catcher.url, catcher.seen)
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def agent_run(agent_runs, agent, hooked):
    # Queued behind others at most len(runs) / JOBS times over, each bounded by RUN_TIMEOUT.
    return agent_runs[(agent, hooked)].result(timeout=RUN_TIMEOUT * (1 + len(agent_runs)) + 120)
