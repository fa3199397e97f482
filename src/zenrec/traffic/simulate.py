"""Replay a traffic trace against autoscaling policies and score them.

Policies (all start with the replicas the first bucket needs, all ready):

* ``hpa`` -- the Kubernetes HorizontalPodAutoscaler algorithm (autoscaling/v2, as documented
  at kubernetes.io "Horizontal Pod Autoscaling"), acting on observed load only. Every
  ``sync_period`` it reads the load of the last completed bucket (the metric lags one bucket)
  and computes ``ratio = load / (current * per_replica_target)`` with
  ``per_replica_target = capacity * target_utilization``; inside the tolerance band
  (``|ratio - 1| <= tolerance``) it keeps ``current``, else the recommendation is
  ``ceil(current * ratio)``, clamped to ``[min, max]``. Scale-down is stabilised: the highest
  recommendation of the last ``scale_down_window`` (5 min) is used. Scale-up is rate limited
  per sync period by the default policies (``+scale_up_pods`` pods or ``+scale_up_percent`` %,
  whichever allows more). New replicas serve only ``warmup`` after they were created; removed
  replicas go at once, not-yet-ready ones first.
* ``predictive`` -- zenrec's plan re-made every ``refit_every`` from the data observed before
  that moment only (no look-ahead): a forecast of the next ``refit_every + warmup + hold``, the
  replicas ``ceil(bound / per_replica_target)`` each bucket needs, and a floor requested
  ``warmup`` ahead of each bucket and held ``hold`` after it. The replicas follow that floor
  both ways (there is no reactive part).
* ``hybrid`` -- the HPA above whose recommendation is ``max(hpa, floor)`` (what
  KEDA does with a cron floor beside a load trigger, and what AWS recommends: predictive
  scaling beside a dynamic policy), so scale-in still follows observed load. Its floor comes
  from the same forecast but plans for ``hybrid_bound`` (the mean by default) without a hold:
  the HPA covers what exceeds the mean, so the floor need not pay for the upper bound.

The default forecaster is ``SeasonalProfile`` (:func:`zenrec.traffic.candidates.profile_forecast`:
the median of the same phase over the last weeks, re-anchored to the last hour's level), whose
refit costs microseconds, so 14 days of 1-minute data with hourly refits replay in seconds;
any other candidate of :mod:`zenrec.traffic.candidates` can be named, fitted on the last
``history`` only.

Scores per policy: ``overload_minutes`` (buckets whose demand exceeds the *ready* capacity
``ready_replicas * capacity``), ``unserved_fraction`` (demand above ready capacity, summed, over
total demand), ``replica_hours`` (created replicas, ready or warming, over time),
``scale_events`` (changes of the replica count) and ``longest_overload_minutes``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zenrec._errors import ConfigError, DataError
from zenrec._io import atomic_write_text
from zenrec.traffic.series import (
    TrafficSeries,
    fill_gaps,
    fmt_seconds,
    parse_duration,
    season_lengths,
)

if TYPE_CHECKING:
    from zenrec.traffic.events import EventCalendar

__all__ = [
    "POLICIES",
    "WARMUPS",
    "SimulateConfig",
    "SimulationResult",
    "resample_rate",
    "simulate",
    "simulate_warmups",
]

POLICIES = ("hpa", "predictive", "hybrid")
WARMUPS = ("5min", "10min", "15min")
"""Warm-ups ``simulate`` reports by default: whether prediction pays depends on how long a new
replica takes to serve (a small model in seconds, a large one in many minutes)."""


class SimulateConfig(BaseModel):
    """Settings of ``zenrec traffic simulate``.

    Attributes:
        capacity_rps: Requests/s one ready replica serves.
        target_utilization: HPA target and planning utilisation.
        warmup: Time from creating a replica to it serving.
        min_replicas: Lower bound of every policy.
        max_replicas: Upper bound (``None``: unbounded).
        policies: Which of ``hpa``, ``predictive``, ``hybrid`` to replay.
        refit_every: How often the predictive plan is re-made.
        history: Most recent history the predictive forecaster sees at each refit.
        min_history: The predictive floor starts once this much history was observed (and
            the forecaster has its daily season: 2 days); before, both predictive and hybrid
            act exactly as the HPA.
        forecaster: Forecast model of the predictive plan (``SeasonalProfile`` is cheap).
        bound: What the predictive policy plans for: ``calibrated`` (default) the forecast
            mean times a quantile of past actual / forecast ratios, the quantile chosen at each
            refit on past buckets only to minimise ``overload_cost`` x overload minutes +
            replica-hours; or a forecast column.
        hybrid_bound: The same for the hybrid's floor; ``calibrated`` may also choose no floor
            (the plain HPA) when no quantile paid for itself on the past window.
        overload_cost: Replica-hours one overloaded minute is worth in the calibrated choice.
        calibration_window: Past buckets (with a forecast) the calibrated quantile is chosen
            on.
        min_calibration: Fewest past forecast buckets before a calibrated floor is used
            (until then both predictive and hybrid act as the HPA).
        hold: A predictive floor is kept this long after the bucket that needed it (the
            hybrid's floor is not held: the HPA's scale-down stabilisation does that).
        sync_period: HPA sync period (Kubernetes default 15 s).
        tolerance: HPA tolerance band (Kubernetes default 0.1).
        scale_down_window: HPA scale-down stabilisation window (default 5 min).
        scale_up_pods: HPA scale-up policy: pods added per sync period (default 4).
        scale_up_percent: HPA scale-up policy: percent added per sync period (default 100).
        value_unit: Series values are requests per bucket (``count``) or per second (``rate``).
    """

    model_config = ConfigDict(extra="forbid")

    capacity_rps: float = Field(gt=0)
    target_utilization: float = Field(default=0.7, gt=0, le=1)
    warmup: str = "5min"
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int | None = Field(default=None, ge=1)
    policies: list[str] = Field(default_factory=lambda: list(POLICIES))
    refit_every: str = "1h"
    history: str = "14d"
    min_history: str = "1d"
    forecaster: str = "SeasonalProfile"
    bound: Literal["calibrated", "mean", "hi80", "hi95"] = "calibrated"
    hybrid_bound: Literal["calibrated", "mean", "hi80", "hi95"] = "calibrated"
    overload_cost: float = Field(default=0.25, gt=0)
    calibration_window: str = "7d"
    min_calibration: str = "1d"
    hold: str = "30min"
    sync_period: str = "15s"
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    scale_down_window: str = "5min"
    scale_up_pods: int = Field(default=4, ge=1)
    scale_up_percent: float = Field(default=100.0, gt=0)
    value_unit: Literal["count", "rate"] = "count"

    @field_validator("policies")
    @classmethod
    def _policies(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if p not in POLICIES]
        if bad or not v:
            raise ConfigError(f"policies: unknown {bad or v}; choose from {list(POLICIES)}")
        return list(dict.fromkeys(v))

    @field_validator("forecaster")
    @classmethod
    def _forecaster(cls, v: str) -> str:
        from zenrec.traffic.candidates import ALL_MODELS

        if v not in ALL_MODELS:
            raise ConfigError(f"forecaster: unknown {v!r}; choose from {list(ALL_MODELS)}")
        return v

    @model_validator(mode="after")
    def _check(self) -> SimulateConfig:
        for name in (
            "refit_every",
            "history",
            "min_history",
            "sync_period",
            "calibration_window",
            "min_calibration",
        ):
            parse_duration(getattr(self, name), name)
        for name in ("warmup", "hold", "scale_down_window"):
            _duration0(getattr(self, name), name)
        if self.max_replicas is not None and self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas {self.max_replicas} is below min_replicas")
        return self


def _duration0(text: str, name: str) -> float:
    """A duration that may be zero (``0``, ``0s``)."""
    return 0.0 if str(text).strip() in ("0", "0s", "0min") else parse_duration(text, name)


@dataclass
class PolicyTrace:
    """Per-bucket replicas of one policy: ``spec`` (created) and ``ready`` (serving)."""

    spec: np.ndarray
    ready: np.ndarray
    scale_events: int


@dataclass
class SimulationResult:
    """Output of :func:`simulate`.

    Attributes:
        index: Bucket start times of the replay.
        demand_rps: Demand per bucket (requests/s).
        traces: Per policy, the replicas over time.
        scores: Per policy, the five scores.
        floor: The predictive floor requested at each bucket (0 while it acts as the HPA).
        hybrid_floor: The hybrid's floor (from ``hybrid_bound``, not held; 0: none).
        seconds: Wall time of the replay.
        refits: Number of forecasts made.
        series: The trace that was replayed (its report goes into ``simulation.json``).
    """

    index: Any
    demand_rps: np.ndarray
    step_seconds: float
    traces: dict[str, PolicyTrace]
    scores: dict[str, dict[str, float]]
    floor: np.ndarray
    hybrid_floor: np.ndarray
    config: SimulateConfig
    seconds: float
    refits: int
    notes: list[str] = field(default_factory=list)
    series: TrafficSeries | None = field(default=None, repr=False)
    by_warmup: list[dict[str, Any]] = field(default_factory=list)
    """With :func:`simulate_warmups`: ``{"warmup", "warmup_s", "policies"}`` per warm-up."""

    def as_dict(self) -> dict[str, Any]:
        """The ``simulation.json`` payload."""
        cfg = self.config
        extra = {"by_warmup": self.by_warmup} if self.by_warmup else {}
        return extra | {
            "policies": self.scores,
            "capacity_rps": cfg.capacity_rps,
            "warmup_s": _duration0(cfg.warmup, "warmup"),
            "target_utilization": cfg.target_utilization,
            "freq": fmt_seconds(self.step_seconds),
            "start": str(self.index[0]),
            "end": str(self.index[-1]),
            "refit_every": cfg.refit_every,
            "forecaster": cfg.forecaster,
            "bound": cfg.bound,
            "hybrid_bound": cfg.hybrid_bound,
            "overload_cost": cfg.overload_cost,
            "refits": self.refits,
            "seconds": round(self.seconds, 2),
            "notes": self.notes,
        }

    def write(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write ``simulation.json`` (:meth:`as_dict` and the series report) and
        ``simulation.png`` (each atomically).

        Returns:
            The paths written, in that order.
        """
        from zenrec.traffic.plots import plot_simulation

        out = Path(directory)
        paths = [out / "simulation.json", out / "simulation.png"]
        payload = self.as_dict()
        if self.series is not None:
            payload |= {"series": self.series.report.as_dict()}
        atomic_write_text(paths[0], json.dumps(payload, indent=2, default=str) + "\n")
        plot_simulation(paths[1], self)
        return paths


