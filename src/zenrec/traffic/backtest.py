"""Rolling-origin backtests of the candidates, the choice per lead-time block, its honest score.

The backtest fits each model on a sliding window of at most ``history`` (14 days, as in AWS
Predictive Scaling) before each origin, forecasts ahead and scores MASE (scaled by the
in-sample seasonal-naive error), sMAPE and 80 %/95 % interval coverage for lead times up to
5 min, 1 h, 6 h, 24 h and the full horizon, with each MASE divided by the best baseline's on the
same origins. Two kinds of origin: long ones (daily by default) reach the whole horizon; short
ones (hourly) reach the lead-time blocks of at most 6 h, so the short blocks are judged on many
more origins. Each disjoint lead-time block is judged on the origins that reach it, every model
on the same ones, and served by its winner (``by_block``; a baseline when it wins);
:func:`out_of_sample_blocks` re-makes that choice from earlier origins only and scores it on
later ones. ``by_lead`` instead serves each block with the inverse-error weighted mean of its 3
best models (a forecast combination in the sense of Bates and Granger 1969).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from zenrec._errors import ConfigError
from zenrec.traffic.calibration import ConformalCalibrator, conformal_scores
from zenrec.traffic.candidates import (
    BASELINES,
    _base_season,
    _model_order,
    fit_predict,
    usable_seasons,
)
from zenrec.traffic.events import EventCalendar
from zenrec.traffic.series import TrafficSeries, fill_gaps, fmt_seconds, season_lengths

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BY_BLOCK",
    "COMBINED",
    "HORIZON_BUCKETS",
    "SHORT_LEAD",
    "BacktestResult",
    "backtest",
    "choice_groups",
    "default_baseline",
    "out_of_sample_blocks",
    "sign_test_p",
]

COMBINED = "Combined"
"""Name of the per-lead-block inverse-error combination in records and outputs."""
BY_BLOCK = "ByBlock"
"""Name of the forecast stitched from each lead-time block's backtest winner."""
SHORT_LEAD = 6 * 3600.0
"""Lead-time blocks ending at most this far ahead are also judged on the short (hourly)
origins; longer blocks only on the long (daily) origins, which reach the whole horizon."""
HORIZON_BUCKETS = (300.0, 3600.0, 6 * 3600.0, 24 * 3600.0, 48 * 3600.0, 7 * 86400.0)
"""Lead-time blocks: scores are reported for lead times up to each of these (and the horizon)."""
SWITCH_ALPHA = 0.05
"""Level of the one-sided sign test a model must pass to be served instead of the best
baseline of a lead-time block (see :func:`_block_choice`)."""
SWITCH_MARGIN = 0.02
"""Relative mean-MASE gain over the best baseline a model needs to be served instead."""
MIN_BLOCK_BUCKETS = 2
"""A lead-time block shorter than this many buckets is chosen together with the next one."""
DEFAULT_BASELINE_LEAD = 3600.0
"""With ``baseline_rule="default"``, blocks ending at most this far ahead start from ``Naive``
as their reference baseline, later blocks from ``SeasonalNaive`` (see
:func:`default_baseline`)."""


def default_baseline(end_seconds: float) -> str:
    """The reference baseline a lead-time block ending ``end_seconds`` ahead starts from.

    The last value (``Naive``) up to :data:`DEFAULT_BASELINE_LEAD`, where traffic is
    persistent; the value one season ago (``SeasonalNaive``) beyond, where the daily (or
    weekly) cycle dominates.

    >>> default_baseline(300.0), default_baseline(6 * 3600.0)
    ('Naive', 'SeasonalNaive')
    """
    return "Naive" if end_seconds <= DEFAULT_BASELINE_LEAD + 1e-9 else "SeasonalNaive"


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
    error over all origins; weight 1 for the block winner of ``by_block``)."""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    """Per disjoint lead-time block: the origins it was judged on, every eligible model's mean
    MASE on exactly those origins, the winner and the best baseline (the table the choice of
    ``by_block`` is made from)."""
    block_err: dict[str, dict[int, np.ndarray]] = field(default_factory=dict, repr=False)
    """Per model and origin: the MASE of each disjoint lead-time block (NaN: not reached)."""
    reach: dict[int, int] = field(default_factory=dict, repr=False)
    """Per origin (bucket index): how many leads it was scored on."""
    switch_alpha: float = SWITCH_ALPHA
    """Sign-test level of the choice (see :func:`_block_choice`)."""
    switch_margin: float = SWITCH_MARGIN
    """Relative gain over the best baseline the choice requires."""
    baseline_rule: str = "lowest"
    """Which baseline a block serves (and a model must beat): ``lowest`` (the lowest mean
    MASE) or ``default`` (:func:`default_baseline`, unless another baseline beats it
    clearly); see :func:`_block_choice`."""

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

    def add(
        self, name: str, w: _Window, pred: dict[str, np.ndarray], reach: int | None = None
    ) -> None:
        """Score one model's forecast at one origin (lead labels beyond ``reach`` skipped)."""
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
            if reach is not None and k > reach:
                continue
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


