"""Training throughput (interactions per second) of BPR-MF and two-tower at batch 4096 on ML-1M.

Usage:
    ZENREC_DATA=/work/shared/data .venv/bin/python benchmarks/neural_throughput.py
        [--models bprmf twotower] [--epochs 2] [--threads 1] [--device auto] [--precision auto]

Trains on the training part of the golden ML-1M split without validation and reports
interactions (training rows) per second of the whole fit, after one warm-up epoch that is
not counted. On a machine without the MovieLens files, ``--synthetic N`` uses a synthetic
dataset of about N interactions instead.
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
    ap.add_argument("--models", nargs="+", default=["bprmf", "twotower"])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--synthetic", type=int, default=0)
    args = ap.parse_args()
    import torch

    from zenrec.models import create_model

    if args.synthetic:
        from zenrec.data import synthetic_dataset

        train = synthetic_dataset(
            n_users=max(100, args.synthetic // 100), n_items=3000, interactions_per_user=100, seed=0
        )
    else:
        from zenrec.data import load_dataset
        from zenrec.splits import fixed_split

        train = fixed_split(GOLDEN, base=load_dataset("ml-1m"))[0].train
    rows = []
    for name in args.models:
        common = {
            "batch_size": args.batch_size,
            "num_threads": args.threads,
            "progress": False,
            "device": args.device,
            "precision": args.precision,
        }
        warm = create_model(name, epochs=1, **common)
        warm.fit(train)  # warm-up: allocations, kernels, lazy imports
        model = create_model(name, epochs=args.epochs, **common)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.fit(train)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        sec = time.perf_counter() - t0
        row = {
            "model": name,
            "interactions": len(train),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "seconds": round(sec, 2),
            "interactions_per_s": round(len(train) * args.epochs / sec),
            "device": str(model.device_),
            "threads": args.threads,
            "precision": args.precision,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
