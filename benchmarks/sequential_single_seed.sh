#!/usr/bin/env bash
# One-seed accuracy runs of the ctr and multitask comparisons (docs/results/sequential.md), the
# same models and settings as benchmarks/{ctr,multitask}-ml100k.toml, seed 0.
# Usage: bash benchmarks/sequential_single_seed.sh OUTDIR
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1; mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1 ZENREC_DATA=${ZENREC_DATA:-$(cd .. && pwd)/shared/data}
ev() { local label=$1; shift; [[ -f "$out/$label.json" ]] || .venv/bin/zenrec evaluate --dataset ml-100k --seed 0 \
    --set progress=false --set num_threads=1 "$@" --output "$out/$label.json"; }
C=(--set epochs=10 --set valid_metric=auc --set eval_every=1 --set patience=2 --set n_negatives=4)
ev mt-mmoe --protocol multitask --model mmoe --set epochs=20
ev mt-sharedbottom --protocol multitask --model sharedbottom --set epochs=20
ev mt-mlpranker-rating --protocol multitask --model mlpranker --set head=rating --set epochs=20
ev mt-mlpranker-liked --protocol multitask --model mlpranker --set head=click --set epochs=20
ev ctr-mlpranker --protocol ctr --model mlpranker "${C[@]}"
ev ctr-twotower --protocol ctr --model twotower "${C[@]}" --set loss=bce --set history_len=20
ev ctr-din --protocol ctr --model din "${C[@]}" --set history_len=20 --set dim=16 \
    --set 'attention_layers=[32]' --set 'layers=[64,32]'