def _block_names(ends: list[int], step: float) -> list[tuple[str, str]]:
    """``(label, lead range)`` of each disjoint lead-time block, e.g. ``("6h", "1h-6h")``."""
    out = []
    for a, b in zip([0, *ends[:-1]], ends):
        label = fmt_seconds(b * step)
        out.append((label, f"<= {label}" if a == 0 else f"{fmt_seconds(a * step)}-{label}"))
    return out


def choice_groups(ends: list[int], min_buckets: int = MIN_BLOCK_BUCKETS) -> list[tuple[int, int]]:
    """The lead-time blocks the choice is made on: ``(first, last)`` indices into ``ends``.

    A block shorter than ``min_buckets`` leads is merged with the blocks after it until the
    merged block is long enough (the last block stays as it is), so no choice rests on one
    noisy bucket per origin.

    >>> choice_groups([1, 12, 72, 288])
    [(0, 1), (2, 2), (3, 3)]
    """
    groups: list[tuple[int, int]] = []
    first, start = 0, 0
    for i, e in enumerate(ends):
        if e - start >= min_buckets or i == len(ends) - 1:
            groups.append((first, i))
            first, start = i + 1, e
    return groups


def _group_errors(
    block_err: dict[str, dict[int, np.ndarray]], ends: list[int], group: tuple[int, int]
) -> dict[str, dict[int, float]]:
    """Per model and origin, the mean scaled error over the leads of a group of blocks.

    Each block's error is weighted by its number of leads; blocks an origin did not score
    (NaN) are left out, and an origin with none of them scored has NaN.
    """
    a, b = group
    starts = [0, *ends[:-1]]
    w = np.array([ends[i] - starts[i] for i in range(a, b + 1)], dtype=float)
    out: dict[str, dict[int, float]] = {}
    for m, per_origin in block_err.items():
        d: dict[int, float] = {}
        for o, v in per_origin.items():
            x = np.asarray(v[a : b + 1], dtype=float)
            ok = np.isfinite(x)
            d[o] = float(np.sum(w[ok] * x[ok]) / np.sum(w[ok])) if ok.any() else math.nan
        out[m] = d
    return out


def sign_test_p(wins: int, n: int) -> float:
    """One-sided sign test: P(at least ``wins`` of ``n`` fair coin flips come up heads).

    >>> round(sign_test_p(15, 20), 4)
    0.0207
    >>> sign_test_p(0, 0)
    1.0
    """
    if n <= 0:
        return 1.0
    return float(sum(math.comb(n, k) for k in range(wins, n + 1)) / 2.0**n)


