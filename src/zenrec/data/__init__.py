"""Data: datasets, vocabularies, readers, built-in sources, filters and synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zenrec._errors import DataError
from zenrec.data.config import load_data_config
from zenrec.data.dataset import Dataset, Feature
from zenrec.data.features import FeatureReport, parse_feature_specs
from zenrec.data.filters import (
    FILTER_OPTIONS,
    DataFilters,
    apply_filters,
    dedupe,
    kcore,
    min_rating,
    time_window,
)
from zenrec.data.readers import (
    ColumnMap,
    _read_interactions,
    is_frame,
    read_interactions,
    read_table,
)
from zenrec.data.sequences import read_sequences, user_sequences
from zenrec.data.sources import BUILTIN_DATASETS, load_builtin, resolve_builtin
from zenrec.data.spec import DataSpec
from zenrec.data.splitdir import load_split_dir
from zenrec.data.synthetic import synthetic_dataset
from zenrec.data.vocab import Vocabulary

__all__ = [
    "BUILTIN_DATASETS",
    "ColumnMap",
    "DataFilters",
    "DataSpec",
    "Dataset",
    "Feature",
    "FeatureReport",
    "Vocabulary",
    "apply_filters",
    "dedupe",
    "kcore",
    "load_builtin",
    "load_data_config",
    "load_dataset",
    "load_split_dir",
    "min_rating",
    "parse_feature_specs",
    "read_interactions",
    "read_sequences",
    "read_table",
    "resolve_builtin",
    "synthetic_dataset",
    "time_window",
    "user_sequences",
]


def load_dataset(
    spec: str | Path | Any,
    *,
    path: str | Path | None = None,
    download: bool = True,
    format: str = "table",
    **reader_options: Any,
) -> Dataset:
    """Load a built-in dataset by name, a CSV/TSV/Parquet file, a data config or a DataFrame.

    Args:
        spec: ``ml-100k``, ``ml-1m``, ``ml-latest-small``; a file path; a ``.toml`` data
            config (a ``[data]`` table, see :mod:`zenrec.data.config`); or a pandas/polars
            DataFrame or Arrow table (read as :func:`read_interactions` reads it).
        path: Explicit directory of a built-in dataset.
        format: ``table`` (CSV/TSV/Parquet, one interaction per row) or ``sequences`` (one
            user per line: ``user_id item_1 item_2 ...``, chronological; see
            :func:`read_sequences`).
        download: Allow downloading a built-in dataset when no local copy is found.
        **reader_options: Passed to :func:`read_interactions` for files (``user_col``,
            ``item_col``, ``rating_col``, ``time_col``, ``sep``, ``header``, ``encoding``);
            and the filters ``min_rating``, ``min_user_count``, ``min_item_count``,
            ``duplicates``, ``start``, ``end`` for any source, with the meaning of the
            command line's flags (see :meth:`Dataset.filter` and docs/data-spec.md).

    Examples:
        >>> import polars as pl
        >>> frame = pl.DataFrame({"user": [1, 1, 2], "item": ["a", "b", "a"]})
        >>> load_dataset(frame, min_user_count=2).n_users
        1
    """
    given = {k: reader_options.pop(k) for k in FILTER_OPTIONS if k in reader_options}
    filters = DataFilters.of("load_dataset", **given) if given else None
    ds = _load_dataset(spec, path=path, download=download, format=format, **reader_options)
    return ds if filters is None else filters.apply(ds)


def _load_dataset(
    spec: str | Path | Any,
    *,
    path: str | Path | None,
    download: bool,
    format: str,
    **reader_options: Any,
) -> Dataset:
    if is_frame(spec):
        return _read_frame(spec, reader_options)
    if not isinstance(spec, (str, Path)):
        raise DataError(
            "load_dataset: pass a built-in name, a file path, a .toml data config "
            f"or a pandas/polars DataFrame; got {type(spec).__module__}.{type(spec).__name__}"
        )
    name = str(spec)
    if name in BUILTIN_DATASETS:
        if any(v is not None for k, v in reader_options.items() if k.endswith("_col")):
            raise DataError(f"column options apply to files, not to the built-in dataset '{name}'")
        return load_builtin(name, path, download=download)
    if format not in ("table", "sequences"):
        raise DataError(f"the 'format' parameter must be 'table' or 'sequences'; got {format!r}")
    p = Path(name)
    if p.suffix.lower() == ".toml":
        if any(
            v is not None for k, v in reader_options.items() if k.endswith("_col") or k == "sep"
        ):
            raise DataError(
                f"{p}: column options go inside the data config's [data] table, not beside it"
            )
        return load_data_config(p, data_dir=path, download=download)
    try:
        is_file, is_dir = p.is_file(), p.is_dir()
    except OSError:  # e.g. "File name too long" for a string that is not a path at all
        is_file = is_dir = False
    if is_file and format == "sequences":
        bad = [
            k
            for k, v in reader_options.items()
            if v is not None and k not in ("sep", "header", "encoding")
        ]
        if bad:
            raise DataError(
                f"the '{bad[0]}' option applies to table files, not to format='sequences'"
            )
        return read_sequences(p, sep=reader_options.get("sep"))
    if is_file:
        return _read_interactions(p, **{**_READER_DEFAULTS, **reader_options}, stacklevel=3)
    if is_dir:
        raise DataError(
            f"{p}: is a directory; pass an interaction file, or a built-in name "
            f"({', '.join(sorted(BUILTIN_DATASETS))})"
        )
    shown = name if len(name) <= 80 and "\n" not in name else name.replace("\n", " ")[:77] + "..."
    raise DataError(
        f"'{shown}' is neither a built-in dataset ({', '.join(sorted(BUILTIN_DATASETS))}) "
        "nor an existing file; check the name or path (a DataFrame can be passed as it is)"
    )


_READER_DEFAULTS: dict[str, Any] = {
    "user_col": None,
    "item_col": None,
    "rating_col": None,
    "time_col": None,
    "context_cols": (),
    "sep": None,
    "header": True,
    "encoding": "utf-8",
    "name": None,
}


def _read_frame(frame: Any, options: dict[str, Any]) -> Dataset:
    bad = sorted(
        k
        for k in options
        if k in ("sep", "header", "encoding") and options[k] not in (None, True, "utf-8")
    )
    if bad:
        raise DataError(f"load_dataset: {', '.join(bad)} apply to files, not to a DataFrame")
    unknown = sorted(set(options) - set(_READER_DEFAULTS))
    if unknown:
        raise DataError(
            f"load_dataset: unknown option(s) {unknown}; column options are user_col, item_col, "
            "rating_col, time_col, context_cols, name"
        )
    return _read_interactions(
        frame,
        **{**_READER_DEFAULTS, **options, "sep": None, "header": True, "encoding": "utf-8"},
        stacklevel=4,
    )
