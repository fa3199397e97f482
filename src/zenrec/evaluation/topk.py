"""Top-k selection shared by the evaluator, the models and the service.

Examples:
    >>> import numpy as np
    >>> top_k_indices(np.array([[0.1, 0.9, 0.5, 0.9]]), 2).tolist()
    [[1, 3]]
"""

from __future__ import annotations

import numpy as np

__all__ = ["top_k_indices"]


def top_k_indices(scores: np.ndarray, k: int, rank: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` largest entries of each row, best first; ties go to the lower index,
    or, with ``rank`` (one int per column), to the column of lower ``rank``.

    ``argpartition`` does the work; the few rows where a tie straddles the k-th place are
    re-ranked with a stable sort so the result never depends on ``k`` or on batching. With
    ``rank`` the answer equals ``order[top_k_indices(scores[:, order], k)]`` for the ``order``
    that ``rank`` inverts, without copying the permuted scores: only the columns at or above
    each row's k-th value are sorted, by (score, rank).

    Example:
        >>> top_k_indices(np.array([[0.1, 0.9, 0.5, 0.9]]), 2, rank=np.array([0, 3, 2, 1])).tolist()
        [[3, 1]]
    """
    n = scores.shape[1]
    k = min(k, n)
    if k <= 0:
        return np.zeros((scores.shape[0], 0), dtype=np.int64)
    if rank is not None:
        return _top_k_ranked(scores, k, rank)
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(n), (scores.shape[0], 1))
    vals = np.take_along_axis(scores, part, 1)
    order = np.lexsort((part, -vals), axis=1)
    top = np.take_along_axis(part, order, 1)
    if k < n:
        kth = np.take_along_axis(scores, top[:, -1:], 1)  # (B, 1)
        n_tied_total = (scores == kth).sum(axis=1)
        n_tied_kept = (np.take_along_axis(scores, top, 1) == kth).sum(axis=1)
        rows = np.flatnonzero(n_tied_total > n_tied_kept)
        if rows.size:
            sub = scores[rows]
            kv = kth[rows]
            gt = sub > kv
            eq = sub == kv
            need = k - gt.sum(axis=1)
            take = gt | (eq & (np.cumsum(eq, axis=1) <= need[:, None]))
            idx = np.nonzero(take)[1].reshape(rows.size, k)  # row-major: ascending index
            v = np.take_along_axis(sub, idx, 1)
            top[rows] = np.take_along_axis(idx, np.lexsort((idx, -v), axis=1), 1)
    return top


def _top_k_ranked(scores: np.ndarray, k: int, rank: np.ndarray) -> np.ndarray:
    """``top_k_indices`` with ties by ``rank``: the k-th value of each row, then a (score, rank)
    sort of the columns at or above it (k of them unless ties straddle the k-th place)."""
    b, n = scores.shape
    if k < n:
        kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]  # (B, 1)
        keep = scores >= kth
    else:
        keep = np.ones((b, n), dtype=bool)
    counts = keep.sum(axis=1)
    out = np.empty((b, k), dtype=np.int64)
    if b and (counts == counts[0]).all():  # one shape for every row: sort them together
        cols = np.nonzero(keep)[1].reshape(b, int(counts[0]))
        vals = np.take_along_axis(scores, cols, 1)
        order = np.lexsort((rank[cols], -vals), axis=1)[:, :k]
        return np.take_along_axis(cols, order, 1)
    for r in range(b):
        row = np.flatnonzero(keep[r])
        out[r] = row[np.lexsort((rank[row], -scores[r, row]))[:k]]
    return out
