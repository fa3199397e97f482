"""Data: datasets, vocabularies, readers, built-in sources, filters and synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zenrec._errors import DataError
from zenrec.data.dataset import Dataset, Feature
from zenrec.data.filters import apply_filters, dedupe, kcore, min_rating
from zenrec.data.readers import ColumnMap, read_interactions, read_table
from zenrec.data.sequences import read_sequences, user_sequences
from zenrec.data.sources import BUILTIN_DATASETS, load_builtin, resolve_builtin
from zenrec.data.synthetic import synthetic_dataset
from zenrec.data.vocab import Vocabulary

__all__ = [
    "BUILTIN_DATASETS",
    "ColumnMap",
    "Dataset",
    "Feature",
    "Vocabulary",
    "apply_filters",
    "dedupe",
    "kcore",
    "load_builtin",
    "load_dataset",
    "min_rating",
    "read_interactions",
    "read_sequences",
    "read_table",
    "resolve_builtin",
    "synthetic_dataset",
    "user_sequences",
]


def load_dataset(spec: str | Path, *, path: str | Path | None = None, download: bool = True,
                 format: str = "table", **reader_options: Any) -> Dataset:
    """Load a built-in dataset by name, or a CSV/TSV/Parquet file by path.

    Args:
        spec: ``ml-100k``, ``ml-1m``, ``ml-latest-small`` or a file path.
        path: Explicit directory of a built-in dataset.
        format: ``table`` (CSV/TSV/Parquet, one interaction per row) or ``sequences`` (one
            user per line: ``user_id item_1 item_2 ...``, chronological; see
            :func:`read_sequences`).
        download: Allow downloading a built-in dataset when no local copy is found.
        **reader_options: Passed to :func:`read_interactions` for files (``user_col``,
            ``item_col``, ``rating_col``, ``time_col``, ``sep``, ``header``, ``encoding``).
    """
    name = str(spec)
    if name in BUILTIN_DATASETS:
        if any(v is not None for k, v in reader_options.items() if k.endswith("_col")):
            raise DataError(
                f"column options apply to files, not to the built-in dataset '{name}'"
            )
        return load_builtin(name, path, download=download)
    if format not in ("table", "sequences"):
        raise DataError(f"the 'format' parameter must be 'table' or 'sequences'; got {format!r}")
    p = Path(name)
    if p.is_file() and format == "sequences":
        bad = [k for k, v in reader_options.items() if v is not None and k not in ("sep", "header", "encoding")]
        if bad:
            raise DataError(f"the '{bad[0]}' option applies to table files, not to format='sequences'")
        return read_sequences(p, sep=reader_options.get("sep"))
    if p.is_file():
        return read_interactions(p, **reader_options)
    if p.is_dir():
        raise DataError(
            f"{p}: is a directory; pass an interaction file, or a built-in name "
            f"({', '.join(sorted(BUILTIN_DATASETS))})"
        )
    raise DataError(
        f"'{name}' is neither a built-in dataset ({', '.join(sorted(BUILTIN_DATASETS))}) "
        "nor an existing file; check the name or path"
    )
