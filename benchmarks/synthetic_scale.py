"""Scale check: generate 20M synthetic interactions, then fit and fully evaluate a model.

Usage: .venv/bin/python benchmarks/synthetic_scale.py --users 200000 --items 50000 --per-user 100
Prints seconds and peak memory (ru_maxrss) of each phase.
"""

from __future__ import annotations

import argparse
import resource
import time

from zenrec.data import synthetic_dataset
from zenrec.evaluation import evaluate_ranking
from zenrec.models import create_model
from zenrec.splits import global_random_split


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--per-user", type=int, default=100)
    ap.add_argument("--eval-users", type=int, default=20_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    ds = synthetic_dataset(args.users, args.items, args.per_user, seed=0, chunk_users=1000)
    print(
        f"generated {len(ds):,} interactions in {time.perf_counter() - t0:.1f} s (peak {rss_gb():.1f} GB)"
    )
    split = global_random_split(ds, (0.9, 0.1), seed=0)
    t0 = time.perf_counter()
    m = create_model("ials", factors=64, iterations=5).fit(split.train)
    print(f"iALS fit in {time.perf_counter() - t0:.1f} s (peak {rss_gb():.1f} GB)")
    test = split.test.subset(split.test.users < args.eval_users)
    t0 = time.perf_counter()
    r = evaluate_ranking(m, test, [split.train], ks=(10,), metrics=("ndcg", "recall"))
    print(
        f"full ranking of {r.n_users:,} users x {ds.n_items:,} items in {time.perf_counter() - t0:.1f} s; "
        f"ndcg@10 {r.metrics['ndcg@10']:.4f} (peak {rss_gb():.1f} GB)"
    )


if __name__ == "__main__":
    main()
