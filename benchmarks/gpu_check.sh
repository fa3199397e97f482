#!/usr/bin/env bash
# GPU check of zenrec's neural trainer: CUDA + mixed precision, throughput and accuracy.
# Run from the repository root on a fresh CUDA machine (no venv needed; < 5 minutes):
#     bash benchmarks/gpu_check.sh
# Uses ML-1M's golden split when $ZENREC_DATA holds it, else synthetic data of similar size.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x benchmarks/.venv-gpu/bin/python ]; then
  "$PY" -m venv benchmarks/.venv-gpu
  benchmarks/.venv-gpu/bin/pip install -q --upgrade pip
  benchmarks/.venv-gpu/bin/pip install -q torch==2.13.0
  benchmarks/.venv-gpu/bin/pip install -q -e ".[dev]" || benchmarks/.venv-gpu/bin/pip install -q -e .
fi
V=benchmarks/.venv-gpu/bin/python
$V - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-",
      "bf16", torch.cuda.is_available() and torch.cuda.is_bf16_supported())
assert torch.cuda.is_available(), "no CUDA device visible"
PY
EXTRA=()
if [ ! -d "${ZENREC_DATA:-/nonexistent}/golden/ml-1m-recbole-split" ]; then
  echo "ML-1M golden split not found under \$ZENREC_DATA: using synthetic data (~800k interactions)"
  EXTRA=(--synthetic 800000)
fi
echo "== throughput, batch 4096, bf16 autocast"
$V benchmarks/neural_throughput.py --models bprmf twotower --epochs 3 --device cuda --precision bf16 "${EXTRA[@]}"
echo "== throughput, batch 4096, fp32"
$V benchmarks/neural_throughput.py --models bprmf twotower --epochs 3 --device cuda --precision fp32 "${EXTRA[@]}"
echo "== accuracy: 10 epochs with validation every 2 on CUDA, bf16 and fp32"
for model in bprmf twotower; do
  for precision in bf16 fp32; do
    $V benchmarks/neural_ml1m.py $model --device cuda --precision $precision --set epochs=10 \
      --set eval_every=2 "${EXTRA[@]}"
  done
done