def _block_choice(
    errs: dict[str, dict[int, float]],
    models: list[str],
    origins: list[int],
    alpha: float = SWITCH_ALPHA,
    margin: float = SWITCH_MARGIN,
    reference: str | None = None,
) -> dict[str, Any] | None:
    """A block judged on ``origins``: every model scored on all of them, its mean MASE.

    Only origins where some baseline has a finite score count; a model competes only when it
    has a score on every one of them, so the table and the choice rest on the same origins.
    The best baseline (lowest mean MASE; ties: the earlier one) is served unless the model
    with the lowest mean MASE is not a baseline and beats it clearly: its mean MASE is at
    least ``margin`` (relative) lower and it has the lower error on more origins than chance
    allows (one-sided sign test at level ``alpha``). ``alpha=1, margin=0`` serves the
    lowest mean MASE whatever the evidence.

    With a ``reference`` baseline (scored on every origin), the baselines follow the same
    rule: the reference is served unless the best baseline beats it clearly, and a model
    must beat the served baseline (``served_baseline``) clearly. So the served baseline does
    not flip between baselines on a few origins' noise; the price is that the served block
    may be up to the margin (or the sign test's chance) worse than the best baseline.
    """
    base_ok = [
        o for o in origins if any(np.isfinite(errs.get(m, {}).get(o, math.nan)) for m in BASELINES)
    ]
    if not base_ok:
        return None
    scores: dict[str, float] = {}
    for name in models:
        e = errs.get(name, {})
        vals = [e[o] for o in base_ok if o in e]
        if len(vals) == len(base_ok) and np.isfinite(vals).all():
            scores[name] = float(np.mean(vals))
    if not scores:
        return None
    lowest = min(scores, key=lambda m: (scores[m], _model_order(m)))
    bases = [m for m in BASELINES if m in scores]
    best_base = min(bases, key=lambda m: (scores[m], _model_order(m))) if bases else None
    out: dict[str, Any] = {"origins": len(base_ok), "lowest": lowest}
    served = best_base
    if reference is not None and reference in scores and best_base is not None:
        served = reference
        if best_base != reference:
            clear, _ = _beats(errs, scores, best_base, reference, base_ok, alpha, margin)
            served = best_base if clear else reference
        out["served_baseline"] = served
    winner = lowest if served is None or lowest not in BASELINES else served
    if served is not None and lowest != served and lowest not in BASELINES:
        clear, test = _beats(errs, scores, lowest, served, base_ok, alpha, margin)
        out |= test
        if not clear:
            winner = served
    out |= {
        "winner": winner,
        "mase": round(scores[winner], 4),
        "scores": {m: round(v, 4) for m, v in scores.items()},
    }
    if best_base is not None and scores[best_base] > 0:
        out["best_baseline"] = best_base
        out["winner_vs_best_baseline"] = round(scores[winner] / scores[best_base], 4)
    return out


def _check_baseline_rule(rule: str) -> None:
    if rule not in ("lowest", "default"):
        raise ConfigError(f"baseline_rule must be 'lowest' or 'default', got {rule!r}")


def _beats(
    errs: dict[str, dict[int, float]],
    scores: dict[str, float],
    new: str,
    old: str,
    origins: list[int],
    alpha: float,
    margin: float,
) -> tuple[bool, dict[str, Any]]:
    """Whether ``new`` beats ``old`` clearly on ``origins`` (sign test and mean gain)."""
    d = np.array([errs[old][o] - errs[new][o] for o in origins])
    wins, n = int(np.sum(d > 0)), int(np.sum(d != 0))
    p = sign_test_p(wins, n)
    gain = 1.0 - scores[new] / scores[old] if scores[old] > 0 else 0.0
    return p <= alpha and gain >= margin, {"wins": wins, "decided": n, "sign_p": round(p, 4)}


def _block_origins(reach: dict[int, int], end: int, before: int | None = None) -> list[int]:
    """Origins whose forecasts reach the end of a block (and lie before ``before``)."""
    return sorted(o for o, r in reach.items() if r >= end and (before is None or o < before))


def _blocks_table(
    block_err: dict[str, dict[int, np.ndarray]],
    models: list[str],
    reach: dict[int, int],
    ends: list[int],
    step: float,
    alpha: float = SWITCH_ALPHA,
    margin: float = SWITCH_MARGIN,
    min_buckets: int = MIN_BLOCK_BUCKETS,
    baseline_rule: str = "lowest",
) -> list[dict[str, Any]]:
    """The per-block table the ``by_block`` choice is made from (all origins)."""
    table = []
    for a, b in choice_groups(ends, min_buckets):
        start, end = (ends[a - 1] if a else 0), ends[b]
        label, span = _block_names([end], step)[0]
        if start:
            span = f"{fmt_seconds(start * step)}-{label}"
        errs = _group_errors(block_err, ends, (a, b))
        ref = default_baseline(end * step)
        origins = _block_origins(reach, end)
        ch = _block_choice(
            errs, models, origins, alpha, margin, ref if baseline_rule == "default" else None
        )
        if ch is not None:
            row = {"block": label, "leads": span, "start": start, "end": end}
            table.append(row | {"default_baseline": ref} | ch)
    return table


