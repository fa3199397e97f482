"""Surge and anomaly detection in history, and forward-looking surge alerts.

History (in the spirit of S-H-ESD, Hochenbaum et al. 2017): remove the seasonal components
(median daily profile, split weekday/weekend with >= 2 weeks of data) and a piecewise median
level (rolling median over ``level_window``), then score each bucket with a robust z-score
``(r - median(r)) / (1.4826 * MAD(r))``. Buckets with ``|z| >= threshold`` (at most
``max_anoms`` of the series, largest first, as ESD's upper bound) are flagged; flagged buckets
closer than ``merge_gap`` are merged into periods (``surge`` above the norm, ``drop`` below).

Online (causal) mode, ``mode="online"``: the expected value and spread at bucket ``t`` use only
buckets before ``t``, and its score only buckets up to ``t``, as a streaming detector must (and
as NAB scores detectors). The expected value is the median of the same time of day over the
previous ``profile_days`` days of the same day type (weekday/weekend) plus a trailing median
level of the remaining deviation; the residual is scaled by a trailing robust MAD over
``level_window`` (optionally averaged over a short trailing ``smooth`` span ending at the
bucket). A bucket is a candidate when ``|z| >= threshold`` and, with ``adaptive_quantile > 0``,
also above that quantile of the series' own past ``|z|`` (a per-series, data-driven threshold),
and, with ``min_ratio > 1``, at least that multiple of its expected value (or at most its
inverse). With ``transform="log"`` all of this runs on ``log(1 + y)``: count noise grows with
the level (Poisson-like; busy hours are noisier than quiet ones), and on the log scale a surge
is scored by the factor it multiplies the norm by, at any time of day (the variance-stabilising
log of count data; Box and Cox 1964). A period is reported once ``min_duration`` of consecutive
observed candidates is reached (gaps of irregular sensors are skipped, not counted as breaks);
its ``alarm`` is the bucket at which that happened, so ``alarm`` minus an event time is a true
lead time.
Candidates within ``merge_gap`` of a period continue it (one event, one alarm) and
``cooldown`` suppresses new alarms for a while after one. No flags are raised during
``warmup``.

Forward alerts: a future bucket is alerting when the forecast's upper bound exceeds the
current capacity, or when it exceeds ``jump_factor`` times the seasonal norm (median of the same
phase over recent weeks/days) while also being above the series' median level (so quiet-hour
noise does not alert). The lead time is the alert start minus the forecast origin.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from zenrec._errors import ConfigError
from zenrec._io import atomic_write_text
from zenrec.traffic.events import EventCalendar
from zenrec.traffic.forecast import ForecastConfig, ForecastResult, forecast_series
from zenrec.traffic.series import TrafficSeries, fill_gaps, parse_duration, season_lengths

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Alert",
    "DetectConfig",
    "DetectReport",
    "Period",
    "detect_anomalies",
    "detect_surges",
    "online_scores",
    "periods_from_scores",
    "robust_z",
    "surge_alerts",
    "surge_lead_times",
]

SURGE_COLUMNS = (
    "type",
    "start",
    "end",
    "kind",
    "peak_time",
    "peak_value",
    "expected",
    "peak_z",
    "lead_time_s",
    "reason",
    "peak_bound",
    "norm",
)
"""Columns of ``surges.csv``: one row per flagged period of history and per forward alert."""


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
        mode: ``batch`` (whole series, centred level, ``max_anoms`` cap) or ``online``
            (causal: each bucket scored from earlier buckets only; ``max_anoms`` unused).
        min_duration: Online: candidates must persist this long (observed buckets) to alarm;
            ``0s`` alarms on the first candidate bucket.
        adaptive_quantile: Online: also require ``|z|`` above this quantile of the past ``|z|``
            of the same series (0 disables).
        profile_days: Online: days of history in the time-of-day profile.
        warmup: Online: no flags before this much history.
        cooldown: Online: after an alarm, further alarms of the same kind within this time
            are suppressed (one alarm per incident; ``0s`` disables).
        gap_suppress: Online: no alarms within this time after a gap of at least 30 min
            without observations (the trailing level and spread are stale after a gap).
        smooth: Online: score each bucket by the mean z over this span ending at it (the
            bucket and the ones just before), so a one-bucket blip scores less than a surge
            that lasts (``0s``: no smoothing).
        min_ratio: Online: a bucket is a candidate only when it is also at least this multiple
            of its expected value (a drop: at most its inverse), compared as
            ``(y + 1) / (expected + 1)``, so a large z on a tiny spread is not enough
            (``1`` disables).
        transform: Online: score ``y`` (``none``) or ``log(1 + y)`` (``log``; values below 0
            count as 0), so noise that grows with the level gets one scale; the expected value
            is reported in the series' units either way.
    """

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(default=5.0, gt=0)
    max_anoms: float = Field(default=0.02, gt=0, le=0.5)
    merge_gap: str = "3h"
    level_window: str = "7d"
    direction: Literal["surge", "drop", "both"] = "both"
    jump_factor: float = Field(default=1.5, gt=1.0)
    bound: Literal["mean", "hi80", "hi95"] = "hi95"
    mode: Literal["batch", "online"] = "batch"
    min_duration: str = "0s"
    adaptive_quantile: float = Field(default=0.0, ge=0.0, lt=1.0)
    profile_days: int = Field(default=14, ge=1, le=56)
    warmup: str = "2d"
    cooldown: str = "0s"
    gap_suppress: str = "0s"
    smooth: str = "0s"
    min_ratio: float = Field(default=1.0, ge=1.0)
    transform: Literal["none", "log"] = "none"

    @field_validator("merge_gap", "level_window", "warmup")
    @classmethod
    def _duration(cls, v: str, info: Any) -> str:
        parse_duration(v, info.field_name)
        return v

    @field_validator("min_duration", "cooldown", "gap_suppress", "smooth")
    @classmethod
    def _min_duration(cls, v: str, info: Any) -> str:
        if str(v).strip() not in ("0", "0s", "0min"):
            parse_duration(v, info.field_name)
        return v


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
    alarm: str | None = None
    """Online mode: bucket at which the period was first reported (``min_duration`` reached)."""

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


