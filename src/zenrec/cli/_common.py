"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from zenrec._errors import ConfigError
from zenrec.data.dataset import Dataset
from zenrec.data.spec import DataSpec

__all__ = [
    "add_dataset_args",
    "add_filter_args",
    "add_split_args",
    "data_spec",
    "invocation",
    "load_from_args",
    "parse_sets",
    "protocol_from_args",
    "user_filters",
]


def add_dataset_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--dataset",
        required=required,
        metavar="NAME|PATH",
        help="built-in name (ml-100k, ml-1m, ml-1m-ts, ml-latest-small), a CSV/TSV/Parquet file, "
        "or a .toml data config ([data] table: file, columns, feature tables)",
    )
    g.add_argument(
        "--format",
        choices=["table", "sequences"],
        default="table",
        help="file layout: 'table' (one interaction per row) or 'sequences' "
        "(one user per line: 'user item1 item2 ...', chronological)",
    )
    g.add_argument("--data-dir", metavar="DIR", help="explicit directory of a built-in dataset")
    g.add_argument(
        "--user-col", help="column of user ids (name, or 0-based position with --no-header)"
    )
    g.add_argument("--item-col", help="column of item ids")
    g.add_argument("--rating-col", help="column of ratings/values")
    g.add_argument("--time-col", help="column of timestamps (unix seconds or ISO 8601)")
    g.add_argument(
        "--sep",
        help="field separator, may be several characters such as '::' (default: by extension)",
    )
    g.add_argument("--no-header", action="store_true", help="the file has no header row")
    g.add_argument(
        "--encoding", default="utf-8", help="text encoding (default utf-8; e.g. latin-1)"
    )
    f = p.add_argument_group(
        "side features (any dataset; same as Dataset.with_item_features in Python)"
    )
    f.add_argument(
        "--items", metavar="FILE", help="item feature table (CSV/TSV/Parquet), one row per item"
    )
    f.add_argument(
        "--item-key",
        metavar="COL",
        help="column of item ids in --items (default: item_id/movieId...)",
    )
    f.add_argument(
        "--item-features",
        metavar="SPEC",
        help="columns and kinds, e.g. 'genre:multi:|,year:numeric,brand:categorical,title:text'",
    )
    f.add_argument("--users", metavar="FILE", help="user feature table, one row per user")
    f.add_argument("--user-key", metavar="COL", help="column of user ids in --users")
    f.add_argument(
        "--user-features",
        metavar="SPEC",
        help="columns and kinds, e.g. 'age:numeric,country:categorical'",
    )


