"""Known events (a sale, a launch, a match) as an exogenous uplift of the traffic forecast.

A calendar is a CSV with columns ``name,start,end`` (start inclusive, end exclusive; past and
future occurrences). The uplift of an event is learned from its past occurrences only: for an
occurrence, ``ratio = mean(observed) / mean(baseline)`` over its buckets, where the baseline is
the seasonal profile (median of the same phase over the previous cycles, see
:func:`zenrec.traffic.candidates.seasonal_profile`) built from data *before* the occurrence, with
earlier event buckets masked. An event's uplift is the median ratio of its past occurrences
(same ``name``); a name without a past occurrence gets no uplift (events of different names
differ too much: on the NYC taxi trace the median of earlier holidays, all drops, would have
cut the New Year forecast by a third). The forecaster (i) masks past event buckets out of the
training data (they are refilled from the same phase, like gaps), and (ii) multiplies the
forecast over each future occurrence by its uplift, so a plan raises its floor *before* a
scheduled event instead of reacting to it. This is the "holiday effect" of Prophet (Taylor and
Letham 2018, additive/multiplicative holiday regressors) reduced to one ratio per event, which
needs no refit of the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zenrec._errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EventCalendar", "Occurrence", "load_events"]


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of an event: ``[start, end)`` (naive or tz-aware timestamps)."""

    name: str
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass
class EventCalendar:
    """A list of event occurrences and the uplifts learned from a series.

    Attributes:
        occurrences: Event occurrences sorted by start.
        source: File name (for messages).
    """

    occurrences: list[Occurrence]
    source: str = "<events>"
    notes: list[str] = field(default_factory=list)

    def spans(self, index: pd.DatetimeIndex) -> list[tuple[str, int, int]]:
        """Bucket ranges ``[a, b)`` of the occurrences overlapping ``index``."""
        import pandas as pd

        out = []
        t = index.asi8
        step = int(t[1] - t[0]) if len(t) > 1 else 0
        for occ in self.occurrences:
            s, e = _align(occ.start, index), _align(occ.end, index)
            a = int(np.searchsorted(t, pd.Timestamp(s).value - step + 1, side="left"))
            b = int(np.searchsorted(t, pd.Timestamp(e).value, side="left"))
            if b > a:
                out.append((occ.name, a, b))
        return out

    def windows(
        self, index: pd.DatetimeIndex, step_seconds: float
    ) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
        """The occurrences overlapping ``index`` as ``(name, start, end)`` on its bucket grid.

        ``start`` is the first bucket the occurrence overlaps and ``end`` the end of its last
        bucket (``step_seconds`` after that bucket's start): what a plot shades and what
        :func:`zenrec.traffic.detect.surge_lead_times` scores alarms against.
        """
        import pandas as pd

        step = pd.Timedelta(seconds=step_seconds)
        return [(name, index[a], index[b - 1] + step) for name, a, b in self.spans(index)]

    def mask(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Boolean mask of the buckets of ``index`` that overlap an occurrence."""
        m = np.zeros(len(index), dtype=bool)
        for _, a, b in self.spans(index):
            m[a:b] = True
        return m

    def uplifts(
        self, values: np.ndarray, index: pd.DatetimeIndex, seasons: dict[str, int]
    ) -> dict[str, float]:
        """Uplift per event name learned from the occurrences inside ``values`` (the past).

        Only occurrences that ended before the last bucket are used; the baseline of each one
        is built from buckets before its start, with earlier event buckets masked.
        """
        from zenrec.traffic.candidates import seasonal_profile

        y = np.asarray(values, dtype=float).copy()
        masked = y.copy()
        masked[self.mask(index)] = np.nan
        ratios: dict[str, list[float]] = {}
        for name, a, b in self.spans(index):
            if b > len(y) - 1 or a < 1:
                continue
            base = seasonal_profile(masked[:a], b - a, seasons)
            obs = y[a:b]
            ok = np.isfinite(obs) & np.isfinite(base)
            if ok.sum() == 0 or not np.nanmean(base[ok]) > 0:
                continue
            r = float(np.mean(obs[ok]) / np.mean(base[ok]))
            ratios.setdefault(name, []).append(min(max(r, 0.05), 50.0))
        return {k: float(np.median(v)) for k, v in ratios.items()}

    def apply(
        self,
        pred: dict[str, np.ndarray],
        future: pd.DatetimeIndex,
        uplifts: dict[str, float],
    ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        """Multiply the forecast over each future occurrence by its event's uplift (where
        occurrences overlap, the strongest uplift of a bucket applies, they do not compound).

        Returns:
            The adjusted forecast and one record per applied occurrence.
        """
        out = {k: v.copy() for k, v in pred.items()}
        applied: list[dict[str, Any]] = []
        factor = np.ones(len(pred["mean"]))  # ``future`` may be shorter (end of a replay)
        for name, a, b in self.spans(future):
            r = uplifts.get(name)
            if r is None:
                continue
            # overlapping occurrences (a final that is also a playoff) do not compound: each
            # bucket takes the strongest effect
            cur = factor[a:b]
            factor[a:b] = np.where(np.abs(np.log(r)) > np.abs(np.log(cur)), r, cur)
            applied.append(
                {"event": name, "start": str(future[a]), "buckets": b - a, "uplift": round(r, 3)}
            )
        for k in out:
            out[k] = out[k] * factor
        return out, applied


def _align(ts: pd.Timestamp, index: pd.DatetimeIndex) -> pd.Timestamp:
    """Give ``ts`` the time zone handling of ``index`` (naive wall clock is localised)."""
    if index.tz is None:
        return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
    if ts.tzinfo is None:
        return ts.tz_localize(index.tz, ambiguous=False, nonexistent="shift_forward")
    return ts.tz_convert(index.tz)


def load_events(path: str | os.PathLike[str]) -> EventCalendar:
    """Read an events CSV (``name,start,end``; start inclusive, end exclusive).

    Raises:
        DataError: Missing file or columns, unparsable times, an end not after its start.
    """
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise DataError(f"{path}: file not found; pass --events with a CSV of name,start,end")
    try:
        df = pd.read_csv(p, dtype=str)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{p.name}: cannot read as CSV ({str(exc).splitlines()[0]})") from None
    cols = {c.strip().lower(): c for c in df.columns}
    missing = [c for c in ("name", "start", "end") if c not in cols]
    if missing:
        raise DataError(
            f"{p.name}: missing column(s) {missing}; expected a header name,start,end "
            "(start inclusive, end exclusive)"
        )
    occ: list[Occurrence] = []
    for i, row in enumerate(df.itertuples(index=False), start=2):
        rec = dict(zip(df.columns, row))
        name = str(rec[cols["name"]]).strip()
        try:
            s = pd.Timestamp(str(rec[cols["start"]]).strip())
            e = pd.Timestamp(str(rec[cols["end"]]).strip())
        except (ValueError, TypeError):
            raise DataError(
                f"{p.name}: line {i}: cannot parse start/end {rec[cols['start']]!r}, "
                f"{rec[cols['end']]!r}; use ISO-8601 like 2024-11-29 or 2024-11-29T18:00"
            ) from None
        if s is pd.NaT or e is pd.NaT or not e > s:
            raise DataError(f"{p.name}: line {i}: end {e} must be after start {s}")
        if not name or name == "nan":
            raise DataError(f"{p.name}: line {i}: empty event name")
        occ.append(Occurrence(name, s, e))
    if not occ:
        raise DataError(f"{p.name}: no events")
    occ.sort(key=lambda o: (o.start.value, o.name))
    return EventCalendar(occurrences=occ, source=p.name)
