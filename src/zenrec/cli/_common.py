"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
import json
from typing import Any

from zenrec._errors import ConfigError

__all__ = ["add_dataset_args", "add_filter_args", "load_from_args", "parse_sets", "user_filters"]


def add_dataset_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", required=required, metavar="NAME|PATH",
                   help="built-in name (ml-100k, ml-1m, ml-1m-ts, ml-latest-small) or a CSV/TSV/Parquet file")
    g.add_argument("--format", choices=["table", "sequences"], default="table",
                   help="file layout: 'table' (one interaction per row) or 'sequences' "
                        "(one user per line: 'user item1 item2 ...', chronological)")
    g.add_argument("--data-dir", metavar="DIR", help="explicit directory of a built-in dataset")
    g.add_argument("--user-col", help="column of user ids (name, or 0-based position with --no-header)")
    g.add_argument("--item-col", help="column of item ids")
    g.add_argument("--rating-col", help="column of ratings/values")
    g.add_argument("--time-col", help="column of timestamps (unix seconds or ISO 8601)")
    g.add_argument("--sep", help="field separator, may be several characters such as '::' (default: by extension)")
    g.add_argument("--no-header", action="store_true", help="the file has no header row")
    g.add_argument("--encoding", default="utf-8", help="text encoding (default utf-8; e.g. latin-1)")


def add_filter_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters (the protocol's own filters still apply)")
    g.add_argument("--min-rating", type=float, metavar="X", help="keep interactions with rating >= X")
    g.add_argument("--min-user-count", type=int, default=0, metavar="N", help="k-core: users with >= N interactions")
    g.add_argument("--min-item-count", type=int, default=0, metavar="N", help="k-core: items with >= N interactions")
    g.add_argument("--duplicates", choices=["last", "mean", "error", "keep"], default="last",
                   help="repeated (user, item) rows: keep the last, average, fail, or keep all")


def user_filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "min_rating": args.min_rating,
        "min_user_count": args.min_user_count or None,
        "min_item_count": args.min_item_count or None,
        "duplicates": args.duplicates,
    }


def load_from_args(args: argparse.Namespace) -> Any:
    from zenrec.data import load_dataset

    opts: dict[str, Any] = {}
    for key in ("user_col", "item_col", "rating_col", "time_col", "sep"):
        v = getattr(args, key, None)
        if v is not None:
            opts[key] = v
    from zenrec.data import BUILTIN_DATASETS

    fmt = getattr(args, "format", "table")
    if args.dataset not in BUILTIN_DATASETS:
        if fmt == "sequences":
            if any(k.endswith("_col") for k in opts):
                raise ConfigError(f"--{next(k for k in opts if k.endswith('_col')).replace('_', '-')} "
                                  "applies to table files, not to --format sequences")
            return load_dataset(args.dataset, format="sequences", sep=opts.get("sep"))
        opts["header"] = not args.no_header
        opts["encoding"] = args.encoding
    elif fmt != "table":
        raise ConfigError(f"--format applies to files, not to the built-in dataset '{args.dataset}'")
    elif opts:
        raise ConfigError(
            f"--{next(iter(opts)).replace('_', '-')} applies to files, not to the built-in dataset "
            f"'{args.dataset}'"
        )
    return load_dataset(args.dataset, path=args.data_dir, **opts)


def _parse_value(raw: str) -> Any:
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        pass
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            pass
    return raw


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """Parse ``--set key=value`` pairs into typed values."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value; got {item!r}")
        k, v = item.split("=", 1)
        k = k.strip().replace("-", "_")
        if not k:
            raise ConfigError(f"--set expects key=value; got {item!r}")
        out[k] = _parse_value(v.strip())
    return out
