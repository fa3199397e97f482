"""DIN vs the MLP ranker on CTR samples when the history is the user's past (time order).

The ``ctr`` preset splits each user's interactions at random, so the history DIN attends over
is a random 80% of the user's ratings: the same information the user-id embedding learns. Here
the split is per user and chronological (``temporal-user``'s 80/10/10: the earliest train, the
latest test) and everything else is ``ctr``'s: each valid/test positive with 4 negatives
sampled per seed from the user's unseen items, AUC, GAUC and LogLoss. The models and their
settings are those of ``benchmarks/ctr-ml100k.toml``. Prints one JSON line per (model, seed).

Run:  OPENBLAS_NUM_THREADS=1 ZENREC_THREADS=1 ZENREC_DATA=../shared/data .venv/bin/python \\
          benchmarks/ctr_temporal.py --dataset ml-100k --seeds 0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tomllib
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--seeds", default="0", help="split-negative and model seeds, comma-separated")
    ap.add_argument(
        "--models",
        default="din,mlpranker,mlpranker-history20",
        help="labels of benchmarks/ctr-ml100k.toml, comma-separated",
    )
    args = ap.parse_args()

    from zenrec.data import load_dataset
    from zenrec.evaluation.protocols import get_protocol
    from zenrec.runs.evaluate import evaluate_model

    config = tomllib.loads((Path(__file__).parent / "ctr-ml100k.toml").read_text())
    entries = {m.get("label", m["name"]): m for m in config["models"]}
    protocol = dataclasses.replace(
        get_protocol("ctr"),
        name="ctr-temporal-user",
        description=(
            "ctr with a per-user chronological 80/10/10 split (earliest train, latest test); "
            "4 uniform negatives per valid/test positive"
        ),
        split="user_temporal",
        split_params={"ratios": (0.8, 0.1, 0.1)},
    )
    dataset = load_dataset(args.dataset)
    for label in args.models.split(","):
        entry = entries[label]
        for seed in [int(s) for s in args.seeds.split(",")]:
            params = {**entry["params"], "seed": seed}
            record, _ = evaluate_model(
                dataset, protocol, entry["name"], params, seed=seed, rerunnable=False
            )
            out = {
                "model": label,
                "seed": seed,
                **{k: round(v, 4) for k, v in record.metrics.items()},
                "fit_s": round(record.fit_seconds or 0.0, 1),
                "epochs": len(record.history or []),
            }
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
