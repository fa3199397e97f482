"""Data: datasets, vocabularies, readers, built-in sources, filters and synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zenrec._errors import DataError
from zenrec.data.dataset import Dataset, Feature
from zenrec.data.filters import apply_filters, dedupe, kcore, min_rating
from zenrec.data.readers import ColumnMap, read_interactions, read_table
from zenrec.data.sources import BUILTIN_DATASETS, load_builtin, resolve_builtin
from zenrec.data.spec import DataSpec
from zenrec.data.splitdir import load_split_dir
from zenrec.data.synthetic import synthetic_dataset
from zenrec.data.vocab import Vocabulary

__all__ = [
    "BUILTIN_DATASETS",
    "ColumnMap",
    "DataSpec",
    "Dataset",
    "Feature",
    "Vocabulary",
    "apply_filters",
    "dedupe",
    "kcore",
    "load_builtin",
    "load_dataset",
    "load_split_dir",
    "min_rating",
    "read_interactions",
    "read_table",
    "resolve_builtin",
    "synthetic_dataset",
]


def load_dataset(spec: str | Path, *, path: str | Path | None = None, download: bool = True,
                 **reader_options: Any) -> Dataset:
    """Load a built-in dataset by name, or a CSV/TSV/Parquet file by path.

    Args:
        spec: ``ml-100k``, ``ml-1m``, ``ml-latest-small`` or a file path.
        path: Explicit directory of a built-in dataset.
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
    p = Path(name)
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
