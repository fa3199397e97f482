#!/usr/bin/env bash
# zenrec serve under zenrec loadtest: one worker process, ML-1M BPR-MF and ML-1M EASE bundles.
#
# For each bundle: fixed rates 200, 500, 1000 req/s on POST /v1/recommend; the --ramp capacity
# at p99 <= 50 ms for /v1/recommend and for GET /healthz of the same app (the HTTP stack's own
# ceiling; their ratio); p99 at 500 req/s without and with --request-log (alternated, REPEATS
# times, medians). JSON under runs/serve-loadtest/, tables in docs/results/serving-loadtest.md.
#
# Usage: bash benchmarks/serve_loadtest.sh          (~15 minutes; on a quiet machine; make bench-serve)
#   DURATION=20 STEP_DURATION=5 REPEATS=3 bash benchmarks/serve_loadtest.sh
# With PIN=1 (default) on a 2-core machine the server is pinned to core 0 and the generator to
# core 1 (taskset); PIN=0 leaves placement to the scheduler (better on a shared machine).
set -euo pipefail
cd "$(dirname "$0")/.."
export ZENREC_DATA=${ZENREC_DATA:-$(cd .. && pwd)/shared/data}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
Z=.venv/bin/zenrec
PY=.venv/bin/python
OUT=${OUT:-runs/serve-loadtest}
DURATION=${DURATION:-20}          # seconds per fixed-rate run
STEP_DURATION=${STEP_DURATION:-5} # seconds per ramp step
REPEATS=${REPEATS:-3}             # request-log on/off pairs
PORT=${PORT:-18731}
mkdir -p "$OUT"

SERVE_PIN=() GEN_PIN=()
if [ "${PIN:-1}" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVE_PIN=(taskset -c 0) GEN_PIN=(taskset -c 1)
fi

# Bundles (built once; training is not timed).
[ -f "$OUT/bprmf-bundle/bundle.json" ] || $Z evaluate --dataset ml-1m --protocol recbole --model bprmf \
  --set epochs=10 --save-bundle "$OUT/bprmf-bundle" --output "$OUT/bprmf-eval.json"
[ -f "$OUT/ease-bundle/bundle.json" ] || $Z evaluate --dataset ml-1m --protocol recbole --model ease \
  --save-bundle "$OUT/ease-bundle" --output "$OUT/ease-eval.json"

SERVER_PID=
start_server() {  # bundle [serve options...]
  local bundle=$1; shift
  "${SERVE_PIN[@]}" $Z serve "$bundle" --port "$PORT" --log-level warning "$@" &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    if $PY -c "import sys,urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/readyz', timeout=1)" 2>/dev/null; then
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "zenrec serve exited" >&2; return 1; }
    sleep 0.2
  done
  echo "zenrec serve did not become ready" >&2; return 1
}
stop_server() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
trap stop_server EXIT
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$SERVER_PID/status"; }

lt() {  # output.json loadtest-options...
  local out=$1; shift
  "${GEN_PIN[@]}" $Z loadtest "http://127.0.0.1:$PORT" --output "$out" "$@"
}

for model in bprmf ease; do
  bundle="$OUT/$model-bundle"
  start_server "$bundle"
  lt "$OUT/$model-warmup.json" --rate 100 --duration 3 --users-from "$bundle" >/dev/null
  for rate in 200 500 1000; do
    lt "$OUT/$model-rate$rate.json" --rate "$rate" --duration "$DURATION" --users-from "$bundle"
  done
  lt "$OUT/$model-ramp-recommend.json" --ramp 100:3000:100 --duration "$STEP_DURATION" \
    --users-from "$bundle" --p99-target-ms 50
  lt "$OUT/$model-ramp-healthz.json" --endpoint healthz --ramp 250:6000:250 \
    --duration "$STEP_DURATION" --p99-target-ms 50
  echo "{\"rss_mb\": $(rss_mb)}" > "$OUT/$model-rss.json"
  stop_server

  # Request-log cost: the same rate without and with the log, alternated.
  logdir=$(mktemp -d)
  export ZENREC_LOADTEST_SALT=loadtest-salt
  for i in $(seq 1 "$REPEATS"); do
    start_server "$bundle"
    lt "$OUT/$model-log-off-$i.json" --rate 500 --duration "$DURATION" --users-from "$bundle"
    stop_server
    start_server "$bundle" --request-log "$logdir" --request-log-salt-env ZENREC_LOADTEST_SALT
    lt "$OUT/$model-log-on-$i.json" --rate 500 --duration "$DURATION" --users-from "$bundle"
    stop_server
  done
  wc -l "$logdir"/requests-*.jsonl | tail -1 > "$OUT/$model-log-lines.txt"
  rm -rf "$logdir"
done

DURATION=$DURATION STEP_DURATION=$STEP_DURATION \
  $PY benchmarks/serve_loadtest_report.py "$OUT" docs/results/serving-loadtest.md
