"""Top-k selection shared by the evaluator, the models and the service.

Examples:
    >>> import numpy as np
    >>> top_k_indices(np.array([[0.1, 0.9, 0.5, 0.9]]), 2).tolist()
    [[1, 3]]
"""

from __future__ import annotations

import numpy as np

__all__ = ["top_k_indices"]


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest entries of each row, best first; ties go to the lower index.

    ``argpartition`` does the work; the few rows where a tie straddles the k-th place are
    re-ranked with a stable sort so the result never depends on ``k`` or on batching.
    """
    n = scores.shape[1]
    k = min(k, n)
    if k <= 0:
        return np.zeros((scores.shape[0], 0), dtype=np.int64)
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
