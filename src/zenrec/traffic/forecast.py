"""Traffic forecasting with statsforecast models, chosen by rolling-origin backtest.

Candidate models (names used in outputs):

* ``SeasonalNaive`` -- baseline: the value one season ago (daily season when the step allows).
* ``MSTL`` -- multiple seasonal-trend decomposition (daily and, with >= 2 weeks of history,
  weekly seasons) with an AutoETS trend forecaster. STL smoothers use interpolation jumps on
  long seasons so 1-minute data stays fast.
* ``AutoETS`` -- seasonal on the daily season when it is at most 24 buckets, else non-seasonal.
* ``AutoARIMA`` -- only where affordable: season at most 24 buckets (hourly or coarser data).

The backtest fits each model on a sliding window of at most ``history`` (14 days, as in AWS
Predictive Scaling) before each origin, forecasts ``horizon`` ahead and scores MASE (scaled by the
in-sample seasonal-naive error), sMAPE and 80 %/95 % interval coverage for lead times up to
1 h, 6 h, 24 h and the full horizon. The model with the lowest mean MASE over the full horizon
wins.

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

ALL_MODELS = ("SeasonalNaive", "MSTL", "AutoETS", "AutoARIMA")
BASELINE = "SeasonalNaive"
HORIZON_BUCKETS = (3600.0, 6 * 3600.0, 24 * 3600.0, 48 * 3600.0, 7 * 86400.0)


class ForecastConfig(BaseModel):
    """Settings of ``zenrec traffic forecast`` (validated).

    Attributes:
        horizon: How far ahead to forecast (e.g. ``48h``).
        history: Most recent history used to fit (AWS: up to 14 days).
        min_history: Refuse to forecast with less history than this (AWS: 24 h).
        models: Candidate models; ``SeasonalNaive`` is always added as the baseline.
        windows: Number of rolling backtest origins.
        backtest_step: Distance between backtest origins (default: the horizon).
        select_on: Horizon bucket the selection uses (default: the full horizon).
        seasonality: ``auto`` or an explicit comma list of ``daily``/``weekly`` (or ``none``).
        calibration: ``conformal`` rescales the 80/95 % intervals with the backtest's
            out-of-sample errors (see the module docstring); ``none`` keeps the model's own.
        min_scores: Fewest conformal scores per lead-time block (smaller blocks are merged).
    """

    model_config = ConfigDict(extra="forbid")

    horizon: str = "48h"
    history: str = "14d"
    min_history: str = "24h"
    models: list[str] = Field(default_factory=lambda: list(ALL_MODELS))
    windows: int = Field(default=3, ge=0, le=200)
    backtest_step: str | None = None
    select_on: str | None = None
    seasonality: str = "auto"
    calibration: Literal["conformal", "none"] = "conformal"
    min_scores: int = Field(default=20, ge=1)

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
        return list(dict.fromkeys([BASELINE, *v]))

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
    """

    frame: pd.DataFrame
    model: str
    backtest: BacktestResult | None
    seasons: dict[str, int]
    fit_seconds: float
    notes: list[str] = field(default_factory=list)
    calibrator: ConformalCalibrator | None = None


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
    from statsforecast.models import MSTL, AutoARIMA, AutoETS, SeasonalNaive

    m0 = _base_season(seasons)
    if name == "SeasonalNaive":
        return SeasonalNaive(season_length=m0)
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
    raise ConfigError(f"models: unknown {name!r}")


