"""Traffic forecasting with statsforecast models, chosen per lead time by rolling-origin backtest.

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

The backtest fits each model on a sliding window of at most ``history`` (14 days, as in AWS
Predictive Scaling) before each origin, forecasts ``horizon`` ahead and scores MASE (scaled by the
in-sample seasonal-naive error), sMAPE and 80 %/95 % interval coverage for lead times up to
5 min, 1 h, 6 h, 24 h and the full horizon, with each MASE divided by the best baseline's on the
same origins. The forecast combines models per lead-time block: each block is the inverse-error
weighted mean of the 3 models with the lowest error on that block (a forecast combination in the
sense of Bates and Granger 1969); scored in the backtest with weights from earlier origins only.

Interval calibration (split conformal, Vovk et al. 2005; conformalised scaling of the model's
own interval as in Romano et al. 2019, "Conformalized Quantile Regression"): every backtest
forecast yields one nonconformity score per bucket, the error measured in units of the model's
own half-width on that side, ``s = (y - mean) / (hi - mean)`` above the mean and
``(mean - y) / (mean - lo)`` below. Per lead-time block (<= 1 h, 1-6 h, 6-24 h, ...; blocks with
fewer than ``min_scores`` scores are merged with the next) the finite-sample conformal quantile
``q`` of the scores gives the calibrated interval ``mean -/+ q * half-width``. In the backtest an
origin is calibrated only with scores of buckets observed before it (earlier origins), so the
calibrated coverage is out of sample; the final forecast uses the scores of all origins.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from zenrec._errors import ConfigError, DataError
from zenrec.traffic.events import EventCalendar
from zenrec.traffic.series import (
    TrafficSeries,
    fill_gaps,
    fmt_seconds,
    parse_duration,
    require_history,
    season_lengths,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ALL_MODELS",
    "BacktestResult",
    "ConformalCalibrator",
    "ForecastConfig",
    "ForecastResult",
    "backtest",
    "conformal_scores",
    "fit_predict",
    "forecast_series",
    "seasonal_norm",
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
COMBINED = "Combined"
BASELINE = "SeasonalNaive"
HORIZON_BUCKETS = (300.0, 3600.0, 6 * 3600.0, 24 * 3600.0, 48 * 3600.0, 7 * 86400.0)
"""Lead-time blocks: scores are reported for lead times up to each of these (and the horizon)."""


class ForecastConfig(BaseModel):
    """Settings of ``zenrec traffic forecast`` (validated).

    Attributes:
        horizon: How far ahead to forecast (e.g. ``48h``).
        history: Most recent history used to fit (AWS: up to 14 days).
        min_history: Refuse to forecast with less history than this (AWS: 24 h).
        models: Candidate models; the :data:`BASELINES` are always added.
        windows: Number of rolling backtest origins.
        backtest_step: Distance between backtest origins (default: the horizon).
        select_on: Horizon bucket the selection uses (default: the full horizon).
        seasonality: ``auto`` or an explicit comma list of ``daily``/``weekly`` (or ``none``).
        calibration: ``conformal`` rescales the 80/95 % intervals with the backtest's
            out-of-sample errors (see the module docstring); ``none`` keeps the model's own.
        min_scores: Fewest conformal scores per lead-time block (smaller blocks are merged).
        combine: ``by_lead`` forecasts each lead-time block with the inverse-error weighted
            mean of the 3 models with the lowest backtest error on that block (weights from
            earlier origins only when scoring the combination); ``best`` uses the single model
            with the lowest MASE at ``select_on``.
    """

    model_config = ConfigDict(extra="forbid")

    horizon: str = "48h"
    history: str = "14d"
    min_history: str = "24h"
    models: list[str] = Field(default_factory=lambda: list(DEFAULT_MODELS))
    windows: int = Field(default=3, ge=0, le=200)
    backtest_step: str | None = None
    select_on: str | None = None
    seasonality: str = "auto"
    calibration: Literal["conformal", "none"] = "conformal"
    min_scores: int = Field(default=20, ge=1)
    combine: Literal["by_lead", "best"] = "by_lead"

    @field_validator("horizon", "history", "min_history", "backtest_step", "select_on")
    @classmethod
    def _duration(cls, v: str | None, info: Any) -> str | None:
        if v is not None:
            parse_duration(v, info.field_name)
        return v

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str]) -> list[str]:
        bad = [m for m in v if m not in ALL_MODELS]
        if bad:
            raise ConfigError(f"models: unknown {bad}; choose from {list(ALL_MODELS)}")
        return list(dict.fromkeys([*BASELINES, *v]))

    @field_validator("seasonality")
    @classmethod
    def _seasonality(cls, v: str) -> str:
        parts = [p.strip() for p in v.split(",") if p.strip()]
        if v != "auto" and not all(p in ("daily", "weekly", "none") for p in parts):
            raise ConfigError(f"seasonality: {v!r}; use auto, none, daily, weekly or daily,weekly")
        return v


@dataclass
class BacktestResult:
    """Rolling-origin backtest scores."""

    records: list[dict[str, Any]]
    chosen: str
    origins: list[str]
    horizon_steps: int
    selection: str
    notes: list[str] = field(default_factory=list)
    scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    """Per model: ``step`` (lead, 0-based), ``s80``, ``s95`` conformal scores of all origins."""
    block_ends: list[int] = field(default_factory=list)
    """Lead-time block ends (steps, exclusive) used by the calibration."""
    block_models: list[dict[str, float]] = field(default_factory=list)
    """The models of each lead-time block of the combination and their weights (inverse mean
    error over all origins)."""

    def calibrator(self, model: str, min_scores: int = 20) -> ConformalCalibrator | None:
        """Conformal calibrator of ``model`` from the scores of all origins (``None``: none)."""
        sc = self.scores.get(model)
        if sc is None or len(sc["step"]) < min_scores:
            return None
        return ConformalCalibrator.fit(
            sc["step"], sc["s80"], sc["s95"], self.block_ends, min_scores=min_scores
        )

    def table(self, horizon: str | None = None) -> list[dict[str, Any]]:
        """Records for one horizon label (all when ``None``)."""
        return [r for r in self.records if horizon is None or r["horizon"] == horizon]


@dataclass
class ForecastResult:
    """Output of :func:`forecast_series`.

    Attributes:
        frame: ``ts, mean, lo80, hi80, lo95, hi95, norm`` for the chosen model.
        model: Chosen model name.
        backtest: Backtest scores (``None`` when history was too short to backtest).
        seasons: Season lengths (buckets) used.
        fit_seconds: Time to fit the chosen model and forecast.
        notes: What was done (gap filling, skipped models...).
        calibrator: The conformal calibration applied to the intervals (``None``: not applied).
        components: Block models of a per-lead-block combination (empty otherwise).
        events: Event occurrences in the horizon with their uplift.
    """

    frame: pd.DataFrame
    model: str
    backtest: BacktestResult | None
    seasons: dict[str, int]
    fit_seconds: float
    notes: list[str] = field(default_factory=list)
    calibrator: ConformalCalibrator | None = None
    components: list[dict[str, float]] = field(default_factory=list)
    """For the per-lead combination: the models and weights of each lead-time block."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """Event occurrences in the horizon and the uplift applied to each."""


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


def conformal_scores(actual: np.ndarray, pred: dict[str, np.ndarray], level: int) -> np.ndarray:
    """Nonconformity scores: the error in units of the model's half-width on the error's side.

    ``actual`` lies inside the interval scaled by ``q`` exactly when its score is ``<= q``.
    Zero-width sides (a model without intervals) get a tiny floor, so their scores are large.
    """
    mean = pred["mean"]
    floor = 1e-9 * (np.abs(mean) + 1.0)
    w_hi = np.maximum(pred[f"hi{level}"] - mean, floor)
    w_lo = np.maximum(mean - pred[f"lo{level}"], floor)
    err = actual - mean
    return np.where(err >= 0, err / w_hi, -err / w_lo)


def _conformal_quantile(scores: np.ndarray, level: float) -> float:
    """Finite-sample split-conformal quantile: the ceil((n+1) level)-th smallest score."""
    n = len(scores)
    k = int(math.ceil((n + 1) * level))
    if k > n:
        return float("inf")
    return float(np.sort(scores)[k - 1])


@dataclass
class ConformalCalibrator:
    """Split-conformal rescaling of forecast intervals per lead-time block.

    Attributes:
        ends: Block ends (forecast steps, exclusive), increasing; the last block runs to any h.
        q80: Multiplier of the 80 % half-widths per block.
        q95: Multiplier of the 95 % half-widths per block.
        n: Number of scores behind each block's multipliers.

    Examples:
        >>> import numpy as np
        >>> cal = ConformalCalibrator.fit(np.zeros(99, int), np.ones(99), np.full(99, 2.0), [1])
        >>> float(cal.q95[0])
        2.0
    """

    ends: list[int]
    q80: list[float]
    q95: list[float]
    n: list[int]

    @classmethod
    def fit(
        cls,
        step: np.ndarray,
        s80: np.ndarray,
        s95: np.ndarray,
        ends: list[int],
        *,
        min_scores: int = 20,
    ) -> ConformalCalibrator:
        """Conformal quantiles per block; a block with < ``min_scores`` joins the next one.

        Args:
            step: 0-based lead (forecast step) of each score.
            s80: Scores against the 80 % interval (see :func:`conformal_scores`).
            s95: Scores against the 95 % interval.
            ends: Block ends (exclusive steps), increasing.
            min_scores: Fewest scores per (merged) block; a short last group joins the one
                before.
        """
        ends = sorted(set(int(e) for e in ends)) or [int(step.max()) + 1]
        bounds = [0, *ends[:-1], np.iinfo(np.int64).max]
        groups: list[list[int]] = []
        cur: list[int] = []
        count = 0
        for b in range(len(ends)):
            cur.append(b)
            count += int(np.sum((step >= bounds[b]) & (step < bounds[b + 1])))
            if count >= min_scores:
                groups.append(cur)
                cur, count = [], 0
        if cur:
            if groups:
                groups[-1].extend(cur)
            else:
                groups.append(cur)
        q80 = [1.0] * len(ends)
        q95 = [1.0] * len(ends)
        nb = [0] * len(ends)
        for g in groups:
            sel = (step >= bounds[g[0]]) & (step < bounds[g[-1] + 1])
            if not sel.any():
                continue
            a80 = _conformal_quantile(s80[sel], 0.80)
            a95 = _conformal_quantile(s95[sel], 0.95)
            for b in g:
                q80[b], q95[b], nb[b] = a80, a95, int(sel.sum())
        return cls(ends=ends, q80=q80, q95=q95, n=nb)

    def multipliers(self, h: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-step multipliers ``(q80, q95)`` for a forecast of ``h`` steps.

        Each block's quantile sits at the block's middle lead; between middles the multiplier is
        interpolated linearly (constant before the first and after the last middle), so the
        calibrated band changes smoothly with lead time instead of jumping at block edges.
        """
        starts = np.asarray([0, *self.ends[:-1]], dtype=float)
        ends = np.asarray(self.ends, dtype=float)
        mids = (starts + np.minimum(ends, max(h, 1)) - 1) / 2.0
        steps = np.arange(h, dtype=float)
        out = []
        for q in (self.q80, self.q95):
            qa = np.asarray(q, dtype=float)
            ok = np.isfinite(qa) & (starts < max(h, 1))
            if not ok.any():
                out.append(np.full(h, np.inf))
                continue
            order = np.argsort(mids[ok], kind="stable")
            out.append(np.interp(steps, mids[ok][order], qa[ok][order]))
        return out[0], out[1]

    def apply(self, pred: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return ``pred`` with its 80/95 % bounds rescaled around the mean."""
        mean = pred["mean"]
        m80, m95 = self.multipliers(len(mean))
        out = dict(pred)
        for level, q in ((80, m80), (95, m95)):
            q = np.where(np.isfinite(q), q, 1.0)  # no finite quantile: keep the model's width
            out[f"lo{level}"] = mean - q * (mean - pred[f"lo{level}"])
            out[f"hi{level}"] = mean + q * (pred[f"hi{level}"] - mean)
        out["lo95"] = np.minimum(out["lo95"], out["lo80"])  # keep the 95 % band outside the 80 %
        out["hi95"] = np.maximum(out["hi95"], out["hi80"])
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {"ends": self.ends, "q80": self.q80, "q95": self.q95, "n": self.n}


def _sub(pred: dict[str, np.ndarray], sel: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[sel] for k, v in pred.items()}


def _horizon_labels(h: int, step: float) -> list[tuple[str, int]]:
    labels: list[tuple[str, int]] = []
    for b in HORIZON_BUCKETS:
        k = int(round(b / step))
        if b >= step and k < h and abs(k * step - b) < 1e-6 * b:
            labels.append((fmt_seconds(b), k))
    labels.append((fmt_seconds(h * step), h))
    return labels


def _model_order(name: str) -> int:
    return ALL_MODELS.index(name) if name in ALL_MODELS else len(ALL_MODELS)


@dataclass
class _Window:
    """One backtest origin: the (gap-filled) training window and the actuals after it."""

    origin: int
    train: np.ndarray
    actual: np.ndarray
    valid: np.ndarray
    seasons: dict[str, int]
    scale: float
    future: pd.DatetimeIndex
    uplifts: dict[str, float] = field(default_factory=dict)


def _backtest_origins(
    n: int, h: int, step: int, windows: int, min_train: int
) -> tuple[list[int], list[str]]:
    """Origins (bucket indices, increasing); the last one leaves exactly ``h`` buckets."""
    origins = sorted(o for o in (n - h - k * step for k in range(windows)) if o >= min_train)
    if not origins and windows > 0 and n - min_train >= 1:
        return [min_train], [
            f"history too short for a full {h}-step backtest window; scored a partial one"
        ]
    return origins, []


def _training_values(
    series: TrafficSeries, lo: int, hi: int, events: EventCalendar | None
) -> np.ndarray:
    """Raw values ``lo:hi`` with the buckets of known events masked (refilled like gaps)."""
    y = series.values[lo:hi].copy()
    if events is not None:
        y[events.mask(series.index[lo:hi])] = np.nan
    return y


def _prepare_window(
    series: TrafficSeries,
    o: int,
    h: int,
    input_size: int,
    seasonality: str,
    events: EventCalendar | None,
) -> _Window | None:
    """Training window before origin ``o`` (gaps filled, MASE scale) and the actuals after."""
    import pandas as pd

    lo = max(0, o - input_size)
    train_raw = _training_values(series, lo, o, events)
    seasons = usable_seasons(series.step_seconds, len(train_raw), seasonality, "backtest")
    m0 = _base_season(seasons)
    train, _ = fill_gaps(train_raw, m0 if m0 > 1 else None)
    actual = series.values[o : o + h]
    if len(actual) == 0:
        return None
    # the MASE scale comes from the unmasked window, so scores with and without an event
    # calendar are comparable
    plain = train if events is None else fill_gaps(series.values[lo:o], m0 if m0 > 1 else None)[0]
    scale = float(np.mean(np.abs(plain[m0:] - plain[:-m0]))) if len(plain) > m0 else 0.0
    if not scale > 0:
        scale = float(np.mean(np.abs(np.diff(plain)))) or 1.0
    future = pd.DatetimeIndex(series.index[o : o + len(actual)])
    uplifts = (
        events.uplifts(series.values[:o], series.index[:o], seasons) if events is not None else {}
    )
    return _Window(o, train, actual, np.isfinite(actual), seasons, scale, future, uplifts)


def _predict_window(
    name: str, w: _Window, step_seconds: float, events: EventCalendar | None
) -> dict[str, np.ndarray] | None:
    """One model's forecast from a window, with the event uplift when a calendar is given."""
    pred = fit_predict(name, w.train, len(w.actual), w.seasons, step_seconds)
    if pred is not None and events is not None and w.uplifts:
        pred, _ = events.apply(pred, w.future, w.uplifts)
    return pred


class _Scoreboard:
    """Accumulates per (model, lead label) errors, coverages and conformal scores."""

    def __init__(self, labels: list[tuple[str, int]], calibration: str, min_scores: int):
        self.labels = labels
        self.ends = [k for _, k in labels]
        self.calibration = calibration
        self.min_scores = min_scores
        self.acc: dict[tuple[str, str], dict[str, list[float]]] = {}
        self.cal_acc: dict[tuple[str, str], dict[str, list[float]]] = {}
        self.pool: dict[str, dict[str, list[np.ndarray]]] = {}
        self.block_err: dict[str, dict[int, np.ndarray]] = {}
        """Per model and origin: mean scaled absolute error per disjoint lead block."""

    def calibrated(self, name: str, o: int, pred: dict[str, np.ndarray]) -> Any:
        """``pred`` calibrated with the scores of buckets observed before origin ``o``."""
        sc = self.pool.get(name)
        if self.calibration != "conformal" or sc is None:
            return None
        known = np.concatenate(sc["t"]) < o
        if known.sum() < self.min_scores:
            return None
        cal = ConformalCalibrator.fit(
            np.concatenate(sc["step"])[known],
            np.concatenate(sc["s80"])[known],
            np.concatenate(sc["s95"])[known],
            self.ends,
            min_scores=self.min_scores,
        )
        return cal.apply(pred)

    def add(self, name: str, w: _Window, pred: dict[str, np.ndarray]) -> None:
        """Score one model's forecast at one origin."""
        calibrated = self.calibrated(name, w.origin, pred)
        actual, valid = w.actual, w.valid
        if valid.any():
            sc = self.pool.setdefault(name, {"t": [], "step": [], "s80": [], "s95": []})
            sc["t"].append(w.origin + np.flatnonzero(valid))
            sc["step"].append(np.flatnonzero(valid))
            sc["s80"].append(conformal_scores(actual[valid], _sub(pred, valid), 80))
            sc["s95"].append(conformal_scores(actual[valid], _sub(pred, valid), 95))
        abs_err = np.abs(actual - pred["mean"])
        starts = [0, *self.ends[:-1]]
        with np.errstate(invalid="ignore"):
            self.block_err.setdefault(name, {})[w.origin] = np.array(
                [
                    float(np.mean(abs_err[a:b][valid[a:b]]) / w.scale)
                    if valid[a:b].any()
                    else np.nan
                    for a, b in zip(starts, self.ends)
                ]
            )
        for label, k in self.labels:
            sel = valid[:k]
            if not sel.any():
                continue
            if calibrated is not None:
                self._add_calibrated(name, label, k, sel, actual, pred, calibrated)
            self._add_point(name, label, k, sel, w, pred)

    def _add_point(
        self, name: str, label: str, k: int, sel: np.ndarray, w: _Window, pred: Any
    ) -> None:
        a = w.actual[:k][sel]
        m = pred["mean"][:k][sel]
        e = a - m
        d = np.abs(a) + np.abs(m)
        with np.errstate(invalid="ignore", divide="ignore"):
            sm = np.where(d > 0, 200 * np.abs(e) / d, 0.0)
        rec = self.acc.setdefault(
            (name, label), {"origin": [], "mase": [], "smape": [], "c80": [], "c95": []}
        )
        rec["origin"].append(w.origin)
        rec["mase"].append(float(np.mean(np.abs(e)) / w.scale))
        rec["smape"].append(float(np.mean(sm)))
        for lev in (80, 95):
            inside = (a >= pred[f"lo{lev}"][:k][sel]) & (a <= pred[f"hi{lev}"][:k][sel])
            rec[f"c{lev}"].extend(inside.astype(float))

    def _add_calibrated(
        self,
        name: str,
        label: str,
        k: int,
        sel: np.ndarray,
        actual: np.ndarray,
        pred: Any,
        calibrated: Any,
    ) -> None:
        crec = self.cal_acc.setdefault(
            (name, label), {"c80": [], "c95": [], "r80": [], "r95": [], "w": []}
        )
        a = actual[:k][sel]
        for key, src in (("c", calibrated), ("r", pred)):
            for lev in (80, 95):
                inside = (a >= src[f"lo{lev}"][:k][sel]) & (a <= src[f"hi{lev}"][:k][sel])
                crec[f"{key}{lev}"].extend(inside.astype(float))
        raw_w = float(np.mean(pred["hi95"][:k][sel] - pred["lo95"][:k][sel]))
        cal_w = float(np.mean(calibrated["hi95"][:k][sel] - calibrated["lo95"][:k][sel]))
        crec["w"].append(cal_w / raw_w if raw_w > 0 else float("nan"))

    def block_weights(
        self, models: list[str], before: int | None, top: int = 3
    ) -> list[dict[str, float]] | None:
        """Per disjoint lead block, inverse-error weights of the ``top`` models on earlier origins.

        Only origins before ``before`` count (all when ``None``) and only models scored on every
        such origin compete; weights are ``1 / mean scaled error``, normalised. ``None`` when no
        model qualifies.
        """
        origins = {o for v in self.block_err.values() for o in v if before is None or o < before}
        if not origins:
            return None
        out: list[dict[str, float]] = []
        for b in range(len(self.ends)):
            errs: dict[str, float] = {}
            for name in models:
                past = [v[b] for o, v in self.block_err.get(name, {}).items() if o in origins]
                if len(past) == len(origins) and np.isfinite(past).any():
                    errs[name] = max(float(np.nanmean(past)), 1e-9)
            if not errs:
                return None
            best = sorted(errs, key=lambda m: (errs[m], _model_order(m)))[:top]
            inv = {m: 1.0 / errs[m] for m in best}
            total = sum(inv.values())
            out.append({m: round(v / total, 4) for m, v in inv.items()})
        return out

    def records(self) -> list[dict[str, Any]]:
        """One record per (model, lead label), with the MASE ratio to the best baseline."""
        records: list[dict[str, Any]] = []
        for (name, label), r in self.acc.items():
            rec: dict[str, Any] = {
                "model": name,
                "horizon": label,
                "mase": round(float(np.mean(r["mase"])), 4),
                "smape": round(float(np.mean(r["smape"])), 3),
                "coverage80": round(float(np.mean(r["c80"])), 4),
                "coverage95": round(float(np.mean(r["c95"])), 4),
                "windows": len(r["mase"]),
            }
            rec.update(self._baseline_ratio(name, label, r))
            c = self.cal_acc.get((name, label))
            if c is not None:
                rec.update(
                    {
                        "cal_coverage80": round(float(np.mean(c["c80"])), 4),
                        "cal_coverage95": round(float(np.mean(c["c95"])), 4),
                        "raw_coverage80": round(float(np.mean(c["r80"])), 4),
                        "raw_coverage95": round(float(np.mean(c["r95"])), 4),
                        "cal_width95": round(float(np.nanmean(c["w"])), 3),
                        "cal_windows": len(c["w"]),
                    }
                )
            records.append(rec)
        order = {lab: i for i, (lab, _) in enumerate(self.labels)}
        records.sort(key=lambda r: (order[r["horizon"]], _model_order(r["model"])))
        return records

    def _baseline_ratio(self, name: str, label: str, r: dict[str, list[float]]) -> dict[str, Any]:
        """MASE / the best baseline's MASE on exactly the same origins."""
        origins = set(r["origin"])
        best, best_mase = None, math.inf
        for base in BASELINES:
            br = self.acc.get((base, label))
            if br is None:
                continue
            vals = [m for o, m in zip(br["origin"], br["mase"]) if o in origins]
            if len(vals) == len(origins) and float(np.mean(vals)) < best_mase:
                best, best_mase = base, float(np.mean(vals))
        if best is None or not best_mase > 0:
            return {}
        return {
            "best_baseline": best,
            "mase_vs_best_baseline": round(float(np.mean(r["mase"])) / best_mase, 4),
        }

    def conformal_pool(self) -> dict[str, dict[str, np.ndarray]]:
        return {
            name: {k: np.concatenate(v[k]) for k in ("step", "s80", "s95")}
            for name, v in self.pool.items()
        }


def _stitch(
    preds: dict[str, dict[str, np.ndarray]], weights: list[dict[str, float]], ends: list[int]
) -> Any:
    """Per lead block, the weighted mean of its models' forecasts (means and bounds)."""
    h = len(next(iter(preds.values()))["mean"])
    out = {k: np.zeros(h) for k in ("mean", "lo80", "hi80", "lo95", "hi95")}
    starts = [0, *ends[:-1]]
    for wts, a, b in zip(weights, starts, ends):
        for name, wt in wts.items():
            for k in out:
                out[k][a:b] += wt * preds[name][k][a:b]
    return out


def _choose(board: _Scoreboard, records: list[dict[str, Any]], sel_label: str) -> str:
    """The model with the lowest mean MASE at ``sel_label``.

    When the per-lead combination was scored, every model is compared with it on exactly the
    origins the combination was scored on (it misses the first), so the combination is kept
    only where it beats the best single model.
    """
    at = [r for r in records if r["horizon"] == sel_label]
    comb = board.acc.get((COMBINED, sel_label))
    if comb is not None:
        origins = set(comb["origin"])
        scores: dict[str, float] = {}
        for r in at:
            acc = board.acc[(r["model"], sel_label)]
            vals = [m for o, m in zip(acc["origin"], acc["mase"]) if o in origins]
            if len(vals) == len(origins):
                scores[r["model"]] = float(np.mean(vals))
        return min(scores, key=lambda m: (scores[m], _model_order(m)))
    n_max = max(r["windows"] for r in at)
    full = [r for r in at if r["windows"] == n_max]
    return str(min(full, key=lambda r: (r["mase"], _model_order(r["model"])))["model"])


def backtest(
    series: TrafficSeries,
    h: int,
    *,
    models: list[str],
    input_size: int,
    windows: int = 3,
    step: int | None = None,
    min_train: int | None = None,
    seasonality: str = "auto",
    select_on: str | None = None,
    calibration: str = "conformal",
    min_scores: int = 20,
    combine: str = "by_lead",
    events: EventCalendar | None = None,
) -> BacktestResult | None:
    """Rolling-origin backtest of the candidate models on ``series``.

    Steps: place the origins; per origin, prepare the training window and forecast with every
    model (scoring errors, coverage and conformal scores in a scoreboard, each origin calibrated
    only with scores observed before it); score the per-lead-block combination (each origin's
    block winners chosen on earlier origins only); build the records with the MASE ratio to the
    best baseline on the same origins; choose.

    Args:
        series: The series (gaps are filled for fitting, excluded from scoring).
        h: Forecast horizon in buckets.
        models: Candidate model names (the baselines are always added).
        input_size: Maximum training window (buckets) before each origin.
        windows: Number of origins (the last one ends at the series end).
        step: Buckets between origins (default ``h``).
        min_train: Minimum training buckets before the first origin.
        seasonality: ``auto`` or explicit seasons.
        select_on: Horizon label used for selection (default: the full horizon).
        calibration: ``conformal`` also scores conformally calibrated intervals: each origin
            is calibrated with the scores of buckets observed before it (no leakage) and
            records get ``cal_coverage80/95`` with ``raw_coverage80/95`` (the model's own
            intervals on the same buckets), ``cal_width95`` (calibrated / raw 95 % width) and
            ``cal_windows`` (origins with earlier scores). ``none`` skips this.
        min_scores: Fewest scores per lead-time block of the calibration.
        combine: ``by_lead`` also scores (and prefers) the per-lead-block combination.
        events: Known events: masked out of training, uplift applied to the forecasts.

    Returns:
        The scores, or ``None`` if not even one origin fits.
    """
    n = series.n
    step = step or h
    models = list(dict.fromkeys([*BASELINES, *models]))
    m_all = season_lengths(series.step_seconds)
    min_train = min_train or max(
        int(math.ceil(86400 / series.step_seconds)),
        2 * _base_season({k: v for k, v in m_all.items() if k == "daily"}),
    )
    origins, notes = _backtest_origins(n, h, step, windows, min_train)
    if not origins:
        return None
    labels = _horizon_labels(h, series.step_seconds)
    board = _Scoreboard(labels, calibration, min_scores)
    used_origins: list[str] = []
    for o in origins:
        w = _prepare_window(series, o, h, input_size, seasonality, events)
        if w is None:
            continue
        used_origins.append(str(series.index[o]))
        preds: dict[str, dict[str, np.ndarray]] = {}
        for name in models:
            pred = _predict_window(name, w, series.step_seconds, events)
            if pred is not None:
                preds[name] = pred
                board.add(name, w, pred)
        if combine == "by_lead":
            weights = board.block_weights(models, before=o)
            if weights is not None and all(m in preds for wt in weights for m in wt):
                board.add(COMBINED, w, _stitch(preds, weights, board.ends))
    if not board.acc:
        return None
    sel_label = select_on or labels[-1][0]
    if sel_label not in {lab for lab, _ in labels}:
        raise ConfigError(
            f"select_on: {sel_label!r} is not one of the horizons {[lab for lab, _ in labels]}"
        )
    records = board.records()
    chosen = _choose(board, records, sel_label)
    for r in records:
        r["chosen"] = r["model"] == chosen
    final_weights = board.block_weights(models, before=None) if combine == "by_lead" else None
    return BacktestResult(
        records=records,
        chosen=chosen,
        origins=used_origins,
        horizon_steps=h,
        selection=(
            "per lead-time block, the 3 models with the lowest mean scaled error over "
            f"{len(used_origins)} origins, weighted by inverse error"
            if chosen == COMBINED
            else f"lowest mean MASE at horizon {sel_label} over {len(used_origins)} origins"
        ),
        notes=notes,
        scores=board.conformal_pool(),
        block_ends=board.ends,
        block_models=final_weights or [],
    )


def _final_forecast(
    chosen: str,
    bt: BacktestResult | None,
    train: np.ndarray,
    h: int,
    seasons: dict[str, int],
    step: float,
    notes: list[str],
) -> tuple[str, dict[str, np.ndarray], list[dict[str, float]]]:
    """Fit the chosen model (or each block model of the combination) on the last window."""
    if chosen == COMBINED and bt is not None and bt.block_models:
        preds: dict[str, dict[str, np.ndarray]] = {}
        for name in dict.fromkeys(m for wt in bt.block_models for m in wt):
            pred = fit_predict(name, train, h, seasons, step)
            if pred is None:
                break
            preds[name] = pred
        else:
            ends = [min(e, h) for e in bt.block_ends]
            return COMBINED, _stitch(preds, bt.block_models, ends), list(bt.block_models)
        chosen = min(
            (
                r
                for r in bt.records
                if r["model"] in BASELINES and r["horizon"] == bt.records[-1]["horizon"]
            ),
            key=lambda r: r["mase"],
        )["model"]
        notes.append(f"a model of the combination failed to fit; fell back to {chosen}")
    pred = fit_predict(chosen, train, h, seasons, step)
    if pred is None:
        notes.append(f"{chosen} failed to fit; fell back to {BASELINE}")
        chosen = BASELINE
        pred = fit_predict(BASELINE, train, h, seasons, step)
    if pred is None:
        raise DataError("no model could be fitted")
    return chosen, pred, []


def monotone_bands(pred: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Widen the 80/95 % half-widths so they never shrink as the lead time grows.

    The half-width above and below the mean at lead ``i`` becomes the largest half-width at any
    lead ``<= i`` (a running maximum); the 95 % band is kept outside the 80 % band.
    """
    mean = pred["mean"]
    out = dict(pred)
    for level in (80, 95):
        up = np.maximum.accumulate(np.maximum(pred[f"hi{level}"] - mean, 0.0))
        down = np.maximum.accumulate(np.maximum(mean - pred[f"lo{level}"], 0.0))
        out[f"hi{level}"], out[f"lo{level}"] = mean + up, mean - down
    out["lo95"] = np.minimum(out["lo95"], out["lo80"])
    out["hi95"] = np.maximum(out["hi95"], out["hi80"])
    return out


def forecast_series(
    series: TrafficSeries,
    config: ForecastConfig | None = None,
    events: EventCalendar | None = None,
) -> ForecastResult:
    """Backtest the candidates, pick the best (per lead-time block), and forecast the horizon.

    Args:
        series: Regular traffic series (see :func:`zenrec.traffic.load_series`).
        config: Forecast settings.
        events: Known events (past and future): masked out of training and applied as an
            uplift learned from past occurrences (see :mod:`zenrec.traffic.events`).

    Returns:
        The forecast of the chosen model with 80/95 % intervals (calibrated, never narrowing
        with lead time), clipped at 0.

    Raises:
        DataError: Less history than ``min_history``.
    """
    import pandas as pd

    cfg = config or ForecastConfig()
    step = series.step_seconds
    require_history(series, parse_duration(cfg.min_history, "min_history"), "forecasting")
    h = int(math.ceil(parse_duration(cfg.horizon, "horizon") / step))
    input_size = max(2, int(round(parse_duration(cfg.history, "history") / step)))
    notes: list[str] = []
    bt_step = (
        int(math.ceil(parse_duration(cfg.backtest_step, "backtest_step") / step))
        if cfg.backtest_step
        else None
    )
    bt = None
    if cfg.windows > 0:
        bt = backtest(
            series,
            h,
            models=cfg.models,
            input_size=input_size,
            windows=cfg.windows,
            step=bt_step,
            seasonality=cfg.seasonality,
            select_on=cfg.select_on,
            calibration=cfg.calibration,
            min_scores=cfg.min_scores,
            combine=cfg.combine,
            events=events,
        )
    lo = max(0, series.n - input_size)
    train_raw = _training_values(series, lo, series.n, events)
    if series.n > input_size:
        notes.append(f"fitted on the last {fmt_seconds(input_size * step)} of history")
    seasons = usable_seasons(step, len(train_raw), cfg.seasonality, series.report.source)
    m0 = _base_season(seasons)
    train, n_filled = fill_gaps(train_raw, m0 if m0 > 1 else None)
    if n_filled:
        notes.append(f"{n_filled} missing or event buckets filled from the same phase for fitting")
    if bt is not None:
        chosen = bt.chosen
    else:
        extra = [m for m in cfg.models if m not in BASELINES]
        chosen = "MSTL" if (seasons and "MSTL" in cfg.models) else (extra or [BASELINE])[-1]
        notes.append(f"not enough history to backtest; using {chosen} without selection")
    t0 = time.perf_counter()
    chosen, pred, components = _final_forecast(chosen, bt, train, h, seasons, step, notes)
    fit_seconds = time.perf_counter() - t0
    if components:
        notes.append(
            "per lead-time block: "
            + ", ".join(
                f"<= {fmt_seconds(e * step)}: " + "+".join(f"{w:.2f} {m}" for m, w in wt.items())
                for wt, e in zip(components, bt.block_ends)
            )
            if bt is not None
            else ""
        )
    calibrator = None
    if cfg.calibration == "conformal":
        calibrator = bt.calibrator(chosen, cfg.min_scores) if bt is not None else None
        if bt is None or calibrator is None:
            notes.append("intervals not calibrated: too few backtest errors; model's own used")
        else:
            pred = calibrator.apply(pred)
            notes.append(
                f"80/95 % intervals conformally calibrated on {len(bt.origins) if bt else 0} "
                f"backtest origins (95 % half-width x "
                f"{', '.join(f'{q:.2f}' for q in calibrator.q95)} per lead block)"
            )
    future = pd.date_range(
        series.index[-1] + pd.Timedelta(seconds=step), periods=h, freq=pd.Timedelta(seconds=step)
    )
    applied: list[dict[str, Any]] = []
    if events is not None:
        uplifts = events.uplifts(series.values, series.index, seasons)
        pred, applied = events.apply(pred, pd.DatetimeIndex(future), uplifts)
        notes.append(
            f"events: {len(applied)} occurrences in the horizon"
            + (
                " (" + ", ".join(f"{a['event']} x{a['uplift']:.2f}" for a in applied[:5]) + ")"
                if applied
                else ""
            )
        )
    pred = monotone_bands(pred)
    frame = pd.DataFrame({"ts": future})
    for k in ("mean", "lo80", "hi80", "lo95", "hi95"):
        frame[k] = np.clip(pred[k], 0.0, None)
    frame["norm"] = seasonal_norm(series.values[-input_size:], h, seasons)
    return ForecastResult(
        frame=frame,
        model=chosen,
        backtest=bt,
        seasons=seasons,
        fit_seconds=fit_seconds,
        notes=notes,
        calibrator=calibrator,
        components=components,
        events=applied,
    )
