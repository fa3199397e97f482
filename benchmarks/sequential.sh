#!/usr/bin/env bash
# SASRec vs EASE/iALS under loo-full and loo-uni100 (docs/results/sequential.md).
# Usage: bash benchmarks/sequential.sh DATASET OUTDIR [extra --set for sasrec...]
# Each command takes the bench lock (the machine is shared), one at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
ds=$1; out=$2; shift 2
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1 ZENREC_DATA=${ZENREC_DATA:-$(cd .. && pwd)/shared/data}
run() { flock /tmp/zenrec-bench.lock .venv/bin/zenrec evaluate --dataset "$ds" "$@"; }
sets=(--set progress=false --set num_threads=1)
for extra in "$@"; do sets+=(--set "$extra"); done
run --protocol loo-full --model sasrec "${sets[@]}" --output "$out/sasrec-loo-full.json" \
    --save-bundle "$out/sasrec-bundle"
run --protocol loo-uni100 --model sasrec "${sets[@]}" --output "$out/sasrec-loo-uni100.json"
run --protocol loo-full --model ease --output "$out/ease-loo-full.json"
run --protocol loo-full --model ials --output "$out/ials-loo-full.json"
