"""Splits of a :class:`~zenrec.data.Dataset` into train / valid / test parts.

Every split is deterministic for a seed, keeps the parent's vocabularies (so indices agree
across parts) and never puts one interaction row in two parts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zenrec._arrays import stable_argsort
from zenrec._errors import ConfigError, ProtocolError
from zenrec.data.dataset import Dataset
from zenrec.data.filters import to_unix_seconds
from zenrec.data.splitdir import load_split_dir

__all__ = [
    "Split",
    "fixed_split",
    "global_random_split",
    "kfold_splits",
    "leave_one_out",
    "recbole_split_sizes",
    "time_cutoff_split",
    "time_fraction_split",
    "to_unix_seconds",
    "user_random_split",
    "user_stratified_split",
    "user_temporal_split",
]


@dataclass
class Split:
    """Parts of one split; ``valid`` may be ``None``."""

    train: Dataset
    valid: Dataset | None
    test: Dataset
    description: str

    def sizes(self) -> tuple[int, int, int]:
        return len(self.train), 0 if self.valid is None else len(self.valid), len(self.test)


def fixed_split(path: str | Path, base: Dataset | None = None) -> tuple[Split, str]:
    """A split read from a directory (see :func:`zenrec.data.splitdir.load_split_dir`).

    Returns:
        The split and the sha256 of its files.
    """
    parts, sha = load_split_dir(path, base=base)
    return Split(parts["train"], parts.get("valid"), parts["test"], f"fixed split from {path}"), sha


def _check_ratios(ratios: Sequence[float]) -> np.ndarray:
    r = np.asarray(ratios, dtype=np.float64)
    if r.ndim != 1 or r.size not in (2, 3) or (r <= 0).any():
        raise ConfigError(
            "split ratios must be 2 or 3 positive numbers (train, [valid,] test); "
            f"got {list(ratios)}"
        )
    return r / r.sum()


def _parts(ds: Dataset, labels: np.ndarray, n_parts: int, desc: str) -> Split:
    sets = [ds.subset(np.flatnonzero(labels == p)) for p in range(n_parts)]
    for s, nm in zip(sets, ["train", "valid", "test"] if n_parts == 3 else ["train", "test"]):
        s.name = f"{ds.name}:{nm}"
    if n_parts == 3:
        return Split(sets[0], sets[1], sets[2], desc)
    return Split(sets[0], None, sets[1], desc)


def _require_time(ds: Dataset, what: str) -> np.ndarray:
    if ds.timestamps is None:
        raise ProtocolError(
            f"{what} needs timestamps, but dataset '{ds.name}' has none"
            + (" (this ml-1m ratings.dat has 3 fields)" if ds.name.startswith("ml-1m") else "")
            + "; use a random split (e.g. protocol 'recbole') or read the data with time_col=COLUMN"
        )
    return ds.timestamps


def recbole_split_sizes(n: int, ratios: np.ndarray) -> list[int]:
    """Part sizes of ``n`` rows under ``ratios`` with RecBole's rounding rule.

    Every part but the first gets ``floor(ratio * n)``; the first takes the rest; then, while
    the first keeps at least 2, a later part whose share would be in (0, 1) gets one row.
    """
    cnt = [int(r * n) for r in ratios]
    cnt[0] = n - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * n < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


def _group_starts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by ``keys``: start offsets and sizes of each key group."""
    if keys.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate([[0], change])
    sizes = np.diff(np.concatenate([starts, [keys.size]]))
    return starts, sizes


def _per_user_labels(ds: Dataset, order: np.ndarray, sizes_fn) -> np.ndarray:
    """Label rows per user: ``order`` lists rows grouped by user in within-user order."""
    users_sorted = ds.users[order]
    starts, sizes = _group_starts(users_sorted)
    labels_sorted = np.empty(order.size, dtype=np.int8)
    pos = np.arange(order.size) - np.repeat(starts, sizes)
    # boundaries per group
    # boundaries per group, computed once per distinct group size (users share sizes)
    if sizes.size:
        distinct, which = np.unique(sizes, return_inverse=True)
        bounds = np.array([np.cumsum(sizes_fn(int(n))) for n in distinct])[which]
    else:
        bounds = np.zeros((0, 1))
    b_rows = np.repeat(bounds, sizes, axis=0)
    labels_sorted[:] = (pos[:, None] >= b_rows).sum(axis=1)
    labels = np.empty_like(labels_sorted)
    labels[order] = labels_sorted
    return labels


def global_random_split(
    ds: Dataset, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> Split:
    """Shuffle all interactions and cut them by ``ratios``."""
    r = _check_ratios(ratios)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(ds))
    cuts = np.cumsum(recbole_split_sizes(len(ds), r))
    labels = np.empty(len(ds), dtype=np.int8)
    labels[perm] = np.searchsorted(cuts, np.arange(len(ds)), side="right")
    return _parts(
        ds, labels, r.size, f"global random split {'/'.join(f'{x:g}' for x in r)}, seed {seed}"
    )


def user_random_split(
    ds: Dataset, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> Split:
    """Per user, shuffle the interactions and cut by ``ratios`` (RecBole's default 8:1:1, RO)."""
    r = _check_ratios(ratios)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(ds))
    order = perm[stable_argsort(ds.users[perm])]
    labels = _per_user_labels(ds, order, lambda n: recbole_split_sizes(n, r))
    return _parts(
        ds, labels, r.size, f"per-user random split {'/'.join(f'{x:g}' for x in r)}, seed {seed}"
    )


