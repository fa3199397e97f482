"""A few epochs of BPR-MF and two-tower on CUDA with mixed precision: metrics and time.

Usage (called by benchmarks/gpu_check.sh):
    python benchmarks/neural_gpu_accuracy.py [--synthetic N] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

GOLDEN = Path(os.environ.get("ZENREC_DATA", "/work/shared/data")) / "golden" / "ml-1m-recbole-split"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--synthetic", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    from zenrec.evaluation import evaluate_ranking
    from zenrec.models import create_model

    if args.synthetic:
        from zenrec.data import synthetic_dataset
        from zenrec.splits import user_random_split

        ds = synthetic_dataset(
            n_users=max(100, args.synthetic // 100), n_items=3000, interactions_per_user=100, seed=0
        )
        split = user_random_split(ds, (0.8, 0.1, 0.1), seed=0)
    else:
        from zenrec.data import load_dataset
        from zenrec.splits import fixed_split

        split = fixed_split(GOLDEN, base=load_dataset("ml-1m"))[0]
    for name, params in [("bprmf", {"eval_every": 2}), ("twotower", {"eval_every": 2})]:
        for precision in ("bf16", "fp32"):
            m = create_model(
                name,
                epochs=args.epochs,
                device=args.device,
                precision=precision,
                progress=False,
                **params,
            )
            t0 = time.perf_counter()
            m.fit(split.train, split.valid)
            fit = time.perf_counter() - t0
            res = evaluate_ranking(
                m,
                split.test,
                [split.train, split.valid],
                ks=[10],
                metrics=["ndcg", "recall"],
                beyond_accuracy=False,
            )
            print(
                json.dumps(
                    {
                        "model": name,
                        "precision": precision,
                        "device": str(m.device_),
                        "epochs": len(m.history_),
                        "best_epoch": m.train_result_.best_epoch,
                        "fit_seconds": round(fit, 2),
                        "seconds_to_best": round(m.train_result_.seconds_to_best or 0, 2),
                        **{k: round(v, 4) for k, v in res.metrics.items()},
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