def fit_predict(
    name: str, y: np.ndarray, h: int, seasons: dict[str, int]
) -> dict[str, np.ndarray] | None:
    """Fit one model on a gap-free array and forecast ``h`` steps with 80/95 % intervals.

    Returns:
        ``{"mean", "lo80", "hi80", "lo95", "hi95"}`` arrays, or ``None`` if the model does not
        apply (not affordable / no season) or failed to fit.
    """
    model = _make_model(name, seasons)
    if model is None:
        return None
    y = np.asarray(y, dtype=float)
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
        """Per-step multipliers ``(q80, q95)`` for a forecast of ``h`` steps."""
        block = np.searchsorted(np.asarray(self.ends[:-1]), np.arange(h), side="right")
        return np.asarray(self.q80)[block], np.asarray(self.q95)[block]

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
        if b >= step and k < h:
            labels.append((fmt_seconds(b), k))
    labels.append((fmt_seconds(h * step), h))
    return labels


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
) -> BacktestResult | None:
    """Rolling-origin backtest of the candidate models on ``series``.

    Args:
        series: The series (gaps are filled for fitting, excluded from scoring).
        h: Forecast horizon in buckets.
        models: Candidate model names.
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

    Returns:
        The scores, or ``None`` if not even one origin fits.
    """
    n = series.n
    step = step or h
    m_all = season_lengths(series.step_seconds)
    min_train = min_train or max(
        int(math.ceil(86400 / series.step_seconds)),
        2 * _base_season({k: v for k, v in m_all.items() if k == "daily"}),
    )
    origins = [n - h - k * step for k in range(windows)]
    origins = sorted(o for o in origins if o >= min_train)
    notes: list[str] = []
    if not origins and windows > 0 and n - min_train >= 1:
        origins = [min_train]
        notes.append(f"history too short for a full {h}-step backtest window; scored a partial one")
    if not origins:
        return None
    labels = _horizon_labels(h, series.step_seconds)
    ends = [k for _, k in labels]
    acc: dict[tuple[str, str], dict[str, list[float]]] = {}
    cal_acc: dict[tuple[str, str], dict[str, list[float]]] = {}
    pool: dict[str, dict[str, list[np.ndarray]]] = {}  # conformal scores per model
    used_origins: list[str] = []
    for o in origins:
        lo = max(0, o - input_size)
        train_raw = series.values[lo:o]
        seasons = usable_seasons(series.step_seconds, len(train_raw), seasonality, "backtest")
        m0 = _base_season(seasons)
        train, _ = fill_gaps(train_raw, m0 if m0 > 1 else None)
        actual = series.values[o : o + h]
        hh = len(actual)
        if hh == 0:
            continue
        scale = float(np.mean(np.abs(train[m0:] - train[:-m0]))) if len(train) > m0 else 0.0
        if not scale > 0:
            scale = float(np.mean(np.abs(np.diff(train)))) or 1.0
        used_origins.append(str(series.index[o]))
        for name in models:
            pred = fit_predict(name, train, hh, seasons)
            if pred is None:
                continue
            err = actual - pred["mean"]
            valid = np.isfinite(actual)
            denom = np.abs(actual) + np.abs(pred["mean"])
            calibrated = None
            sc = pool.get(name)
            if calibration == "conformal" and sc is not None:
                known = np.concatenate(sc["t"]) < o  # buckets observed before this origin
                if known.sum() >= min_scores:
                    cal = ConformalCalibrator.fit(
                        np.concatenate(sc["step"])[known],
                        np.concatenate(sc["s80"])[known],
                        np.concatenate(sc["s95"])[known],
                        ends,
                        min_scores=min_scores,
                    )
                    calibrated = cal.apply(pred)
            if valid.any():
                sc = pool.setdefault(name, {"t": [], "step": [], "s80": [], "s95": []})
                sc["t"].append(o + np.flatnonzero(valid))
                sc["step"].append(np.flatnonzero(valid))
                sc["s80"].append(conformal_scores(actual[valid], _sub(pred, valid), 80))
                sc["s95"].append(conformal_scores(actual[valid], _sub(pred, valid), 95))
            for label, k in labels:
                sel = valid[:k]
                if not sel.any():
                    continue
                if calibrated is not None:
                    crec = cal_acc.setdefault(
                        (name, label), {"c80": [], "c95": [], "r80": [], "r95": [], "w": []}
                    )
                    a = actual[:k][sel]
                    for key, src in (("c", calibrated), ("r", pred)):
                        for lev in (80, 95):
                            inside = (a >= src[f"lo{lev}"][:k][sel]) & (
                                a <= src[f"hi{lev}"][:k][sel]
                            )
                            crec[f"{key}{lev}"].extend(inside.astype(float))
                    raw_w = float(np.mean(pred["hi95"][:k][sel] - pred["lo95"][:k][sel]))
                    cal_w = float(
                        np.mean(calibrated["hi95"][:k][sel] - calibrated["lo95"][:k][sel])
                    )
                    crec["w"].append(cal_w / raw_w if raw_w > 0 else float("nan"))
                e = err[:k][sel]
                a = actual[:k][sel]
                d = denom[:k][sel]
                with np.errstate(invalid="ignore", divide="ignore"):
                    sm = np.where(d > 0, 200 * np.abs(e) / d, 0.0)
                rec = acc.setdefault((name, label), {"mase": [], "smape": [], "c80": [], "c95": []})
                rec["mase"].append(float(np.mean(np.abs(e)) / scale))
                rec["smape"].append(float(np.mean(sm)))
                rec["c80"].extend(
                    ((a >= pred["lo80"][:k][sel]) & (a <= pred["hi80"][:k][sel])).astype(float)
                )
                rec["c95"].extend(
                    ((a >= pred["lo95"][:k][sel]) & (a <= pred["hi95"][:k][sel])).astype(float)
                )
    if not acc:
        return None
    full_label = labels[-1][0]
    sel_label = select_on or full_label
    if sel_label not in {lab for lab, _ in labels}:
        raise ConfigError(
            f"select_on: {sel_label!r} is not one of the horizons {[lab for lab, _ in labels]}"
        )
    records: list[dict[str, Any]] = []
    for (name, label), r in acc.items():
        records.append(
            {
                "model": name,
                "horizon": label,
                "mase": round(float(np.mean(r["mase"])), 4),
                "smape": round(float(np.mean(r["smape"])), 3),
                "coverage80": round(float(np.mean(r["c80"])), 4),
                "coverage95": round(float(np.mean(r["c95"])), 4),
                "windows": len(r["mase"]),
            }
        )
        c = cal_acc.get((name, label))
        if c is not None:
            records[-1].update(
                {
                    "cal_coverage80": round(float(np.mean(c["c80"])), 4),
                    "cal_coverage95": round(float(np.mean(c["c95"])), 4),
                    "raw_coverage80": round(float(np.mean(c["r80"])), 4),
                    "raw_coverage95": round(float(np.mean(c["r95"])), 4),
                    "cal_width95": round(float(np.nanmean(c["w"])), 3),
                    "cal_windows": len(c["w"]),
                }
            )
    # a model must have been scored on every origin to be chosen
    full = [
        r
        for r in records
        if r["horizon"] == sel_label and r["windows"] == max(len(v["mase"]) for v in acc.values())
    ]
    best = min(full, key=lambda r: (r["mase"], ALL_MODELS.index(r["model"])))
    for r in records:
        r["chosen"] = r["model"] == best["model"]
    order = {lab: i for i, (lab, _) in enumerate(labels)}
    records.sort(key=lambda r: (order[r["horizon"]], ALL_MODELS.index(r["model"])))
    return BacktestResult(
        records=records,
        chosen=best["model"],
        origins=used_origins,
        horizon_steps=h,
        selection=f"lowest mean MASE at horizon {sel_label} over {len(used_origins)} origins",
        notes=notes,
        scores={
            name: {k: np.concatenate(v[k]) for k in ("step", "s80", "s95")}
            for name, v in pool.items()
        },
        block_ends=ends,
    )


