"""Metric formulas, each written once (docs/user-guide.md lists them with the same notation).

Top-K metrics take a boolean hit matrix ``hits`` (users x K; ``hits[u, i]`` is True when the
item at rank i+1 is relevant) and ``n_rel`` (relevant items per user) and return one value
per user. With h_i the hit at rank i and P = n_rel:

* Hit@K = 1[sum_{i<=K} h_i > 0]
* Precision@K = sum h_i / K
* Recall@K = sum h_i / P
* MRR@K = 1 / (rank of the first hit), 0 if none
* NDCG@K = (sum h_i / log2(i + 1)) / (sum_{i <= min(P, K)} 1 / log2(i + 1))
* MAP@K = (sum_i h_i * Precision@i) / min(P, K)

These are RecBole's definitions; they reproduce its evaluator exactly (tests/golden).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

__all__ = [
    "LOWER_IS_BETTER",
    "RANKING_METRICS",
    "auc",
    "gauc",
    "gini_index",
    "higher_is_better",
    "hit",
    "logloss",
    "mae",
    "map_",
    "metric_direction",
    "mrr",
    "ndcg",
    "precision",
    "recall",
    "rmse",
]


def hit(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(hits[:, :k].any(axis=1), dtype=np.float64)


def precision(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(axis=1) / float(k)


def recall(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(axis=1) / np.maximum(n_rel, 1)


def mrr(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    h = hits[:, :k]
    first = np.argmax(h, axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1), 0.0)


def ndcg(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    h = hits[:, :k].astype(np.float64)
    disc = 1.0 / np.log2(np.arange(2, h.shape[1] + 2))
    dcg = h @ disc
    ideal_cum = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    idcg = ideal_cum[np.minimum(n_rel, k)]
    return np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)


def map_(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    h = hits[:, :k].astype(np.float64)
    prec_at = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    return (prec_at * h).sum(axis=1) / np.maximum(np.minimum(n_rel, k), 1)


RANKING_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "precision": precision,
    "recall": recall,
    "ndcg": ndcg,
    "map": map_,
    "mrr": mrr,
    "hit": hit,
}


# ---------------------------------------------------------------- rating prediction
def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    """sqrt(mean((pred - true)^2))."""
    d = np.asarray(pred, np.float64) - np.asarray(true, np.float64)
    return float(np.sqrt(np.mean(d * d)))


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    """mean(|pred - true|)."""
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(true, np.float64))))


# ---------------------------------------------------------------- classification / CTR
def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN if one class."""
    from scipy.stats import rankdata

    s = np.asarray(scores, np.float64)
    y = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def gauc(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    """Group AUC: per-group AUC weighted by group size, over groups with both classes."""
    s, y, g = np.asarray(scores), np.asarray(labels).astype(bool), np.asarray(groups)
    order = np.argsort(g, kind="stable")
    g_sorted = g[order]
    bounds = np.flatnonzero(g_sorted[1:] != g_sorted[:-1]) + 1
    total, weight = 0.0, 0
    for idx in np.split(order, bounds):
        yy = y[idx]
        if yy.all() or not yy.any():
            continue
        total += auc(s[idx], yy) * idx.size
        weight += idx.size
    return float(total / weight) if weight else float("nan")


def logloss(probs: np.ndarray, labels: np.ndarray, eps: float = 1e-7) -> float:
    """Binary cross-entropy -mean(y log p + (1 - y) log(1 - p)), p clipped to [eps, 1 - eps]."""
    p = np.clip(np.asarray(probs, np.float64), eps, 1 - eps)
    y = np.asarray(labels, np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


# ---------------------------------------------------------------- beyond accuracy
def gini_index(counts: np.ndarray) -> float:
    """Gini index of how often each catalog item is recommended (0 = even, 1 = one item)."""
    x = np.sort(np.asarray(counts, np.float64))
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    idx = np.arange(1, n + 1)
    return float(((2 * idx - n - 1) * x).sum() / (n * x.sum()))


LOWER_IS_BETTER = frozenset({"rmse", "mae", "logloss", "loss"})
"""Metric names (the part before ``@`` and any ``task/`` prefix) where smaller is better."""


def higher_is_better(metric: str) -> bool:
    """The one metric-direction rule: errors and losses go down, everything else goes up.

    Examples:
        >>> higher_is_better("ndcg@10"), higher_is_better("rmse"), higher_is_better("rating/mae")
        (True, False, False)
    """
    return metric.rsplit("/", 1)[-1].split("@")[0] not in LOWER_IS_BETTER


def metric_direction(metric: str) -> Literal["maximize", "minimize"]:
    """Optuna's direction for ``metric`` (see :func:`higher_is_better`)."""
    return "maximize" if higher_is_better(metric) else "minimize"