def resample_rate(series: TrafficSeries, step_seconds: float, value_unit: str = "count") -> Any:
    """Demand in requests/s on a grid of ``step_seconds`` (gaps filled, noted).

    A coarser series is spread by linear interpolation of its rate between bucket middles
    (reported); a finer one is summed into the coarser buckets.
    """
    import pandas as pd

    notes: list[str] = []
    y, n_filled = fill_gaps(series.values, season_lengths(series.step_seconds).get("daily"))
    if n_filled:
        notes.append(f"{n_filled} missing buckets filled from the same phase for the replay")
    rate = y / series.step_seconds if value_unit == "count" else y.copy()
    src = series.step_seconds
    t0 = series.index[0]
    if abs(step_seconds - src) < 1e-9:
        return series.index, rate, notes
    if step_seconds < src:
        k = src / step_seconds
        if abs(k - round(k)) > 1e-9:
            raise ConfigError(
                f"freq: {fmt_seconds(step_seconds)} does not divide the data's step "
                f"{fmt_seconds(src)}; use a divisor such as 1min"
            )
        n = len(rate) * round(k)
        centres_src = (np.arange(len(rate)) + 0.5) * src
        centres = (np.arange(n) + 0.5) * step_seconds
        out = np.interp(centres, centres_src, rate)
        notes.append(
            f"{series.freq} buckets spread over {fmt_seconds(step_seconds)} by linear "
            "interpolation of the rate"
        )
    else:
        k = step_seconds / src
        if abs(k - round(k)) > 1e-9:
            raise ConfigError(
                f"freq: {fmt_seconds(step_seconds)} is not a multiple of the data step"
            )
        kk = round(k)
        n = len(rate) // kk
        out = rate[: n * kk].reshape(n, kk).mean(axis=1)
    index = pd.date_range(t0, periods=len(out), freq=pd.Timedelta(seconds=step_seconds))
    return index, out, notes


