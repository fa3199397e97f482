#!/usr/bin/env bash
# SASRec vs EASE/iALS under loo-full, and SASRec under loo-uni100 (docs/results/sequential.md).
# Usage: bash benchmarks/sequential.sh DATASET OUTDIR [KEY=VALUE for sasrec ...]
# Each command takes the bench lock (the machine is shared), one at a time. The loo-uni100 figure
# scores the loo-full bundle on the same split (benchmarks/sequential_sampled.py).
set -euo pipefail
cd "$(dirname "$0")/.."
ds=$1; out=$2; shift 2
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1 ZENREC_DATA=${ZENREC_DATA:-$(cd .. && pwd)/shared/data}
lock() { flock /tmp/zenrec-bench.lock "$@"; }
sets=(--set progress=false --set num_threads=1)
for extra in "$@"; do sets+=(--set "$extra"); done
[[ -f "$out/ease-loo-full.json" ]] || lock .venv/bin/zenrec evaluate --dataset "$ds" --protocol loo-full \
    --model ease --output "$out/ease-loo-full.json"
[[ -f "$out/ials-loo-full.json" ]] || lock .venv/bin/zenrec evaluate --dataset "$ds" --protocol loo-full \
    --model ials --output "$out/ials-loo-full.json"
[[ -f "$out/sasrec-loo-full.json" ]] || lock .venv/bin/zenrec evaluate --dataset "$ds" --protocol loo-full \
    --model sasrec "${sets[@]}" --output "$out/sasrec-loo-full.json" --save-bundle "$out/sasrec-bundle"
lock .venv/bin/python benchmarks/sequential_sampled.py "$ds" "$out/sasrec-bundle" "$out/sasrec-loo-uni100.json"
