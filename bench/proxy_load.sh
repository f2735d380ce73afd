#!/usr/bin/env bash
# Added latency of microloop-proxy, in one run: the same open-loop load against a fake upstream
# directly and through the proxy, at a fixed rate and then flat out.
#   bash bench/proxy_load.sh [RATE=1000] [SECONDS=20]
# Prints one line per run; record them in bench/RESULTS.md under "## Proxy".
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-1000}
SECS=${2:-20}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked --manifest-path native/Cargo.toml -p microloop-proxy >&2
BIN=native/target/release
UP=127.0.0.1:20139
PX=127.0.0.1:20138
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
"$BIN/microloop-fake-upstream" "$UP" 2>/dev/null & pids+=($!)
"$BIN/microloop-proxy" --listen "$PX" --upstream "http://$UP" 2>/dev/null & pids+=($!)
for _ in $(seq 50); do
  curl -sf "http://$PX/healthz" >/dev/null && curl -sf -X POST "http://$UP/" >/dev/null && break
  sleep 0.1
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "warm-up"; "$BIN/microloop-loadgen" "http://$PX/v1/chat/completions" 200 2 >/dev/null
echo "direct  @${RATE}/s: $("$BIN/microloop-loadgen" "http://$UP/v1/chat/completions" "$RATE" "$SECS")"
echo "proxy   @${RATE}/s: $("$BIN/microloop-loadgen" "http://$PX/v1/chat/completions" "$RATE" "$SECS")"
echo "direct  max:      $("$BIN/microloop-loadgen" "http://$UP/v1/chat/completions" 0 10)"
echo "proxy   max:      $("$BIN/microloop-loadgen" "http://$PX/v1/chat/completions" 0 10)"
