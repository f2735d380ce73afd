#!/usr/bin/env bash
# Added latency of microloop-proxy, in one run: the same open-loop load against a fake upstream
# directly and through the proxy, at a fixed rate and then flat out; Chat Completions, then the
# Responses API (a request carrying a tool call and its output, as an agent's second turn does).
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
BODY=$(mktemp)
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -f "$BODY"; }
trap cleanup EXIT
cat >"$BODY" <<'JSON'
{"model":"m","tools":[{"type":"function","name":"read_file","parameters":{"type":"object","properties":{"path":{"type":"string"}}}}],"input":[{"role":"user","content":"Summarise a.txt"},{"type":"function_call","call_id":"call_1","name":"read_file","arguments":"{\"path\":\"a.txt\"}"},{"type":"function_call_output","call_id":"call_1","output":"Santa is a story."}]}
JSON
"$BIN/microloop-fake-upstream" "$UP" 2>/dev/null & pids+=($!)
"$BIN/microloop-proxy" --listen "$PX" --upstream "http://$UP" 2>/dev/null & pids+=($!)
for _ in $(seq 50); do
  curl -sf "http://$PX/healthz" >/dev/null && curl -sf -X POST "http://$UP/" >/dev/null && break
  sleep 0.1
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "warm-up"; "$BIN/microloop-loadgen" "http://$PX/v1/chat/completions" 200 2 >/dev/null; "$BIN/microloop-loadgen" "http://$PX/v1/responses" 200 2 "$BODY" >/dev/null
echo "direct  @${RATE}/s: $("$BIN/microloop-loadgen" "http://$UP/v1/chat/completions" "$RATE" "$SECS")"
echo "proxy   @${RATE}/s: $("$BIN/microloop-loadgen" "http://$PX/v1/chat/completions" "$RATE" "$SECS")"
echo "responses direct @${RATE}/s: $("$BIN/microloop-loadgen" "http://$UP/v1/responses" "$RATE" "$SECS" "$BODY")"
echo "responses proxy  @${RATE}/s: $("$BIN/microloop-loadgen" "http://$PX/v1/responses" "$RATE" "$SECS" "$BODY")"
echo "direct  max:      $("$BIN/microloop-loadgen" "http://$UP/v1/chat/completions" 0 10)"
echo "proxy   max:      $("$BIN/microloop-loadgen" "http://$PX/v1/chat/completions" 0 10)"