def add_filter_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters (the protocol's own filters still apply)")
    g.add_argument(
        "--min-rating", type=float, metavar="X", help="keep interactions with rating >= X"
    )
    g.add_argument(
        "--min-user-count",
        type=int,
        default=0,
        metavar="N",
        help="k-core: users with >= N interactions",
    )
    g.add_argument(
        "--min-item-count",
        type=int,
        default=0,
        metavar="N",
        help="k-core: items with >= N interactions",
    )
    g.add_argument(
        "--duplicates",
        choices=["last", "mean", "error", "keep"],
        default="last",
        help="repeated (user, item) rows: keep the last, average, fail, or keep all",
    )
    g.add_argument(
        "--start",
        metavar="TIME",
        help="keep interactions at or after TIME (unix seconds or ISO 8601, e.g. 1998-01-01)",
    )
    g.add_argument(
        "--end", metavar="TIME", help="keep interactions before TIME (unix seconds or ISO 8601)"
    )


def add_split_args(p: argparse.ArgumentParser) -> None:
    """``--protocol`` and the split options of the temporal presets."""
    g = p.add_argument_group("protocol and split")
    g.add_argument(
        "--protocol",
        required=True,
        help="protocol preset: recbole, msrec, surprise-cv5, loo-full, loo-uni100, ctr, "
        "multitask, temporal, temporal-user",
    )
    g.add_argument(
        "--test-fraction",
        type=float,
        metavar="F",
        help="temporal: the last F of interactions by time test (default 0.1)",
    )
    g.add_argument(
        "--valid-fraction",
        type=float,
        metavar="F",
        help="temporal: the F before the test part validate (default 0.1; 0: none)",
    )
    g.add_argument(
        "--test-start",
        metavar="DATE",
        help="temporal: interactions from DATE (ISO 8601 or unix seconds) test",
    )
    g.add_argument(
        "--valid-start",
        metavar="DATE",
        help="temporal: interactions from DATE to --test-start validate",
    )
    g.add_argument(
        "--split-ratios",
        metavar="TRAIN,VALID,TEST",
        help="temporal-user: per-user chronological ratios (default 0.8,0.1,0.1)",
    )


def split_options(args: argparse.Namespace) -> dict[str, Any]:
    """The split options given on the command line (``None`` when absent)."""
    ratios = getattr(args, "split_ratios", None)
    if ratios is not None:
        try:
            ratios = tuple(float(x) for x in ratios.split(","))
        except ValueError:
            raise ConfigError(
                f"--split-ratios expects numbers separated by commas, e.g. 0.8,0.1,0.1; got "
                f"{args.split_ratios!r}"
            ) from None
    return {
        "test_fraction": getattr(args, "test_fraction", None),
        "valid_fraction": getattr(args, "valid_fraction", None),
        "test_start": getattr(args, "test_start", None),
        "valid_start": getattr(args, "valid_start", None),
        "ratios": ratios,
    }


def protocol_from_args(args: argparse.Namespace) -> Any:
    """The ``--protocol`` preset with the split options given; errors name the flags."""
    from zenrec.evaluation.protocols import get_protocol
    from zenrec.runs.record import SPLIT_FLAGS

    options = split_options(args)
    try:
        protocol = get_protocol(args.protocol, **options)
    except ConfigError as exc:
        msg = str(exc)
        for key, flag in SPLIT_FLAGS.items():
            msg = msg.replace(f"'{key}'", flag)
            if key != "ratios":
                msg = msg.replace(key, flag)
        raise ConfigError(msg) from None
    if getattr(args, "split_dir", None) and any(v is not None for v in options.values()):
        raise ConfigError("--split-dir replaces the protocol's split; drop the split options")
    return protocol


def user_filters(args: argparse.Namespace) -> dict[str, Any]:
    """The filter flags under the names Dataset.filter and [data] use (docs/data-spec.md)."""
    return {
        "min_rating": args.min_rating,
        "min_user_count": args.min_user_count or None,
        "min_item_count": args.min_item_count or None,
        "duplicates": args.duplicates,
        "start": getattr(args, "start", None),
        "end": getattr(args, "end", None),
    }


def invocation() -> str:
    """The command line this process was started with (recorded in results)."""
    return shlex.join(["zenrec", *sys.argv[1:]])


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
    fmt = getattr(args, "format", "table")
    if fmt != "table":
        if args.dataset in BUILTIN_DATASETS:
            raise ConfigError(
                f"--format applies to files, not to the built-in dataset '{args.dataset}'"
            )
        cols = [k for k in opts if k.endswith("_col")]
        if cols:
            raise ConfigError(
                f"--{cols[0].replace('_', '-')} applies to table files, not to --format {fmt}"
            )
        opts["format"] = fmt
    filters = (
        {k: v for k, v in user_filters(args).items() if v is not None}
        if hasattr(args, "duplicates")
        else {}
    )
    return DataSpec(
        source=args.dataset,
        data_dir=getattr(args, "data_dir", None),
        split_dir=getattr(args, "split_dir", None),
        **opts,
        **filters,
        **_feature_options(args),
    )


def _feature_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--items/--item-key/--item-features`` and ``--users/...``, checked for completeness."""
    out: dict[str, Any] = {}
    for entity in ("item", "user"):
        table = getattr(args, f"{entity}s", None)
        key = getattr(args, f"{entity}_key", None)
        spec = getattr(args, f"{entity}_features", None)
        if table is None:
            if key is not None or spec is not None:
                raise ConfigError(f"--{entity}-key and --{entity}-features need --{entity}s FILE")
            continue
        if spec is None:
            raise ConfigError(
                f"--{entity}s {table} needs --{entity}-features, e.g. "
                + ("'genre:multi:|,year:numeric'" if entity == "item" else "'age:numeric'")
            )
        from zenrec._errors import DataError
        from zenrec.data.features import parse_feature_specs

        try:
            parse_feature_specs(spec)  # fail on a bad list before any data is read
        except DataError as exc:
            raise DataError(str(exc).replace("feature list", f"--{entity}-features")) from None
        out.update({f"{entity}s": table, f"{entity}_key": key, f"{entity}_features": spec})
    return out


def load_from_args(args: argparse.Namespace) -> Dataset:
    """Load the dataset the data options select (with any side-feature tables attached)."""
    return load_spec(data_spec(args))


def load_spec(spec: DataSpec) -> Dataset:
    """``spec.load()`` with errors about feature tables worded with the CLI's flags."""
    from zenrec._errors import DataError

    try:
        return spec.load()
    except DataError as exc:
        msg = str(exc)
        for entity in ("item", "user"):
            table = getattr(spec, f"{entity}s")
            if table is not None and (Path(table).name in msg or f"{entity} feature" in msg):
                msg = msg.replace("pass key=", f"pass --{entity}-key").replace(
                    "feature list", f"--{entity}-features"
                )
                break
        raise DataError(msg) from None


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
