#!/usr/bin/env bash
# Every side-by-side benchmark of docs/results/, one after the other (run on a quiet machine).
# Usage: bash benchmarks/run_all.sh        (about 45 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
export ZENREC_DATA=${ZENREC_DATA:-$(cd .. && pwd)/shared/data}
bash benchmarks/peers/setup_peers.sh
.venv/bin/python benchmarks/eval_speed.py --repeats 7
.venv/bin/python benchmarks/classic_side_by_side.py --repeats 5
.venv/bin/python benchmarks/rating_side_by_side.py --repeats 3
bash benchmarks/peers/recbole_neural.sh
