"""``zenrec data info``: what a dataset holds."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from zenrec.cli._common import add_dataset_args, add_filter_args, load_from_args, user_filters


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect datasets", description="Inspect datasets.")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    info = dsub.add_parser(
        "info",
        help="counts, sparsity, time range, rating distribution, features",
        description="Show counts, sparsity, time range, rating distribution and feature columns.",
        epilog=(
            "Examples:\n  zenrec data info ml-100k\n  zenrec data info ratings.dat --sep '::' "
            "--no-header --user-col 0 --item-col 1 --rating-col 2"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("dataset", metavar="NAME|PATH")
    add_dataset_args(info, required=False)
    add_filter_args(info)
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    args.dataset = args.dataset if args.dataset else None
    ds = load_from_args(args)
    ds = ds.filter(**{k: v for k, v in user_filters(args).items() if v is not None})
    info = ds.describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    t = Table(title=f"dataset {ds.name}", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("interactions", f"{info['interactions']:,}")
    t.add_row("users", f"{info['users']:,}")
    t.add_row("items", f"{info['items']:,}")
    t.add_row("density", f"{info['density']:.4%} (sparsity {info['sparsity']:.4%})")
    if "interactions_per_user" in info:
        pu, pi = info["interactions_per_user"], info["interactions_per_item"]
        t.add_row("per user min/median/max", f"{pu['min']} / {pu['median']:g} / {pu['max']}")
        t.add_row("per item min/median/max", f"{pi['min']} / {pi['median']:g} / {pi['max']}")
    if "time_range" in info:
        a, b = (
            datetime.fromtimestamp(x, UTC).strftime("%Y-%m-%d %H:%M") for x in info["time_range"]
        )
        t.add_row("time range (UTC)", f"{a} .. {b}")
    else:
        t.add_row("time range", "no timestamps")
    if "rating_distribution" in info:
        t.add_row(
            "ratings", "  ".join(f"{k}:{v:,}" for k, v in info["rating_distribution"].items())
        )
    elif "rating_summary" in info:
        t.add_row("ratings", json.dumps(info["rating_summary"]))
    else:
        t.add_row("ratings", "none (implicit feedback)")
    t.add_row(
        "user features", ", ".join(f"{k} ({v})" for k, v in info["user_features"].items()) or "none"
    )
    t.add_row(
        "item features", ", ".join(f"{k} ({v})" for k, v in info["item_features"].items()) or "none"
    )
    for line in info.get("feature_coverage", []):
        t.add_row("feature coverage", line)
    t.add_row("context columns", ", ".join(info["context_columns"]) or "none")
    t.add_row("filters", "; ".join(info["filters"]) or "none")
    t.add_row("source sha256", str(info["source_sha256"]))
    Console().print(t)
    return 0
