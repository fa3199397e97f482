"""Readers for users' own interaction files: CSV/TSV (any separator) and Parquet.

Built on polars. Every problem is reported as :class:`~zenrec.DataError` naming the file,
the line and the column, and nothing half-loaded is returned.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from zenrec._errors import DataError, UnusedColumnWarning
from zenrec.data.dataset import Dataset

__all__ = [
    "ColumnMap",
    "FrameSource",
    "file_sha256",
    "is_frame",
    "parse_ids",
    "parse_numbers",
    "parse_times",
    "read_interactions",
    "read_table",
    "to_polars",
]

USER_NAMES = ("user_id", "userid", "user", "uid", "customer_id", "visitor_id")
ITEM_NAMES = ("item_id", "itemid", "item", "iid", "movie_id", "movieid", "product_id", "track_id")
RATING_NAMES = ("rating", "ratings", "score", "value", "label", "click", "weight")
TIME_NAMES = ("timestamp", "time", "ts", "datetime", "date", "event_time")


@dataclass(frozen=True)
class ColumnMap:
    """Which file columns hold the user, item, rating, time and context fields.

    Names, or 0-based positions as strings (``"0"``) for files read with ``header=False``.
    ``None`` means: detect (user, item) or absent (rating, time) unless a common name is found.
    """

    user: str | None = None
    item: str | None = None
    rating: str | None = None
    time: str | None = None
    context: tuple[str, ...] = ()


def file_sha256(*paths: Path) -> str:
    """sha256 over the bytes of ``paths`` in order."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _decode(path: Path, encoding: str) -> bytes:
    raw = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable gzip file ({exc})") from exc
    if encoding.lower().replace("-", "") in ("utf8", "utf8lossy"):
        return raw
    try:
        return raw.decode(encoding).encode("utf-8")
    except (UnicodeDecodeError, LookupError) as exc:
        raise DataError(
            f"{path}: cannot decode as {encoding}: {exc}; pass the right encoding="
        ) from exc


def _first_bad_line(path: Path, data: bytes, sep: str, header: bool) -> str:
    """Find the first row whose field count differs from the first row's (for messages)."""
    text = data.decode("utf-8", errors="replace").splitlines()
    expected = None
    rows: Iterable[list[str]]
    if len(sep) == 1:
        rows = csv.reader(text, delimiter=sep)
    else:
        rows = (line.split(sep) for line in text)
    for lineno, row in enumerate(rows, start=1):
        if not row or row == [""]:
            continue
        if expected is None:
            expected = len(row)
            continue
        if len(row) != expected:
            return (
                f"{path} line {lineno}: {len(row)} fields, expected {expected} "
                f"(separator {sep!r}); fix the row or pass the right sep="
            )
    return f"{path}: could not be parsed with separator {sep!r}; pass the right sep="