QUANTILES = (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0)
"""Levels of the past actual / forecast ratio a calibrated floor may plan for."""


def _window_max(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """``out[j] = max(x[j - before : j + after + 1])`` (clipped at the ends)."""
    if before == 0 and after == 0:
        return x.copy()
    pad = np.concatenate([np.full(before, x[0] if len(x) else 0), x, np.full(after, 0)])
    view = np.lib.stride_tricks.sliding_window_view(pad, before + after + 1)
    return view.max(axis=1)[: len(x)]


class _Forecaster:
    """The predictive policy's floor, re-made every ``refit_every`` from past data only."""

    def __init__(
        self,
        demand: np.ndarray,
        index: Any,
        step: float,
        cfg: SimulateConfig,
        events: EventCalendar | None,
    ):
        self.demand = demand
        self.index = index
        self.step = step
        self.cfg = cfg
        self.events = events
        self.per = cfg.capacity_rps * cfg.target_utilization
        self.seasons = season_lengths(step)
        self.warm_b = int(math.ceil(_duration0(cfg.warmup, "warmup") / step - 1e-9))
        self.hold_b = int(math.ceil(_duration0(cfg.hold, "hold") / step - 1e-9))
        self.refit_b = max(1, int(round(parse_duration(cfg.refit_every, "refit_every") / step)))
        self.hist_b = max(2, int(round(parse_duration(cfg.history, "history") / step)))
        self.min_b = max(2, int(round(parse_duration(cfg.min_history, "min_history") / step)))
        self.cal_b = max(1, int(round(parse_duration(cfg.calibration_window, "cw") / step)))
        self.min_cal_b = max(1, int(round(parse_duration(cfg.min_calibration, "mc") / step)))
        self.refits = 0
        self._done: tuple[tuple[str, int, int], ...] | None = None
        self._uplifts: dict[str, float] = {}
        n = len(demand)
        self.fmean = np.full(n, np.nan)
        """The forecast mean each bucket's floor was planned from (NaN: none yet)."""
        self.levels: dict[str, list[float]] = {"predictive": [], "hybrid": []}
        """The calibrated level chosen at each refit (0: no floor)."""
        sd_b = int(math.ceil(_duration0(cfg.scale_down_window, "scale_down_window") / step))
        lagged = np.concatenate([[demand[0] if n else 0.0], demand[:-1]])  # the metric lags 1
        spec = np.ceil(_window_max(lagged, sd_b, 0) / self.per - 1e-9)
        spec = np.maximum(spec, cfg.min_replicas)
        self.hpa_spec = spec
        """Proxy of the HPA's replicas (scale-down stabilised, metric one bucket late)."""
        self.hpa_ready = -_window_max(-spec, self.warm_b, 0)
        """Proxy of its ready replicas: those asked for at least a warm-up ago and kept since
        (the fewest replicas over the last warm-up)."""

    def forecast(self, t: int) -> dict[str, np.ndarray] | None:
        """Forecast of the next ``refit_every + warmup + hold`` buckets from ``demand[:t]``;
        ``None`` until the forecaster has its history (``min_history`` and a daily season)."""
        import pandas as pd

        from zenrec.traffic.candidates import fit_predict, usable_seasons

        if t < self.min_b:
            return None
        lo = max(0, t - self.hist_b)
        past = self.demand[lo:t]
        seasons = usable_seasons(self.step, len(past), "auto", "simulate")
        if not seasons:
            return None
        self.refits += 1
        h = self.refit_b + self.warm_b + self.hold_b + 1
        if self.events is not None:
            past = past.copy()
            past[self.events.mask(self.index[lo:t])] = np.nan
            past, _ = fill_gaps(past, seasons.get("daily"))
        pred = fit_predict(self.cfg.forecaster, past, h, seasons, self.step)
        if pred is None:
            pred = fit_predict("Naive", past, h, seasons, self.step)
        if pred is None:
            raise DataError(
                f"simulate: no forecast could be made from the {len(past)} buckets "
                f"before bucket {t}"
            )
        if self.events is not None:
            done = tuple(sp for sp in self.events.spans(self.index[:t]) if sp[2] < t - 1)
            if done != self._done:  # learn again only when another occurrence has ended
                self._done = done
                self._uplifts = self.events.uplifts(self.demand[:t], self.index[:t], seasons)
            ups = self._uplifts
            if ups:
                future = pd.date_range(
                    self.index[t], periods=h, freq=pd.Timedelta(seconds=self.step)
                )
                pred, _ = self.events.apply(pred, future, ups)
        return pred

    def floor_from(self, t: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Predictive and hybrid floors for request times ``t .. t + refit_every``, from
        ``demand[:t]`` only (one forecast for both); ``None``: act as the HPA."""
        pred = self.forecast(t)
        if pred is None:
            return None
        n = len(self.demand)
        first = int(np.isnan(self.fmean[:t]).all())  # the first refit plans from bucket t
        a = t if first else min(n, t + self.warm_b)
        b = min(n, t + self.refit_b + self.warm_b)
        self.fmean[a:b] = pred["mean"][a - t : b - t]
        out = []
        for policy, bound, hold_b in (
            ("predictive", self.cfg.bound, self.hold_b),
            ("hybrid", self.cfg.hybrid_bound, 0),
        ):
            if bound != "calibrated":
                out.append(self._floor(pred[bound], hold_b))
                continue
            level = self._level(t, hold_b, allow_none=policy == "hybrid")
            if level is None:
                return None
            self.levels[policy].append(level)
            out.append(self._floor(pred["mean"] * level, hold_b))
        return out[0], out[1]

    def _level(self, t: int, hold_b: int, allow_none: bool) -> float | None:
        """The multiplier of the forecast mean that cost least on the past window.

        Candidates: the :data:`QUANTILES` of the past ratios ``demand / forecast`` (and 0, no
        floor, for the hybrid). Each is replayed on the past buckets with a forecast against a
        proxy of the HPA (``hpa_spec``/``hpa_ready``): overloaded when demand exceeds the ready
        capacity, paying for the replicas asked for. ``None`` while the window is too short.
        """
        lo = max(0, t - self.cal_b)
        f = self.fmean[lo:t]
        ok = np.isfinite(f) & (f > 0)
        if ok.sum() < self.min_cal_b:
            return None
        d = self.demand[lo:t]
        ratios = d[ok] / f[ok]
        cands = sorted({float(np.quantile(ratios, q)) for q in QUANTILES})
        if allow_none:
            cands = [0.0, *cands]
        cap = self.cfg.capacity_rps
        fz = np.where(ok, f, 0.0)
        hpa_spec = self.hpa_spec[lo:t] if allow_none else 0
        hpa_ready = self.hpa_ready[lo:t] if allow_none else 0
        best, best_cost = None, math.inf
        for m in cands:
            need = np.ceil(np.maximum(fz * m, 0.0) / self.per - 1e-9)
            need = np.maximum(need, self.cfg.min_replicas)
            spec = np.maximum(_window_max(need, hold_b, self.warm_b), hpa_spec)
            ready = np.maximum(_window_max(need, hold_b, 0), hpa_ready)
            over = (d > ready * cap + 1e-9) & ok
            cost = (
                self.cfg.overload_cost * over.sum() * self.step / 60.0
                + float(spec[ok].sum()) * self.step / 3600.0
            )
            if cost < best_cost - 1e-9:
                best, best_cost = m, cost
        return best

    def _floor(self, load: np.ndarray, hold_b: int) -> np.ndarray:
        """Floor per request time: a request at bucket ``t+i`` covers the buckets it serves
        after warm-up (``t+i .. t+i+warm``) and those that ended at most ``hold`` ago."""
        need = np.ceil(np.maximum(load, 0.0) / self.per - 1e-9).astype(int)
        out = np.empty(self.refit_b, dtype=int)
        for i in range(self.refit_b):
            a = max(0, i - hold_b)
            out[i] = int(need[a : min(len(need), i + self.warm_b + 1)].max())
        return out


class _Hpa:
    """Kubernetes HPA state for one policy (see the module docstring)."""

    def __init__(self, cfg: SimulateConfig, initial: int, sync: float, warm: float):
        self.cfg = cfg
        self.per = cfg.capacity_rps * cfg.target_utilization
        self.spec = initial
        self.pending: list[float] = []  # ready times of warming replicas, sorted
        self.recs: list[tuple[float, int]] = []
        self.window = _duration0(cfg.scale_down_window, "scale_down_window")
        self.sync = sync
        self.warm = warm
        self.events = 0

    def ready(self, now: float) -> int:
        while self.pending and self.pending[0] <= now + 1e-9:
            self.pending.pop(0)
        return self.spec - len(self.pending)

    def clamp(self, n: int) -> int:
        n = max(n, self.cfg.min_replicas)
        return min(n, self.cfg.max_replicas) if self.cfg.max_replicas is not None else n

    def set(self, desired: int, now: float) -> None:
        if desired == self.spec:
            return
        self.events += 1
        if desired > self.spec:
            self.pending.extend([now + self.warm] * (desired - self.spec))
        else:
            drop = self.spec - desired
            k = min(drop, len(self.pending))
            if k:
                del self.pending[len(self.pending) - k :]
        self.spec = desired

    def step_hpa(self, load: float, now: float, floor: int) -> None:
        cur = max(self.spec, 1)
        ratio = load / (cur * self.per)
        rec = self.spec if abs(ratio - 1.0) <= self.cfg.tolerance else math.ceil(cur * ratio - 1e-9)
        rec = self.clamp(max(rec, floor))
        self.recs.append((now, rec))
        self.recs = [(t, r) for t, r in self.recs if t > now - self.window - 1e-9]
        desired = rec
        if rec < self.spec:  # scale-down stabilisation: highest recent recommendation
            desired = min(self.spec, max(r for _, r in self.recs))
        elif rec > self.spec:  # scale-up policies per sync period: max(+pods, +percent)
            limit = max(
                self.spec + self.cfg.scale_up_pods,
                math.ceil(self.spec * (1 + self.cfg.scale_up_percent / 100.0)),
            )
            desired = min(rec, limit)
        self.set(desired, now)


def _scores(demand: np.ndarray, tr: PolicyTrace, cap: float, step: float) -> dict[str, float]:
    ready_cap = tr.ready * cap
    over = demand > ready_cap + 1e-9
    unserved = np.maximum(demand - ready_cap, 0.0)
    longest = cur = 0
    for o in over:
        cur = cur + 1 if o else 0
        longest = max(longest, cur)
    total = float(demand.sum())
    return {
        "overload_minutes": round(float(over.sum()) * step / 60.0, 2),
        "unserved_fraction": round(float(unserved.sum()) / total, 6) if total > 0 else 0.0,
        "replica_hours": round(float(tr.spec.sum()) * step / 3600.0, 2),
        "scale_events": int(tr.scale_events),
        "longest_overload_minutes": round(longest * step / 60.0, 2),
    }


def simulate(
    series: TrafficSeries,
    config: SimulateConfig,
    *,
    freq: str | None = "1min",
    last: str | None = None,
    events: EventCalendar | None = None,
) -> SimulationResult:
    """Replay ``series`` against the autoscaling policies of ``config``.

    Args:
        series: The demand trace (requests per bucket, or rps with ``value_unit="rate"``).
        config: Policy settings and capacity.
        freq: Replay grid (default 1 min; coarser data is interpolated, finer summed);
            ``None`` keeps the series step.
        last: Score only the last part of the trace (e.g. ``14d``); everything before is
            history the forecasts may use.
        events: Known events for the predictive forecasts.

    Returns:
        Per-policy replica traces and scores.
    """
    t_start = time.perf_counter()
    cfg = config
    step = parse_duration(freq, "freq") if freq else series.step_seconds
    index, demand, notes = resample_rate(series, step, cfg.value_unit)
    n = len(demand)
    first = 0
    if last is not None:
        first = max(0, n - int(round(parse_duration(last, "last") / step)))
    if n - first < 2:
        raise DataError(f"{series.report.source}: too few buckets to simulate")
    warm = _duration0(cfg.warmup, "warmup")
    sync = parse_duration(cfg.sync_period, "sync_period")
    per = cfg.capacity_rps * cfg.target_utilization
    need_pred = any(p in cfg.policies for p in ("predictive", "hybrid"))
    fc = _Forecaster(demand, index, step, cfg, events)
    floor = np.zeros(n, dtype=int)
    floor_h = np.zeros(n, dtype=int)
    active = np.zeros(n, dtype=bool)
    if need_pred:
        # refits on a fixed grid; those before ``first`` only feed the calibration
        t0 = max(fc.refit_b, (first - fc.cal_b - fc.refit_b) // fc.refit_b * fc.refit_b)
        for t in range(t0, n, fc.refit_b):
            k = min(fc.refit_b, n - t)
            got = fc.floor_from(t)
            if got is None:
                continue
            floor[t : t + k], floor_h[t : t + k] = got[0][:k], got[1][:k]
            active[t : t + k] = True
        idle = int((~active[first:]).sum())
        if idle:
            notes.append(
                f"predictive and hybrid acted as the HPA for {fmt_seconds(idle * step)} of the "
                "replay (the forecaster had not yet the history and the past forecasts it needs)"
            )
        for pol, lv in fc.levels.items():
            if lv and (pol in cfg.policies):
                none = sum(x == 0 for x in lv)
                used = [x for x in lv if x > 0]
                notes.append(
                    f"{pol} floor: forecast mean x a calibrated level, chosen at {len(lv)} "
                    f"refits (overload cost {cfg.overload_cost:g} replica-h per minute)"
                    + (f"; no floor at {none}" if none else "")
                    + (f"; median level {float(np.median(used)):.2f}" if used else "")
                )
    if cfg.max_replicas is not None:
        floor, floor_h = np.minimum(floor, cfg.max_replicas), np.minimum(floor_h, cfg.max_replicas)
    init = int(np.ceil(demand[first] / per - 1e-9))
    traces: dict[str, PolicyTrace] = {}
    n_sync = max(1, int(round(step / sync)))
    for policy in cfg.policies:
        state = _Hpa(cfg, 0, sync, warm)
        state.spec = state.clamp(init)
        spec = np.empty(n - first)
        ready = np.empty(n - first, dtype=int)
        for t in range(first, n):
            t_sec = t * step
            ready[t - first] = state.ready(t_sec)
            observed = demand[t - 1] if t > 0 else demand[0]
            acc = 0.0
            for k in range(n_sync):
                now = t_sec + k * step / n_sync
                if policy == "predictive" and active[t]:
                    state.set(state.clamp(int(floor[t])), now)
                else:
                    state.step_hpa(observed, now, int(floor_h[t]) if policy == "hybrid" else 0)
                acc += state.spec
            spec[t - first] = acc / n_sync
        traces[policy] = PolicyTrace(spec=spec, ready=ready, scale_events=state.events)
    d = demand[first:]
    scores = {p: _scores(d, tr, cfg.capacity_rps, step) for p, tr in traces.items()}
    return SimulationResult(
        index=index[first:],
        demand_rps=d,
        step_seconds=step,
        traces=traces,
        scores=scores,
        floor=floor[first:],
        hybrid_floor=floor_h[first:],
        config=cfg,
        seconds=time.perf_counter() - t_start,
        refits=fc.refits,
        notes=notes,
        series=series,
    )


def simulate_warmups(
    series: TrafficSeries,
    config: SimulateConfig,
    warmups: tuple[str, ...] | list[str] = WARMUPS,
    **kwargs: Any,
) -> SimulationResult:
    """:func:`simulate` once per warm-up; the result of the first, with every warm-up's scores
    in :attr:`SimulationResult.by_warmup` (the table that says whether prediction pays for a
    model's start-up time).

    Args:
        series: The demand trace.
        config: Policy settings; its ``warmup`` is replaced by each of ``warmups``.
        warmups: Warm-ups to replay (default 5, 10 and 15 min).
        **kwargs: Passed to :func:`simulate` (``freq``, ``last``, ``events``).
    """
    if not warmups:
        raise ConfigError("warmups: give at least one warm-up, e.g. 5min")
    results = [simulate(series, config.model_copy(update={"warmup": w}), **kwargs) for w in warmups]
    for w in warmups:
        _duration0(w, "warmup")
    first = results[0]
    first.by_warmup = [
        {"warmup": w, "warmup_s": _duration0(w, "warmup"), "policies": r.scores}
        for w, r in zip(warmups, results)
    ]
    first.notes = list(dict.fromkeys(n for r in results for n in r.notes))
    first.seconds = sum(r.seconds for r in results)
    return first