def out_of_sample_blocks(
    bt: BacktestResult,
    min_origins: int = 5,
    *,
    switch_alpha: float | None = None,
    switch_margin: float | None = None,
    baseline_rule: str | None = None,
) -> list[dict[str, Any]]:
    """Per lead-time block, the ``by_block`` choice scored out of sample.

    For each block (the blocks of :func:`choice_groups`), origins in time order: at every
    origin after the first ``min_origins``, the served model is chosen on the earlier origins
    only (the rule of the forecast, margin included) and scored on this one. The ratio is the
    mean MASE of those choices over the mean MASE of the best baseline on the same scored
    origins (the best baseline picked with hindsight, so the ratio is not flattered).

    Args:
        bt: A backtest (its per-origin block errors are used; nothing is refitted).
        min_origins: Earlier origins needed before a choice is scored.
        switch_alpha: Sign-test level of the choice (default: the backtest's); ``1`` with
            ``switch_margin=0`` scores the plain lowest-mean choice on the same blocks.
        switch_margin: Relative gain the choice requires (default: the backtest's).
        baseline_rule: ``lowest`` or ``default`` (default: the backtest's), see
            :func:`backtest`.

    Returns:
        One dict per block: ``block``, ``leads``, ``origins`` (all), ``origins_scored``,
        ``mase`` (chosen, out of sample), ``best_baseline``, ``best_baseline_mase``,
        ``ratio`` and ``choices`` (how often each model was chosen).
    """
    models = list(bt.block_err)
    alpha = bt.switch_alpha if switch_alpha is None else switch_alpha
    margin = bt.switch_margin if switch_margin is None else switch_margin
    rule = bt.baseline_rule if baseline_rule is None else baseline_rule
    _check_baseline_rule(rule)
    out = []
    for x in bt.blocks:
        group = (
            bt.block_ends.index(x["start"]) + 1 if x["start"] else 0,
            bt.block_ends.index(x["end"]),
        )
        errs = _group_errors(bt.block_err, bt.block_ends, group)
        origins = _block_origins(bt.reach, x["end"])
        chosen_err: list[float] = []
        base_err: dict[str, list[float]] = {m: [] for m in BASELINES if m in errs}
        choices: dict[str, int] = {}
        ref = x.get("default_baseline") if rule == "default" else None
        for i in range(min_origins, len(origins)):
            o = origins[i]
            ch = _block_choice(errs, models, origins[:i], alpha, margin, ref)
            if ch is None or o not in errs.get(ch["winner"], {}):
                continue
            e = errs[ch["winner"]][o]
            bases = {m: errs[m].get(o, math.nan) for m in base_err}
            if not np.isfinite(e) or not all(np.isfinite(v) for v in bases.values()):
                continue
            chosen_err.append(float(e))
            for m, v in bases.items():
                base_err[m].append(float(v))
            choices[ch["winner"]] = choices.get(ch["winner"], 0) + 1
        row: dict[str, Any] = {
            "block": x["block"],
            "leads": x["leads"],
            "origins": len(origins),
            "origins_scored": len(chosen_err),
        }
        if chosen_err:
            means = {m: float(np.mean(v)) for m, v in base_err.items() if v}
            best = min(means, key=lambda m: (means[m], _model_order(m)))
            row |= {
                "mase": round(float(np.mean(chosen_err)), 4),
                "best_baseline": best,
                "best_baseline_mase": round(means[best], 4),
                "ratio": round(float(np.mean(chosen_err)) / means[best], 4)
                if means[best] > 0
                else None,
                "choices": choices,
            }
        out.append(row)
    return out


