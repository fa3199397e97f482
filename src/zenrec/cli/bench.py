"""``zenrec bench``: micro-benchmarks of serving components (``bench retrieval``)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="micro-benchmarks of serving components",
        description="Micro-benchmarks of serving components.",
    )
    bsub = p.add_subparsers(dest="bench", metavar="WHAT", required=True)
    r = bsub.add_parser(
        "retrieval",
        help="exact top-k vs a FAISS HNSW index: recall@k, build time, memory, latency",
        description="Exact search (one matrix-vector product + partial sort) vs an HNSW index over a "
        "synthetic catalog of clustered unit vectors; queries one at a time, as a service does.",
        epilog="Example:\n  zenrec bench retrieval --items 1000000 --dim 64 --ef 32,64,128,256",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--items", type=int, required=True, metavar="N", help="catalog size")
    r.add_argument("--dim", type=int, required=True, metavar="D", help="vector dimension")
    r.add_argument(
        "--queries", type=int, default=1000, metavar="Q", help="queries timed (default 1000)"
    )
    r.add_argument("-k", type=int, default=10, help="list length of recall@k (default 10)")
    r.add_argument("--ef", default="16,32,64,128,256", help="efSearch values, comma-separated")
    r.add_argument("--m", type=int, default=32, help="HNSW graph degree (default 32)")
    r.add_argument(
        "--ef-construction", type=int, default=80, help="HNSW build beam width (default 80)"
    )
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    r.set_defaults(func=run_retrieval)


def run_retrieval(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from zenrec._errors import ConfigError
    from zenrec.serving.retrieval import bench_retrieval

    try:
        efs = tuple(int(x) for x in args.ef.split(",") if x.strip())
    except ValueError:
        raise ConfigError(
            f"--ef must be comma-separated integers, e.g. 32,64,128; got {args.ef!r}"
        ) from None
    if not efs or min(efs) < 1:
        raise ConfigError(f"--ef needs at least one value >= 1; got {args.ef!r}")
    import sys

    def progress(line: str) -> None:
        sys.stderr.write(f"bench retrieval: {line}\n")
        sys.stderr.flush()

    res = bench_retrieval(
        n_items=args.items,
        dim=args.dim,
        n_queries=args.queries,
        k=args.k,
        ef_values=efs,
        m=args.m,
        ef_construction=args.ef_construction,
        seed=args.seed,
        progress=progress,
    )
    t = Table(
        title=f"retrieval: {args.items:,} items x {args.dim} dims, {args.queries} single queries, "
        f"recall@{args.k} vs exact"
    )
    for col in ("method", "recall", "p50 ms", "p99 ms", "build s", "memory MiB"):
        t.add_column(col, justify="right" if col != "method" else "left")
    ex, h = res["exact"], res["hnsw"]
    t.add_row(
        "exact",
        "1.000",
        f"{ex['p50_ms']:.3f}",
        f"{ex['p99_ms']:.3f}",
        "-",
        f"{ex['memory_bytes'] / 2**20:.0f}",
    )
    for row in h["by_ef"]:
        t.add_row(
            f"hnsw M={h['m']} efSearch={row['ef_search']}",
            f"{row['recall']:.3f}",
            f"{row['p50_ms']:.3f}",
            f"{row['p99_ms']:.3f}",
            f"{h['build_seconds']:.1f}",
            f"{h['memory_bytes'] / 2**20:.0f}",
        )
    Console().print(t)
    if args.json:
        from zenrec._io import atomic_write_json

        atomic_write_json(Path(args.json), res)
    return 0
