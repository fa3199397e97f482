#!/usr/bin/env bash
# What one `zenrec serve` worker serves at p99 <= 10 ms, ML-1M BPR-MF
# and EASE bundles, with `zenrec loadtest` as the independent open-loop generator.
#
# For each bundle, one worker (no pinning: the server's BLAS/torch pools and the generator
# share the machine's cores as the scheduler places them):
#   - fixed rates 200, 500, 1000 req/s on POST /v1/recommend (p50/p99/p99.9, errors);
#   - the --ramp capacity at p99 <= 10 ms of /v1/recommend (known users), of /v1/recommend for
#     unknown users with recent_items (history scoring), with a genres filter, and of GET
#     /healthz of the same app (the HTTP stack's own ceiling);
#   - batch users/s at 1, 10 and 100 users per request (benchmarks/serve_batch.py);
#   - p99 at LOG_RATE req/s (below capacity) without and with --request-log (REPEATS
#     alternated pairs);
#   - RSS and PSS of 1 worker and of 2 workers, and the capacity of 2 workers.
# Then prints one table (benchmarks/serve_capacity_report.py) and writes it to
# $OUT/report.md. Bundles are fitted once and cached under runs/serve-capacity/.
#
# Usage (repository root, quiet machine; about 25 minutes):
#   bash benchmarks/serve_capacity.sh
#   DURATION=5 STEP_DURATION=2 REPEATS=1 MODELS=ease bash benchmarks/serve_capacity.sh   (smoke)
set -euo pipefail
cd "$(dirname "$0")/.."
export ZENREC_DATA=${ZENREC_DATA:-$(cd .. && pwd)/shared/data}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
Z=${Z:-.venv/bin/zenrec}
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/serve-capacity}
DURATION=${DURATION:-20}          # seconds per fixed-rate run
STEP_DURATION=${STEP_DURATION:-5} # seconds per ramp step
REPEATS=${REPEATS:-3}             # request-log on/off pairs
LOG_RATE=${LOG_RATE:-250}         # req/s of the request-log pairs: below capacity
MODELS=${MODELS:-bprmf ease}
RAMP=${RAMP:-500:8000:250}        # /v1/recommend ramp (req/s)
HEALTHZ_RAMP=${HEALTHZ_RAMP:-1000:20000:1000}
PORT=${PORT:-18741}
TARGET_MS=10
mkdir -p "$OUT"

for model in $MODELS; do  # bundles (built once; training is not timed)
  set_opt=(); [ "$model" = bprmf ] && set_opt=(--set epochs=10)
  [ -f "$OUT/$model-bundle/bundle.json" ] || $Z evaluate --dataset ml-1m --protocol recbole \
    --model "$model" "${set_opt[@]}" --save-bundle "$OUT/$model-bundle" \
    --output "$OUT/$model-eval.json"
done

SERVER_PID=
start_server() {  # bundle [serve options...]
  local bundle=$1; shift
  # Admission is not what is measured here: a limit well above the in-flight count at
  # capacity (2,500 req/s x 10 ms = 25).
  $Z serve "$bundle" --port "$PORT" --log-level warning --max-concurrency 256 "$@" &
  SERVER_PID=$!
  for _ in $(seq 1 900); do
    if $PY -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/readyz', timeout=1)" \
      2>/dev/null; then
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

memory() {  # output.json: RSS and PSS (MiB) of the server and each of its worker processes
  $PY - "$SERVER_PID" "$1" <<'EOF'
import json, sys
from pathlib import Path
root = int(sys.argv[1])
def kids(pid):
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        f = task / "children"
        if f.exists():
            out += [int(x) for x in f.read_text().split()]
    return out
def mem(pid):
    got = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("Rss", "Pss"):
            got[k.lower() + "_mib"] = round(int(v.split()[0]) / 1024, 1)
    return got
pids, todo = [], [root]
while todo:
    p = todo.pop()
    pids.append(p)
    todo += kids(p)
procs = {str(p): mem(p) for p in pids}
total = round(sum(m["pss_mib"] for m in procs.values()), 1)
json.dump({"processes": procs, "pss_total_mib": total}, open(sys.argv[2], "w"), indent=2)
print(sys.argv[2], json.dumps(procs))
EOF
}

lt() {  # output.json loadtest-options...
  local out=$1; shift
  $Z loadtest "http://127.0.0.1:$PORT" --output "$out" "$@"
}

for model in $MODELS; do
  bundle="$OUT/$model-bundle"
  items=$($PY -c "import json; v = json.load(open('$bundle/vocab.json'))
print(json.dumps(v['items']['ids'][:20]))")
  start_server "$bundle"
  lt "$OUT/$model-warmup.json" --rate 200 --duration 3 --users-from "$bundle" >/dev/null
  for rate in 200 500 1000; do
    lt "$OUT/$model-rate$rate.json" --rate "$rate" --duration "$DURATION" --users-from "$bundle"
  done
  lt "$OUT/$model-ramp-recommend.json" --ramp "$RAMP" --duration "$STEP_DURATION" \
    --users-from "$bundle" --p99-target-ms $TARGET_MS
  lt "$OUT/$model-ramp-history.json" --ramp "$RAMP" --duration "$STEP_DURATION" \
    --users-from "$bundle" --p99-target-ms $TARGET_MS \
    --body-extra "{\"user_id\": null, \"recent_items\": $items}"
  lt "$OUT/$model-ramp-filter.json" --ramp "$RAMP" --duration "$STEP_DURATION" \
    --users-from "$bundle" --p99-target-ms $TARGET_MS --body-extra '{"genres": ["Comedy"]}'
  lt "$OUT/$model-ramp-healthz.json" --endpoint healthz --ramp "$HEALTHZ_RAMP" \
    --duration "$STEP_DURATION" --p99-target-ms $TARGET_MS
  $PY benchmarks/serve_batch.py "http://127.0.0.1:$PORT" --bundle "$bundle" --sizes 1,10,100 \
    --duration "$DURATION" --output "$OUT/$model-batch.json"
  memory "$OUT/$model-memory-1.json"
  stop_server

  # Request-log cost: the same rate without and with the log, alternated.
  logdir=$(mktemp -d)
  export ZENREC_LOADTEST_SALT=loadtest-salt
  for i in $(seq 1 "$REPEATS"); do
    start_server "$bundle"
    lt "$OUT/$model-log-off-$i.json" --rate "$LOG_RATE" --duration "$DURATION" --users-from "$bundle"
    stop_server
    start_server "$bundle" --request-log "$logdir" --request-log-salt-env ZENREC_LOADTEST_SALT
    lt "$OUT/$model-log-on-$i.json" --rate "$LOG_RATE" --duration "$DURATION" --users-from "$bundle"
    stop_server
  done
  rm -rf "$logdir"

  # Two workers sharing the memory-mapped bundle.
  start_server "$bundle" --workers 2
  lt "$OUT/$model-warmup-2.json" --rate 400 --duration 3 --users-from "$bundle" >/dev/null
  memory "$OUT/$model-memory-2.json"
  lt "$OUT/$model-ramp-recommend-2w.json" --ramp "$RAMP" --duration "$STEP_DURATION" \
    --users-from "$bundle" --p99-target-ms $TARGET_MS
  stop_server
done

$PY benchmarks/serve_capacity_report.py "$OUT" $MODELS | tee "$OUT/report.md"
