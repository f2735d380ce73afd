#!/usr/bin/env bash
# Soak: microloop-proxy at a fixed rate for N minutes against the fake upstream (the Chat Completions
# route, open loop: microloop-loadgen). One line per minute: that minute's latency percentiles and
# errors from the load generator, the proxy's peak RSS during the minute (sampled twice a second),
# then its RSS and open file descriptors a second after the minute's load (the client's connections
# closed; the upstream ones kept for reuse still open) and the machine's load average.
#   bash bench/soak.sh [MINUTES=30] [RATE=1000]
# Ends with the proxy at rest (190 s after the load, when its idle upstream connections have closed)
# and the growth of RSS and descriptors from the end of minute 5 (or the first, for shorter runs)
# to the last minute. Record the output in bench/RESULTS.md under "## Proxy soak".
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-30}
RATE=${2:-1000}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked --manifest-path native/Cargo.toml -p microloop-proxy >&2
BIN=native/target/release
UP=127.0.0.1:20149
PX=127.0.0.1:20148
pids=()
cleanup() { for p in "${pids[@]}" ${sampler:-}; do kill "$p" 2>/dev/null || true; done; rm -f "${peak:-}"; }
trap cleanup EXIT
"$BIN/microloop-fake-upstream" "$UP" 2>/dev/null & pids+=($!)
"$BIN/microloop-proxy" --listen "$PX" --upstream "http://$UP" 2>/dev/null & PROXY=$!; pids+=($PROXY)
for _ in $(seq 50); do
  curl -sf "http://$PX/healthz" >/dev/null && curl -sf -X POST "http://$UP/" >/dev/null && break
  sleep 0.1
done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$PROXY/status"; }
fds() { ls "/proc/$PROXY/fd" | wc -l; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_fds=$(fds)
echo "proxy @${RATE}/s for ${MINUTES} min; start: rss $(rss) kB, fds $start_fds"
base_min=$(( MINUTES >= 6 ? 5 : 1 ))
peak=$(mktemp)
for m in $(seq "$MINUTES"); do
  # The minute's peak RSS, sampled twice a second while the load runs.
  echo 0 >"$peak"
  ( max=0; while :; do r=$(rss); [ "$r" -gt "$max" ] && max=$r && echo "$max" >"$peak"; sleep 0.5; done ) &
  sampler=$!
  line=$("$BIN/microloop-loadgen" "http://$PX/v1/chat/completions" "$RATE" 60)
  kill "$sampler"; wait "$sampler" 2>/dev/null || true; sampler=
  sleep 1
  r=$(rss); f=$(fds)
  echo "minute $m: $line | rss ${r} kB (peak $(cat "$peak")), fds ${f} | load $(cut -d' ' -f1 /proc/loadavg)"
  [ "$m" -eq "$base_min" ] && base_rss=$r && base_fds=$f
done
kill -0 "$PROXY" || { echo "the proxy died"; exit 1; }
# At rest: once the upstream connections kept for reuse are gone (the pool drops a connection idle
# for 90 s at its next sweep, so within 180 s), a descriptor still open is a leak, and the RSS is
# what the process keeps for good.
sleep 190
echo "at rest 190 s after the load: rss $(rss) kB, fds $(fds) (at start: $start_fds)"
echo "growth from the end of minute ${base_min} to the end: rss ${base_rss} -> ${r} kB ($(awk "BEGIN {printf \"%+.1f\", ($r - $base_rss) * 100 / $base_rss}")%), fds ${base_fds} -> ${f}"
