#!/usr/bin/env bash
# Does freezing the loaded heap (gc.freeze, ServeSettings.gc_freeze) change the tail latency of
# one `zenrec serve` worker? p50/p99/p99.9/max of POST /v1/recommend at a fixed rate below
# capacity, with ZENREC_SERVE_GC_FREEZE=true and =false alternated REPEATS times (a fresh server
# each run), ML-1M BPR-MF bundle (the one serve_capacity.sh builds; built here if missing).
#
# Usage (repository root, quiet machine; about 2 x REPEATS x (DURATION + 15) seconds):
#   bash benchmarks/serve_gc.sh
#   RATE=300 DURATION=60 REPEATS=3 WORKERS=1 bash benchmarks/serve_gc.sh
# Prints one table of medians (and every run) and writes $OUT/gc-*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export ZENREC_DATA=${ZENREC_DATA:-$(cd .. && pwd)/shared/data}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
Z=${Z:-.venv/bin/zenrec}
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/serve-capacity}
BUNDLE=${BUNDLE:-$OUT/bprmf-bundle}
RATE=${RATE:-300}           # req/s, below one worker's capacity (serving-profile.md)
DURATION=${DURATION:-60}    # seconds per run: p99.9 of RATE x DURATION requests
REPEATS=${REPEATS:-3}       # alternated pairs
WORKERS=${WORKERS:-1}
PORT=${PORT:-18742}
mkdir -p "$OUT"
[ -f "$BUNDLE/bundle.json" ] || $Z evaluate --dataset ml-1m --protocol recbole --model bprmf \
  --set epochs=10 --save-bundle "$BUNDLE" --output "$OUT/bprmf-eval.json"

SERVER_PID=
stop_server() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}
trap stop_server EXIT

for i in $(seq 1 "$REPEATS"); do
  for freeze in true false; do
    ZENREC_SERVE_GC_FREEZE=$freeze $Z serve "$BUNDLE" --port "$PORT" --workers "$WORKERS" \
      --log-level warning --max-concurrency 256 &
    SERVER_PID=$!
    for _ in $(seq 1 900); do
      $PY -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/readyz', timeout=1)" \
        2>/dev/null && break
      sleep 0.2
    done
    $Z loadtest "http://127.0.0.1:$PORT" --rate "$RATE" --duration 3 --users-from "$BUNDLE" \
      >/dev/null  # warm-up
    $Z loadtest "http://127.0.0.1:$PORT" --rate "$RATE" --duration "$DURATION" \
      --users-from "$BUNDLE" --output "$OUT/gc-$freeze-$i.json" >/dev/null
    stop_server
  done
done

$PY - "$OUT" "$REPEATS" <<'EOF'
import json, statistics, sys
from pathlib import Path
out, repeats = Path(sys.argv[1]), int(sys.argv[2])
cols = ("p50_ms", "p99_ms", "p999_ms", "max_ms")
print("| gc.freeze | achieved/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | runs (p99.9) |")
print("|---|---|---|---|---|---|---|---|")
for freeze in ("true", "false"):
    runs = []
    for i in range(1, repeats + 1):
        d = json.loads((out / f"gc-{freeze}-{i}.json").read_text())
        runs.append(d["steps"][0] if "steps" in d else d)
    med = {c: statistics.median(r[c] for r in runs) for c in cols}
    ach = statistics.median(r["achieved_rps"] for r in runs)
    errs = sum(r["errors"] for r in runs)
    each = ", ".join(f"{r['p999_ms']:.2f}" for r in runs)
    print(f"| {'on' if freeze == 'true' else 'off'} | {ach:.0f} | "
          + " | ".join(f"{med[c]:.2f}" for c in cols) + f" | {errs} | {each} |")
EOF
