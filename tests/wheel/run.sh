#!/usr/bin/env bash
# `make test-wheel-python`: the wheel `make wheel` built for this machine, installed into a fresh
# virtualenv on a PATH with no cargo and no C compiler, then used (tests/wheel/test_wheel.py).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/wheel/lib.sh"
WHEEL_DIR=${WHEEL_DIR:-$ROOT/build/wheelhouse}
PYTHON=${PYTHON:-python3}
WORK=$ROOT/build/wheel-test/python
rm -rf "$WORK"
mkdir -p "$WORK/run"

whl=$(ls "$WHEEL_DIR"/microloop-*-cp310-abi3-*manylinux_2_17_"$(uname -m)"*.whl)
echo "wheel: $(basename "$whl") ($(du -h "$whl" | cut -f1))"
"$PYTHON" -m venv "$WORK/venv"
bare=$(bare_path "$WORK/bin" sh env uname readlink)
run_bare() { env PATH="$WORK/venv/bin:$bare" "$@"; }

# Installed where nothing could compile anything: pip must take the wheel as it is.
run_bare "$WORK/venv/bin/pip" install -q --disable-pip-version-check --only-binary :all: "$whl" pytest==8.4.2

cd "$WORK/run"  # not the checkout: `import microloop` must find the installed package
# A C program against the header and library the wheel brought. The compiler comes from the
# full PATH, here, before the tests run on the bare one: the wheel itself needs none.
inc=$("$WORK/venv/bin/python" -c 'import microloop; print(microloop.include_path())')
libdir=$(dirname "$("$WORK/venv/bin/python" -c 'import microloop; print(microloop.lib_path())')")
${CC:-cc} -std=c11 -Wall -Werror -I"$inc" "$ROOT/examples/c/demo.c" -L"$libdir" -lmicroloop -Wl,-rpath,"$libdir" -o "$WORK/c-demo"

cp "$ROOT/tests/wheel/test_wheel.py" "$WORK/run/"
run_bare MICROLOOP_C_DEMO="$WORK/c-demo" "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider test_wheel.py
