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
    from zenrec.traffic.simulate import SimulationResult

__all__ = ["plot_forecast", "plot_plan", "plot_simulation"]


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
    events: Sequence[tuple[str, str, str]] = (),
) -> None:
    """Plot recent history, the forecast with 80/95 % bands, flagged periods, alerts and
    known events (``(name, start, end)``) on one time axis."""
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
    _shade_events(ax, events)
    ax.set_title(title or f"{Path(series.report.source).name} ({series.freq} buckets)")
    ax.set_ylabel(f"requests per {series.freq}")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


def _shade_events(ax: Any, events: Sequence[tuple[str, str, str]]) -> None:
    """Shade known events (``(name, start, end)``) and label them."""
    import pandas as pd

    for i, (name, start, end) in enumerate(events):
        ax.axvspan(
            pd.Timestamp(start),
            pd.Timestamp(end),
            color="C4",
            alpha=0.15,
            hatch="//",
            label="known event" if i == 0 else None,
        )
        ax.annotate(
            name,
            (pd.Timestamp(start), 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            va="top",
            rotation=90,
        )


def plot_plan(
    path: str | os.PathLike[str],
    plan: Plan,
    title: str = "",
    *,
    series: TrafficSeries | None = None,
    frame: pd.DataFrame | None = None,
    events: Sequence[tuple[str, str, str]] = (),
    history_seconds: float = 2 * 86400,
) -> None:
    """Plot recent history and the forecast band (rps), the replica floor and the needed
    replicas, and known events, on one time axis."""
    import numpy as np

    plt = _plt()
    steps = plan.steps
    cfg = plan.config
    fig, ax = plt.subplots(figsize=(12, 4.5))
    if series is not None:
        div = series.step_seconds if cfg.value_unit == "count" else 1.0
        tail = series.tail(history_seconds)
        ax.plot(tail.index, tail.values / div, lw=0.8, color="0.2", label="history (rps)")
        if frame is not None and len(frame):
            ax.fill_between(
                frame["ts"],
                frame["lo95"] / div,
                frame["hi95"] / div,
                color="C0",
                alpha=0.12,
                label="95% interval",
            )
            ax.fill_between(
                frame["ts"],
                frame["lo80"] / div,
                frame["hi80"] / div,
                color="C0",
                alpha=0.25,
                label="80% interval",
            )
            ax.plot(frame["ts"], frame["mean"] / div, color="C0", lw=1, label="forecast mean")
    else:
        ax.plot(steps["ts"], steps["load_rps"], color="C0", lw=1, label=f"load ({cfg.bound}, rps)")
    per = cfg.capacity_rps * cfg.target_utilization
    ax.set_ylabel("requests/s")
    ax2 = ax.twinx()
    ax2.step(steps["ts"], steps["floor"], where="post", color="C3", lw=1.5, label="replica floor")
    ax2.step(
        steps["ts"], steps["needed"], where="post", color="C1", lw=0.8, ls="--", label="needed"
    )
    ax2.set_ylabel(f"replicas (1 replica = {per:g} rps at target)")
    top = max(int(steps["floor"].max()), 1) * 1.15 + 1
    if series is not None:
        div = series.step_seconds if cfg.value_unit == "count" else 1.0
        top = max(top, float(np.nanmax(series.tail(history_seconds).values)) / div / per * 1.05)
    ax2.set_ylim(0, top)
    ax.set_ylim(0, top * per)
    _shade_events(ax, events)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    ax.set_title(title or "replica plan (scale-out ahead of warm-up; scale-in on observed load)")
    fig.autofmt_xdate()
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)


def plot_simulation(path: str | os.PathLike[str], res: SimulationResult, title: str = "") -> None:
    """Demand and the ready capacity of each policy (rps), overload of each policy shaded."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(13, 5))
    ax.plot(res.index, res.demand_rps, color="0.15", lw=0.8, label="demand")
    cap = res.config.capacity_rps
    for i, (name, tr) in enumerate(res.traces.items()):
        ready = tr.ready * cap
        ax.step(res.index, ready, where="post", lw=1.0, color=f"C{i}", label=f"{name} capacity")
        over = res.demand_rps > ready + 1e-9
        ax.fill_between(
            res.index,
            ready,
            res.demand_rps,
            where=over,
            step="post",
            color=f"C{i}",
            alpha=0.35,
            label=f"{name} overload ({res.scores[name]['overload_minutes']:g} min)",
        )
    ax.set_ylabel("requests/s")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8, ncol=2)
    ax.set_title(
        title
        or f"autoscaling replay: {cap:g} rps per ready replica, warm-up {res.config.warmup}, "
        f"target {res.config.target_utilization:.0%}"
    )
    fig.autofmt_xdate()
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
