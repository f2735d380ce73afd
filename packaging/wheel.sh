#!/usr/bin/env bash
# `make wheel`: the sdist, then from it one manylinux2014 (glibc 2.17) abi3 wheel per architecture,
# cross-linked with zig (no Docker): cargo-zigbuild builds the Rust library and the commands for
# <triple>.2.17, the same zig compiles and links the cffi extension, auditwheel checks the tag.
#
# Environment (the Makefile sets it): CARGO_ZIGBUILD (the pinned cargo-zigbuild), WHEEL_PY (the
# Python of .tools/wheel-venv: ziglang, auditwheel, setuptools, wheel, cffi, build, all pinned),
# WHEEL_ARCHS (default: x86_64, and aarch64 when its Rust standard library is installed),
# WHEEL_DIR (default build/wheelhouse).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
: "${CARGO_ZIGBUILD:?the pinned cargo-zigbuild}" "${WHEEL_PY:?the Python of the wheel tools}"
OUT=${WHEEL_DIR:-$ROOT/build/wheelhouse}
TOOLS=$ROOT/.tools
PROFILE=dist
GLIBC=2.17
# The library and the one executable that holds the three commands (microloop-proxy, -mcp and
# -hook: native/commands), not the proxy's bench tools (loadgen, fake upstream): each link is a
# whole-program (fat LTO) link.
PACKAGES=(-p microloop-ffi -p microloop-commands --lib --bin microloop-commands)

if [ -z "${WHEEL_ARCHS:-}" ]; then
  WHEEL_ARCHS=x86_64
  if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    WHEEL_ARCHS="x86_64 aarch64"
  else
    echo "make wheel: no Rust standard library for aarch64-unknown-linux-gnu (rustup target add" \
      "aarch64-unknown-linux-gnu): building x86_64 only" >&2
  fi
fi

# zig and cargo-zigbuild keep their caches under .tools/, so a second run compiles no libc again.
export CARGO_ZIGBUILD_PYTHON_PATH=$WHEEL_PY
export CARGO_ZIGBUILD_CACHE_DIR=$TOOLS/cache/cargo-zigbuild
export ZIG_GLOBAL_CACHE_DIR=$TOOLS/cache/zig
export ZIG_LOCAL_CACHE_DIR=$TOOLS/cache/zig-local

rm -rf "$OUT" build/wheel-src
mkdir -p "$OUT" build/wheel-src

# The sdist, built once: every wheel is built from it, so it is known to hold what a build needs.
"$WHEEL_PY" -m build --sdist --no-isolation --outdir "$OUT" . >/dev/null
sdist=$(ls "$OUT"/microloop-*.tar.gz)
echo "sdist: $sdist"

for arch in $WHEEL_ARCHS; do
  triple=$arch-unknown-linux-gnu
  echo "== $arch: cargo zigbuild --target $triple.$GLIBC --profile $PROFILE"
  "$CARGO_ZIGBUILD" zigbuild --locked --profile "$PROFILE" --manifest-path native/Cargo.toml \
    --target "$triple.$GLIBC" "${PACKAGES[@]}"
  libdir=$ROOT/native/target/$triple/$PROFILE
  # The zig cc wrapper cargo-zigbuild wrote for this target: it maps the gnu linker flags rustc's
  # static library asks for (-lgcc_s and so on) onto zig's own, and pins glibc 2.17.
  zigcc=$(ls -t "$CARGO_ZIGBUILD_CACHE_DIR"/cargo-zigbuild/*/wrappers/*/zigcc-"$triple.$GLIBC"-*.sh | head -n 1)

  src=build/wheel-src/$arch
  mkdir -p "$src"
  tar -xzf "$sdist" -C "$src" --strip-components 1
  echo "== $arch: the cffi extension and the wheel (zig cc: $zigcc)"
  # LDSHARED replaces the interpreter's own link line (and its rpath to the build machine's Python).
  # MICROLOOP_LINK=shared: the extension loads the shipped libmicroloop.so, no second copy in the wheel.
  (cd "$src" && env MICROLOOP_LIB_DIR="$libdir" MICROLOOP_LINK=shared MICROLOOP_STRIP=0 CC="$zigcc" LDSHARED="$zigcc -shared" \
    CFLAGS="-Wno-unused-command-line-argument" LDFLAGS="-s" \
    "$WHEEL_PY" -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps -w "$ROOT/build/wheel-src/$arch-dist" \
    --config-settings=--build-option=--plat-name=manylinux2014_"$arch" .)
  whl=$(ls "$ROOT/build/wheel-src/$arch-dist"/microloop-*.whl)
  # The tag auditwheel repair would give: manylinux_2_17 (PEP 600) and its alias manylinux2014.
  "$WHEEL_PY" -m wheel tags --remove --platform-tag "manylinux_2_17_$arch.manylinux2014_$arch" "$whl" >/dev/null
  mv "$ROOT/build/wheel-src/$arch-dist"/microloop-*.whl "$OUT"/
done

echo "== auditwheel show"
for arch in $WHEEL_ARCHS; do
  whl=$(ls "$OUT"/microloop-*-cp310-abi3-*manylinux_2_17_"$arch"*.whl)
  report=$("$WHEEL_PY" -m auditwheel show "$whl")
  echo "$report"
  if ! grep -q "consistent with the following platform tag:" <<<"$report" || ! grep -q "\"manylinux_2_17_$arch\"" <<<"$report"; then
    echo "make wheel: auditwheel does not find $(basename "$whl") manylinux_2_17_$arch-compatible" >&2
    exit 1
  fi
  # The abi3 tag names the oldest CPython the wheel loads on; it must be the one Requires-Python
  # (pyproject.toml, copied into the wheel's METADATA) names, or pip installs it where it cannot run.
  "$WHEEL_PY" - "$whl" <<'PY'
import re, sys, zipfile
whl = sys.argv[1]
tag = re.search(r"-cp3(\d+)-abi3-", whl)
with zipfile.ZipFile(whl) as z:
    meta = next(z.read(n).decode() for n in z.namelist() if n.endswith(".dist-info/METADATA"))
req = re.search(r"^Requires-Python: >=3\.(\d+)\s*$", meta, re.M)
if not tag or not req or tag.group(1) != req.group(1):
    sys.exit(f"make wheel: {whl.rsplit('/', 1)[-1]}: the abi3 tag and Requires-Python "
             f"({req.group(0).strip() if req else 'missing'}) disagree")
print(f"abi3 tag cp3{tag.group(1)} = Requires-Python >=3.{req.group(1)}")
PY
done

# cibuildwheel (pyproject.toml) builds the same: a cp310 (abi3) manylinux wheel for each architecture.
ids=$("$WHEEL_PY" -m cibuildwheel --print-build-identifiers --platform linux --archs x86_64,aarch64 2>/dev/null)
for arch in x86_64 aarch64; do
  grep -qx "cp310-manylinux_$arch" <<<"$ids" || { echo "make wheel: cibuildwheel does not build cp310-manylinux_$arch: $ids" >&2; exit 1; }
done
grep -q '^manylinux-x86_64-image = "manylinux2014"' pyproject.toml && grep -q '^manylinux-aarch64-image = "manylinux2014"' pyproject.toml \
  || { echo "make wheel: cibuildwheel is not on the manylinux2014 images" >&2; exit 1; }
ls -l "$OUT"
du -b "$OUT"/*.whl