def _stitch_winners(
    preds: dict[str, dict[str, np.ndarray]], winners: list[str], ends: list[int]
) -> dict[str, np.ndarray] | None:
    """Each block's leads from its winner's forecast (``None`` if a needed one is missing)."""
    h = len(next(iter(preds.values()))["mean"])
    out = {k: np.zeros(h) for k in ("mean", "lo80", "hi80", "lo95", "hi95")}
    for name, a, b in zip(winners, [0, *ends[:-1]], ends):
        if a >= h:
            break
        if name not in preds or len(preds[name]["mean"]) < min(b, h):
            return None
        for k in out:
            out[k][a : min(b, h)] = preds[name][k][a : min(b, h)]
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
    combine: str = "by_block",
    events: EventCalendar | None = None,
    short_windows: int = 24,
    short_step: int | None = None,
    switch_alpha: float = SWITCH_ALPHA,
    switch_margin: float = SWITCH_MARGIN,
    baseline_rule: str = "lowest",
) -> BacktestResult | None:
    """Rolling-origin backtest of the candidate models on ``series``.

    Steps: place the origins (``windows`` long ones ``step`` apart reaching the whole horizon,
    and ``short_windows`` short ones ``short_step`` apart reaching the lead-time blocks of at
    most :data:`SHORT_LEAD`); per origin, prepare the training window and forecast with every
    model (scoring errors, coverage and conformal scores in a scoreboard, each origin
    calibrated only with scores observed before it); judge every disjoint lead-time block on
    the origins that reach it, every model on the same origins; choose; score the chosen
    forecast (the stitched block winners, or the per-lead-block combination).

    Args:
        series: The series (gaps are filled for fitting, excluded from scoring).
        h: Forecast horizon in buckets.
        models: Candidate model names (the baselines are always added).
        input_size: Maximum training window (buckets) before each origin.
        windows: Number of long origins (the last one ends at the series end).
        step: Buckets between long origins (default ``h``).
        min_train: Minimum training buckets before the first origin.
        seasonality: ``auto`` or explicit seasons.
        select_on: Horizon label used for selection by ``best`` / ``by_lead`` (default: the
            full horizon).
        calibration: ``conformal`` also scores conformally calibrated intervals: each origin
            is calibrated with the scores of buckets observed before it (no leakage) and
            records get ``cal_coverage80/95`` with ``raw_coverage80/95`` (the model's own
            intervals on the same buckets), ``cal_width95`` (calibrated / raw 95 % width) and
            ``cal_windows`` (origins with earlier scores). ``none`` skips this.
        min_scores: Fewest scores per lead-time block of the calibration.
        combine: ``by_block`` (default) serves each disjoint lead-time block from the model
            with the lowest mean MASE on that block (a baseline when it wins), recorded as
            :data:`BY_BLOCK` (a single model's name when one model wins every block);
            ``by_lead`` scores (and prefers) the inverse-error combination of the 3 best;
            ``best`` takes the single model with the lowest MASE at ``select_on``.
        events: Known events: masked out of training, uplift applied to the forecasts.
        short_windows: Number of short origins (0: none); only placed when some lead-time
            block ends within :data:`SHORT_LEAD` of the origin.
        short_step: Buckets between short origins (default: one hour, at least one bucket).
        switch_alpha: ``by_block``: a block serves its best baseline unless the model with the
            lowest mean MASE beats it on more origins than a one-sided sign test at this level
            allows by chance (1: no test).
        switch_margin: ``by_block``: ...and lowers the best baseline's mean MASE by at least
            this fraction (0: any gain).
        baseline_rule: ``by_block``: the baseline a block serves. ``lowest``: the one with
            the lowest mean MASE. ``default``: :func:`default_baseline` (``Naive`` up to 1 h
            ahead, ``SeasonalNaive`` beyond) unless another baseline beats it clearly by the
            same rule, so the served baseline does not flip on a few origins' noise.

    Returns:
        The scores, or ``None`` if not even one origin fits.

    Raises:
        ConfigError: ``baseline_rule`` or ``select_on`` is not one of the allowed values.
    """
    _check_baseline_rule(baseline_rule)
    n = series.n
    step = step or h
    models = list(dict.fromkeys([*BASELINES, *models]))
    m_all = season_lengths(series.step_seconds)
    min_train = min_train or max(
        int(math.ceil(86400 / series.step_seconds)),
        2 * _base_season({k: v for k, v in m_all.items() if k == "daily"}),
    )
    long_origins, notes = _backtest_origins(n, h, step, windows, min_train)
    labels = _horizon_labels(h, series.step_seconds)
    short_ends = [k for _, k in labels if k * series.step_seconds <= SHORT_LEAD + 1e-9]
    h_short = max(short_ends) if short_ends and max(short_ends) < h else 0
    reach = {o: h for o in long_origins}
    if h_short and short_windows > 0:
        s_step = short_step or max(1, int(round(3600.0 / series.step_seconds)))
        shorts, _ = _backtest_origins(n, h_short, s_step, short_windows, min_train)
        for o in shorts:
            reach.setdefault(o, h_short)
    if not reach:
        return None
    board = _Scoreboard(labels, calibration, min_scores)
    used_origins: list[str] = []
    all_preds: dict[int, dict[str, dict[str, np.ndarray]]] = {}
    windows_at: dict[int, _Window] = {}
    for o in sorted(reach):
        w = _prepare_window(series, o, reach[o], input_size, seasonality, events)
        if w is None:
            del reach[o]
            continue
        if reach[o] == h:
            used_origins.append(str(series.index[o]))
        preds: dict[str, dict[str, np.ndarray]] = {}
        for name in models:
            pred = _predict_window(name, w, series.step_seconds, events)
            if pred is not None:
                preds[name] = pred
                board.add(name, w, pred, reach[o])
        if combine == "by_lead" and reach[o] == h:
            weights = board.block_weights(models, before=o)
            if weights is not None and all(m in preds for wt in weights for m in wt):
                board.add(COMBINED, w, _stitch(preds, weights, board.ends))
        if combine == "by_block":
            all_preds[o], windows_at[o] = preds, w
    if not board.acc:
        return None
    sel_label = select_on or labels[-1][0]
    if sel_label not in {lab for lab, _ in labels}:
        raise ConfigError(
            f"select_on: {sel_label!r} is not one of the horizons {[lab for lab, _ in labels]}"
        )
    block_err = {m: dict(v) for m, v in board.block_err.items()}
    blocks = _blocks_table(
        block_err,
        models,
        reach,
        board.ends,
        series.step_seconds,
        switch_alpha,
        switch_margin,
        baseline_rule=baseline_rule,
    )
    final_weights: list[dict[str, float]] | None = None
    if combine == "by_block" and blocks:
        winners: list[str] = []
        for e in board.ends:  # a block no origin reached takes the previous block's winner
            x = next((x for x in blocks if x["start"] < e <= x["end"]), None)
            winners.append(
                str(x["winner"]) if x else winners[-1] if winners else str(blocks[0]["winner"])
            )
        if len(set(winners)) == 1:
            chosen = winners[0]
        else:
            chosen = BY_BLOCK
            for o in sorted(all_preds):
                stitched = _stitch_winners(all_preds[o], winners, board.ends)
                if stitched is not None:
                    board.add(BY_BLOCK, windows_at[o], stitched, reach[o])
        final_weights = [{m: 1.0} for m in winners]
        selection = (
            f"per lead-time block, the {'default' if baseline_rule == 'default' else 'best'} "
            "baseline unless a model beats it clearly "
            f"(sign test p <= {switch_alpha:g}, mean MASE gain >= {switch_margin:.0%}) "
            "on the origins reaching it: "
        ) + (", ".join(f"{x['leads']}: {x['winner']} ({x['origins']} origins)" for x in blocks))
        records = board.records()
    else:
        records = board.records()
        chosen = _choose(board, records, sel_label)
        if combine == "by_lead":
            final_weights = board.block_weights(models, before=None)
        selection = (
            "per lead-time block, the 3 models with the lowest mean scaled error over "
            f"{len(used_origins)} origins, weighted by inverse error"
            if chosen == COMBINED
            else f"lowest mean MASE at horizon {sel_label} over {len(used_origins)} origins"
        )
    for r in records:
        r["chosen"] = r["model"] == chosen
    return BacktestResult(
        records=records,
        chosen=chosen,
        origins=used_origins,
        horizon_steps=h,
        selection=selection,
        notes=notes,
        scores=board.conformal_pool(),
        block_ends=board.ends,
        block_models=final_weights or [],
        blocks=blocks,
        block_err={m: v for m, v in block_err.items() if m in models},
        reach=dict(reach),
        switch_alpha=switch_alpha,
        switch_margin=switch_margin,
        baseline_rule=baseline_rule,
    )
