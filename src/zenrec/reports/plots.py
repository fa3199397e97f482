"""Report figures (matplotlib, Agg backend), each returned as PNG bytes.

Every function takes plain data (lists, dicts, polars frames) and never reads files, so
figures can be tested and reused outside the report.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "accuracy_vs_time",
    "learning_curves",
    "learning_curves_figure",
    "metric_bars",
    "param_importance",
    "popularity_coverage",
    "tuning_history",
]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    _plt().close(fig)
    return buf.getvalue()


def _nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def metric_bars(
    labels: Sequence[str],
    means: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    metric: str,
    title: str,
) -> bytes:
    """Horizontal bars of a metric per model with 95% confidence intervals as error bars."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1.4))
    err = [
        [0 if _nan(lo) else m - lo for m, lo in zip(means, lows)],
        [0 if _nan(hi) else hi - m for m, hi in zip(means, highs)],
    ]
    ax.barh(range(len(labels)), means, xerr=err, color="#4C72B0", capsize=3)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} (mean over seeds, 95% CI)")
    ax.set_title(title, fontsize=10)
    for j, m in enumerate(means):
        ax.text(m, j, f" {m:.4f}", va="center", fontsize=8)
    return _png(fig)


def accuracy_vs_time(
    labels: Sequence[str],
    seconds: Sequence[float],
    values: Sequence[float],
    metric: str,
    title: str,
) -> bytes:
    """Scatter of accuracy against mean fit time (log scale)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(seconds, values, color="#DD8452")
    for lab, x, y in zip(labels, seconds, values):
        ax.annotate(lab, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if all(s > 0 for s in seconds):
        ax.set_xscale("log")
    ax.set_xlabel("fit seconds (mean over seeds)")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return _png(fig)


def learning_curves(histories: dict[str, list[dict[str, Any]]], metric: str, title: str) -> bytes:
    """Per-epoch validation metric (and training loss when recorded) of each model (PNG)."""
    return _png(learning_curves_figure(histories, metric, title))


def _history_value(h: dict[str, Any], metric: str) -> Any:
    """An epoch's validation ``metric``: ``valid_<metric>`` as the trainer records it, the bare
    name, or a nested ``valid`` dict."""
    for key in (f"valid_{metric}", metric):
        if isinstance(h.get(key), (int, float)):
            return h[key]
    nested = h.get("valid")
    return nested.get(metric) if isinstance(nested, dict) else None


def learning_curves_figure(
    histories: dict[str, list[dict[str, Any]]], metric: str, title: str
) -> Any:
    """The matplotlib Figure of :func:`learning_curves`: one line per model on the first axes."""
    plt = _plt()
    has_loss = any("loss" in h for hist in histories.values() for h in hist)
    fig, axes = plt.subplots(
        1, 2 if has_loss else 1, figsize=(10 if has_loss else 6, 4), squeeze=False
    )
    for label, hist in histories.items():
        ep = [h.get("epoch", j + 1) for j, h in enumerate(hist)]
        vals = [_history_value(h, metric) for h in hist]
        pts = [(e, v) for e, v in zip(ep, vals) if v is not None]
        if pts:
            axes[0][0].plot(*zip(*pts), marker=".", label=label)
        if has_loss:
            lp = [(e, h["loss"]) for e, h in zip(ep, hist) if "loss" in h]
            if lp:
                axes[0][1].plot(*zip(*lp), marker=".", label=label)
    axes[0][0].set_xlabel("epoch")
    axes[0][0].set_ylabel(f"validation {metric}")
    axes[0][0].legend(fontsize=8)
    axes[0][0].set_title(title, fontsize=10)
    if has_loss:
        axes[0][1].set_xlabel("epoch")
        axes[0][1].set_ylabel("training loss")
    return fig


def tuning_history(
    numbers: Sequence[int],
    values: Sequence[float | None],
    states: Sequence[str],
    metric: str,
    direction: str,
    title: str,
) -> bytes:
    """Validation value of each trial and the best so far; pruned trials marked."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    best, best_line = None, []
    for _n, v, s in zip(numbers, values, states):
        if s == "COMPLETE" and v is not None:
            best = (
                v if best is None else (max(best, v) if direction == "maximize" else min(best, v))
            )
        best_line.append(best)
    c = [(n, v) for n, v, s in zip(numbers, values, states) if s == "COMPLETE" and v is not None]
    if c:
        ax.scatter(*zip(*c), s=14, color="#4C72B0", label="complete")
    p = [n for n, s in zip(numbers, states) if s == "PRUNED"]
    if p and c:
        ax.scatter(p, [min(v for _, v in c)] * len(p), marker="x", color="#C44E52", label="pruned")
    bl = [(n, b) for n, b in zip(numbers, best_line) if b is not None]
    if bl:
        ax.step(*zip(*bl), where="post", color="#55A868", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def param_importance(importances: dict[str, float], title: str, method: str = "fANOVA") -> bytes:
    """Importance of each hyperparameter (optuna.importance; fANOVA or PED-ANOVA)."""
    plt = _plt()
    names = list(importances)
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(names) + 1.4))
    ax.barh(range(len(names)), [importances[n] for n in names], color="#8172B3")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel(f"importance ({method}, normalised)")
    ax.set_title(title, fontsize=10)
    return _png(fig)


def popularity_coverage(
    labels: Sequence[str],
    coverage: Sequence[float],
    avg_pop: Sequence[float],
    accuracy: Sequence[float],
    metric: str,
    k: int,
    title: str,
) -> bytes:
    """Catalog coverage and mean popularity of the top-K lists, beside accuracy."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.4 * len(labels) + 2))
    axes[0].barh(range(len(labels)), coverage, color="#64B5CD")
    axes[0].set_yticks(range(len(labels)), labels)
    axes[0].invert_yaxis()
    axes[0].set_xlabel(f"catalog coverage@{k} (share of items ever recommended)")
    axes[1].scatter(avg_pop, accuracy, color="#C44E52")
    for lab, x, y in zip(labels, avg_pop, accuracy):
        axes[1].annotate(lab, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes[1].set_xlabel(f"mean training popularity of recommended items @{k}")
    axes[1].set_ylabel(metric)
    axes[1].grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return _png(fig)
