"""Linear algebra shared by factor models, classic and neural: item cosines and user fold-in."""

from __future__ import annotations

import numpy as np

from zenrec._arrays import unique

__all__ = ["cosine_similarities", "implicit_fold_in"]


def cosine_similarities(vectors: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Cosine similarity of the rows ``items`` of ``vectors`` to every row: (len(items), n)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1)
    norms[norms == 0] = 1.0
    return ((v[items] / norms[items, None]) @ (v / norms[:, None]).T).astype(np.float32)


def implicit_fold_in(
    item_factors: np.ndarray, gram: np.ndarray, items: np.ndarray, *, alpha: float, reg: float
) -> np.ndarray:
    """Least-squares user vector for a history under the implicit-feedback objective.

    Minimises ``sum_i c_i (p_i - x . q_i)^2 + reg |x|^2`` over the whole catalog with
    ``p_i = 1, c_i = 1 + alpha`` on the history and ``p_i = 0, c_i = 1`` elsewhere (Hu, Koren
    & Volinsky 2008), i.e. ``x = (Q^T Q + alpha Q_h^T Q_h + reg I)^-1 (1 + alpha) Q_h^T 1``.

    Args:
        item_factors: (n_items, d) item factors Q.
        gram: Q^T Q, (d, d) (precomputed once per model).
        items: History item indices (repeats count once).
        alpha: Confidence of an observed item.
        reg: L2 regularisation.
    """
    q = np.asarray(item_factors, dtype=np.float64)[unique(items)]
    a = gram + alpha * (q.T @ q) + reg * np.eye(gram.shape[0])
    b = (1.0 + alpha) * q.sum(axis=0)
    return np.linalg.solve(a, b).astype(np.float32)
