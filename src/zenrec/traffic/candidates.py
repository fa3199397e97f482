"""Candidate forecast models, the honest baselines, and fitting one model on a gap-free array.

Candidate models (names used in outputs):

* Baselines, always run: ``Naive`` (the last value), ``SeasonalNaive`` (one day ago),
  ``SeasonalNaiveWeekly`` (one week ago) and ``WindowAverage`` (mean of the last hour).
* ``SeasonalProfile`` -- the median of the same phase over the last 4 weekly (else daily)
  cycles, re-anchored to the level of the last hour, the deviation fading with lead time
  (:func:`profile_forecast`); microseconds to fit.
* ``MSTL`` -- multiple seasonal-trend decomposition (Bandara et al. 2021; daily and, with >= 2
  weeks of history, weekly seasons) with an AutoETS trend forecaster. STL smoothers use
  interpolation jumps on long seasons so 1-minute data stays fast.
* ``AutoETS`` -- seasonal on the daily season when it is at most 24 buckets, else non-seasonal.
* ``AutoARIMA`` -- only where affordable: season at most 24 buckets (hourly or coarser data).
* ``AutoTheta`` (Fiorucci et al. 2016) and ``AutoCES`` (Svetunkov et al. 2022), on request.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from zenrec._errors import ConfigError, DataError
from zenrec.traffic.series import fmt_seconds, season_lengths

__all__ = [
    "ALL_MODELS",
    "BASELINE",
    "BASELINES",
    "DEFAULT_MODELS",
    "fit_predict",
    "profile_forecast",
    "seasonal_norm",
    "seasonal_profile",
    "usable_seasons",
]

BASELINES = ("Naive", "SeasonalNaive", "SeasonalNaiveWeekly", "WindowAverage")
"""Honest baselines, always backtested and reported (the last value, the value one day and one
week ago, the mean of the last hour)."""
ALL_MODELS = (
    *BASELINES,
    "SeasonalProfile",
    "MSTL",
    "AutoETS",
    "AutoARIMA",
    "AutoTheta",
    "AutoCES",
)
DEFAULT_MODELS = ("SeasonalProfile", "MSTL", "AutoETS", "AutoARIMA")
BASELINE = "SeasonalNaive"
"""The fallback when a chosen model fails to fit."""


def usable_seasons(
    step_seconds: float, n_points: int, seasonality: str = "auto", source: str = "series"
) -> dict[str, int]:
    """Seasons (buckets) that the step allows and that have >= 2 full cycles of history.

    Raises:
        DataError: When an explicitly requested season has less than 2 cycles of history.
    """
    avail = season_lengths(step_seconds)
    if seasonality == "auto":
        return {k: m for k, m in avail.items() if n_points >= 2 * m}
    wanted = [p.strip() for p in seasonality.split(",") if p.strip() and p.strip() != "none"]
    out: dict[str, int] = {}
    for w in wanted:
        if w not in avail:
            raise ConfigError(
                f"seasonality: {w} makes no sense at step {fmt_seconds(step_seconds)}"
            )
        if n_points < 2 * avail[w]:
            raise DataError(
                f"{source}: {w} seasonality needs at least 2 cycles "
                f"({fmt_seconds(2 * avail[w] * step_seconds)}) of history, got "
                f"{fmt_seconds(n_points * step_seconds)}; pass more history or --seasonality daily"
            )
        out[w] = avail[w]
    return out


def _base_season(seasons: dict[str, int]) -> int:
    if "daily" in seasons:
        return seasons["daily"]
    if "weekly" in seasons:
        return seasons["weekly"]
    return 1


def _make_model(name: str, seasons: dict[str, int]) -> Any:
    from statsforecast.models import (
        MSTL,
        AutoARIMA,
        AutoCES,
        AutoETS,
        AutoTheta,
        Naive,
        SeasonalNaive,
    )

    m0 = _base_season(seasons)
    if name == "Naive":
        return Naive()
    if name == "SeasonalNaive":
        return SeasonalNaive(season_length=m0)
    if name == "SeasonalNaiveWeekly":
        return SeasonalNaive(season_length=seasons["weekly"]) if "weekly" in seasons else None
    if name == "MSTL":
        if not seasons:
            return None
        lengths = sorted(seasons.values())
        jump = max(1, max(lengths) // 100)
        return MSTL(
            season_length=lengths if len(lengths) > 1 else lengths[0],
            trend_forecaster=AutoETS(model="ZZN"),
            stl_kwargs={"trend_jump": jump, "low_pass_jump": jump, "seasonal_jump": 1},
        )
    if name == "AutoETS":
        return AutoETS(season_length=m0 if m0 <= 24 else 1)
    if name == "AutoARIMA":
        if m0 > 24:
            return None
        return AutoARIMA(season_length=m0, approximation=True)
    if name == "AutoTheta":
        return AutoTheta(season_length=m0)
    if name == "AutoCES":
        return AutoCES(season_length=m0 if m0 <= 48 else 1)
    raise ConfigError(f"models: unknown {name!r}")


def _same_phase(y: np.ndarray, targets: np.ndarray, m: int, cycles: int) -> np.ndarray:
    """Median of ``y`` at the same phase as each target index over up to ``cycles`` past cycles.

    For a target ``t`` the values ``y[t - c m]`` for ``c = 1, 2, ...`` are used, starting from
    the first ``c`` that lands before ``len(y)`` (so future targets reuse the last cycles).
    """
    n = len(y)
    first = np.maximum(1, (targets - n) // m + 1)
    c = first[:, None] + np.arange(cycles)[None, :]
    idx = targets[:, None] - m * c
    vals = np.where(idx >= 0, y[np.clip(idx, 0, n - 1)], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(vals, axis=1)


def seasonal_profile(y: np.ndarray, h: int, seasons: dict[str, int], cycles: int = 4) -> np.ndarray:
    """Median of the same phase over the last ``cycles`` weekly (else daily) cycles, ``h`` ahead.

    Without a usable season (or where every past value of a phase is missing) the median of
    the last observed buckets is used.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    fallback = float(np.nanmedian(y[-min(n, 100) :])) if np.isfinite(y).any() else 0.0
    m = seasons.get("weekly") if seasons.get("weekly", 0) * 2 <= n else None
    m = m or (seasons.get("daily") if seasons.get("daily", 0) * 2 <= n else None)
    if not m:
        return np.full(h, fallback)
    out = _same_phase(y, n + np.arange(h), m, cycles)
    return np.where(np.isfinite(out), out, fallback)


