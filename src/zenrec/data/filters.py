"""Filters over a :class:`Dataset`; each records itself in ``Dataset.filters``."""

from __future__ import annotations

from typing import Literal

import numpy as np

from zenrec._errors import ConfigError, DataError
from zenrec.data.dataset import Dataset

__all__ = ["apply_filters", "dedupe", "kcore", "min_rating"]

DuplicatePolicy = Literal["last", "mean", "error", "keep"]


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
) -> Dataset:
    """Dedupe, then rating threshold, then k-core: the order every command uses."""
    ds = dedupe(ds, duplicates)
    if min_rating_value is not None:
        ds = min_rating(ds, min_rating_value)
    if min_user_count > 1 or min_item_count > 1:
        ds = kcore(ds, min_user_count, min_item_count)
    if len(ds) == 0:
        raise DataError(f"dataset '{ds.name}': no interactions left after filters {ds.filters}")
    return ds
