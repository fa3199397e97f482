#!/usr/bin/env bash
# Every measurement of docs/results/sequential.md, one bench-lock hold of <= ~10 minutes at a
# time (the machine is shared): long runs are resumable (zenrec benchmark cells; zenrec train
# checkpoints with --resume) and are simply started again until they finish.
# Usage: bash benchmarks/sequential_all.sh OUTDIR
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/sequential}
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1 ZENREC_DATA=${ZENREC_DATA:-$(cd .. && pwd)/shared/data}
hold() { flock /tmp/zenrec-bench.lock timeout 590 "$@"; }
again() { for _ in 1 2 3 4 5 6 7 8; do hold "$@" && return 0; done; return 1; }
Z=.venv/bin/zenrec
# Accuracy-only runs (EASE, iALS and the loo-uni100 re-scoring of SASRec's bundle) are in
# benchmarks/sequential_accuracy.sh: their times are not quoted, so they need no lock.
S=(--set progress=false --set num_threads=1)

# 2. RecBole's SASRec on zenrec's ML-100K loo-full split, 1 epoch (about 4 min/epoch on 2 idle cores)
[[ -f "$out/recbole-sasrec-ml100k.json" ]] || hold .venv/bin/python benchmarks/peers/recbole_sasrec.py \
    --dataset ml-100k --epochs 1 --out "$out/recbole-sasrec-ml100k.json"
# 3. multitask and ctr benchmarks (resumable cells)
again $Z benchmark benchmarks/multitask-ml100k.toml --output-dir "$out/multitask-ml100k" --quiet
again $Z benchmark benchmarks/ctr-ml100k.toml --output-dir "$out/ctr-ml100k" --quiet
# 4. ml-1m-ts: SASRec (resumable training, 10 epochs max)
mkdir -p "$out/ml-1m-ts"
again $Z train --dataset ml-1m-ts --protocol loo-full --model sasrec "${S[@]}" --set epochs=10 \
    --set eval_every=2 --set patience=2 --output "$out/ml-1m-ts/sasrec-train" --resume
[[ -f "$out/ml-1m-ts/sasrec-loo-uni100.json" ]] || hold .venv/bin/python benchmarks/sequential_sampled.py \
    ml-1m-ts "$out/ml-1m-ts/sasrec-train/bundle" "$out/ml-1m-ts/sasrec-loo-uni100.json"
