"""Interval calibration: split-conformal rescaling per lead-time block, bands that never narrow.

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
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ConformalCalibrator", "conformal_scores", "monotone_bands"]


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
