"""Fixed splits read from a directory (``train.tsv``, ``valid.tsv``, ``test.tsv``, ``items.txt``).

This is how zenrec evaluates on another library's exact split (RecBole's golden splits in the
shared data) and how peers receive zenrec's split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zenrec._errors import DataError
from zenrec.data.dataset import Dataset
from zenrec.data.readers import file_sha256, parse_ids, parse_numbers, parse_times, read_table
from zenrec.data.vocab import Vocabulary

__all__ = ["SplitParts", "load_split_dir"]

SplitParts = dict[str, Dataset]
"""``{"train": ..., "valid": ... (optional), "test": ...}``."""


def _part_file(d: Path, name: str) -> Path | None:
    f = d / f"{name}.tsv"
    if not f.exists() and (d / f"{name}.tsv.gz").exists():
        f = d / f"{name}.tsv.gz"
    return f if f.exists() else None


def load_split_dir(path: str | Path, base: Dataset | None = None) -> tuple[SplitParts, str]:
    """Read a fixed split; files may be gzipped (``train.tsv.gz``).

    Columns: ``user_id item_id [rating [timestamp]]``. Features of ``base`` (the same dataset
    loaded normally) are carried over by raw id.

    Args:
        path: The split directory.
        base: The full dataset, whose user and item features the parts get.

    Returns:
        The parts by name and a sha256 over the files (the dataset hash of results on it).

    Raises:
        DataError: A part is missing or a file is malformed (naming the file and line).
    """
    d = Path(path)
    parts: dict[str, Any] = {}
    files: list[Path] = []
    for name in ("train", "valid", "test"):
        f = _part_file(d, name)
        if f is None:
            if name == "valid":
                continue
            raise DataError(
                f"{d}: split directory lacks {name}.tsv; expected train/valid/test .tsv files"
            )
        files.append(f)
        df, first = read_table(f, sep="\t")
        parts[name] = (df, f, first)
    ids = {
        name: (
            parse_ids(df, "user_id", f, first, "user id"),
            parse_ids(df, "item_id", f, first, "item id"),
        )
        for name, (df, f, first) in parts.items()
    }
    uv = Vocabulary.from_values(np.concatenate([u for u, _ in ids.values()]))
    items_file = d / "items.txt"
    if items_file.exists():
        files.append(items_file)
        catalog, _ = read_table(items_file, sep="\t", header=False, columns=["item_id"])
        iv = Vocabulary.from_values(parse_ids(catalog, "item_id", items_file, 1, "item id"))
    else:
        iv = Vocabulary.from_values(np.concatenate([i for _, i in ids.values()]))
    sha = file_sha256(*files)
    out: SplitParts = {}
    for name, (df, f, first) in parts.items():
        ratings = (
            parse_numbers(df, "rating", f, first, "rating") if "rating" in df.columns else None
        )
        times = parse_times(df, "timestamp", f, first) if "timestamp" in df.columns else None
        users, items = ids[name]
        ds = Dataset.from_raw(
            users,
            items,
            ratings,
            times,
            user_vocab=uv,
            item_vocab=iv,
            name=f"{d.name}:{name}",
            source_sha256=sha,
        )
        if base is not None:
            ds.item_features = {
                k: v.take(base.item_vocab.encode(iv.ids)) for k, v in base.item_features.items()
            }
            ds.user_features = {
                k: v.take(base.user_vocab.encode(uv.ids)) for k, v in base.user_features.items()
            }
        out[name] = ds
    return out, sha
