"""Filters over a :class:`Dataset`; each records itself in ``Dataset.filters``.

The same filters, under the same names, are the command line's flags (``--min-rating``,
``--min-user-count``, ``--min-item-count``, ``--duplicates``, ``--start``, ``--end``), keyword
arguments of :func:`zenrec.load_dataset`, :func:`zenrec.read_interactions` and
:meth:`zenrec.Dataset.filter`, and keys of a data config's ``[data]`` table
(docs/data-spec.md). They apply in one order: time window, duplicates, rating threshold,
k-core.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from zenrec._errors import ConfigError, DataError
from zenrec.data.dataset import Dataset

__all__ = [
    "FILTER_OPTIONS",
    "DataFilters",
    "apply_filters",
    "dedupe",
    "kcore",
    "min_rating",
    "time_window",
    "to_unix_seconds",
]

DuplicatePolicy = Literal["last", "mean", "error", "keep"]

FILTER_OPTIONS = ("min_rating", "min_user_count", "min_item_count", "duplicates", "start", "end")
"""The filter keywords, as ``load_dataset``, ``Dataset.filter`` and ``[data]`` name them."""


def to_unix_seconds(value: Any, name: str = "start") -> int:
    """Unix seconds of a time bound: a number of seconds, an ISO 8601 date or date-time
    string (naive = UTC), or a ``date`` / ``datetime`` (TOML writes these natively).

    Examples:
        >>> to_unix_seconds("1998-01-01"), to_unix_seconds(883612800), to_unix_seconds("883612800")
        (883612800, 883612800, 883612800)
    """
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be unix seconds or an ISO 8601 date; got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return int(value)
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(dt.timestamp())
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(float(text))
        except ValueError:
            pass
        try:
            return to_unix_seconds(datetime.fromisoformat(text.replace("Z", "+00:00")), name)
        except ValueError:
            pass
    raise ConfigError(
        f"{name} must be unix seconds or an ISO 8601 date such as 1998-01-01 (or a date-time "
        f"such as 1998-01-01T12:00:00Z); got {value!r}"
    )


def time_window(ds: Dataset, start: Any = None, end: Any = None) -> Dataset:
    """Keep interactions with ``start <= time < end`` (either bound may be omitted).

    Bounds are unix seconds or ISO 8601 dates / date-times (naive = UTC); see
    :func:`to_unix_seconds`.
    """
    if start is None and end is None:
        return ds
    lo = None if start is None else to_unix_seconds(start, "start")
    hi = None if end is None else to_unix_seconds(end, "end")
    if lo is not None and hi is not None and hi <= lo:
        raise ConfigError(
            f"the time window is empty: 'end' ({end}) must be after 'start' ({start})"
        )
    if ds.timestamps is None:
        raise DataError(
            f"dataset '{ds.name}' has no time column, so a time window (start/end) cannot apply; "
            "read the data with time_col=COLUMN or drop start/end"
        )
    keep = np.ones(len(ds), dtype=bool)
    if lo is not None:
        keep &= ds.timestamps >= lo
    if hi is not None:
        keep &= ds.timestamps < hi
    span = " and ".join(
        [*([f"time >= {start}"] if start is not None else []), *([f"time < {end}"] if end else [])]
    )
    return ds.with_filter(keep, f"{span} (kept {int(keep.sum())} of {len(ds)})")


def min_rating(ds: Dataset, threshold: float) -> Dataset:
    """Keep interactions whose rating/value is >= ``threshold`` (e.g. 3 for positives)."""
    if ds.ratings is None:
        raise DataError(
            f"dataset '{ds.name}' has no rating column, so min_rating={threshold:g} cannot apply; "
            "read the data with rating_col=COLUMN or drop min_rating="
        )
    keep = ds.ratings >= threshold
    return ds.with_filter(keep, f"rating >= {threshold:g} (kept {int(keep.sum())} of {len(ds)})")


def kcore(ds: Dataset, min_user: int = 0, min_item: int = 0) -> Dataset:
    """Iteratively drop users with < ``min_user`` and items with < ``min_item`` interactions."""
    if min_user < 0 or min_item < 0:
        raise ConfigError(f"k-core thresholds must be >= 0; got users={min_user}, items={min_item}")
    if min_user <= 1 and min_item <= 1:
        return ds
    keep = np.ones(len(ds), dtype=bool)
    while True:
        uc = np.bincount(ds.users[keep], minlength=ds.n_users)
        ic = np.bincount(ds.items[keep], minlength=ds.n_items)
        new = keep & (uc[ds.users] >= min_user) & (ic[ds.items] >= min_item)
        if new.sum() == keep.sum():
            break
        keep = new
    return ds.with_filter(
        keep,
        f"k-core users >= {min_user}, items >= {min_item} (kept {int(keep.sum())} of {len(ds)})",
    )


def dedupe(ds: Dataset, policy: DuplicatePolicy = "last") -> Dataset:
    """Resolve repeated (user, item) pairs.

    Args:
        ds: The dataset.
        policy: ``last`` keeps the latest (by time, else file order); ``mean`` averages the
            ratings into the last row; ``error`` raises; ``keep`` keeps all rows.
    """
    if policy not in ("last", "mean", "error", "keep"):
        raise ConfigError(
            f"duplicates policy must be one of last, mean, error, keep; got {policy!r}"
        )
    if policy == "keep" or len(ds) == 0:
        return ds
    key = ds.users.astype(np.int64) * ds.n_items + ds.items
    order = (
        np.lexsort((ds.timestamps, key))
        if ds.timestamps is not None
        else np.argsort(key, kind="stable")
    )
    sk = key[order]
    last_of_group = np.ones(sk.size, dtype=bool)
    last_of_group[:-1] = sk[1:] != sk[:-1]
    n_dup = int(sk.size - last_of_group.sum())
    if n_dup == 0:
        return ds
    if policy == "error":
        first = int(order[np.flatnonzero(~last_of_group)[0]])
        u = ds.user_vocab.decode([ds.users[first]])[0]
        i = ds.item_vocab.decode([ds.items[first]])[0]
        raise DataError(
            f"dataset '{ds.name}': {n_dup} repeated (user, item) pairs, e.g. user {u} item {i}; "
            "pass duplicates='last' or duplicates='mean'"
        )
    rows = order[last_of_group]
    out = ds.subset(np.sort(rows))
    if policy == "mean" and ds.ratings is not None:
        group = np.cumsum(np.concatenate([[0], last_of_group[:-1]]))
        sums = np.bincount(group, weights=ds.ratings[order])
        cnts = np.bincount(group)
        means = (sums / cnts).astype(np.float32)
        pos = np.argsort(rows)
        out.ratings = means[pos]
    out.filters.append(f"duplicates: {policy} ({n_dup} repeated rows merged)")
    return out


def apply_filters(
    ds: Dataset,
    *,
    min_rating_value: float | None = None,
    min_user_count: int = 0,
    min_item_count: int = 0,
    duplicates: DuplicatePolicy = "last",
    start: Any = None,
    end: Any = None,
) -> Dataset:
    """Time window, then dedupe, then rating threshold, then k-core: the order every command
    uses (:meth:`zenrec.Dataset.filter` takes the same filters under their public names)."""
    ds = time_window(ds, start, end)
    ds = dedupe(ds, duplicates)
    if min_rating_value is not None:
        ds = min_rating(ds, min_rating_value)
    if min_user_count > 1 or min_item_count > 1:
        ds = kcore(ds, min_user_count, min_item_count)
    if len(ds) == 0:
        raise DataError(f"dataset '{ds.name}': no interactions left after filters {ds.filters}")
    return ds


def time_bound(value: Any) -> Any:
    """A time bound as a JSON-able value: dates and date-times (TOML's own) become ISO text."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


class DataFilters(BaseModel):
    """The filters of one dataset, under the names every entry point uses (docs/data-spec.md).

    Examples:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=30, n_items=20, seed=0)
        >>> DataFilters(min_user_count=3).apply(ds).filters[-1].startswith("k-core")
        True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_rating: float | None = None
    """Keep interactions with rating >= this (``--min-rating``)."""
    min_user_count: int | None = Field(None, ge=1)
    """k-core: users with at least this many interactions (``--min-user-count``)."""
    min_item_count: int | None = Field(None, ge=1)
    """k-core: items with at least this many interactions (``--min-item-count``)."""
    duplicates: DuplicatePolicy = "last"
    """Repeated (user, item) rows: keep the last, average, fail, or keep all
    (``--duplicates``)."""
    start: int | str | None = None
    """Keep interactions at or after this time: unix seconds or ISO 8601 (``--start``)."""
    end: int | str | None = None
    """Keep interactions before this time: unix seconds or ISO 8601 (``--end``)."""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _bound(cls, v: Any) -> Any:
        return time_bound(v)

    @field_validator("start", "end")
    @classmethod
    def _parses(cls, v: Any) -> Any:
        if v is not None:
            try:
                to_unix_seconds(v)
            except ConfigError:
                raise ValueError(
                    "expected unix seconds or an ISO 8601 date or date-time such as '1998-01-01'"
                ) from None
        return v

    @classmethod
    def of(cls, where: str, **options: Any) -> DataFilters:
        """Validated filters; a bad one raises a one-line :class:`ConfigError` naming ``where``."""
        try:
            return cls(**options)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(x) for x in err.get("loc", ())) or "filters"
            if err.get("type") == "extra_forbidden":
                raise ConfigError(
                    f"{where}: '{key}' is not a filter; filters are {', '.join(FILTER_OPTIONS)} "
                    "(see docs/data-spec.md)"
                ) from None
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            raise ConfigError(
                f"{where}: filter '{key}': {msg}; got {err.get('input')!r} (see docs/data-spec.md)"
            ) from None

    def given(self) -> dict[str, Any]:
        """The filters set to something other than their defaults."""
        return self.model_dump(exclude_defaults=True)

    def apply(self, ds: Dataset) -> Dataset:
        """Apply the filters in their one order (see :func:`apply_filters`)."""
        return apply_filters(
            ds,
            min_rating_value=self.min_rating,
            min_user_count=self.min_user_count or 0,
            min_item_count=self.min_item_count or 0,
            duplicates=self.duplicates,
            start=self.start,
            end=self.end,
        )
