"""``zenrec perf``: performance micro-benchmarks of serving components (``perf retrieval``).

Named ``perf`` so that it is not confused with ``zenrec benchmark`` (a comparison grid of
models x datasets x protocols x seeds). ``zenrec bench`` is its deprecated alias, kept for one
release: it prints a one-line notice to stderr and runs the same command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]

DEPRECATED_ALIAS = "bench"
"""The old name, removed in the release after 0.1."""


def register(sub: argparse._SubParsersAction) -> None:
    _add(
        sub,
        "perf",
        help="performance micro-benchmarks of serving components (retrieval)",
        description="Performance micro-benchmarks of serving components: each measures one "
        "component alone, on synthetic data. (Comparing models is 'zenrec benchmark'.)",
    )
    _add(
        sub,
        DEPRECATED_ALIAS,
        help="deprecated alias of 'zenrec perf' (removed in the next release)",
        description="Deprecated alias of 'zenrec perf' (removed in the next release).",
        deprecated=True,
    )


def _deprecated(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        sys.stderr.write(
            f"zenrec: deprecated: 'zenrec {DEPRECATED_ALIAS}' is now 'zenrec perf'; "
            "the old name goes in the next release\n"
        )
        return int(func(args))

    return run


def _add(sub: argparse._SubParsersAction, name: str, **kw: Any) -> None:
    deprecated = kw.pop("deprecated", False)
    p = sub.add_parser(name, **kw)
    bsub = p.add_subparsers(dest="perf", metavar="WHAT", required=True)
    r = bsub.add_parser(
        "retrieval",
        help="exact top-k vs a FAISS HNSW index: recall@k, build time, memory, latency",
        description=(
            "Exact search (one matrix-vector product + partial sort) vs an HNSW index over a "
            "synthetic catalog of clustered unit vectors; queries one at a time, as a service does."
        ),
        epilog=f"Example:\n  zenrec {name} retrieval --items 1000000 --dim 64 --ef 32,64,128,256",
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
        "--ef-construction", type=int, default=200, help="HNSW build beam width (default 200)"
    )
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    r.add_argument(
        "--index-dir",
        metavar="DIR",
        help="read the HNSW index saved in DIR for these vectors and parameters instead of "
        "building it, or save the built one there (build once, sweep later)",
    )
    r.set_defaults(func=_deprecated(run_retrieval) if deprecated else run_retrieval)


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

    def progress(line: str) -> None:
        sys.stderr.write(f"perf retrieval: {line}\n")
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
        index_dir=args.index_dir,
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
