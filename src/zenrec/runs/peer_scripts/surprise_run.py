"""Run a Surprise algorithm (SVD by default) on predefined folds (Surprise's own interpreter).

Shipped with zenrec as package data and run by path with the interpreter that
``ZENREC_PEER_PYTHON_SURPRISE`` names (``zenrec.runs.peers`` does this; it never imports it):
    $ZENREC_PEER_PYTHON_SURPRISE surprise_run.py FOLD_DIR OUT.json [ALGORITHM [PARAMS_JSON]]
FOLD_DIR holds fold{j}.train.tsv / fold{j}.test.tsv (user, item, rating; tab-separated).
ALGORITHM is a class of the ``surprise`` package (default ``SVD``); PARAMS_JSON its keyword
arguments (``random_state`` is always 0).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import surprise
from surprise import Dataset, Reader, accuracy
from surprise.model_selection import PredefinedKFold


def main() -> None:
    fold_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    name = sys.argv[3] if len(sys.argv) > 3 else "SVD"
    params = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    algorithm = getattr(surprise, name)
    n = len(list(fold_dir.glob("fold*.train.tsv")))
    folds = [
        (str(fold_dir / f"fold{j}.train.tsv"), str(fold_dir / f"fold{j}.test.tsv"))
        for j in range(n)
    ]
    reader = Reader(line_format="user item rating", sep="\t")
    t_total = time.perf_counter()
    data = Dataset.load_from_folds(folds, reader=reader)
    rmses, maes, fit_s = [], [], 0.0
    for trainset, testset in PredefinedKFold().split(data):
        # SVD's defaults: 100 factors, 20 epochs, lr 0.005, reg 0.02
        algo = algorithm(**{**params, "random_state": 0})
        t0 = time.perf_counter()
        algo.fit(trainset)
        fit_s += time.perf_counter() - t0
        pred = algo.test(testset)
        rmses.append(accuracy.rmse(pred, verbose=False))
        maes.append(accuracy.mae(pred, verbose=False))
    rec = {
        "library": "surprise",
        "model": name,
        "rmse": float(np.mean(rmses)),
        "mae": float(np.mean(maes)),
        "fit_seconds": fit_s,
        "total_seconds": time.perf_counter() - t_total,
        "folds": n,
    }
    out.write_text(json.dumps(rec, indent=2))
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
