"""``import microloop`` and ``import microloop.adapters`` import no framework (they are installed here)."""

import subprocess
import sys

FRAMEWORKS = ["langchain", "langchain_core", "langgraph", "crewai", "autogen_core", "autogen_agentchat", "agents"]


def test_importing_microloop_and_its_adapters_package_imports_no_framework():
    code = (
        "import sys, microloop, microloop.adapters, microloop.adapters._common\n"
        f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
