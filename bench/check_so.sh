#!/usr/bin/env bash
# `make bench-wheel-check`: instructions per call of ml_check_call and of ml_record_result
# (callgrind, bench/check_so.c: check_profile's workload, the balanced and the 20-rule policy) in
# each libmicroloop.so given, in this one run: e.g. the wheel's (`dist` profile) against another
# build of it. Totals are divided by the calls made, warm-up included, as in bench/RESULTS.md.
#   check_so.sh LIBDIR...
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CALLS=${MICROLOOP_PROFILE_CALLS:-10000}
[ $# -gt 0 ] || { echo "usage: $0 LIBDIR..." >&2; exit 2; }
mkdir -p "$ROOT/build"
driver=$ROOT/build/check_so
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -I"$ROOT/include" "$ROOT/bench/check_so.c" -L"$1" -lmicroloop -o "$driver"
printf '%-10s %-16s %14s %10s  %s\n' policy function instructions per-call library
for lib in "$@"; do
  for policy in balanced rules; do
    for fn in ml_check_call ml_record_result; do
      arg=$([ "$policy" = rules ] && echo rules || true)
      total=$(LD_LIBRARY_PATH=$lib MICROLOOP_PROFILE_CALLS=$CALLS valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        --toggle-collect="$fn" "$driver" $arg 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
      [ -n "$total" ] || { echo "check_so.sh: callgrind counted nothing in $lib" >&2; exit 1; }
      printf '%-10s %-16s %14s %10s  %s\n' "$policy" "$fn" "$total" $((total / (CALLS + 256))) "$lib/libmicroloop.so"
    done
  done
done
