"""Evaluate a saved loo-full bundle under loo-uni100 (same filters, same leave-one-out split).

The two presets share the filters and the (deterministic) split, so the model trained for
loo-full is scored again with the SASRec paper's sampled protocol instead of being retrained.

    .venv/bin/python benchmarks/sequential_sampled.py DATASET BUNDLE OUT.json   (sequential_all.sh)
"""

from __future__ import annotations

import json
import sys

from zenrec.data import load_dataset
from zenrec.evaluation.protocols import get_protocol, prepare_dataset
from zenrec.models.registry import load_model


def main() -> None:
    name, bundle, out = sys.argv[1:4]
    full, sampled = get_protocol("loo-full"), get_protocol("loo-uni100")
    assert full.filters == sampled.filters and full.split == sampled.split
    data = prepare_dataset(load_dataset(name), sampled)
    split = sampled.splits(data, sampled.default_seed)[0]
    model = load_model(bundle)
    res = sampled.evaluate(model, split, "test", seed=sampled.default_seed)
    meta = getattr(model, "bundle_meta", {})
    rec = {
        "dataset": name,
        "protocol": "loo-uni100",
        "model": meta.get("model"),
        "metrics": res.metrics,
        "evaluation_mode": res.mode,
        "n_users": res.n_users,
        "model_state": {k: v for k, v in meta.get("model_state", {}).items() if k != "features"},
        "bundle": bundle,
    }
    with open(out, "w") as fh:
        json.dump(rec, fh, indent=2)
    print(json.dumps(rec["metrics"]))


if __name__ == "__main__":
    main()
