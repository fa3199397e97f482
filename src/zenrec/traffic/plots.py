"""PNG plots of forecasts, flagged periods and replica plans (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenrec._io import atomic_path

if TYPE_CHECKING:
    import pandas as pd

    from zenrec.traffic.plan import Plan
    from zenrec.traffic.series import TrafficSeries

__all__ = ["plot_forecast", "plot_plan"]


def _savefig(fig: Any, path: str | os.PathLike[str]) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_forecast(
    path: str | os.PathLike[str],
    series: TrafficSeries,
    frame: pd.DataFrame | None,
    *,
    model: str = "",
    periods: Sequence[Any] = (),
    alerts: Sequence[Any] = (),
    history_seconds: float = 7 * 86400,
    title: str = "",
) -> None:
    """Plot recent history, the forecast with 80/95 % bands, flagged periods and alerts."""
    import pandas as pd

    plt = _plt()
    fig, ax = plt.subplots(figsize=(12, 4.5))
    tail = series.tail(history_seconds) if frame is not None else series
    ax.plot(tail.index, tail.values, lw=0.8, color="0.2", label="history")
    if frame is not None and len(frame):
        ax.fill_between(
            frame["ts"], frame["lo95"], frame["hi95"], color="C0", alpha=0.15, label="95% interval"
        )
        ax.fill_between(
            frame["ts"], frame["lo80"], frame["hi80"], color="C0", alpha=0.3, label="80% interval"
        )
        ax.plot(frame["ts"], frame["mean"], color="C0", lw=1.2, label=f"forecast ({model})")
    t0 = tail.index[0]
    first = True
    for p in periods:
        s, e = (
            pd.Timestamp(p.start),
            pd.Timestamp(p.end) + pd.Timedelta(seconds=series.step_seconds),
        )
        if e < t0:
            continue
        ax.axvspan(
            s,
            e,
            color="C3" if p.kind == "surge" else "C2",
            alpha=0.25,
            label="flagged (history)" if first else None,
        )
        first = False
    first = True
    for a in alerts:
        ax.axvspan(
            pd.Timestamp(a.start),
            pd.Timestamp(a.end),
            color="C1",
            alpha=0.3,
            label="surge alert (forecast)" if first else None,
        )
        first = False
    ax.set_title(title or f"{Path(series.report.source).name} ({series.freq} buckets)")
    ax.set_ylabel(f"requests per {series.freq}")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


def plot_plan(path: str | os.PathLike[str], plan: Plan, title: str = "") -> None:
    """Plot planned load (rps) and the replica floor over the horizon."""
    plt = _plt()
    steps = plan.steps
    fig, ax = plt.subplots(figsize=(12, 4.5))
    ax.plot(
        steps["ts"], steps["load_rps"], color="C0", lw=1, label=f"load ({plan.config.bound}, rps)"
    )
    per = plan.config.capacity_rps * plan.config.target_utilization
    ax.set_ylabel("requests/s")
    ax2 = ax.twinx()
    ax2.step(steps["ts"], steps["floor"], where="post", color="C3", lw=1.5, label="replica floor")
    ax2.step(
        steps["ts"], steps["needed"], where="post", color="C1", lw=0.8, ls="--", label="needed"
    )
    ax2.set_ylabel("replicas")
    ax2.set_ylim(0, max(int(steps["floor"].max()), 1) * 1.15 + 1)
    ax.set_ylim(0, ax2.get_ylim()[1] * per)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    ax.set_title(title or "replica plan (scale-out ahead of warm-up; scale-in on observed load)")
    fig.autofmt_xdate()
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
