"""Traffic forecasting with statsforecast models, chosen per lead time by rolling-origin backtest.

The entry point :func:`forecast_series` backtests the candidates
(:mod:`zenrec.traffic.candidates`) on rolling origins (:mod:`zenrec.traffic.backtest`), fits
each lead-time block's winner (or the chosen model or combination) on the last window,
calibrates its 80/95 % intervals with the backtest's out-of-sample errors
(:mod:`zenrec.traffic.calibration`), and applies the uplift of known events
(:mod:`zenrec.traffic.events`).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from zenrec._errors import ConfigError, DataError
from zenrec._io import atomic_write_text
from zenrec.traffic.backtest import (
    BY_BLOCK,
    COMBINED,
    SWITCH_ALPHA,
    SWITCH_MARGIN,
    BacktestResult,
    _stitch,
    _training_values,
    backtest,
)
from zenrec.traffic.calibration import ConformalCalibrator, monotone_bands
from zenrec.traffic.candidates import (
    ALL_MODELS,
    BASELINE,
    BASELINES,
    DEFAULT_MODELS,
    _base_season,
    fit_predict,
    seasonal_norm,
    usable_seasons,
)
from zenrec.traffic.events import EventCalendar
from zenrec.traffic.series import (
    TrafficSeries,
    fill_gaps,
    fmt_seconds,
    parse_duration,
    require_history,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ForecastConfig", "ForecastResult", "event_windows", "forecast_series"]


class ForecastConfig(BaseModel):
    """Settings of ``zenrec traffic forecast`` (validated).

    Attributes:
        horizon: How far ahead to forecast (e.g. ``48h``).
        history: Most recent history used to fit (AWS: up to 14 days).
        min_history: Refuse to forecast with less history than this (AWS: 24 h).
        models: Candidate models; the :data:`BASELINES` are always added.
        windows: Number of long rolling backtest origins (reaching the whole horizon).
        backtest_step: Distance between long origins (default: one day when the horizon is
            at least a day and the buckets are shorter, else the horizon).
        short_windows: Number of short origins, one hour apart, reaching the lead-time blocks
            up to 6 h, so short blocks are judged on many more origins.
        select_on: Horizon bucket the selection uses (default: the full horizon).
        seasonality: ``auto`` or an explicit comma list of ``daily``/``weekly`` (or ``none``).
        calibration: ``conformal`` rescales the 80/95 % intervals with the backtest's
            out-of-sample errors (see :mod:`zenrec.traffic.calibration`); ``none`` keeps the
            model's own.
        min_scores: Fewest conformal scores per lead-time block (smaller blocks are merged).
        combine: ``by_block`` (default) serves each lead-time block from its best baseline,
            or from the model with the lowest mean backtest MASE on that block when it beats
            that baseline clearly (``switch_alpha``, ``switch_margin``), every model judged on
            the same origins; ``by_lead`` uses the
            inverse-error weighted mean of the 3 models with the lowest backtest error on each
            block; ``best`` uses the single model with the lowest MASE at ``select_on``.
        switch_alpha: ``by_block``: a model replaces a block's best baseline only when it has the
            lower error on more backtest origins than a one-sided sign test at this level
            allows by chance (1: no test; blocks of one bucket are chosen with the next).
        switch_margin: ``by_block``: ...and lowers the baseline's mean MASE by this fraction.
        baseline_rule: ``by_block``: the baseline a block serves, ``lowest`` (lowest mean
            MASE) or ``default`` (``Naive`` up to 1 h ahead, ``SeasonalNaive`` beyond, unless
            another baseline beats it clearly); see :func:`zenrec.traffic.backtest.backtest`.
    """

    model_config = ConfigDict(extra="forbid")

    horizon: str = "48h"
    history: str = "14d"
    min_history: str = "24h"
    models: list[str] = Field(default_factory=lambda: list(DEFAULT_MODELS))
    windows: int = Field(default=20, ge=0, le=200)
    backtest_step: str | None = None
    short_windows: int = Field(default=24, ge=0, le=500)
    select_on: str | None = None
    seasonality: str = "auto"
    calibration: Literal["conformal", "none"] = "conformal"
    min_scores: int = Field(default=20, ge=1)
    combine: Literal["by_block", "by_lead", "best"] = "by_block"
    switch_alpha: float = Field(default=SWITCH_ALPHA, gt=0, le=1)
    switch_margin: float = Field(default=SWITCH_MARGIN, ge=0, lt=1)
    baseline_rule: Literal["lowest", "default"] = "lowest"

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
        series: The series the forecast was made from (its report goes into the artefacts).
        event_windows: Known events on the plotted time axis (the last week of history and
            the horizon) as ``(name, start, end)``.

    Examples:
        >>> from zenrec.traffic import ForecastConfig, forecast_series, series_from_values
        >>> import numpy as np
        >>> y = 100 + 50 * np.sin(np.arange(24 * 4) * 2 * np.pi / 24)
        >>> res = forecast_series(series_from_values(y, freq="1h"),
        ...                       ForecastConfig(horizon="6h", models=[], windows=0))
        >>> len(res.frame)
        6
        >>> paths = res.write("out/")  # doctest: +SKIP
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
    series: TrafficSeries | None = field(default=None, repr=False)
    event_windows: list[tuple[str, str, str]] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """The ``forecast.csv`` table: :attr:`frame` with the chosen model's name per row."""
        return self.frame.assign(model=self.model)

    def as_dict(self) -> dict[str, Any]:
        """The ``backtest.json`` payload: the choice, the backtest records and the series."""
        bt = self.backtest
        return {
            "chosen_model": self.model,
            "selection": bt.selection if bt else "no backtest (history too short)",
            "origins": bt.origins if bt else [],
            "records": bt.records if bt else [],
            "blocks": bt.blocks if bt else [],
            "seasons": self.seasons,
            "fit_seconds": round(self.fit_seconds, 3),
            "calibration": self.calibrator.as_dict() if self.calibrator else None,
            "block_models": self.components,
            "events": self.events,
            "notes": self.notes + (bt.notes if bt else []),
            "series": self._series().report.as_dict(),
        }

    def write(
        self,
        directory: str | os.PathLike[str],
        *,
        periods: Sequence[Any] = (),
        alerts: Sequence[Any] = (),
    ) -> list[Path]:
        """Write ``forecast.csv``, ``backtest.json`` and ``forecast.png`` (each atomically).

        Args:
            directory: Output directory (created when missing).
            periods: Flagged periods of history to shade in the plot.
            alerts: Forward surge alerts to shade in the plot.

        Returns:
            The paths written, in that order.
        """
        from zenrec.traffic.plots import plot_forecast

        out = Path(directory)
        paths = [out / "forecast.csv", out / "backtest.json", out / "forecast.png"]
        atomic_write_text(paths[0], self.table().to_csv(index=False))
        atomic_write_text(paths[1], json.dumps(self.as_dict(), indent=2, default=str) + "\n")
        plot_forecast(
            paths[2],
            self._series(),
            self.frame,
            model=self.model,
            periods=periods,
            alerts=alerts,
            events=self.event_windows,
        )
        return paths

    def _series(self) -> TrafficSeries:
        if self.series is None:
            raise ConfigError(
                "this ForecastResult does not carry its series; write the result that "
                "forecast_series returns (it keeps the series it was made from)"
            )
        return self.series


