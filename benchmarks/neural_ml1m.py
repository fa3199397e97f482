"""ML-1M under RecBole's protocol (golden split): neural models' accuracy and time to best epoch.

Usage:
    ZENREC_DATA=/work/shared/data .venv/bin/python benchmarks/neural_ml1m.py bprmf [--set k=v ...]
        [--split-dir DIR] [--threads N] [--buckets] [--output FILE.json]
        [--device cuda --precision bf16] [--synthetic N]

``--device``/``--precision`` run it on a GPU (``gpu_check.sh``); ``--synthetic N`` replaces the
golden split by a synthetic dataset of about N interactions split 8:1:1 per user (for machines
without the MovieLens files).

Fits on train with early stopping on valid (NDCG@10), evaluates once on test (full ranking,
train and valid items excluded) and prints NDCG@10 / Recall@10, fit seconds and seconds to the
best epoch; ``--buckets`` adds NDCG@10 by user-activity bucket (train interactions).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

GOLDEN = Path(os.environ.get("ZENREC_DATA", "/work/shared/data")) / "golden" / "ml-1m-recbole-split"
BUCKETS = [(0, 20), (20, 50), (50, 100), (100, 200), (200, 10**9)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--split-dir", default=str(GOLDEN))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--buckets", action="store_true")
    ap.add_argument("--output")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--synthetic", type=int, default=0, metavar="N")
    args = ap.parse_args()
    from zenrec.cli._common import parse_sets
    from zenrec.data import load_dataset
    from zenrec.evaluation import evaluate_ranking
    from zenrec.models import create_model
    from zenrec.splits import fixed_split

    params = {
        "num_threads": args.threads,
        "progress": False,
        "device": args.device,
        "precision": args.precision,
        **parse_sets(args.set),
    }
    if args.synthetic:
        from zenrec.data import synthetic_dataset
        from zenrec.splits import user_random_split

        n_users = max(100, args.synthetic // 100)
        ds = synthetic_dataset(n_users=n_users, n_items=3000, interactions_per_user=100, seed=0)
        split = user_random_split(ds, (0.8, 0.1, 0.1), seed=0)
    else:
        split, _ = fixed_split(args.split_dir, base=load_dataset("ml-1m"))
    model = create_model(args.model, **params)
    t0 = time.perf_counter()
    model.fit(split.train, split.valid)
    fit_s = time.perf_counter() - t0
    res = evaluate_ranking(
        model,
        split.test,
        [split.train, split.valid],
        ks=[10, 20],
        metrics=["ndcg", "recall", "mrr", "hit", "precision"],
    )
    r = model.train_result_
    out = {
        "model": args.model,
        "params": model.params(),
        "split": f"synthetic {args.synthetic}" if args.synthetic else args.split_dir,
        "device": str(model.device_),
        "threads": args.threads,
        "test": {k: round(v, 4) for k, v in res.metrics.items() if "@" in k},
        "fit_seconds": round(fit_s, 1),
        "best_epoch": r.best_epoch,
        "epochs_run": len(model.history_),
        "seconds_to_best": None if r.seconds_to_best is None else round(r.seconds_to_best, 1),
        "best_valid_ndcg@10": r.best_score,
        "history": [
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()}
            for h in model.history_
        ],
    }
    if args.buckets:
        counts = np.bincount(split.train.users, minlength=split.train.n_users)
        users = model.user_vocab.encode(res.users) if res.users is not None else None
        per = res.per_user["ndcg@10"]
        if users is None:
            users = np.unique(split.test.users)
        c = counts[users]
        out["ndcg@10_by_train_count"] = {
            f"{lo}-{hi if hi < 10**9 else 'inf'}": {
                "users": int(((c >= lo) & (c < hi)).sum()),
                "ndcg@10": round(float(per[(c >= lo) & (c < hi)].mean()), 4),
            }
            for lo, hi in BUCKETS
            if ((c >= lo) & (c < hi)).any()
        }
    print(json.dumps({k: v for k, v in out.items() if k != "history"}, indent=1))
    for h in out["history"]:
        print(" ", h, file=sys.stderr)
    if args.output:
        Path(args.output).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