def profile_forecast(
    y: np.ndarray,
    h: int,
    seasons: dict[str, int],
    *,
    anchor: int = 12,
    decay: float = 72.0,
    cycles: int = 4,
) -> dict[str, np.ndarray]:
    """Seasonal profile re-anchored to the current level (``SeasonalProfile``).

    ``profile[i]`` is the median of the same phase over the last ``cycles`` weekly (else daily)
    cycles. The level ratio ``r = sum(y[-anchor:]) / sum(profile over those buckets)`` (each
    past bucket's profile built from the cycles before it) scales the profile, fading back to 1
    with lead time: ``mean[i] = profile[i] * (1 + (r - 1) exp(-i / decay))``. Intervals come
    from the spread of the log ratio ``y / profile`` over the last day (normal quantiles; the
    conformal calibration rescales them). Costs O(h * cycles): cheap enough to refit every
    simulated hour.

    Args:
        y: Gap-free history.
        h: Steps to forecast.
        seasons: Season lengths (buckets).
        anchor: Buckets used to measure the current level.
        decay: Lead (buckets) over which the level deviation fades by ``1/e``.
        cycles: Past cycles in the median.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    prof = seasonal_profile(y, h, seasons, cycles)
    m = seasons.get("weekly") if seasons.get("weekly", 0) * 2 <= n else None
    m = m or (seasons.get("daily") if seasons.get("daily", 0) * 2 <= n else None)
    ratio = 1.0
    spread = 0.1
    if m:
        k = min(n - m, max(anchor, m // 7 if m == seasons.get("weekly") else m))
        past = _same_phase(y[: n - k], np.arange(n - k, n), m, cycles)  # profile before each
        ok = np.isfinite(past) & (past > 0)
        tail = ok & (np.arange(n - k, n) >= n - anchor)
        if tail.any() and past[tail].sum() > 0:
            ratio = float(np.clip(y[n - k :][tail].sum() / past[tail].sum(), 0.1, 10.0))
        pos = ok & (y[n - k :] > 0)
        if pos.sum() >= 3:
            spread = float(np.std(np.log(y[n - k :][pos] / past[pos])))
    else:
        ratio = 1.0
        spread = float(np.std(np.diff(y[-min(n, 100) :])) / (abs(prof[0]) + 1e-9)) if n > 2 else 0.1
    lead = np.arange(h)
    mean = prof * (1.0 + (ratio - 1.0) * np.exp(-lead / max(decay, 1e-9)))
    spread = max(spread, 1e-3)
    out = {"mean": mean}
    for level, z in ((80, 1.2816), (95, 1.96)):
        out[f"lo{level}"] = mean * np.exp(-z * spread)
        out[f"hi{level}"] = mean * np.exp(z * spread)
    return out


def _window_average(y: np.ndarray, h: int, window: int) -> dict[str, np.ndarray]:
    """Mean of the last ``window`` buckets, with a normal interval of the recent spread."""
    w = y[-window:]
    mean = np.full(h, float(np.mean(w)))
    sd = float(np.std(y[-max(4 * window, 20) :])) or 1e-9
    out = {"mean": mean}
    for level, z in ((80, 1.2816), (95, 1.96)):
        out[f"lo{level}"] = mean - z * sd
        out[f"hi{level}"] = mean + z * sd
    return out


def fit_predict(
    name: str,
    y: np.ndarray,
    h: int,
    seasons: dict[str, int],
    step_seconds: float = 3600.0,
) -> dict[str, np.ndarray] | None:
    """Fit one model on a gap-free array and forecast ``h`` steps with 80/95 % intervals.

    Returns:
        ``{"mean", "lo80", "hi80", "lo95", "hi95"}`` arrays, or ``None`` if the model does not
        apply (not affordable / no season) or failed to fit.
    """
    y = np.asarray(y, dtype=float)
    hour = max(1, int(round(3600.0 / step_seconds)))
    if name == "WindowAverage":
        return _window_average(y, h, max(3, hour))
    if name == "SeasonalProfile":
        return profile_forecast(y, h, seasons, anchor=max(3, hour), decay=max(3.0, 6.0 * hour))
    model = _make_model(name, seasons)
    if model is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                out = model.fit(y).predict(h, level=[80, 95])
    except Exception:  # a statsforecast fit failure falls back to the other candidates
        return None
    res = {
        "mean": np.asarray(out["mean"], dtype=float),
        "lo80": np.asarray(out.get("lo-80", out["mean"]), dtype=float),
        "hi80": np.asarray(out.get("hi-80", out["mean"]), dtype=float),
        "lo95": np.asarray(out.get("lo-95", out["mean"]), dtype=float),
        "hi95": np.asarray(out.get("hi-95", out["mean"]), dtype=float),
    }
    if not np.all(np.isfinite(res["mean"])):
        return None
    for k in ("lo80", "hi80", "lo95", "hi95"):
        bad = ~np.isfinite(res[k])
        res[k][bad] = res["mean"][bad]
    return res


def seasonal_norm(y: np.ndarray, h: int, seasons: dict[str, int], cycles: int = 4) -> np.ndarray:
    """Robust seasonal norm for the next ``h`` steps: median of the same phase over past cycles.

    Uses the weekly season when available, else daily, else the recent median level.
    """
    y = np.asarray(y, dtype=float)
    m = seasons.get("weekly") or seasons.get("daily")
    n = len(y)
    if not m:
        return np.full(h, float(np.nanmedian(y[-min(n, 100) :])))
    out = np.empty(h)
    for i in range(h):
        idx = n + i - m * np.arange(1, cycles + 1)
        while idx.max() >= n:  # horizon longer than one cycle: step back whole cycles
            idx = idx - m
        idx = idx[idx >= 0]
        vals = y[idx] if len(idx) else y[-m:]
        out[i] = float(np.nanmedian(vals)) if np.isfinite(vals).any() else float(np.nanmedian(y))
    return out


def _model_order(name: str) -> int:
    return ALL_MODELS.index(name) if name in ALL_MODELS else len(ALL_MODELS)