def user_stratified_split(ds: Dataset, ratio: float = 0.75, seed: int = 42) -> Split:
    """Per user, shuffle and keep ``round(ratio * n)`` in train (Microsoft Recommenders' split)."""
    if not 0 < ratio < 1:
        raise ConfigError(f"stratified split ratio must be in (0, 1); got {ratio}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(ds))
    order = perm[stable_argsort(ds.users[perm])]
    labels = _per_user_labels(
        ds, order, lambda n: [int(np.round(ratio * n)), n - int(np.round(ratio * n))]
    )
    return _parts(ds, labels, 2, f"per-user stratified split {ratio:g}/{1 - ratio:g}, seed {seed}")


def _time_order(ds: Dataset, what: str) -> np.ndarray:
    t = _require_time(ds, what)
    return np.lexsort((np.arange(len(ds)), t, ds.users))  # by user, then time, then file order


def user_temporal_split(ds: Dataset, ratios: Sequence[float] = (0.8, 0.1, 0.1)) -> Split:
    """Per user, the earliest interactions train, the latest test (cut by ``ratios``)."""
    r = _check_ratios(ratios)
    order = _time_order(ds, "a temporal split")
    labels = _per_user_labels(ds, order, lambda n: recbole_split_sizes(n, r))
    return _parts(ds, labels, r.size, f"per-user temporal split {'/'.join(f'{x:g}' for x in r)}")


def leave_one_out(ds: Dataset, valid: bool = True) -> Split:
    """Per user by time: the last interaction tests, the one before validates (if ``valid``).

    Users need at least 3 (or 2 without validation) interactions to appear in every part;
    users with fewer keep them all in train.
    """
    order = _time_order(ds, "leave-one-out")
    held = 2 if valid else 1

    def sizes(n: int) -> list[int]:
        if n <= held:
            return [n] + [0] * held
        return [n - held] + [1] * held

    labels = _per_user_labels(ds, order, sizes)
    return _parts(
        ds, labels, held + 1, "leave-one-out by time" + (" with a validation item" if valid else "")
    )


def time_cutoff_split(
    ds: Dataset,
    test_start: int | None = None,
    valid_start: int | None = None,
    *,
    test_fraction: float | None = None,
    valid_fraction: float | None = None,
) -> Split:
    """Global time cutoff: interactions before ``valid_start`` train, then valid, then test.

    Cutoffs are unix seconds, or chosen as time quantiles with ``test_fraction`` /
    ``valid_fraction`` of the interactions after them.
    """
    t = _require_time(ds, "a time-cutoff split")
    if test_start is None:
        if test_fraction is None or not 0 < test_fraction < 1:
            raise ConfigError("time cutoff split: pass test_start or a test_fraction in (0, 1)")
        test_start = int(np.quantile(t, 1 - test_fraction))
    if valid_start is None and valid_fraction is not None:
        valid_start = (
            int(np.quantile(t, 1 - test_fraction - valid_fraction)) if test_fraction else None
        )
    if valid_start is not None and valid_start > test_start:
        raise ConfigError(f"valid_start {valid_start} is after test_start {test_start}")
    labels = np.where(t >= test_start, 2, 0).astype(np.int8)
    if valid_start is not None:
        labels[(t >= valid_start) & (t < test_start)] = 1
        return _parts(
            ds, labels, 3, f"time cutoff: valid from {valid_start}, test from {test_start}"
        )
    labels[labels == 2] = 1
    return _parts(ds, labels, 2, f"time cutoff: test from {test_start}")


def time_fraction_split(
    ds: Dataset, test_fraction: float = 0.1, valid_fraction: float = 0.1
) -> Split:
    """One global time cutoff by counts: the last ``test_fraction`` of the interactions by time
    test, the ``valid_fraction`` before them validate, the rest train.

    Interactions are ordered by time, ties by file order, and each part gets
    ``round(fraction * n)`` rows, so the parts have exactly the asked sizes even when many
    interactions share a timestamp (:func:`time_cutoff_split` with fractions cuts at a time
    quantile instead). ``valid_fraction=0`` gives no validation part.

    Example:
        >>> ds = Dataset.from_raw([1, 2, 1, 2, 3], [1, 1, 2, 2, 1], timestamps=[5, 1, 2, 4, 3])
        >>> time_fraction_split(ds, 0.2, 0.2).sizes()
        (3, 1, 1)
    """
    t = _require_time(ds, "a temporal split")
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be in (0, 1); got {test_fraction}")
    if not 0 <= valid_fraction < 1 or test_fraction + valid_fraction >= 1:
        raise ConfigError(
            f"valid_fraction must be >= 0 and leave training data (test_fraction + "
            f"valid_fraction < 1); got {valid_fraction} with test_fraction {test_fraction}"
        )
    n = len(ds)
    n_test = int(round(test_fraction * n))
    n_valid = int(round(valid_fraction * n))
    order = np.lexsort((np.arange(n), t))  # by time, then file order
    labels = np.zeros(n, dtype=np.int8)
    labels[order[n - n_test :]] = 2
    labels[order[n - n_test - n_valid : n - n_test]] = 1
    pct = f"last {test_fraction * 100:g}% by time test"
    if n_valid:
        return _parts(
            ds, labels, 3, f"global time split: {pct}, {valid_fraction * 100:g}% before valid"
        )
    labels[labels == 2] = 1
    return _parts(ds, labels, 2, f"global time split: {pct}")


def kfold_splits(ds: Dataset, k: int = 5, seed: int = 0) -> Iterator[Split]:
    """K folds of a random permutation of all interactions; fold j tests on part j."""
    if k < 2:
        raise ConfigError(f"k-fold needs k >= 2; got {k}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(ds))
    fold_of = np.empty(len(ds), dtype=np.int64)
    fold_of[perm] = np.arange(len(ds)) % k
    for j in range(k):
        labels = (fold_of == j).astype(np.int8)
        yield _parts(ds, labels, 2, f"{k}-fold cross-validation, fold {j + 1}, seed {seed}")
