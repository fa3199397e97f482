"""Readers: request logs (files or directories) and (time, count) tables into a regular series.

Accepted inputs (see ``docs/traffic.md``):

* **Request logs**, JSON lines (``.jsonl``, ``.ndjson``, ``.json``): one JSON object per line with a
  ``ts`` field, either an ISO-8601 string (with or without offset) or unix seconds (int or float;
  values above 1e11 are read as unix milliseconds). An optional integer ``count`` field (default 1)
  lets one line stand for several requests. Other fields are ignored. Each line is one event, so
  a bucket without lines is a true zero.
* **Tables** (``.csv``, ``.tsv``, ``.parquet``): either one timestamp column (one row per event)
  or a timestamp column plus a numeric value column (one row per (time, count) observation). The
  timestamp may also be split over ``year``, ``month``, ``day`` [, ``hour``, ``minute``, ``second``]
  columns. In (time, count) tables a bucket without rows is a **gap** (NaN), never a silent zero.

Time zones: offsets in the data are honoured and converted to ``tz`` (default UTC). Naive
timestamps stay naive unless ``tz`` is given, in which case they are read as wall-clock time of
that zone (DST gaps/overlaps resolved) and converted to UTC so the grid stays regular.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from zenrec._errors import ConfigError, DataError
from zenrec.traffic.series import SeriesReport, TrafficSeries, fmt_seconds, parse_duration

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_series"]

TIME_NAMES = ("ts", "timestamp", "time", "datetime", "date", "ds", "time_stamp", "t")
VALUE_NAMES = (
    "value",
    "count",
    "requests",
    "y",
    "n",
    "qps",
    "rps",
    "hits",
    "requests_count",
    "request_count",
)
PART_NAMES = ("year", "month", "day", "hour", "minute", "second")
IGNORED_NAMES = ("week_day", "weekday", "dow", "day_of_week", "unique_id", "id")


def _read_jsonl(path: Path, allow_partial_last: bool = False) -> pd.DataFrame:
    """Read JSON lines with ``ts`` (and optional ``count``).

    With ``allow_partial_last`` (live request logs) an unterminated, unparsable last line --
    a write in progress -- is skipped instead of rejected.
    """
    import pandas as pd

    ts: list[Any] = []
    counts: list[float] = []
    with path.open("r", encoding="utf-8") as fh:
        lines = fh.readlines()
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            if allow_partial_last and lineno == len(lines) and not raw.endswith("\n"):
                break
            raise DataError(
                f"{path.name}: line {lineno}: not valid JSON ({exc.msg}); "
                'each line must be one object like {"ts": "2024-05-01T12:00:00Z"}'
            ) from None
        if not isinstance(rec, dict) or "ts" not in rec:
            raise DataError(
                f"{path.name}: line {lineno}: no 'ts' field; each line must be an object "
                "with 'ts' (ISO-8601 or unix seconds) and optional 'count'"
            )
        c = rec.get("count", 1)
        if not isinstance(c, int | float) or isinstance(c, bool) or c < 0:
            raise DataError(
                f"{path.name}: line {lineno}: 'count' must be a non-negative number, got {c!r}"
            )
        ts.append(rec["ts"])
        counts.append(float(c))
    if not ts:
        raise DataError(f"{path.name}: no records; expected JSON lines with a 'ts' field")
    return pd.DataFrame({"ts": pd.Series(ts, dtype=object), "count": counts})


def _read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if suffix.endswith(".parquet") or suffix.endswith(".pq"):
            return pd.read_parquet(path)
        sep = "\t" if ".tsv" in suffix else ","
        return pd.read_csv(path, sep=sep)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path.name}: cannot read as a table ({first})") from None


def _to_datetime(col: pd.Series, fname: str, cname: str, header_rows: int) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(col):
        return col
    if pd.api.types.is_numeric_dtype(col):
        is_num = np.ones(len(col), dtype=bool)
    else:
        is_num = np.array(
            [isinstance(v, int | float) and not isinstance(v, bool) for v in col], dtype=bool
        )
    out = pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns, UTC]")
    if is_num.any():
        num = pd.to_numeric(col[is_num], errors="coerce").astype(float)
        unit = "ms" if num.abs().max() > 1e11 else "s"
        out[is_num] = pd.to_datetime(num, unit=unit, utc=True)
        if is_num.all():
            return out
    s = col[~is_num].astype(str)
    aware = bool(s.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).any()) or is_num.any()
    try:
        parsed = pd.to_datetime(s, format="ISO8601", errors="coerce", utc=aware)
    except (ValueError, TypeError):
        parsed = pd.to_datetime(s, format="mixed", errors="coerce", utc=aware)
    if not aware:
        out = parsed
    else:
        out[~is_num] = parsed
    bad = out.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{fname}: line {i + header_rows}: column '{cname}': cannot parse {col.iloc[i]!r} "
            "as a timestamp; use ISO-8601 (2024-05-01T12:00:00Z) or unix seconds"
        )
    return out


def _detect_columns(
    df: pd.DataFrame, fname: str, time_col: str | None, value_col: str | None
) -> tuple[str | list[str], str | None]:
    import pandas as pd

    cols = [str(c) for c in df.columns]
    lower = {c.lower(): c for c in cols}
    listing = "[" + ",".join(repr(c) for c in cols) + "]"
    tcol: str | list[str]
    if time_col is not None:
        if time_col not in cols:
            raise DataError(
                f"{fname}: time column {time_col!r} not found; columns are {listing}; "
                "pass --time-col with one of them"
            )
        tcol = time_col
    elif all(p in lower for p in ("year", "month", "day")):
        tcol = [lower[p] for p in PART_NAMES if p in lower]
    else:
        named = [lower[n] for n in TIME_NAMES if n in lower]
        if len(named) == 1:
            tcol = named[0]
        elif len(named) > 1:
            raise DataError(
                f"{fname}: several possible time columns {named}; pass --time-col to pick one"
            )
        else:
            parsable = []
            for c in cols:
                if df[c].dtype == object or pd.api.types.is_datetime64_any_dtype(df[c]):
                    ok = pd.to_datetime(df[c].head(20), errors="coerce", format="mixed")
                    if ok.notna().all():
                        parsable.append(c)
            if len(parsable) != 1:
                raise DataError(
                    f"{fname}: cannot tell which column holds the time; columns are {listing}; "
                    "pass --time-col"
                )
            tcol = parsable[0]
    used = set(tcol if isinstance(tcol, list) else [tcol])
    if value_col is not None:
        if value_col not in cols:
            raise DataError(
                f"{fname}: column {value_col!r} not found; columns are {listing}; pass --value-col"
            )
        if not pd.api.types.is_numeric_dtype(df[value_col]):
            raise DataError(f"{fname}: value column {value_col!r} is not numeric; pass --value-col")
        return tcol, value_col
    rest = [c for c in cols if c not in used and c.lower() not in IGNORED_NAMES]
    named = [c for c in rest if c.lower() in VALUE_NAMES]
    if len(named) == 1:
        return tcol, named[0]
    numeric = [c for c in rest if pd.api.types.is_numeric_dtype(df[c])]
    if len(named) > 1 or len(numeric) > 1:
        cand = named if len(named) > 1 else numeric
        raise DataError(
            f"{fname}: several possible value columns {cand}; pass --value-col to pick one"
        )
    if len(numeric) == 1:
        return tcol, numeric[0]
    return tcol, None  # one row per event


def _localize(ts: pd.Series, tz: str | None, report: SeriesReport) -> pd.Series:
    if ts.dt.tz is not None:
        target = tz or "UTC"
        report.timezone = target
        report.notes.append(f"timestamps carry offsets; converted to {target}")
        return ts.dt.tz_convert(target)
    if tz is None:
        report.timezone = "naive"
        return ts
    try:
        loc = ts.dt.tz_localize(tz, ambiguous="infer", nonexistent="shift_forward")
    except Exception:  # ambiguous times that cannot be inferred (e.g. a single repeated hour)
        loc = ts.dt.tz_localize(tz, ambiguous=False, nonexistent="shift_forward")
        report.notes.append("ambiguous DST wall-clock times read as standard time")
    report.timezone = "UTC"
    report.notes.append(f"naive timestamps read as {tz} wall-clock time and converted to UTC")
    return loc.dt.tz_convert("UTC")


def _request_log_files(p: Path) -> list[Path]:
    """The ``requests-*.jsonl`` files of a request-log directory (rotated ones included)."""
    files = sorted(p.glob("requests-*.jsonl"))
    if not files:
        raise DataError(
            f"{p}: no requests-*.jsonl files; pass --input with the directory given to "
            "`zenrec serve --request-log DIR`, or one log/table file"
        )
    return files


def _read_input(
    p: Path, time_col: str | None, value_col: str | None
) -> tuple[pd.DataFrame, str | list[str], str | None, Literal["events", "counts"], int, bool]:
    """Read a file or a request-log directory: ``(frame, time col, value col, kind, header
    rows, is_log)``."""
    import pandas as pd

    fname = p.name
    if p.is_dir():
        frames = [_read_jsonl(f, allow_partial_last=True) for f in _request_log_files(p)]
        return pd.concat(frames, ignore_index=True), "ts", "count", "events", 1, True
    suffixes = "".join(p.suffixes).lower()
    if any(s in suffixes for s in (".jsonl", ".ndjson", ".json")):
        return _read_jsonl(p), "ts", "count", "events", 1, True
    df = _read_table(p)
    if df.empty:
        raise DataError(f"{fname}: no data rows")
    tcol, vcol = _detect_columns(df, fname, time_col, value_col)
    return df, tcol, vcol, ("counts" if vcol is not None else "events"), 2, False


def _timestamps(
    df: pd.DataFrame, tcol: str | list[str], fname: str, header_rows: int
) -> tuple[pd.Series, str]:
    """Parse the time column (or assemble year/month/day... columns): ``(ts, column name)``."""
    import pandas as pd

    if isinstance(tcol, list):
        parts = {c.lower(): df[c] for c in tcol}
        try:
            ts = pd.to_datetime(
                pd.DataFrame({k: pd.to_numeric(v, errors="raise") for k, v in parts.items()})
            )
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"{fname}: cannot build timestamps from columns {tcol} ({str(exc)[:80]}); "
                "pass --time-col"
            ) from None
        tname = "+".join(tcol)
    else:
        ts = _to_datetime(df[tcol], fname, tcol, header_rows)
        tname = tcol
    ts = pd.Series(ts.to_numpy(), name="ts") if ts.dt.tz is None else ts.reset_index(drop=True)
    return ts, tname


def _sorted_ns(
    ts: pd.Series, vals: np.ndarray, tz: str | None, report: SeriesReport, fname: str
) -> tuple[np.ndarray, np.ndarray]:
    """Localise, drop rows without a value, and sort: ``(int64 ns since epoch, values)``."""
    nan_vals = np.isnan(vals)
    if nan_vals.any():
        report.notes.append(f"{int(nan_vals.sum())} rows with an empty/non-numeric value dropped")
    ts = _localize(ts, tz, report)
    ts_ns = (
        ts.to_numpy().astype("datetime64[ns]")
        if ts.dt.tz is None
        else ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    )
    keep = ~nan_vals
    t_int = ts_ns.astype("int64")[keep]
    vals = vals[keep]
    if len(t_int) == 0:
        raise DataError(f"{fname}: no usable rows")
    if np.any(np.diff(t_int) < 0):
        report.unsorted = True
        order = np.argsort(t_int, kind="stable")
        t_int, vals = t_int[order], vals[order]
        report.notes.append("input was not sorted by time; rows were sorted")
    return t_int, vals


def _native_step(
    t_int: np.ndarray,
    report: SeriesReport,
    fname: str,
    agg: str | None,
    duplicates: str,
) -> float | None:
    """The data's own step (median positive spacing) of a (time, count) table; duplicates
    are reported (or rejected)."""
    import pandas as pd

    if report.kind != "counts":
        return None
    diffs = np.diff(t_int)
    dup = int((diffs == 0).sum())
    if dup:
        first = pd.Timestamp(t_int[np.flatnonzero(diffs == 0)[0]])
        if duplicates == "error":
            raise DataError(
                f"{fname}: {dup} duplicated timestamps (first {first}); remove them or allow "
                "aggregation"
            )
        report.duplicates = dup
        report.notes.append(
            f"{dup} duplicated timestamps (first {first}) combined with {agg or 'sum'}"
        )
    pos = diffs[diffs > 0]
    if not len(pos):
        return None
    native = float(np.median(pos)) / 1e9
    report.native_step = fmt_seconds(native)
    return native


def _bucket_step(freq: str | None, native: float | None, kind: str, fname: str) -> float:
    """Bucket width: ``freq``, else the native step (whole minutes above 1 min), else 5 min."""
    if freq is None:
        step = native if (native and kind == "counts") else 300.0
        if native and abs(native / 60 - round(native / 60)) > 1e-9 and native > 60:
            step = round(native / 60) * 60.0
    else:
        step = parse_duration(freq, "freq")
    if native and step < native * 0.999:
        raise DataError(
            f"{fname}: --freq {fmt_seconds(step)} is finer than the data's step "
            f"{fmt_seconds(native)}; use --freq {fmt_seconds(native)} or coarser"
        )
    return step


def _aggregate(
    t_int: np.ndarray,
    vals: np.ndarray,
    step: float,
    native: float | None,
    how: str,
    report: SeriesReport,
    fname: str,
) -> tuple[int, np.ndarray]:
    """Sum/mean/max rows into epoch-aligned buckets: ``(first bucket number, values)``.

    Event logs give true zeros in empty buckets; tables give NaN gaps, and summed buckets
    that received fewer source rows than expected are scaled up (reported).
    """
    step_ns = int(round(step * 1e9))
    buckets = t_int // step_ns
    first_b, last_b = int(buckets[0]), int(buckets[-1])
    nb = last_b - first_b + 1
    if nb > 50_000_000:
        raise DataError(f"{fname}: {nb} buckets at {fmt_seconds(step)}; choose a coarser --freq")
    rel = buckets - first_b
    sums = np.bincount(rel, weights=vals, minlength=nb)
    cnt = np.bincount(rel, minlength=nb)
    if report.kind == "events":
        return first_b, sums  # no event in a bucket is a real zero
    if how == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return first_b, np.where(cnt > 0, sums / np.maximum(cnt, 1), np.nan)
    if how == "max":
        out = np.full(nb, -np.inf)
        np.maximum.at(out, rel, vals)
        out[cnt == 0] = np.nan
        return first_b, out
    out = np.where(cnt > 0, sums, np.nan)
    if native and step > native * 1.5 and abs(step / native - round(step / native)) < 1e-6:
        expected = round(step / native)
        partial = (cnt > 0) & (cnt < expected)
        if partial.any():
            out[partial] = sums[partial] * expected / cnt[partial]
            report.notes.append(
                f"{int(partial.sum())} buckets had fewer than {expected} input rows; their "
                "sum was scaled up to the full bucket"
            )
    return first_b, out


def _grid_index(first_b: int, nb: int, step: float, timezone: str) -> pd.DatetimeIndex:
    """Bucket start times of the regular grid, in the report's time zone."""
    import pandas as pd

    step_ns = int(round(step * 1e9))
    index = pd.date_range(
        pd.Timestamp(first_b * step_ns), periods=nb, freq=pd.Timedelta(seconds=step)
    )
    if timezone != "naive":
        index = index.tz_localize("UTC")
        if timezone != "UTC":
            index = index.tz_convert(timezone)
    return index


