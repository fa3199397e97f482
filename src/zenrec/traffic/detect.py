"""Surge and anomaly detection in history, and forward-looking surge alerts.

History (in the spirit of S-H-ESD, Hochenbaum et al. 2017): remove the seasonal components
(median daily profile, split weekday/weekend with >= 2 weeks of data) and a piecewise median
level (rolling median over ``level_window``), then score each bucket with a robust z-score
``(r - median(r)) / (1.4826 * MAD(r))``. Buckets with ``|z| >= threshold`` (at most
``max_anoms`` of the series, largest first, as ESD's upper bound) are flagged; flagged buckets
closer than ``merge_gap`` are merged into periods (``surge`` above the norm, ``drop`` below).

Forward alerts: a future bucket is alerting when the forecast's upper bound exceeds the
current capacity, or when it exceeds ``jump_factor`` times the seasonal norm (median of the same
phase over recent weeks/days) while also being above the series' median level (so quiet-hour
noise does not alert). The lead time is the alert start minus the forecast origin.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from zenrec.traffic.series import TrafficSeries, fill_gaps, parse_duration, season_lengths

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Alert",
    "DetectConfig",
    "Period",
    "detect_anomalies",
    "robust_z",
    "surge_alerts",
]


class DetectConfig(BaseModel):
    """Settings of the history detector and the forward alerts.

    Attributes:
        threshold: Robust z-score at or above which a bucket is anomalous.
        max_anoms: Upper bound on the flagged fraction of buckets (largest |z| kept).
        merge_gap: Flagged buckets at most this far apart form one period.
        level_window: Window of the rolling median level (S-H-ESD's piecewise median).
        direction: Flag ``surge`` (above norm), ``drop`` or ``both``.
        jump_factor: Forward alert when the upper bound exceeds this multiple of the norm.
        bound: Which forecast column is compared (``hi80``, ``hi95`` or ``mean``).
    """

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(default=5.0, gt=0)
    max_anoms: float = Field(default=0.02, gt=0, le=0.5)
    merge_gap: str = "3h"
    level_window: str = "7d"
    direction: Literal["surge", "drop", "both"] = "both"
    jump_factor: float = Field(default=1.5, gt=1.0)
    bound: Literal["mean", "hi80", "hi95"] = "hi95"


@dataclass
class Period:
    """A flagged period of history (times are bucket starts; ``end`` is inclusive)."""

    start: str
    end: str
    kind: str
    buckets: int
    peak_time: str
    peak_value: float
    expected: float
    peak_z: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


@dataclass
class Alert:
    """A forward-looking surge alert over forecast buckets."""

    start: str
    end: str
    reason: str
    lead_time_s: float
    peak_time: str
    peak_bound: float
    norm: float
    capacity: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


def robust_z(r: np.ndarray) -> np.ndarray:
    """Robust z-score with median and MAD (1.4826 * MAD estimates sigma); NaN stays NaN."""
    r = np.asarray(r, dtype=float)
    med = np.nanmedian(r)
    mad = 1.4826 * np.nanmedian(np.abs(r - med))
    if not mad > 0:
        mad = float(np.nanstd(r)) or 1.0
    return (r - med) / mad


def _rolling_median(x: np.ndarray, window: int) -> np.ndarray:
    import pandas as pd

    w = max(3, min(window, len(x)))
    return (
        pd.Series(x)
        .rolling(w, center=True, min_periods=max(1, w // 4))
        .median()
        .to_numpy(dtype=float)
    )


def _profile(series: TrafficSeries, detr: np.ndarray, seasons: dict[str, int]) -> np.ndarray:
    y = detr
    seasonal = np.zeros(len(y))
    t_ns = series.index.asi8 if series.index.tz is None else series.index.tz_localize(None).asi8
    step_ns = int(round(series.step_seconds * 1e9))
    if "daily" in seasons:
        m = seasons["daily"]
        phase = (t_ns // step_ns) % m
        groups = [np.ones(len(y), dtype=bool)]
        if "weekly" in seasons:
            weekend = series.index.dayofweek.to_numpy() >= 5
            groups = [weekend, ~weekend]
        for g in groups:
            for ph in range(m):
                sel = g & (phase == ph)
                if sel.any() and np.isfinite(detr[sel]).any():
                    seasonal[sel] = np.nanmedian(detr[sel])
    elif "weekly" in seasons:
        dow = series.index.dayofweek.to_numpy()
        for d in range(7):
            sel = dow == d
            if sel.any() and np.isfinite(detr[sel]).any():
                seasonal[sel] = np.nanmedian(detr[sel])
    return seasonal


def decompose(series: TrafficSeries, level_window: str = "7d") -> tuple[np.ndarray, np.ndarray]:
    """Return (expected, residual) from a robust seasonal-plus-level decomposition.

    The level is a centred rolling median (S-H-ESD's piecewise median). The seasonal part is
    the median, over all days, of the detrended value at each time of day -- computed
    separately for weekdays and weekends when there are >= 2 weeks -- so a few anomalous days
    cannot pull the seasonal profile (median over many cycles). Without a daily season (daily
    buckets) the day-of-week median is used.
    """
    y = np.asarray(series.values, dtype=float)
    seasons = {k: m for k, m in season_lengths(series.step_seconds).items() if series.n >= 2 * m}
    win = int(round(parse_duration(level_window, "level_window") / series.step_seconds))
    filled, _ = fill_gaps(y, seasons.get("daily") or seasons.get("weekly"))
    seasonal = np.zeros(len(y))
    for _ in range(2):  # level from the deseasonalised series, then the profile again
        level = _rolling_median(filled - seasonal, win)
        seasonal = _profile(series, y - level, seasons)
    expected = level + seasonal
    resid = y - expected  # gaps stay NaN
    return expected, resid


def _runs(mask: np.ndarray, merge: int) -> list[tuple[int, int]]:
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return []
    runs = []
    a = b = int(idx[0])
    for i in idx[1:]:
        if i - b <= merge + 1:
            b = int(i)
        else:
            runs.append((a, b))
            a = b = int(i)
    runs.append((a, b))
    return runs


def detect_anomalies(
    series: TrafficSeries, config: DetectConfig | None = None
) -> tuple[list[Period], np.ndarray, np.ndarray]:
    """Flag surges and drops in history.

    Args:
        series: The regular series (gaps are never flagged).
        config: Detector settings.

    Returns:
        ``(periods, z, expected)``: flagged periods in time order, the per-bucket robust z-score
        and the expected (seasonal + level) value.
    """
    cfg = config or DetectConfig()
    expected, resid = decompose(series, cfg.level_window)
    z = robust_z(resid)
    score = np.where(np.isnan(z), 0.0, z)
    if cfg.direction == "surge":
        cand = score >= cfg.threshold
    elif cfg.direction == "drop":
        cand = score <= -cfg.threshold
    else:
        cand = np.abs(score) >= cfg.threshold
    cap = max(1, int(math.floor(cfg.max_anoms * series.n)))
    if cand.sum() > cap:
        keep = np.argsort(-np.abs(score))[:cap]
        m = np.zeros_like(cand)
        m[keep] = True
        cand &= m
    periods: list[Period] = []
    merge = int(parse_duration(cfg.merge_gap, "merge_gap") // series.step_seconds)
    # merge only same-direction buckets
    for sign, kind in ((1, "surge"), (-1, "drop")):
        mask = cand & (np.sign(score) == sign)
        for a, b in _runs(mask, merge):
            seg = np.abs(score[a : b + 1])
            p = a + int(np.argmax(seg))
            periods.append(
                Period(
                    start=str(series.index[a]),
                    end=str(series.index[b]),
                    kind=kind,
                    buckets=b - a + 1,
                    peak_time=str(series.index[p]),
                    peak_value=float(series.values[p]),
                    expected=round(float(expected[p]), 4),
                    peak_z=round(float(score[p]), 3),
                )
            )
    periods.sort(key=lambda q: q.start)
    return periods, z, expected


def surge_alerts(
    frame: pd.DataFrame,
    origin: pd.Timestamp,
    *,
    history_median: float,
    capacity: float | None = None,
    config: DetectConfig | None = None,
) -> list[Alert]:
    """Forward-looking surge alerts from a forecast frame.

    Args:
        frame: Forecast with columns ``ts, mean, hi80, hi95, norm`` (series units per bucket).
        origin: Forecast origin (the first forecast bucket start); lead times count from here.
        history_median: Median observed level; jump alerts must also exceed it.
        capacity: Current capacity in series units per bucket (``None``: jump rule only).
        config: Detector settings (``jump_factor``, ``bound``).

    Returns:
        Alerts in time order with their lead time in seconds.
    """
    cfg = config or DetectConfig()
    bound = frame[cfg.bound].to_numpy(dtype=float)
    norm = frame["norm"].to_numpy(dtype=float)
    over_cap = bound > capacity if capacity is not None else np.zeros(len(bound), dtype=bool)
    jump = (bound > cfg.jump_factor * norm) & (bound > history_median)
    alerts: list[Alert] = []
    ts = frame["ts"]
    for a, b in _runs(over_cap | jump, 0):
        seg = slice(a, b + 1)
        p = a + int(np.argmax(bound[seg]))
        reasons = []
        if over_cap[seg].any():
            reasons.append(f"{cfg.bound} above capacity")
        if jump[seg].any():
            reasons.append(f"{cfg.bound} > {cfg.jump_factor:g}x seasonal norm")
        alerts.append(
            Alert(
                start=str(ts.iloc[a]),
                end=str(ts.iloc[b]),
                reason="; ".join(reasons),
                lead_time_s=float((ts.iloc[a] - origin).total_seconds()),
                peak_time=str(ts.iloc[p]),
                peak_bound=round(float(bound[p]), 4),
                norm=round(float(norm[p]), 4),
                capacity=capacity,
            )
        )
    return alerts
