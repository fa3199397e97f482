"""Confidence intervals over seeds and paired significance tests over users.

* :func:`mean_ci`: mean and Student-t confidence interval of per-seed values.
* :func:`paired_tests`: Wilcoxon signed-rank and paired t-test on per-user values of two
  models evaluated on the same users (same split).
* :func:`holm`: Holm-Bonferroni adjustment of a family of p-values.
* :func:`compare_to_baseline`: every model against a named baseline, Holm-adjusted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from zenrec._errors import ConfigError

__all__ = ["align_users", "compare_to_baseline", "holm", "mean_ci", "paired_tests"]


def mean_ci(
    values: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval; ``(mean, nan, nan)`` for one value.

    Examples:
        >>> m, lo, hi = mean_ci([0.30, 0.32, 0.31])
        >>> round(m, 2), lo < m < hi
        (0.31, True)
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if x.size < 2:
        return m, math.nan, math.nan
    se = float(x.std(ddof=1)) / math.sqrt(x.size)
    h = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * se
    return m, m - h, m + h


def paired_tests(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Paired tests of ``a`` against ``b`` (same users, same order).

    Returns the mean difference ``a - b``, its 95% t-interval, and two-sided p-values of the
    Wilcoxon signed-rank test (zero differences dropped, Wilcox's method) and the paired
    t-test. Identical inputs give p = 1.
    """
    from scipy import stats

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ConfigError(
            f"paired tests need two 1-D arrays of the same length; got {a.shape} and {b.shape}"
        )
    d = a - b
    n = int(d.size)
    mean_d, lo, hi = mean_ci(d)
    if n < 2 or np.all(d == 0):
        return {
            "n": n,
            "mean_diff": mean_d,
            "diff_ci_low": lo,
            "diff_ci_high": hi,
            "wilcoxon_p": 1.0,
            "ttest_p": 1.0,
        }
    w = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    if np.allclose(d, d[0]):  # constant non-zero difference: t undefined, the sign is certain
        t_p = 0.0
    else:
        t_p = float(stats.ttest_rel(a, b).pvalue)
    return {
        "n": n,
        "mean_diff": mean_d,
        "diff_ci_low": lo,
        "diff_ci_high": hi,
        "wilcoxon_p": float(w.pvalue),
        "ttest_p": t_p,
    }


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (monotone, capped at 1), in the input order.

    Examples:
        >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for rank, j in enumerate(order):
        running = max(running, (m - rank) * p[j])
        adj[j] = min(1.0, running)
    return adj.tolist()


def align_users(
    a_users: np.ndarray, a_vals: np.ndarray, b_users: np.ndarray, b_vals: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values of the users both arrays have, in one order: (users, a, b)."""
    common, ia, ib = np.intersect1d(np.asarray(a_users), np.asarray(b_users), return_indices=True)
    return common, np.asarray(a_vals)[ia], np.asarray(b_vals)[ib]


def compare_to_baseline(
    per_user: Mapping[str, tuple[np.ndarray, np.ndarray]],
    baseline: str,
    *,
    alpha: float = 0.05,
    lower_is_better: bool = False,
) -> list[dict[str, Any]]:
    """Every model against ``baseline`` on one metric, with Holm correction over the models.

    Args:
        per_user: Model label -> (users, values), e.g. values averaged over seeds.
        baseline: The label every other model is compared with.
        alpha: Family-wise significance level.
        lower_is_better: For error metrics (RMSE/MAE).

    Returns:
        One dict per other model: the paired statistics, Holm-adjusted p-values and
        ``significant`` (both adjusted p-values below ``alpha``) and ``better``.
    """
    if baseline not in per_user:
        raise ConfigError(f"baseline '{baseline}' has no results; models are {', '.join(per_user)}")
    bu, bv = per_user[baseline]
    rows: list[dict[str, Any]] = []
    for label, (u, v) in per_user.items():
        if label == baseline:
            continue
        _, a, b = align_users(u, v, bu, bv)
        r = paired_tests(a, b)
        rows.append({"model": label, "baseline": baseline, **r})
    for key in ("wilcoxon_p", "ttest_p"):
        for r, adj in zip(rows, holm([r[key] for r in rows])):
            r[f"{key}_holm"] = adj
    for r in rows:
        r["significant"] = bool(r["wilcoxon_p_holm"] < alpha and r["ttest_p_holm"] < alpha)
        r["better"] = bool(r["mean_diff"] < 0) if lower_is_better else bool(r["mean_diff"] > 0)
    return rows
