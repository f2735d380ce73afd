#!/usr/bin/env bash
# `make test-go-prebuilt`: bindings/go linked against the prebuilt static library for linux/amd64
# (`make go-prebuilt` puts it and the header into the module), tested with no cargo on PATH.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/tests/wheel/lib.sh"
GO=${GO:-go}
nocargo=$(cargo_free_path)
cd "$ROOT/bindings/go"
# The test binary must not find the checkout's shared library either: it is linked statically.
env PATH="$nocargo" $GO vet -tags microloop_prebuilt ./...
env PATH="$nocargo" $GO test -tags microloop_prebuilt -count=1 -o "$ROOT/build/go-prebuilt.test" -c .
if ldd "$ROOT/build/go-prebuilt.test" | grep -q libmicroloop; then
  echo "test-go-prebuilt: the test binary loads libmicroloop.so: not the static library" >&2
  exit 1
fi
env PATH="$nocargo" $GO test -tags microloop_prebuilt -race -count=1 ./...