def _trailing(x: np.ndarray, window: int, fn: str, min_periods: int) -> np.ndarray:
    """Trailing rolling statistic over the ``window`` buckets *before* each bucket."""
    import pandas as pd

    r = pd.Series(x).rolling(max(2, window), min_periods=max(1, min_periods))
    out = r.median() if fn == "median" else r.quantile(float(fn))
    return out.shift(1).to_numpy(dtype=float)


def online_scores(
    series: TrafficSeries, config: DetectConfig | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Causal robust z-scores: bucket ``t`` is scored from buckets before ``t`` only.

    Args:
        series: The regular series (gaps stay NaN and get no score).
        config: Detector settings (``profile_days``, ``level_window``, ``adaptive_quantile``).

    Returns:
        ``(z, expected, limit)``: per-bucket z-score, expected value, and the per-bucket
        ``|z|`` limit (``threshold`` or the adaptive quantile, whichever is larger; infinite
        where ``min_ratio`` rules the bucket out).
    """
    cfg = config or DetectConfig()
    y_raw = np.asarray(series.values, dtype=float)
    y = np.log1p(np.maximum(y_raw, 0.0)) if cfg.transform == "log" else y_raw
    n = len(y)
    step = series.step_seconds
    m = season_lengths(step).get("daily")
    day_w = max(2, int(round(86400 / step)))
    if m:  # same time of day on earlier days of the same day type (weekday / weekend)
        weekend = series.index.dayofweek.to_numpy() >= 5
        lags = np.full((n, cfg.profile_days), np.nan)
        for k in range(1, cfg.profile_days + 1):
            src = np.arange(n) - k * m
            ok = src >= 0
            vals = np.full(n, np.nan)
            vals[ok] = y[src[ok]]
            same = np.zeros(n, dtype=bool)
            same[ok] = weekend[src[ok]] == weekend[ok]
            lags[:, k - 1] = np.where(same, vals, np.nan)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            profile = np.nanmedian(lags, axis=1)
    else:
        profile = np.full(n, np.nan)
    recent = _trailing(y, day_w, "median", 1)
    profile = np.where(np.isfinite(profile), profile, recent)
    win = max(2, int(round(parse_duration(cfg.level_window, "level_window") / step)))
    dev = y - profile
    level = _trailing(dev, win, "median", 1)
    level = np.where(np.isfinite(level), level, 0.0)
    expected = profile + level
    resid = y - expected
    if cfg.transform == "log":  # scored on the log scale, reported in the series' units
        expected = np.expm1(expected)
    med = _trailing(resid, win, "median", max(3, day_w // 8))
    mad = 1.4826 * _trailing(np.abs(resid - med), win, "median", max(3, day_w // 8))
    spread = _trailing(np.abs(np.diff(y, prepend=np.nan)), win, "median", 3)
    floor = np.where(np.isfinite(spread) & (spread > 0), spread, 1e-9)
    z = (resid - med) / np.maximum(np.nan_to_num(mad, nan=0.0), floor)
    span = _steps0(cfg.smooth, step)
    if span > 1:  # causal: the mean over the bucket and the span - 1 before it
        import pandas as pd

        zs = pd.Series(z).rolling(span, min_periods=1).mean().to_numpy(dtype=float)
        z = np.where(np.isfinite(z), zs, np.nan)
    limit = np.full(n, cfg.threshold)
    if cfg.adaptive_quantile > 0:
        q = _trailing(np.abs(z), n, str(cfg.adaptive_quantile), day_w)
        limit = np.fmax(limit, q)
    if cfg.min_ratio > 1:  # too small a change against the expected value: never a candidate
        with np.errstate(all="ignore"):
            ratio = (np.maximum(y_raw, 0.0) + 1.0) / (np.maximum(expected, 0.0) + 1.0)
        big = (ratio >= cfg.min_ratio) | (ratio <= 1.0 / cfg.min_ratio)
        limit = np.where(big, limit, np.inf)
    return z, expected, limit


def periods_from_scores(
    series: TrafficSeries,
    z: np.ndarray,
    expected: np.ndarray,
    limit: np.ndarray,
    config: DetectConfig | None = None,
) -> list[Period]:
    """Online periods from causal scores: candidates, ``min_duration``, warmup and merging."""
    cfg = config or DetectConfig()
    step = series.step_seconds
    score = np.where(np.isnan(z), 0.0, z)
    observed = np.isfinite(z)
    if cfg.direction == "surge":
        signs = [(1, "surge")]
    elif cfg.direction == "drop":
        signs = [(-1, "drop")]
    else:
        signs = [(1, "surge"), (-1, "drop")]
    md = str(cfg.min_duration).strip()
    need = 1 if md in ("0", "0s", "0min") else max(1, int(round(parse_duration(md) / step)))
    start = int(math.ceil(parse_duration(cfg.warmup, "warmup") / step))
    merge = int(parse_duration(cfg.merge_gap, "merge_gap") // step)
    obs_idx = np.flatnonzero(observed)
    cool = _steps0(cfg.cooldown, step)
    blocked = _after_gaps(observed, step, _steps0(cfg.gap_suppress, step))
    periods: list[Period] = []
    for sign, kind in signs:
        cand = observed & (sign * score >= limit)
        cand[:start] = False
        # runs of consecutive *observed* candidates (gaps of irregular sampling are skipped)
        c = cand[obs_idx]
        alarms: list[tuple[int, int, int]] = []  # (first, alarm, last) bucket indices
        i = 0
        while i < len(c):
            if not c[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(c) and c[j + 1]:
                j += 1
            if j - i + 1 >= need:
                alarms.append((int(obs_idx[i]), int(obs_idx[i + need - 1]), int(obs_idx[j])))
            i = j + 1
        merged: list[list[int]] = []
        last_alarm = -(10**12)
        for a, al, b in alarms:
            if merged and a - merged[-1][2] <= merge + 1:
                merged[-1][2] = b  # continues the current period: no new alarm
            elif not blocked[al] and al - last_alarm >= cool:
                merged.append([a, al, b])
                last_alarm = al
        for a, al, b in merged:
            periods.append(_period(series, score, expected, a, b, kind, alarm=al))
    periods.sort(key=lambda q: q.start)
    return periods


def _steps0(text: str, step: float) -> int:
    """A duration that may be zero, in buckets."""
    t = str(text).strip()
    return 0 if t in ("0", "0s", "0min") else int(round(parse_duration(t) / step))


def _after_gaps(observed: np.ndarray, step: float, span: int) -> np.ndarray:
    """Buckets within ``span`` buckets after the end of a gap of at least 30 minutes."""
    out = np.zeros(len(observed), dtype=bool)
    if span <= 0:
        return out
    min_gap = max(1, int(math.ceil(1800 / step)))
    miss = ~observed
    edges = np.diff(np.concatenate([[0], miss.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    for a, b in zip(starts, ends):
        if b - a >= min_gap:
            out[b : b + span] = True
    return out


def _period(
    series: TrafficSeries,
    score: np.ndarray,
    expected: np.ndarray,
    a: int,
    b: int,
    kind: str,
    alarm: int | None = None,
) -> Period:
    """The flagged period of buckets ``a..b`` (inclusive), described at its peak."""
    p = a + int(np.argmax(np.abs(score[a : b + 1])))
    extra = {} if alarm is None else {"alarm": str(series.index[alarm])}
    return Period(
        start=str(series.index[a]),
        end=str(series.index[b]),
        kind=kind,
        buckets=b - a + 1,
        peak_time=str(series.index[p]),
        peak_value=float(series.values[p]),
        expected=round(float(expected[p]), 4),
        peak_z=round(float(score[p]), 3),
        **extra,
    )


def detect_anomalies(
    series: TrafficSeries, config: DetectConfig | None = None
) -> tuple[list[Period], np.ndarray, np.ndarray]:
    """Flag surges and drops in history (``mode="batch"``) or causally (``mode="online"``).

    Args:
        series: The regular series (gaps are never flagged).
        config: Detector settings.

    Returns:
        ``(periods, z, expected)``: flagged periods in time order, the per-bucket robust z-score
        and the expected (seasonal + level) value.
    """
    cfg = config or DetectConfig()
    if cfg.mode == "online":
        z, expected, limit = online_scores(series, cfg)
        return periods_from_scores(series, z, expected, limit, cfg), z, expected
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
            periods.append(_period(series, score, expected, a, b, kind))
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


def surge_lead_times(
    periods: list[Period],
    windows: list[tuple[str, Any, Any]],
    *,
    span_days: float,
    lookback: str = "1d",
) -> dict[str, Any]:
    """Score alarms against labelled surges: lead time, missed surges, false alarms per day.

    Args:
        periods: Flagged periods; a period alarms at ``alarm`` (online) or ``start`` (batch).
        windows: Labelled surges ``(name, start, end)`` (timestamps or ISO strings).
        span_days: Days of history the detector saw (for false alarms per day).
        lookback: An alarm this long before a surge start still counts as early detection.

    Returns:
        ``{"surges": [{"name", "start", "first_alarm", "lead_min"}...], "missed",
        "false_alarms", "false_alarms_per_day", "median_lead_min"}``; ``lead_min`` is the surge
        start minus the first alarm in ``[start - lookback, end)`` (negative = late).
    """
    import pandas as pd

    back = pd.Timedelta(seconds=parse_duration(lookback, "lookback"))
    alarms = [pd.Timestamp(p.alarm or p.start) for p in periods]
    ends = [pd.Timestamp(p.end) for p in periods]
    rows: list[dict[str, Any]] = []
    used = [False] * len(periods)
    for name, start, end in windows:
        s, e = pd.Timestamp(start), pd.Timestamp(end)
        if alarms and (alarms[0].tzinfo is None) != (s.tzinfo is None):
            s = s.tz_localize(alarms[0].tzinfo) if s.tzinfo is None else s.tz_localize(None)
            e = e.tz_localize(alarms[0].tzinfo) if e.tzinfo is None else e.tz_localize(None)
        hits = [i for i, (a, b) in enumerate(zip(alarms, ends)) if a < e and b >= s - back]
        for i in hits:
            used[i] = True
        first = min((max(alarms[i], s - back) for i in hits), default=None)
        rows.append(
            {
                "name": name,
                "start": str(s),
                "first_alarm": str(first) if first is not None else None,
                "lead_min": round((s - first).total_seconds() / 60, 1)
                if first is not None
                else None,
            }
        )
    leads = [r["lead_min"] for r in rows if r["lead_min"] is not None]
    fa = used.count(False)
    return {
        "surges": rows,
        "missed": sum(r["first_alarm"] is None for r in rows),
        "false_alarms": fa,
        "false_alarms_per_day": round(fa / span_days, 3) if span_days > 0 else None,
        "median_lead_min": float(np.median(leads)) if leads else None,
    }


@dataclass
class DetectReport:
    """Output of :func:`detect_surges`: flagged history, lead times and forward alerts.

    Attributes:
        config: The detector settings.
        series: The series that was scanned.
        periods: Flagged periods of history, in time order.
        alerts: Forward surge alerts over the forecast (empty without a forecast).
        lead_times: Alarms scored against the known events (``None`` without a calendar), see
            :func:`surge_lead_times`.
        forecast: The forecast behind the alerts (``None``: history only).
        event_windows: The known events on the series' bucket grid, ``(name, start, end)``.
    """

    config: DetectConfig
    series: TrafficSeries = field(repr=False)
    periods: list[Period]
    alerts: list[Alert] = field(default_factory=list)
    lead_times: dict[str, Any] | None = None
    forecast: ForecastResult | None = None
    event_windows: list[tuple[str, Any, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The ``surges.json`` payload."""
        return {
            "config": self.config.model_dump(),
            "periods": [p.as_dict() for p in self.periods],
            "alerts": [a.as_dict() for a in self.alerts],
            "lead_times": self.lead_times,
            "series": self.series.report.as_dict(),
        }

    def table(self) -> pd.DataFrame:
        """The ``surges.csv`` table: flagged periods (``type=history``), then alerts."""
        import pandas as pd

        rows = [{"type": "history", **p.as_dict()} for p in self.periods]
        rows += [{"type": "alert", "kind": "surge", **a.as_dict()} for a in self.alerts]
        return pd.DataFrame(rows, columns=list(SURGE_COLUMNS))

    def write(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write ``surges.json``, ``surges.csv`` and a plot (each atomically).

        With a forecast the plot is ``forecast.png``, written with ``forecast.csv`` and
        ``backtest.json`` (see :meth:`ForecastResult.write`); without one it is ``detect.png``.

        Returns:
            The paths written.
        """
        from zenrec.traffic.plots import plot_forecast

        out = Path(directory)
        paths = [out / "surges.json", out / "surges.csv"]
        atomic_write_text(paths[0], json.dumps(self.as_dict(), indent=2, default=str) + "\n")
        atomic_write_text(paths[1], self.table().to_csv(index=False))
        if self.forecast is not None:
            paths += self.forecast.write(out, periods=self.periods, alerts=self.alerts)
        else:
            paths.append(out / "detect.png")
            plot_forecast(paths[-1], self.series, None, periods=self.periods)
        return paths


def detect_surges(
    series: TrafficSeries,
    config: DetectConfig | None = None,
    *,
    forecast: ForecastConfig | None = None,
    events: EventCalendar | None = None,
    capacity_rps: float | None = None,
) -> DetectReport:
    """Flag surges in history and, with a forecast, alert on surges ahead.

    Steps: flag anomalous periods (:func:`detect_anomalies`); with ``events``, score the
    alarms against the known events (:func:`surge_lead_times`); with ``forecast``, forecast
    the horizon (:func:`zenrec.traffic.forecast_series`, events applied) and raise forward
    alerts on it (:func:`surge_alerts`) against the history's median level and, when given,
    the capacity.

    Args:
        series: The regular series.
        config: Detector settings.
        forecast: Forecast settings; ``None`` scans history only (no forward alerts).
        events: Known events (lead-time scoring, and the forecast's uplift).
        capacity_rps: Current total capacity in requests/s (alert when a bound exceeds it).

    Returns:
        The report; :meth:`DetectReport.write` writes its artefacts.

    Raises:
        ConfigError: ``capacity_rps`` is not positive.
    """
    import pandas as pd

    if capacity_rps is not None and not capacity_rps > 0:
        raise ConfigError(f"capacity_rps must be > 0, got {capacity_rps}")
    cfg = config or DetectConfig()
    periods, _, _ = detect_anomalies(series, cfg)
    lead_times = None
    windows: list[tuple[str, Any, Any]] = []
    if events is not None:
        windows = events.windows(series.index, series.step_seconds)
        lead_times = surge_lead_times(periods, windows, span_days=series.duration_seconds / 86400)
    alerts: list[Alert] = []
    res = None
    if forecast is not None:
        res = forecast_series(series, forecast, events=events)
        alerts = surge_alerts(
            res.frame,
            pd.Timestamp(res.frame["ts"].iloc[0]),
            history_median=float(np.nanmedian(series.values)),
            # rps -> requests per bucket
            capacity=capacity_rps * series.step_seconds if capacity_rps is not None else None,
            config=cfg,
        )
    return DetectReport(
        config=cfg,
        series=series,
        periods=periods,
        alerts=alerts,
        lead_times=lead_times,
        forecast=res,
        event_windows=windows,
    )
