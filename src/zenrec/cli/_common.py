"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from zenrec._errors import ConfigError
from zenrec.data.spec import DataSpec

__all__ = ["add_dataset_args", "add_filter_args", "cli_wording", "data_spec", "invocation", "load_from_args",
           "parse_sets", "user_filters"]


def add_dataset_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", required=required, metavar="NAME|PATH",
                   help="built-in name (ml-100k, ml-1m, ml-latest-small) or a CSV/TSV/Parquet file")
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


def invocation() -> str:
    """The command line this process was started with (recorded in results)."""
    return shlex.join(["zenrec", *sys.argv[1:]])


def cli_wording(message: str, flags: dict[str, str]) -> str:
    """Reword a library error that names a parameter (``'storage' ...``) with the CLI flag."""
    for param, flag in flags.items():
        for lead in ("", "tune: "):
            if message.startswith(lead + param):
                return lead + flag + message[len(lead) + len(param):]
    return message


def data_spec(args: argparse.Namespace) -> DataSpec:
    """The data specification the data and filter options select (paths as given)."""
    from zenrec.data import BUILTIN_DATASETS

    opts: dict[str, Any] = {}
    for key in ("user_col", "item_col", "rating_col", "time_col", "sep"):
        v = getattr(args, key, None)
        if v is not None:
            opts[key] = v
    if args.dataset in BUILTIN_DATASETS and opts:
        raise ConfigError(
            f"--{next(iter(opts)).replace('_', '-')} applies to files, not to the built-in dataset "
            f"'{args.dataset}'"
        )
    if args.dataset not in BUILTIN_DATASETS:
        opts["header"] = not args.no_header
        opts["encoding"] = args.encoding
    filters = {k: v for k, v in user_filters(args).items() if v is not None} if hasattr(args, "duplicates") else {}
    return DataSpec(source=args.dataset, data_dir=getattr(args, "data_dir", None),
                    split_dir=getattr(args, "split_dir", None), **opts, **filters)


def load_from_args(args: argparse.Namespace) -> Any:
    """Load the dataset the data options select."""
    return data_spec(args).load()


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
