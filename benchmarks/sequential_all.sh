#!/usr/bin/env bash
# Every measurement of docs/results/sequential.md: does SASRec beat EASE/iALS under leave-one-out?
# Usage: bash benchmarks/sequential_all.sh [OUTDIR]     (make bench-sequential; default runs/sequential)
# Steps that finished are skipped on a rerun (result files exist; benchmark cells and zenrec
# train checkpoints resume), so an interrupted run is continued by running it again.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/sequential}
mkdir -p "$out/ml-1m-ts"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1} ZENREC_DATA=${ZENREC_DATA:-$(cd .. && pwd)/shared/data}
Z=${ZENREC:-.venv/bin/zenrec}
PY=${PYTHON:-.venv/bin/python}
S=(--set progress=false --set num_threads=1)

# 1. ML-100K loo-full: EASE, iALS, SASRec (its bundle re-scored under loo-uni100, not retrained)
for m in ease ials; do
  [[ -f "$out/$m-loo-full.json" ]] || $Z evaluate --dataset ml-100k --protocol loo-full \
      --model $m --output "$out/$m-loo-full.json"
done
[[ -f "$out/sasrec-loo-full.json" ]] || $Z evaluate --dataset ml-100k --protocol loo-full \
    --model sasrec "${S[@]}" --output "$out/sasrec-loo-full.json" --save-bundle "$out/sasrec-bundle"
[[ -f "$out/sasrec-loo-uni100.json" ]] || $PY benchmarks/sequential_sampled.py ml-100k \
    "$out/sasrec-bundle" "$out/sasrec-loo-uni100.json"
# 2. RecBole's SASRec on zenrec's ML-100K loo-full split, 1 epoch (about 4 min/epoch on 2 cores)
[[ -f "$out/recbole-sasrec-ml100k.json" ]] || $PY benchmarks/peers/recbole_sasrec.py \
    --dataset ml-100k --epochs 1 --out "$out/recbole-sasrec-ml100k.json"
# 3. multi-task and CTR comparisons (benchmark grids; finished cells are kept)
$Z benchmark benchmarks/multitask-ml100k.toml --output-dir "$out/multitask-ml100k" --quiet
$Z benchmark benchmarks/ctr-ml100k.toml --output-dir "$out/ctr-ml100k" --quiet
[[ -s "$out/ctr-temporal.jsonl" ]] || $PY benchmarks/ctr_temporal.py --seeds 0,1,2 \
    --models din,mlpranker,mlpranker-history20,twotower > "$out/ctr-temporal.jsonl"
# 4. ml-1m-ts: SASRec with its defaults (checkpointed training), then loo-uni100
$Z train --dataset ml-1m-ts --protocol loo-full --model sasrec "${S[@]}" \
    --output "$out/ml-1m-ts/sasrec-train" --resume
[[ -f "$out/ml-1m-ts/sasrec-loo-uni100.json" ]] || $PY benchmarks/sequential_sampled.py \
    ml-1m-ts "$out/ml-1m-ts/sasrec-train/bundle" "$out/ml-1m-ts/sasrec-loo-uni100.json"