def read_table(
    path: str | Path,
    *,
    sep: str | None = None,
    header: bool = True,
    encoding: str = "utf-8",
    columns: Sequence[str] | None = None,
) -> tuple[pl.DataFrame, int]:
    """Read a CSV/TSV/Parquet file with every column as a string (Parquet keeps its types).

    Args:
        path: The file.
        sep: Field separator; may be several characters (``::``). Default: ``\\t`` for
            ``.tsv``/``.data``, else ``,``. Gzipped files (``.csv.gz``) are read as well.
        header: Whether the first line names the columns; without one, columns are named by
            position (``"0"``, ``"1"``, ...).
        encoding: Text encoding (e.g. ``latin-1``).
        columns: Names to give the columns of a header-less file.

    Returns:
        The frame and the file line number of its first data row (for error messages).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; pass a CSV, TSV or Parquet file")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            df = pl.read_parquet(path)
        except Exception as exc:
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
        return df, 1
    if sep is None:
        base_suffix = Path(path.stem).suffix if path.suffix.lower() == ".gz" else path.suffix
        sep = "\t" if base_suffix.lower() in (".tsv", ".data", ".tab") else ","
    sep = sep.encode().decode("unicode_escape") if "\\" in sep else sep
    data = _decode(path, encoding)
    if not data.strip():
        raise DataError(f"{path}: the file is empty; expected a header and interaction rows")
    first_row = 2 if header else 1
    try:
        if len(sep) == 1:
            df = pl.read_csv(
                io.BytesIO(data),
                separator=sep,
                has_header=header,
                infer_schema=False,
                new_columns=list(columns) if columns else None,
                truncate_ragged_lines=False,
            )
        else:
            lines = pl.read_csv(
                io.BytesIO(data),
                separator="\x1f",
                has_header=False,
                quote_char=None,
                infer_schema=False,
                new_columns=["line"],
            ).filter(pl.col("line").str.strip_chars() != "")
            parts = lines["line"].str.split(sep)
            lengths = parts.list.len().to_numpy()
            width = int(lengths[0])
            bad = np.flatnonzero(lengths != width)
            if bad.size:
                raise DataError(
                    f"{path} line {int(bad[0]) + 1}: {int(lengths[bad[0]])} fields, expected "
                    f"{width} (separator {sep!r}); fix the row or pass the right sep="
                )
            df = pl.DataFrame({str(j): parts.list.get(j) for j in range(width)})
            if header:
                names = [str(v) for v in df.row(0)]
                df = df.slice(1).rename(dict(zip(df.columns, names)))
            elif columns:
                df = df.rename(dict(zip(df.columns, columns)))
    except DataError:
        raise
    except Exception as exc:  # polars raises several error types for malformed CSV
        raise DataError(_first_bad_line(path, data, sep, header)) from exc
    if not header and not columns and len(sep) == 1:
        df = df.rename({c: str(j) for j, c in enumerate(df.columns)})
    if df.height == 0:
        raise DataError(f"{path}: no data rows; expected interaction rows after the header")
    return df, first_row


class FrameSource:
    """Stands in for a file path in messages about an in-memory table (rows, not lines)."""

    def __init__(self, label: str = "DataFrame") -> None:
        self.label = label

    def __str__(self) -> str:
        return self.label

    def __repr__(self) -> str:
        return f"FrameSource({self.label!r})"


Where = Path | FrameSource


def _at(path: Where, first_row: int, row: int) -> str:
    """``file line N`` for files, ``DataFrame row N`` (0-based position) for in-memory tables."""
    if isinstance(path, FrameSource):
        return f"{path} row {row} (0-based)"
    return f"{path} line {first_row + row}"


def is_frame(obj: Any) -> bool:
    """Whether ``obj`` is a pandas or polars DataFrame, a polars LazyFrame or an Arrow table."""
    mod = type(obj).__module__.split(".")[0]
    return (mod in ("pandas", "polars") and type(obj).__name__ in ("DataFrame", "LazyFrame")) or (
        mod == "pyarrow" and type(obj).__name__ in ("Table", "RecordBatch")
    )


def _from_pandas(frame: Any) -> pl.DataFrame:
    """pandas -> polars; without pyarrow (polars needs it for some dtypes), column by column."""
    try:
        return pl.from_pandas(frame)
    except ImportError:
        cols: dict[str, Any] = {}
        for c in frame.columns:
            s = frame[c]
            if getattr(s.dtype, "tz", None) is not None:  # tz-aware: as naive UTC
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            arr = (
                s.to_numpy()
                if isinstance(s.dtype, np.dtype)
                else s.to_numpy(dtype=object, na_value=None)
            )
            # object columns (strings, nullable ints) as lists, so polars infers their type
            cols[str(c)] = arr.tolist() if arr.dtype == object else arr
        return pl.DataFrame(cols, nan_to_null=True, strict=False)


def to_polars(frame: Any, *, what: str = "frame") -> pl.DataFrame:
    """A polars DataFrame from a pandas/polars DataFrame, a polars LazyFrame or an Arrow table.

    A named pandas index (e.g. after ``groupby``) becomes a column, so ids kept in the index
    can be mapped like any other column.
    """
    mod = type(frame).__module__.split(".")[0]
    kind = type(frame).__name__
    out: pl.DataFrame
    try:
        if isinstance(frame, pl.DataFrame):
            out = frame
        elif isinstance(frame, pl.LazyFrame):
            out = frame.collect()
        elif mod == "pandas" and kind == "DataFrame":
            named_index = any(n is not None for n in frame.index.names)
            out = _from_pandas(frame.reset_index() if named_index else frame)
        elif mod == "pyarrow" and kind in ("Table", "RecordBatch"):
            arrow_out = pl.from_arrow(frame)
            if not isinstance(arrow_out, pl.DataFrame):
                raise DataError(f"{what}: expected a table, got a single column")
            out = arrow_out
        else:
            raise DataError(
                f"{what} must be a file path, a pandas or polars DataFrame or an Arrow table; "
                f"got {type(frame).__module__}.{kind}"
            )
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{what}: could not read the {kind} ({type(exc).__name__}: {exc})") from exc
    out = out.rename({c: str(c) for c in out.columns})
    if out.height == 0:
        raise DataError(
            f"{what}: the DataFrame has no rows; expected one row per "
            f"{'entry' if 'feature' in what else 'interaction'}"
        )
    return out


def _pick(
    df: pl.DataFrame,
    path: Where,
    wanted: str | None,
    names: Sequence[str],
    role: str,
    keyword: str,
    required: bool,
) -> str | None:
    cols = df.columns
    if wanted is not None:
        wanted = str(wanted)
        if wanted in cols:
            return wanted
        lower = {c.lower(): c for c in cols}
        if wanted.lower() in lower:
            return lower[wanted.lower()]
        hint = "" if isinstance(path, FrameSource) else " (or a 0-based position with header=False)"
        raise DataError(
            f"{path}: {role} column '{wanted}' not found; columns are {cols}; pass {keyword}= with "
            f"one of them{hint}"
        )
    lower = {c.lower(): c for c in cols}
    for n in names:
        if n in lower:
            return lower[n]
    if required:
        raise DataError(
            f"{path}: cannot tell which column holds the {role}; columns are {cols}; "
            f"pass {keyword}="
        )
    return None


def parse_ids(df: pl.DataFrame, col: str, path: Where, first_row: int, role: str) -> np.ndarray:
    """Raw ids of column ``col`` (int64 when every value is an integer, else str).

    Args:
        df: The table as read by :func:`read_table`.
        col: Column name.
        path: File (or frame description) the table came from, named in errors.
        first_row: File line of the table's first row (errors name the line).
        role: What the column holds (``"user id"``), named in errors.

    Raises:
        DataError: An empty value, naming the line.
    """
    s = df[col]
    if s.dtype == pl.String:
        s = s.str.strip_chars()
        nulls = s.is_null() | (s == "")
    else:
        nulls = s.is_null()
    if nulls.all():
        raise DataError(
            f"{path}: {role} column '{col}' is empty on every row; pass the right column"
        )
    if nulls.any():
        row = int(nulls.arg_true()[0])
        raise DataError(
            f"{_at(path, first_row, row)}: column '{col}' ({role}) is empty; "
            "every interaction needs a user and an item"
        )
    if s.dtype.is_integer():
        return s.to_numpy().astype(np.int64)
    if s.dtype == pl.String:
        as_int = s.cast(pl.Int64, strict=False)
        if as_int.null_count() == 0:
            return as_int.to_numpy()
        return s.to_numpy().astype(str)
    if s.dtype.is_float():
        return s.to_numpy()
    return s.cast(pl.String).to_numpy().astype(str)


def parse_numbers(df: pl.DataFrame, col: str, path: Where, first_row: int, role: str) -> np.ndarray:
    """Float64 values of column ``col``; arguments as :func:`parse_ids`.

    Raises:
        DataError: An empty or non-numeric value, naming the line and the value.
    """
    s = df[col]
    if s.dtype.is_numeric():
        if s.null_count():
            row = int(s.is_null().arg_true()[0])
            raise DataError(f"{_at(path, first_row, row)}: column '{col}' ({role}) is empty")
        return s.cast(pl.Float64).to_numpy()
    s = s.cast(pl.String).str.strip_chars()
    num = s.cast(pl.Float64, strict=False)
    bad = num.is_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        raise DataError(
            f"{_at(path, first_row, row)}: column '{col}' ({role}) is {s[row]!r}, expected a number"
        )
    return num.to_numpy()


def parse_times(df: pl.DataFrame, col: str, path: Where, first_row: int) -> np.ndarray:
    """Unix seconds (int64) of column ``col``: numbers, datetimes or ISO 8601 strings.

    Raises:
        DataError: A value that is not a time, naming the line.
    """
    s = df[col]
    if s.dtype.is_numeric():
        return parse_numbers(df, col, path, first_row, "time").astype(np.int64)
    if isinstance(s.dtype, pl.Datetime):
        return (s.dt.epoch("s")).to_numpy().astype(np.int64)
    s = s.cast(pl.String).str.strip_chars()
    num = s.cast(pl.Float64, strict=False)
    if num.null_count() == 0:
        return num.to_numpy().astype(np.int64)
    parsed = _parse_datetimes(s)
    bad = parsed.is_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        raise DataError(
            f"{_at(path, first_row, row)}: column '{col}' (time) is {s[row]!r}; "
            "expected unix seconds or an ISO 8601 date-time"
        )
    return parsed.to_numpy().astype(np.int64)


_DT_FORMATS_TZ = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z")
_DT_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
)


def _parse_datetimes(s: pl.Series) -> pl.Series:
    """Unix seconds of ISO-like date-times, row by row over several formats (naive = UTC)."""
    frame = pl.DataFrame({"s": s})
    exprs = [
        pl.col("s").str.to_datetime(f, strict=False, time_zone="UTC").dt.epoch("s")
        for f in _DT_FORMATS_TZ
    ]
    exprs += [pl.col("s").str.to_datetime(f, strict=False).dt.epoch("s") for f in _DT_FORMATS]
    return frame.select(pl.coalesce(exprs).alias("t"))["t"]


RATING_LIKE = (
    *RATING_NAMES,
    "stars",
    "star",
    "rate",
    "rated",
    "grade",
    "points",
    "qty",
    "quantity",
    "count",
    "plays",
    "play_count",
    "playcount",
    "clicks",
    "purchases",
    "amount",
    "preference",
    "pref",
    "thumbs",
    "like",
    "liked",
)
TIME_LIKE = (
    *TIME_NAMES,
    "ts_utc",
    "created",
    "created_at",
    "updated_at",
    "epoch",
    "unix_time",
    "unixtime",
    "when",
    "day",
    "event_ts",
    "event_date",
    "occurred_at",
    "date_time",
)


def _looks_like(col: str, role: str) -> bool:
    c = col.lower()
    if role == "rating":
        return c in RATING_LIKE or "rating" in c or c.endswith("_score")
    return (
        c in TIME_LIKE
        or "timestamp" in c
        or c.endswith(("_ts", "_time", "_at", "_date"))
        or c.startswith(("ts_", "time_"))
    )


def warn_unused_columns(
    columns: Sequence[str],
    used: set[str],
    *,
    rating_used: bool,
    time_used: bool,
    source: str,
    stacklevel: int,
) -> None:
    """Warn (:class:`~zenrec.UnusedColumnWarning`) about unused rating- or time-like columns."""
    for role, used_role, keyword in (
        ("rating", rating_used, "rating_col"),
        ("time", time_used, "time_col"),
    ):
        if used_role:
            continue
        for col in columns:
            if col not in used and _looks_like(col, role):
                what = "ratings or values" if role == "rating" else "timestamps"
                consequence = (
                    "the dataset is read as implicit feedback (every row counts as 1)"
                    if role == "rating"
                    else "time-based splits will refuse the dataset"
                )
                warnings.warn(
                    f"{source}: column '{col}' looks like {what} but is not used, "
                    f"so {consequence}; "
                    f"pass {keyword}='{col}' to use it, or drop the column to silence this warning",
                    UnusedColumnWarning,
                    stacklevel=stacklevel + 1,
                )


def read_interactions(
    path: str | Path | Any,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
    time_col: str | None = None,
    context_cols: Sequence[str] = (),
    sep: str | None = None,
    header: bool = True,
    encoding: str = "utf-8",
    name: str | None = None,
    min_rating: float | None = None,
    min_user_count: int | None = None,
    min_item_count: int | None = None,
    duplicates: str | None = None,
    start: Any = None,
    end: Any = None,
) -> Dataset:
    """Read an interaction file, or an in-memory table, into a :class:`Dataset`.

    Args:
        path: CSV, TSV or Parquet file; or a pandas/polars DataFrame or an Arrow table, read
            with the same column mapping and the same checks (errors name the 0-based row
            instead of the file line).
        user_col: Column of the user ids (detected from common names such as
            ``user_id``/``userId`` when omitted).
        item_col: Column of the item ids (detected from ``item_id``/``movieId``... when
            omitted).
        rating_col: Column of ratings or values (detected from ``rating``/``score``...).
        time_col: Column of unix seconds or ISO date-times (detected from ``timestamp``...).
        context_cols: Extra per-interaction columns kept as context.
        sep: Separator (multi-character such as ``::`` allowed); files only.
        header: ``False`` for header-less files; columns are then named ``"0"``, ``"1"``...
        encoding: Text encoding; files only.
        name: Dataset name (default: the file name, or ``"DataFrame"``).
        min_rating: Filters, with the meaning of the command line's flags
            (:meth:`Dataset.filter`, docs/data-spec.md); when any filter is given, repeated
            (user, item) rows are also resolved (``duplicates``, default ``last``).
        min_user_count: k-core: users with at least this many interactions.
        min_item_count: k-core: items with at least this many interactions.
        duplicates: Repeated (user, item) rows: ``last``, ``mean``, ``error`` or ``keep``.
        start: Keep interactions at or after this time (unix seconds or ISO 8601).
        end: Keep interactions before this time.

    Warns:
        UnusedColumnWarning: A column that looks like ratings (``stars``, ``qty``...) or
            timestamps (``ts``, ``created_at``...) is not used because no ``rating_col`` /
            ``time_col`` was given or detected. Pass the column, or drop it.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
        >>> _ = p.write_text("user,item,rating\\nu1,i1,5\\nu2,i1,3\\n")
        >>> read_interactions(p).n_items
        1
        >>> import polars as pl
        >>> read_interactions(pl.DataFrame({"user": [1, 2], "item": ["a", "b"]})).n_users
        2
    """
    from zenrec.data.filters import DataFilters

    given = {
        k: v
        for k, v in (
            ("min_rating", min_rating),
            ("min_user_count", min_user_count),
            ("min_item_count", min_item_count),
            ("duplicates", duplicates),
            ("start", start),
            ("end", end),
        )
        if v is not None
    }
    filters = DataFilters.of("read_interactions", **given) if given else None
    ds = _read_interactions(
        path,
        user_col=user_col,
        item_col=item_col,
        rating_col=rating_col,
        time_col=time_col,
        context_cols=context_cols,
        sep=sep,
        header=header,
        encoding=encoding,
        name=name,
        stacklevel=2,
    )
    return ds if filters is None else filters.apply(ds)


def _read_interactions(
    path: str | Path | Any,
    *,
    user_col: str | None,
    item_col: str | None,
    rating_col: str | None,
    time_col: str | None,
    context_cols: Sequence[str],
    sep: str | None,
    header: bool,
    encoding: str,
    name: str | None,
    stacklevel: int,
) -> Dataset:
    where: Where
    if is_frame(path):
        if sep is not None or encoding.lower().replace("-", "") != "utf8" or not header:
            raise DataError("sep, encoding and header apply to files, not to an in-memory table")
        where = FrameSource()
        df, first = to_polars(path, what="DataFrame"), 0
        default_name = "DataFrame"
    elif isinstance(path, (str, Path)):
        where = Path(path)
        df, first = read_table(where, sep=sep, header=header, encoding=encoding)
        default_name = where.name
    else:
        raise DataError(
            "read_interactions: the data must be a file path, a pandas or polars DataFrame or an "
            f"Arrow table; got {type(path).__module__}.{type(path).__name__}"
        )
    ucol = _pick(df, where, user_col, USER_NAMES, "user id", "user_col", True)
    icol = _pick(df, where, item_col, ITEM_NAMES, "item id", "item_col", True)
    if ucol == icol:
        raise DataError(
            f"{where}: user and item columns are both '{ucol}'; pass user_col= and item_col="
        )
    rcol = _pick(df, where, rating_col, RATING_NAMES, "rating", "rating_col", False)
    tcol = _pick(df, where, time_col, TIME_NAMES, "time", "time_col", False)
    if ucol is None or icol is None:  # _pick raises for required columns
        raise DataError(f"{where}: user and item columns are required")
    users = parse_ids(df, ucol, where, first, "user id")
    items = parse_ids(df, icol, where, first, "item id")
    ratings = None if rcol is None else parse_numbers(df, rcol, where, first, "rating")
    times = None if tcol is None else parse_times(df, tcol, where, first)
    context = {}
    for c in context_cols:
        cc = _pick(df, where, c, (), "context", "context_cols", True)
        if cc is not None:
            context[cc] = df[cc].to_numpy()
    used = {c for c in (ucol, icol, rcol, tcol) if c is not None} | set(context)
    warn_unused_columns(
        df.columns,
        used,
        rating_used=rcol is not None,
        time_used=tcol is not None,
        source=str(where),
        stacklevel=stacklevel + 1,
    )
    ds = Dataset.from_raw(
        users,
        items,
        ratings,
        times,
        context=context,
        name=name or default_name,
        source_sha256=None if isinstance(where, FrameSource) else file_sha256(where),
    )
    if ds.source_sha256 is None:
        ds.source_sha256 = ds.fingerprint()
    return ds