def forecast_series(series: TrafficSeries, config: ForecastConfig | None = None) -> ForecastResult:
    """Backtest the candidates, pick the best, and forecast the horizon.

    Args:
        series: Regular traffic series (see :func:`zenrec.traffic.load_series`).
        config: Forecast settings.

    Returns:
        The forecast of the chosen model with 80/95 % intervals, clipped at 0.

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
    if cfg.windows > 0 and len(cfg.models) > 1:
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
        )
    train_raw = series.values[-input_size:]
    if series.n > input_size:
        notes.append(f"fitted on the last {fmt_seconds(input_size * step)} of history")
    seasons = usable_seasons(step, len(train_raw), cfg.seasonality, series.report.source)
    m0 = _base_season(seasons)
    train, n_filled = fill_gaps(train_raw, m0 if m0 > 1 else None)
    if n_filled:
        notes.append(f"{n_filled} missing buckets filled from the same phase for fitting")
    if bt is not None:
        chosen = bt.chosen
    else:
        chosen = "MSTL" if (seasons and "MSTL" in cfg.models) else cfg.models[-1]
        notes.append(f"not enough history to backtest; using {chosen} without selection")
    t0 = time.perf_counter()
    pred = fit_predict(chosen, train, h, seasons)
    if pred is None:
        notes.append(f"{chosen} failed to fit; fell back to {BASELINE}")
        chosen = BASELINE
        pred = fit_predict(BASELINE, train, h, seasons)
    if pred is None:
        raise DataError(f"{series.report.source}: no model could be fitted")
    fit_seconds = time.perf_counter() - t0
    calibrator = None
    if cfg.calibration == "conformal":
        calibrator = bt.calibrator(chosen, cfg.min_scores) if bt is not None else None
        if bt is None or calibrator is None:
            notes.append("intervals not calibrated: too few backtest errors; model's own used")
        else:
            pred = calibrator.apply(pred)
            notes.append(
                f"80/95 % intervals conformally calibrated on {len(bt.origins)} backtest "
                f"origins (95 % half-width x {', '.join(f'{q:.2f}' for q in calibrator.q95)} "
                "per lead block)"
            )
    future = pd.date_range(
        series.index[-1] + pd.Timedelta(seconds=step), periods=h, freq=pd.Timedelta(seconds=step)
    )
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
    )
