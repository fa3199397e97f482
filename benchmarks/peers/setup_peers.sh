#!/usr/bin/env bash
# Create the peers' own virtual environments (never zenrec's): RecBole 1.2.1 and Surprise 1.1.5,
# in benchmarks/.venv-recbole and benchmarks/.venv-surprise, and print the variables that point
# zenrec at them (zenrec.runs.peers reads ZENREC_PEER_PYTHON_RECBOLE / _SURPRISE).
# Versions are those that install and run together here (see ../shared/docs/PEERS.md).
# Usage: bash benchmarks/peers/setup_peers.sh [recbole] [surprise]
#        eval "$(bash benchmarks/peers/setup_peers.sh | grep ^export)"
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3.11}
want=${*:-recbole surprise}
if [[ " $want " == *" recbole "* && ! -f .venv-recbole/.ok ]]; then
  $PY -m venv .venv-recbole
  .venv-recbole/bin/pip install --quiet --upgrade pip
  .venv-recbole/bin/pip install --quiet torch==2.13.0
  .venv-recbole/bin/pip install --quiet recbole==1.2.1 numpy==1.26.4 scipy==1.11.4 pandas==2.1.4 \
      ray==2.6.3 "setuptools<70" tabulate thop
  touch .venv-recbole/.ok
fi
if [[ " $want " == *" surprise "* && ! -f .venv-surprise/.ok ]]; then
  $PY -m venv .venv-surprise
  .venv-surprise/bin/pip install --quiet --upgrade pip
  .venv-surprise/bin/pip install --quiet "numpy<2" scikit-surprise==1.1.5
  touch .venv-surprise/.ok
fi
echo "peer environments ready; point zenrec at them with:" >&2
for lib in $want; do
  echo "export ZENREC_PEER_PYTHON_${lib^^}=$PWD/.venv-$lib/bin/python"
done
