"""Data configs: a TOML file whose ``[data]`` table says how to read a dataset and its features.

Accepted wherever a dataset is named (``zenrec evaluate/train/tune --dataset data.toml``,
``datasets = ["data.toml"]`` in a benchmark config, ``load_dataset("data.toml")``)::

    [data]
    path = "events.csv"            # relative to this file; or dataset = "ml-100k"
    user_col = "customer"
    item_col = "sku"
    rating_col = "qty"             # optional
    time_col = "ts"                # optional
    name = "shop"                  # optional (default: the file's stem)
    min_rating = 4                 # optional filters, as the command line's flags:
    min_user_count = 5             #   min_rating, min_user_count, min_item_count,
    start = 1998-01-01             #   duplicates, start, end

    [data.items]
    path = "items.csv"
    key = "sku"
    features = { genre = "multi:|", year = "numeric", brand = "categorical", title = "text" }

    [data.users]
    path = "users.csv"
    key = "customer"
    features = { age = "numeric", country = "categorical" }

Features are read by the same code as :meth:`zenrec.Dataset.with_item_features`; filters
by :meth:`zenrec.Dataset.filter`. docs/data-spec.md documents every key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from zenrec._errors import ConfigError, DataError
from zenrec._toml import read_toml
from zenrec._validation import KEY_MESSAGES, dotted, to_config_error
from zenrec.data.dataset import Dataset
from zenrec.data.filters import FILTER_OPTIONS, DataFilters, time_bound

__all__ = ["DataConfig", "FeatureTableConfig", "load_data_config", "read_data_config"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureTableConfig(_Strict):
    """One feature table (``[data.items]`` or ``[data.users]``)."""

    path: str
    """CSV/TSV/Parquet file, relative to the config file."""
    key: str | None = None
    """Column of the raw ids (default: a column named like ``item_id`` / ``user_id``)."""
    features: dict[str, str] = Field(min_length=1)
    """Column -> kind: ``numeric``, ``categorical``, ``text`` or ``multi[:SEP]``."""
    sep: str | None = None
    """Field separator (default: by extension)."""
    header: bool = True
    """Whether the first line names the columns."""
    encoding: str = "utf-8"
    """Text encoding."""


class DataConfig(_Strict):
    """How to read one dataset (the ``[data]`` table)."""

    path: str | None = None
    """Interaction file (CSV/TSV/Parquet), relative to the config file."""
    dataset: str | None = None
    """A built-in dataset name instead of ``path`` (its own features are kept)."""
    name: str | None = None
    """Dataset name shown in results (default: the config file's stem)."""
    user_col: str | None = None
    """Column of user ids."""
    item_col: str | None = None
    """Column of item ids."""
    rating_col: str | None = None
    """Column of ratings or values."""
    time_col: str | None = None
    """Column of unix seconds or ISO 8601 date-times."""
    sep: str | None = None
    """Field separator of the interaction file."""
    header: bool = True
    """Whether the interaction file has a header row."""
    encoding: str = "utf-8"
    """Text encoding of the interaction file."""
    items: FeatureTableConfig | None = None
    """Item features."""
    users: FeatureTableConfig | None = None
    """User features."""
    min_rating: float | None = None
    """Filter: keep interactions with rating >= this (``--min-rating``)."""
    min_user_count: int | None = Field(None, ge=1)
    """Filter: k-core, users with at least this many interactions (``--min-user-count``)."""
    min_item_count: int | None = Field(None, ge=1)
    """Filter: k-core, items with at least this many interactions (``--min-item-count``)."""
    duplicates: Literal["last", "mean", "error", "keep"] | None = None
    """Filter: repeated (user, item) rows (``--duplicates``; default ``last`` when any
    filter is given)."""
    start: int | str | None = None
    """Filter: keep interactions at or after this time (unix seconds or ISO 8601; a TOML date
    works too) (``--start``)."""
    end: int | str | None = None
    """Filter: keep interactions before this time (``--end``)."""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _bound(cls, v: Any) -> Any:
        return time_bound(v)

    def filters(self) -> DataFilters | None:
        """The filters this table sets, or ``None``."""
        given = {k: getattr(self, k) for k in FILTER_OPTIONS if getattr(self, k) is not None}
        return DataFilters.of("[data]", **given) if given else None

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.path is None) == (self.dataset is None):
            raise ValueError(
                "give exactly one of 'path' (an interaction file) or 'dataset' (a built-in name)"
            )
        if self.dataset is not None and any(
            v is not None
            for v in (self.user_col, self.item_col, self.rating_col, self.time_col, self.sep)
        ):
            raise ValueError("column options apply to 'path', not to a built-in 'dataset'")
        return self


def read_data_config(path: str | Path) -> tuple[Path, DataConfig]:
    """Read and validate the ``[data]`` table of ``path``; errors name the file, key and fix."""
    p, raw = read_toml(path, "data config")
    if "data" not in raw or not isinstance(raw["data"], dict):
        raise ConfigError(
            f'{p}: no [data] table; a data config starts with [data] and path = "events.csv"'
        )
    extra = sorted(k for k in raw if k != "data")
    if extra:
        raise ConfigError(f"{p}: unknown top-level key(s) {extra}; everything goes under [data]")
    try:
        cfg = DataConfig(**raw["data"])
    except ValidationError as exc:
        raise to_config_error(
            exc,
            where=str(p),
            key=lambda loc: dotted(("data", *loc)),
            messages={
                **KEY_MESSAGES,
                "extra_forbidden": "unknown key '{key}'; "
                "see docs/data-spec.md for the [data] schema",
                "*": "key '{key}': {msg}; got {got} (see docs/data-spec.md)",
            },
        ) from None
    try:
        cfg.filters()
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    return p, cfg


def load_data_config(
    path: str | Path, *, data_dir: str | Path | None = None, download: bool = True
) -> Dataset:
    """Load the dataset a data config describes, with its feature tables attached."""
    from zenrec.data import load_dataset

    p, cfg = read_data_config(path)
    base = p.parent

    def rel(f: str) -> Path:
        q = Path(f).expanduser()
        return q if q.is_absolute() else base / q

    try:
        if cfg.dataset is not None:
            ds = load_dataset(cfg.dataset, path=data_dir, download=download)
        else:
            assert cfg.path is not None
            ds = load_dataset(
                rel(cfg.path),
                user_col=cfg.user_col,
                item_col=cfg.item_col,
                rating_col=cfg.rating_col,
                time_col=cfg.time_col,
                sep=cfg.sep,
                header=cfg.header,
                encoding=cfg.encoding,
            )
        for entity, table in (("item", cfg.items), ("user", cfg.users)):
            if table is None:
                continue
            attach = ds.with_item_features if entity == "item" else ds.with_user_features
            ds = attach(
                rel(table.path),
                key=table.key,
                features=table.features,
                sep=table.sep,
                header=table.header,
                encoding=table.encoding,
            )
        filters = cfg.filters()
        if filters is not None:
            ds = filters.apply(ds)
    except DataError as exc:
        raise DataError(f"{p}: {exc}") from None
    ds.name = cfg.name or p.stem
    return ds
