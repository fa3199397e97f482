"""A data specification: everything needed to load the same interactions again.

A :class:`DataSpec` names the source (a built-in dataset or a file, by absolute path), the
reader options, the user's filters and an optional fixed split. Run records keep it, so a
recorded command re-runs on the same data from any directory.

Examples:
    >>> spec = DataSpec(source="/data/ratings.dat", sep="::", header=False, user_col="0",
    ...                 item_col="1", rating_col="2", min_user_count=5)
    >>> args = spec.cli_args()
    >>> " ".join(args[:8])
    '--dataset /data/ratings.dat --user-col 0 --item-col 1 --rating-col 2'
    >>> " ".join(args[8:])
    '--sep :: --no-header --min-user-count 5'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from zenrec.data.dataset import Dataset
from zenrec.data.filters import time_bound

__all__ = ["DataSpec"]

_COLUMNS = ("user_col", "item_col", "rating_col", "time_col")


class DataSpec(BaseModel):
    """Where interactions come from and how they are read and filtered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    """Built-in dataset name (``ml-100k``...) or the path of an interaction file."""
    data_dir: str | None = None
    """Explicit directory of a built-in dataset."""
    user_col: str | None = None
    """Column of user ids (a name, or a 0-based position for header-less files)."""
    item_col: str | None = None
    """Column of item ids."""
    rating_col: str | None = None
    """Column of ratings or values."""
    time_col: str | None = None
    """Column of timestamps."""
    sep: str | None = None
    """Field separator (default: by file extension)."""
    format: Literal["table", "sequences"] = "table"
    """File layout: one interaction per row, or one user's chronological items per line."""
    header: bool = True
    """Whether the file has a header row."""
    encoding: str = "utf-8"
    """Text encoding of the file."""
    min_rating: float | None = None
    """Keep interactions with rating >= this."""
    min_user_count: int | None = Field(None, ge=1)
    """k-core: users with at least this many interactions."""
    min_item_count: int | None = Field(None, ge=1)
    """k-core: items with at least this many interactions."""
    duplicates: Literal["last", "mean", "error", "keep"] = "last"
    """What to do with repeated (user, item) rows."""
    start: int | str | None = None
    """Keep interactions at or after this time (unix seconds or ISO 8601)."""
    end: int | str | None = None
    """Keep interactions before this time (unix seconds or ISO 8601)."""
    split_dir: str | None = None
    """A fixed split directory (``train.tsv``, ``valid.tsv``, ``test.tsv``) used instead of the
    protocol's split."""
    items: str | None = None
    """Item feature table (CSV/TSV/Parquet), one row per item."""
    item_key: str | None = None
    """Column of item ids in ``items`` (default: guessed)."""
    item_features: str | None = None
    """Columns of ``items`` and their kinds, e.g. ``genre:multi:|,year:numeric``."""
    users: str | None = None
    """User feature table, one row per user."""
    user_key: str | None = None
    """Column of user ids in ``users``."""
    user_features: str | None = None
    """Columns of ``users`` and their kinds, e.g. ``age:numeric,country:categorical``."""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _bound(cls, v: Any) -> Any:
        return time_bound(v)

    @property
    def is_builtin(self) -> bool:
        """Whether ``source`` names a built-in dataset."""
        from zenrec.data.sources import BUILTIN_DATASETS

        return self.source in BUILTIN_DATASETS

    def resolved(self) -> DataSpec:
        """The same specification with every path made absolute (re-runs from any directory)."""
        upd: dict[str, Any] = {}
        if not self.is_builtin:
            upd["source"] = str(Path(self.source).expanduser().resolve())
        for key in ("data_dir", "split_dir", "items", "users"):
            v = getattr(self, key)
            if v is not None:
                upd[key] = str(Path(v).expanduser().resolve())
        return self.model_copy(update=upd)

    def reader_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`zenrec.data.read_interactions` (empty for built-ins)."""
        if self.is_builtin:
            return {}
        opts: dict[str, Any] = {
            k: getattr(self, k) for k in (*_COLUMNS, "sep") if getattr(self, k) is not None
        }
        if self.format != "table":
            opts["format"] = self.format
        opts["header"] = self.header
        opts["encoding"] = self.encoding
        return opts

    def user_filters(self) -> dict[str, Any]:
        """The user's filters as :func:`zenrec.evaluation.prepare_dataset` takes them."""
        return {
            "min_rating": self.min_rating,
            "min_user_count": self.min_user_count,
            "min_item_count": self.min_item_count,
            "duplicates": self.duplicates,
            "start": self.start,
            "end": self.end,
        }

    def load(self) -> Dataset:
        """Read the interactions (filters are applied later, by the protocol)."""
        from zenrec.data import load_dataset
        from zenrec.data.features import parse_feature_specs

        ds = load_dataset(self.source, path=self.data_dir, **self.reader_options())
        if self.items is not None and self.item_features is not None:
            ds = ds.with_item_features(
                self.items, key=self.item_key, features=parse_feature_specs(self.item_features)
            )
        if self.users is not None and self.user_features is not None:
            ds = ds.with_user_features(
                self.users, key=self.user_key, features=parse_feature_specs(self.user_features)
            )
        return ds

    def cli_args(self) -> list[str]:
        """The ``zenrec`` data options that select exactly this data (paths as stored)."""
        args = ["--dataset", self.source]
        if self.data_dir is not None:
            args += ["--data-dir", self.data_dir]
        for key in _COLUMNS:
            v = getattr(self, key)
            if v is not None:
                args += [f"--{key.replace('_', '-')}", v]
        if self.sep is not None:
            args += ["--sep", self.sep]
        if self.format != "table":
            args += ["--format", self.format]
        if not self.header:
            args.append("--no-header")
        if self.encoding.lower().replace("_", "-") != "utf-8":
            args += ["--encoding", self.encoding]
        if self.min_rating is not None:
            args += ["--min-rating", f"{self.min_rating:g}"]
        if self.min_user_count is not None:
            args += ["--min-user-count", str(self.min_user_count)]
        if self.min_item_count is not None:
            args += ["--min-item-count", str(self.min_item_count)]
        if self.duplicates != "last":
            args += ["--duplicates", self.duplicates]
        for key in ("start", "end"):
            v = getattr(self, key)
            if v is not None:
                args += [f"--{key}", str(v)]
        if self.split_dir is not None:
            args += ["--split-dir", self.split_dir]
        for entity in ("item", "user"):
            table = getattr(self, f"{entity}s")
            if table is not None:
                args += [f"--{entity}s", table]
                for suffix in ("key", "features"):
                    v = getattr(self, f"{entity}_{suffix}")
                    if v is not None:
                        args += [f"--{entity}-{suffix}", v]
        return args