def event_windows(
    events: EventCalendar | None, series: TrafficSeries, frame: pd.DataFrame
) -> list[tuple[str, str, str]]:
    """Known events on a plot's time axis (the last week of history and the forecast horizon)
    as ``(name, start, end)`` strings; empty without a calendar."""
    import pandas as pd

    if events is None:
        return []
    axis = series.tail(7 * 86400).index.append(pd.DatetimeIndex(frame["ts"]))
    return [(name, str(s), str(e)) for name, s, e in events.windows(axis, series.step_seconds)]


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
    if chosen in (COMBINED, BY_BLOCK) and bt is not None and bt.block_models:
        preds: dict[str, dict[str, np.ndarray]] = {}
        for name in dict.fromkeys(m for wt in bt.block_models for m in wt):
            pred = fit_predict(name, train, h, seasons, step)
            if pred is None:
                break
            preds[name] = pred
        else:
            ends = [min(e, h) for e in bt.block_ends]
            return chosen, _stitch(preds, bt.block_models, ends), list(bt.block_models)
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
    day = int(round(86400 / step))
    bt_step = (
        int(math.ceil(parse_duration(cfg.backtest_step, "backtest_step") / step))
        if cfg.backtest_step
        else (day if h >= day > 1 else None)
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
            short_windows=cfg.short_windows,
            switch_alpha=cfg.switch_alpha,
            switch_margin=cfg.switch_margin,
            baseline_rule=cfg.baseline_rule,
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
        series=series,
        event_windows=event_windows(events, series, frame),
    )
