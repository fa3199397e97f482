"""Rating prediction: the MLP ranker's rating head vs BiasedMF, RMSE on folds of surprise-cv5.

Usage:
    ZENREC_DATA=/work/shared/data .venv/bin/python benchmarks/neural_rating.py --dataset ml-100k
        [--folds 1] [--threads 1] [--set k=v ...]

For each fold, 5% of the fold's training ratings (random, seed 0) are held out as validation
for the MLP ranker's early stopping (the test fold is never seen); BiasedMF uses its defaults
on the full training fold. Prints RMSE/MAE and fit seconds per model and fold.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--folds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    from zenrec.cli._common import parse_sets
    from zenrec.data import load_dataset
    from zenrec.evaluation import evaluate_rating, get_protocol, prepare_dataset
    from zenrec.models import create_model
    from zenrec.splits import global_random_split

    proto = get_protocol("surprise-cv5")
    data = prepare_dataset(load_dataset(args.dataset), proto)
    splits = proto.splits(data, proto.default_seed)[: args.folds]
    params = {
        "head": "rating",
        "num_threads": args.threads,
        "progress": False,
        **parse_sets(args.set),
    }
    for j, sp in enumerate(splits):
        inner = global_random_split(sp.train, (0.95, 0.05), seed=0)
        for name, make, fit_args in [
            ("biasedmf", lambda: create_model("biasedmf"), (sp.train,)),
            (
                "mlpranker-rating",
                lambda: create_model("mlpranker", **params),
                (inner.train, inner.test),
            ),
        ]:
            m = make()
            t0 = time.perf_counter()
            m.fit(*fit_args)
            fit = time.perf_counter() - t0
            res = evaluate_rating(m, sp.test).metrics
            print(
                json.dumps(
                    {
                        "dataset": args.dataset,
                        "fold": j,
                        "model": name,
                        "rmse": round(res["rmse"], 4),
                        "mae": round(res["mae"], 4),
                        "fit_seconds": round(fit, 1),
                        "best_epoch": getattr(
                            getattr(m, "train_result_", None), "best_epoch", None
                        ),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
