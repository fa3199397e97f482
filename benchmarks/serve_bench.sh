#!/usr/bin/env bash
# Serving benchmark set-up: builds an ML-1M BPR-MF bundle and an ML-1M EASE bundle under runs/,
# then prints the commands that measure them with the load generator (`zenrec loadtest`, run on
# a quiet machine, one measurement at a time). Nothing here is timed.
#
#   bash benchmarks/serve_bench.sh            # build (skips bundles that exist) and print
#   ZENREC_DATA=/path/to/data bash benchmarks/serve_bench.sh
#
# Figures go to docs/results/serving.md with the command beside each.
set -euo pipefail
cd "$(dirname "$0")/.."
ZENREC=${ZENREC:-.venv/bin/zenrec}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
RUNS=${RUNS:-runs/serve-bench}
mkdir -p "$RUNS"

if [ ! -f "$RUNS/bprmf/bundle/bundle.json" ]; then
  "$ZENREC" train --dataset ml-1m --protocol recbole --model bprmf --output "$RUNS/bprmf"
fi
if [ ! -f "$RUNS/ease/bundle.json" ]; then
  "$ZENREC" evaluate --dataset ml-1m --protocol recbole --model ease --set l2=300 \
    --save-bundle "$RUNS/ease" --output "$RUNS/ease-result.json"
fi
BPR="$RUNS/bprmf/bundle"
EASE="$RUNS/ease"

cat <<MSG

Bundles: $BPR (BPR-MF, 64 factors) and $EASE (EASE, 3.7k x 3.7k item weights).

Measure one at a time, each server alone on its port, the generator on the same machine
(wrap each loadtest in: flock /tmp/zenrec-bench.lock ...). Quote medians of 3 repeats.

# 1. BPR-MF, one worker
$ZENREC serve $BPR --port 8001 --max-concurrency 256 &
for r in 200 500 1000; do
  $ZENREC loadtest http://127.0.0.1:8001 --endpoint recommend --users-from $BPR --rate \$r --duration 30 \\
    --output $RUNS/bprmf-\$r.json
done
$ZENREC loadtest http://127.0.0.1:8001 --endpoint recommend --users-from $BPR --ramp 200:3000:200 \\
  --duration 20 --p99-target-ms 50 --output $RUNS/bprmf-ramp.json
$ZENREC loadtest http://127.0.0.1:8001 --endpoint healthz --ramp 200:6000:200 --duration 20 \\
  --p99-target-ms 50 --output $RUNS/healthz-ramp.json      # the HTTP stack's own ceiling
kill %1

# 2. EASE, one worker (a heavier model per request)
$ZENREC serve $EASE --port 8002 --max-concurrency 256 &
for r in 200 500 1000; do
  $ZENREC loadtest http://127.0.0.1:8002 --endpoint recommend --users-from $EASE --rate \$r --duration 30 \\
    --output $RUNS/ease-\$r.json
done
$ZENREC loadtest http://127.0.0.1:8002 --endpoint recommend --users-from $EASE --ramp 200:3000:200 \\
  --duration 20 --p99-target-ms 50 --output $RUNS/ease-ramp.json
kill %1

# 3. Request-log overhead: p99 at 500 req/s with and without --request-log
$ZENREC serve $BPR --port 8003 --max-concurrency 256 &
$ZENREC loadtest http://127.0.0.1:8003 --endpoint recommend --users-from $BPR --rate 500 --duration 60 \\
  --output $RUNS/bprmf-500-nolog.json
kill %1
ZENREC_SALT=\$(openssl rand -hex 16) $ZENREC serve $BPR --port 8003 --max-concurrency 256 \\
  --request-log $RUNS/requestlog --request-log-salt-env ZENREC_SALT &
$ZENREC loadtest http://127.0.0.1:8003 --endpoint recommend --users-from $BPR --rate 500 --duration 60 \\
  --output $RUNS/bprmf-500-log.json
kill %1

# 4. Retrieval, 1M items x 64 dims (no server)
flock /tmp/zenrec-bench.lock $ZENREC bench retrieval --items 1000000 --dim 64 --queries 300 \\
  --m 16 --ef-construction 40 --ef 64,128,256,512 --json $RUNS/retrieval-1m.json
MSG
