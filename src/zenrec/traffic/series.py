"""The regular traffic series, the report of how it was built, and duration and gap helpers.

Reading logs and tables into a series lives in :mod:`zenrec.traffic.readers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from zenrec._errors import ConfigError, DataError
from zenrec._validation import to_config_error

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SeriesReport",
    "TrafficSeries",
    "fill_gaps",
    "fmt_seconds",
    "parse_duration",
    "require_history",
    "season_lengths",
    "series_from_values",
    "validated",
]


def parse_duration(text: str | float | int, name: str = "duration") -> float:
    """Parse a duration such as ``5min``, ``1h``, ``48h``, ``14d`` into seconds.

    Args:
        text: The duration text (pandas-style) or a number of seconds.
        name: Parameter name used in the error message.

    Returns:
        The duration in seconds (> 0).

    Raises:
        ConfigError: If the text is not a positive duration.
    """
    import pandas as pd

    if isinstance(text, int | float):
        seconds = float(text)
    else:
        t = str(text).strip().lower()
        if t.endswith("m") and t[:-1].replace(".", "", 1).isdigit():
            t = t + "in"  # "5m" means minutes, not months
        try:
            seconds = pd.to_timedelta(t).total_seconds()
        except (ValueError, TypeError):
            raise ConfigError(
                f"{name}: cannot parse {text!r} as a duration; use e.g. 5min, 1h, 48h, 14d"
            ) from None
    if not seconds > 0:
        raise ConfigError(f"{name}: must be positive, got {text!r}")
    return seconds


def _fmt_seconds(seconds: float) -> str:
    s = int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


@dataclass
class SeriesReport:
    """What was done to turn the input into a regular series (printed and saved with results)."""

    source: str
    kind: Literal["events", "counts"]
    time_column: str
    value_column: str | None
    freq: str
    native_step: str | None
    input_rows: int
    points: int = 0
    start: str = ""
    end: str = ""
    missing: int = 0
    missing_runs: list[tuple[str, str]] = field(default_factory=list)
    duplicates: int = 0
    unsorted: bool = False
    timezone: str = "naive"
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary (at most 20 missing runs listed)."""
        d = dict(self.__dict__)
        d["missing_runs"] = [list(r) for r in self.missing_runs[:20]]
        d["missing_runs_total"] = len(self.missing_runs)
        return d


@dataclass
class TrafficSeries:
    """A regular series: ``values[i]`` is the traffic of bucket ``index[i]`` (NaN = gap).

    Attributes:
        index: Bucket start times (pandas ``DatetimeIndex``, regular step).
        values: Float array, NaN where the input had no observation.
        step_seconds: Bucket width in seconds.
        report: How the series was built.
    """

    index: pd.DatetimeIndex
    values: np.ndarray
    step_seconds: float
    report: SeriesReport

    @property
    def freq(self) -> str:
        """Bucket width as text, e.g. ``5min``."""
        return _fmt_seconds(self.step_seconds)

    @property
    def n(self) -> int:
        """Number of buckets."""
        return len(self.values)

    @property
    def duration_seconds(self) -> float:
        """Covered time span in seconds."""
        return self.n * self.step_seconds

    def tail(self, seconds: float) -> TrafficSeries:
        """Return the last ``seconds`` of the series (same report object)."""
        k = max(1, int(round(seconds / self.step_seconds)))
        return TrafficSeries(self.index[-k:], self.values[-k:], self.step_seconds, self.report)

    def slice(self, start: int, stop: int) -> TrafficSeries:
        """Return buckets ``start:stop`` (same report object)."""
        return TrafficSeries(
            self.index[start:stop], self.values[start:stop], self.step_seconds, self.report
        )


def season_lengths(step_seconds: float) -> dict[str, int]:
    """Return the daily and weekly season lengths (in buckets) that make sense for a step.

    A season is only listed when it spans at least 2 buckets and is a whole number of them.
    """
    out: dict[str, int] = {}
    for name, span in (("daily", 86400.0), ("weekly", 7 * 86400.0)):
        m = span / step_seconds
        if m >= 2 and abs(m - round(m)) < 1e-9:
            out[name] = round(m)
    return out


def fill_gaps(values: np.ndarray, season: int | None = None) -> tuple[np.ndarray, int]:
    """Fill NaN gaps for model fitting: same phase one season earlier/later, else linear.

    Args:
        values: Series with NaN gaps.
        season: Season length in buckets (``None`` for linear interpolation only).

    Returns:
        The filled copy and the number of filled buckets.
    """
    y = np.asarray(values, dtype=float).copy()
    miss = np.isnan(y)
    n_missing = int(miss.sum())
    if n_missing == 0:
        return y, 0
    if n_missing == len(y):
        raise DataError("series has no observed values; nothing to fit")
    if season and season < len(y):
        idx = np.flatnonzero(miss)
        for i in idx:
            for j in (i - season, i + season, i - 2 * season, i + 2 * season):
                if 0 <= j < len(y) and not np.isnan(y[j]):
                    y[i] = y[j]
                    break
    still = np.isnan(y)
    if still.any():
        ok = np.flatnonzero(~still)
        y[still] = np.interp(np.flatnonzero(still), ok, y[ok])
    return y, n_missing


def series_from_values(
    values: np.ndarray | list[float],
    start: str = "2024-01-01",
    freq: str = "5min",
    source: str = "<array>",
) -> TrafficSeries:
    """Wrap an in-memory array (NaN = gap) as a :class:`TrafficSeries` (for tests and notebooks)."""
    import pandas as pd

    step = parse_duration(freq, "freq")
    y = np.asarray(values, dtype=float)
    index = pd.date_range(pd.Timestamp(start), periods=len(y), freq=pd.Timedelta(seconds=step))
    rep = SeriesReport(
        source=source,
        kind="counts",
        time_column="ts",
        value_column="value",
        freq=_fmt_seconds(step),
        native_step=_fmt_seconds(step),
        input_rows=len(y),
        points=len(y),
        start=str(index[0]) if len(y) else "",
        end=str(index[-1]) if len(y) else "",
        missing=int(np.isnan(y).sum()),
    )
    return TrafficSeries(index=index, values=y, step_seconds=step, report=rep)


def require_history(series: TrafficSeries, min_seconds: float, what: str = "forecasting") -> None:
    """Raise :class:`DataError` when the series is shorter than ``min_seconds``."""
    if series.duration_seconds < min_seconds:
        raise DataError(
            f"{Path(series.report.source).name}: only {_fmt_seconds(series.duration_seconds)} of "
            f"history; {what} needs at least {_fmt_seconds(min_seconds)}; pass a longer file"
        )
    if np.isnan(series.values).all():
        raise DataError(f"{Path(series.report.source).name}: no observed values")


def fmt_seconds(seconds: float) -> str:
    """Format seconds as a compact duration (``5min``, ``48h``)."""
    return _fmt_seconds(seconds)


_Config = TypeVar("_Config")


def validated(cls: type[_Config], **kwargs: Any) -> _Config:
    """Build a pydantic config, turning validation errors into one-line :class:`ConfigError`."""
    from pydantic import ValidationError

    try:
        return cls(**kwargs)
    except ValidationError as exc:
        raise to_config_error(
            exc,
            messages={"*": "{key}: {msg} (got {got})", "root": f"{cls.__name__}: {{msg}}"},
        ) from None
