"""Full-ranking evaluation speed: ML-1M (recbole preset), every test user x every item.

A dot-product model (iALS, 64 factors) is fitted once; ``evaluate_ranking`` (scoring all
items, masking train+valid items, top-K, five metrics at K=5/10/20, beyond-accuracy counts)
is timed ``--repeats`` times and the median reported. Writes docs/results/eval_speed.json.

Usage: ZENREC_DATA=../shared/data .venv/bin/python benchmarks/eval_speed.py --repeats 7
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, median, write_json

from zenrec.data import load_dataset
from zenrec.evaluation import evaluate_ranking, get_protocol, prepare_dataset
from zenrec.models import create_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    p = get_protocol("recbole")
    d = prepare_dataset(load_dataset("ml-1m"), p)
    s = p.splits(d, p.default_seed)[0]
    m = create_model("ials", factors=64).fit(s.train)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        r = evaluate_ranking(m, s.test, [s.train, s.valid], ks=p.ks, metrics=p.metrics)
        times.append(time.perf_counter() - t0)
    payload = {
        "machine": machine(),
        "users": r.n_users,
        "items": d.n_items,
        "median_seconds": median(times),
        "all_seconds": times,
        "ndcg@10": r.metrics["ndcg@10"],
        "command": "ZENREC_DATA=../shared/data .venv/bin/python benchmarks/eval_speed.py "
        f"--repeats {args.repeats}",
    }
    write_json(RESULTS / "eval_speed.json", payload)
    print(
        f"full ranking of {r.n_users} users x {d.n_items} items: median {median(times):.3f} s "
        f"(runs: {', '.join(f'{t:.3f}' for t in times)})"
    )


if __name__ == "__main__":
    main()
