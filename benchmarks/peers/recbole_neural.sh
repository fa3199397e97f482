#!/usr/bin/env bash
# RecBole BPR/NeuMF vs zenrec bprmf/neumf on ML-1M's golden split (run on a quiet machine).
# Usage: bash benchmarks/peers/recbole_neural.sh [--quick] [--threads N]
set -euo pipefail
cd "$(dirname "$0")/../.."
bash benchmarks/peers/setup_peers.sh recbole
export ZENREC_DATA=${ZENREC_DATA:-$(cd .. && pwd)/shared/data}
.venv/bin/python benchmarks/peers/recbole_neural.py \
    --split-dir "$ZENREC_DATA/golden/ml-1m-recbole-split" --out benchmarks/out/recbole_neural "$@"
