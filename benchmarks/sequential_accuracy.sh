#!/usr/bin/env bash
# Accuracy-only runs of docs/results/sequential.md (no times quoted from them, so no bench lock):
# EASE and iALS under loo-full, and SASRec's loo-full bundle re-scored under loo-uni100.
# Usage: bash benchmarks/sequential_accuracy.sh DATASET OUTDIR SASREC_BUNDLE
set -euo pipefail
cd "$(dirname "$0")/.."
ds=$1; out=$2; bundle=$3
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1 ZENREC_DATA=${ZENREC_DATA:-$(cd .. && pwd)/shared/data}
for m in ease ials; do
  [[ -f "$out/$m-loo-full.json" ]] || .venv/bin/zenrec evaluate --dataset "$ds" --protocol loo-full \
      --model $m --output "$out/$m-loo-full.json"
done
[[ ! -d "$bundle" || -f "$out/sasrec-loo-uni100.json" ]] || .venv/bin/python benchmarks/sequential_sampled.py \
    "$ds" "$bundle" "$out/sasrec-loo-uni100.json"
