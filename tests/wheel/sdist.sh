#!/usr/bin/env bash
# `make test-sdist`: the sdist `make wheel` wrote, installed by pip into a fresh virtualenv, which
# builds it from source with cargo and a C compiler (as where no wheel fits). CARGO_TARGET_DIR is the
# checkout's, so the dependencies `make lib` compiled are reused; the workspace's crates are rebuilt
# from the sdist's copy.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WHEEL_DIR=${WHEEL_DIR:-$ROOT/build/wheelhouse}
PYTHON=${PYTHON:-python3}
WORK=$ROOT/build/wheel-test/sdist
rm -rf "$WORK"
mkdir -p "$WORK"
sdist=$(ls "$WHEEL_DIR"/microloop-*.tar.gz)
"$PYTHON" -m venv "$WORK/venv"
CARGO_TARGET_DIR=$ROOT/native/target "$WORK/venv/bin/pip" install -q --disable-pip-version-check --no-binary microloop "$sdist"
cd "$WORK"
"$WORK/venv/bin/python" - <<'PY'
import os, microloop
site = os.path.dirname(os.path.dirname(microloop.__file__))
assert site.endswith("site-packages"), microloop.__file__
g = microloop.Guardrail("balanced")
actions = []
for _ in range(4):
    v = g.check("open_page", {"url": "https://shop.example/item/42"})
    actions.append(v.action)
    if v.allowed:
        g.record(v.call_id, "Please solve the CAPTCHA to continue.")
assert "block" in actions, actions
assert os.path.exists(microloop.lib_path()) and os.path.exists(os.path.join(microloop.include_path(), "microloop.h"))
print("sdist: built from source, a loop blocked:", actions)
PY
for command in microloop-proxy microloop-hook microloop-mcp; do
  help=$("$WORK/venv/bin/$command" --help)
  grep -q "usage: $command" <<<"$help"
done
echo "sdist: microloop-proxy, microloop-hook and microloop-mcp on bin/"
