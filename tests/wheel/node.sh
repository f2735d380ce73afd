#!/usr/bin/env bash
# `make test-node-pack`: `npm pack` of bindings/node with the prebuilt linux-x64 library inside
# (the zig-linked, glibc 2.17 build `make wheel` made), installed into an empty project and run
# against the shared vectors on a PATH with node and npm but no cargo and no C compiler.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/wheel/lib.sh"
LIB=${MICROLOOP_PREBUILT_LIB:-$ROOT/native/target/x86_64-unknown-linux-gnu/dist/libmicroloop.so}
WORK=$ROOT/build/wheel-test/node
rm -rf "$WORK"
mkdir -p "$WORK/pkg/prebuilds/linux-x64" "$WORK/project/test" "$WORK/home"

# The package staged apart from the checkout (whose bindings/node loads `make lib`'s build).
cp "$ROOT"/bindings/node/{package.json,index.js,index.d.ts,approval.mjs,README.md} "$WORK/pkg/"
cp "$LIB" "$WORK/pkg/prebuilds/linux-x64/libmicroloop.so"
bare=$(bare_path "$WORK/bin" sh env node npm)
run_bare() { env PATH="$bare" HOME="$WORK/home" npm_config_cache="$WORK/home/.npm" "$@"; }
tgz=$(cd "$WORK/pkg" && run_bare npm pack --silent --pack-destination "$WORK")
echo "npm pack: $tgz ($(du -h "$WORK/$tgz" | cut -f1))"
tar -tzf "$WORK/$tgz" > "$WORK/contents.txt"
grep -qx 'package/prebuilds/linux-x64/libmicroloop.so' "$WORK/contents.txt" \
  || { echo "test-node-pack: the pack has no prebuilds/linux-x64/libmicroloop.so" >&2; exit 1; }

cd "$WORK/project"
echo '{"name": "empty-project", "version": "1.0.0", "private": true}' > package.json
run_bare npm install --no-audit --no-fund --loglevel=error "$WORK/$tgz"
cp "$ROOT"/bindings/node/test/{vectors,session}.test.js test/
cat > test/installed.test.js <<'JS'
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const ml = require('microloop');

test('the installed package loads the library it carries', () => {
  assert.equal(ml.libraryPath, path.join(__dirname, '..', 'node_modules', 'microloop', 'prebuilds', 'linux-x64', 'libmicroloop.so'));
});
JS
run_bare MICROLOOP_NODE_PACKAGE=microloop MICROLOOP_VECTORS="$ROOT/tests/vectors" node --test test/
