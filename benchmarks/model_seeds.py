"""Test NDCG@10 of one model over several model seeds on one fixed split (seed noise of a model).

The split is the protocol's at ``--split-seed``; each model seed fits the model's defaults (plus
``--set`` values) on its train part, early-stopping on its validation part where the protocol has
one, and evaluates once on test. Prints one JSON line per seed and the mean.

Run:  OPENBLAS_NUM_THREADS=1 ZENREC_THREADS=1 ZENREC_DATA=../shared/data .venv/bin/python \\
          benchmarks/model_seeds.py --dataset ml-100k --protocol recbole --model multvae \\
          --seeds 2020,0,1,2,3
"""

from __future__ import annotations

import argparse
import json
import statistics


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--protocol", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--seeds", default="0,1,2,3,4", help="model seeds, comma-separated")
    ap.add_argument("--split-seed", type=int, default=None, help="default: the protocol's")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()

    from zenrec.cli._common import parse_sets
    from zenrec.data import load_dataset
    from zenrec.evaluation.protocols import get_protocol
    from zenrec.runs.evaluate import evaluate_model

    protocol = get_protocol(args.protocol)
    split_seed = protocol.default_seed if args.split_seed is None else args.split_seed
    dataset = load_dataset(args.dataset)
    params = parse_sets(args.set)
    values = []
    for seed in (int(s) for s in args.seeds.split(",")):
        # what `zenrec evaluate --seed SPLIT_SEED --set seed=SEED` runs
        record, _ = evaluate_model(
            dataset, protocol, args.model, {**params, "seed": seed}, seed=split_seed
        )
        ndcg = record.metrics["ndcg@10"]
        values.append(ndcg)
        print(
            json.dumps(
                {
                    "model": args.model,
                    "seed": seed,
                    "ndcg@10": round(ndcg, 4),
                    "fit_seconds": round(record.fit_seconds, 1),
                }
            ),
            flush=True,
        )
    print(
        json.dumps(
            {
                "model": args.model,
                "split_seed": split_seed,
                "seeds": len(values),
                "mean_ndcg@10": round(statistics.mean(values), 4),
                "min": round(min(values), 4),
                "max": round(max(values), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