def _report_grid(
    report: SeriesReport, index: pd.DatetimeIndex, out: np.ndarray, step: float
) -> None:
    """Record the grid and its gaps (runs of NaN buckets) in the report."""
    report.freq = fmt_seconds(step)
    report.points = len(out)
    report.start = str(index[0])
    report.end = str(index[-1])
    miss = np.isnan(out)
    report.missing = int(miss.sum())
    if report.missing:
        edges = np.diff(np.concatenate([[0], miss.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
        report.missing_runs = [(str(index[a]), str(index[b])) for a, b in zip(starts, ends)]
        report.notes.append(
            f"{report.missing} missing buckets in {len(starts)} gaps kept as NaN "
            "(filled seasonally only for model fitting)"
        )


def load_series(
    path: str | os.PathLike[str],
    freq: str | None = None,
    *,
    time_col: str | None = None,
    value_col: str | None = None,
    tz: str | None = None,
    agg: Literal["sum", "mean", "max"] | None = None,
    duplicates: Literal["aggregate", "error"] = "aggregate",
) -> TrafficSeries:
    """Read a request log (file or directory) or a (time, count) table into a regular series.

    Steps: read the rows, parse the timestamps, localise and sort them, find the data's own
    step, choose the bucket width, aggregate into epoch-aligned buckets, and report the grid
    and its gaps.

    Args:
        path: JSON-lines request log, a directory of ``requests-*.jsonl`` logs (as written by
            ``zenrec serve --request-log DIR``), or a CSV/TSV/Parquet file.
        freq: Bucket width (``1min``, ``5min``, ``1h``...). Default: the data's own step for
            (time, count) tables, ``5min`` for event logs.
        time_col: Name of the time column (auto-detected when unambiguous).
        value_col: Name of the count column (auto-detected; none means one row per event).
        tz: Time zone of naive timestamps / target zone of offset timestamps.
        agg: How rows falling in one bucket combine: ``sum`` (counts, default), ``mean`` (rates,
            gauges) or ``max``.
        duplicates: Repeated timestamps in a (time, count) table are combined with ``agg`` and
            reported (``aggregate``) or rejected (``error``).

    Returns:
        The regular series; gaps are NaN and listed in ``report``.

    Raises:
        DataError: Unreadable file, missing/ambiguous columns, bad timestamps, freq finer than
            the data.
    """
    import pandas as pd

    p = Path(path)
    fname = p.name
    if not p.exists():
        raise DataError(f"{path}: file not found; pass --input with an existing file")
    if agg not in (None, "sum", "mean", "max"):
        raise ConfigError(f"agg: must be sum, mean or max, got {agg!r}")
    df, tcol, vcol, kind, header_rows, is_log = _read_input(p, time_col, value_col)
    ts, tname = _timestamps(df, tcol, fname, header_rows)
    vals = (
        np.ones(len(df))
        if vcol is None
        else pd.to_numeric(df[vcol], errors="coerce").to_numpy(dtype=float)
    )
    report = SeriesReport(
        source=str(p),
        kind=kind,
        time_column=tname,
        value_column=None if (vcol is None or (kind == "events" and is_log)) else vcol,
        freq="",
        native_step=None,
        input_rows=len(df),
    )
    if p.is_dir():
        report.notes.append(f"read {len(_request_log_files(p))} request-log files")
    t_int, vals = _sorted_ns(ts, vals, tz, report, fname)
    native = _native_step(t_int, report, fname, agg, duplicates)
    step = _bucket_step(freq, native, kind, fname)
    first_b, out = _aggregate(t_int, vals, step, native, agg or "sum", report, fname)
    index = _grid_index(first_b, len(out), step, report.timezone)
    _report_grid(report, index, out, step)
    return TrafficSeries(index=index, values=out, step_seconds=step, report=report)
