"""Side features for any dataset: item and user tables read from a file or a DataFrame.

One code path serves :meth:`zenrec.Dataset.with_item_features` /
:meth:`~zenrec.Dataset.with_user_features`, the CLI options ``--items FILE --item-key COL
--item-features genre:multi:|,year:numeric`` (and ``--users ...``) and the ``[data.items]`` /
``[data.users]`` tables of a TOML data config.

A feature spec is one of ``numeric``, ``categorical``, ``text`` or ``multi[:SEP]`` (a
multi-valued column such as ``Action|Comedy``; ``SEP`` defaults to ``|``). Every catalog id
either gets a row or is counted as missing, and ids of the table that the dataset does not
have are counted as unknown; both are reported (:class:`FeatureReport`, and a
:class:`~zenrec.FeatureCoverageWarning`), never silently dropped.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import polars as pl

from zenrec._errors import DataError, FeatureCoverageWarning
from zenrec.data.dataset import Feature, FeatureKind
from zenrec.data.readers import (
    ITEM_NAMES,
    USER_NAMES,
    FrameSource,
    Where,
    _at,
    is_frame,
    parse_ids,
    read_table,
    to_polars,
)
from zenrec.data.vocab import Vocabulary

__all__ = ["FeatureReport", "parse_feature_spec", "parse_feature_specs", "read_features"]

Entity = Literal["item", "user"]
_KINDS: tuple[str, ...] = ("numeric", "categorical", "text", "multi")


@dataclass
class FeatureReport:
    """How a feature table matched the dataset's ids.

    Attributes:
        entity: ``item`` or ``user``.
        source: The file, or ``DataFrame``.
        features: Feature name -> kind.
        n_catalog: Ids in the dataset (items or users).
        n_rows: Rows in the table.
        missing: Dataset ids with no row in the table (their features are missing values).
        unknown: Table ids the dataset does not have (their rows are not used).
        missing_examples: Up to five missing ids.
        unknown_examples: Up to five unknown ids.
    """

    entity: str
    source: str
    features: dict[str, str]
    n_catalog: int
    n_rows: int
    missing: int
    unknown: int
    missing_examples: list[Any] = field(default_factory=list)
    unknown_examples: list[Any] = field(default_factory=list)

    def summary(self) -> str:
        """One line: coverage, missing and unknown ids with examples."""
        covered = self.n_catalog - self.missing
        text = (
            f"{self.source}: {self.entity} features {sorted(self.features)} cover {covered:,} of "
            f"{self.n_catalog:,} {self.entity}s"
        )
        if self.missing:
            text += (
                f"; {self.missing:,} {self.entity}s have no row (e.g. {self.missing_examples}) "
                "and get missing values"
            )
        if self.unknown:
            text += (
                f"; {self.unknown:,} rows have {self.entity} ids the dataset does not have "
                f"(e.g. {self.unknown_examples}) and are not used"
            )
        return text


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def parse_feature_spec(spec: str, *, name: str = "feature") -> tuple[FeatureKind, str | None]:
    """``"multi:|"`` -> ``("multi", "|")``; ``"numeric"`` -> ``("numeric", None)``.

    Raises:
        DataError: The kind is not one of the accepted kinds (the message names the feature).
    """
    if not isinstance(spec, str):
        raise DataError(
            f"feature '{name}': the kind must be a string such as 'numeric'; got {spec!r}"
        )
    kind, _, sep = spec.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in _KINDS:
        raise DataError(
            f"feature '{name}': unknown kind {spec!r}; use one of numeric, categorical, text, "
            "multi or multi:SEP (e.g. 'multi:|' for 'Action|Comedy')"
        )
    if kind != "multi":
        if sep:
            raise DataError(f"feature '{name}': only 'multi' takes a separator; got {spec!r}")
        return cast(FeatureKind, kind), None
    return "multi", sep or "|"


def parse_feature_specs(text: str) -> dict[str, str]:
    """Parse the CLI form ``genre:multi:|,year:numeric,brand:categorical`` into a mapping.

    Entries are separated by commas; a multi-valued column whose separator is a comma must
    be configured in a TOML data config instead.
    """
    out: dict[str, str] = {}
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, spec = entry.partition(":")
        if not sep or not name.strip() or not spec.strip():
            raise DataError(
                f"feature list entry {entry!r} must be COLUMN:KIND, e.g. 'year:numeric' or "
                "'genre:multi:|'"
            )
        if name.strip() in out:
            raise DataError(f"feature list names column '{name.strip()}' twice")
        parse_feature_spec(spec, name=name.strip())
        out[name.strip()] = spec.strip()
    if not out:
        raise DataError(f"the feature list {text!r} is empty; give COLUMN:KIND entries")
    return out


def _strings(s: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """String values and a missing mask (null or blank)."""
    st = s.cast(pl.String).str.strip_chars()
    missing = (st.is_null() | (st == "")).to_numpy()
    return st.fill_null("").to_numpy().astype(str), missing


def _build(
    name: str,
    kind: FeatureKind,
    sep: str | None,
    s: pl.Series,
    rows: np.ndarray,
    n: int,
    where: Where,
    first: int,
) -> Feature:
    """Feature of ``n`` entities from column ``s``.

    ``rows[j]`` is the entity of table row j (-1: none).
    """
    ok = rows >= 0
    if kind == "numeric":
        if s.dtype.is_numeric():
            vals = s.cast(pl.Float64).to_numpy()
        else:
            text, missing = _strings(s)
            num = s.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False).to_numpy()
            bad = (
                np.isnan(num)
                & ~missing
                & ~np.isin(np.char.lower(text), ["nan", "na", "null", "none"])
            )
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"{_at(where, first, j)}: column '{name}' is {str(text[j])!r}, "
                    "expected a number "
                    f"(feature '{name}' is numeric); fix the value or declare it 'categorical'"
                )
            vals = num
        out = np.full(n, np.nan, dtype=np.float32)
        out[rows[ok]] = vals[ok]
        return Feature(name, "numeric", out)
    text, missing = _strings(s)
    if kind == "text":
        out_t = np.full(n, "", dtype=object)
        out_t[rows[ok]] = text[ok]
        return Feature(name, "text", out_t.astype(str))
    if kind == "categorical":
        labels = sorted(set(text[ok & ~missing].tolist()))
        lookup = {v: i for i, v in enumerate(labels)}
        codes = np.full(n, -1, dtype=np.int64)
        use = ok & ~missing
        codes[rows[use]] = [lookup[v] for v in text[use]]
        return Feature(name, "categorical", codes, labels)
    lists: list[list[str]] = [[] for _ in range(n)]
    for j in np.flatnonzero(ok & ~missing).tolist():
        lists[int(rows[j])] = [t.strip() for t in str(text[j]).split(sep or "|") if t.strip()]
    labels = sorted({g for row in lists for g in row})
    lookup = {g: i for i, g in enumerate(labels)}
    lens = np.array([len(r) for r in lists], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    codes = np.array([lookup[g] for r in lists for g in r], dtype=np.int64)
    return Feature(name, "multi", codes, labels, offsets)


def read_features(
    source: str | Path | Any,
    *,
    vocab: Vocabulary,
    entity: Entity,
    key: str | None,
    features: Mapping[str, str],
    sep: str | None = None,
    header: bool = True,
    encoding: str = "utf-8",
    stacklevel: int = 1,
) -> tuple[dict[str, Feature], FeatureReport]:
    """Read a feature table and align it to ``vocab``.

    Args:
        source: CSV/TSV/Parquet file, or a pandas/polars DataFrame or Arrow table.
        vocab: The dataset's item (or user) vocabulary.
        entity: ``item`` or ``user`` (for messages).
        key: Column of the ids (default: a column named like ``item_id``/``movieId`` or
            ``user_id``).
        features: Column -> kind (``numeric``, ``categorical``, ``text``, ``multi[:SEP]``).
        sep: Separator, as for :func:`~zenrec.data.read_interactions` (files only).
        header: Whether the file has a header row (files only).
        encoding: Text encoding (files only).
        stacklevel: Where the coverage warning points (1: the caller of this function).

    Returns:
        The features (each aligned to ``vocab``) and the coverage report.

    Raises:
        DataError: Unknown columns, a bad kind, a value that does not fit its kind, an empty
            or repeated id; each names the source, the row or line and the fix.
    """
    keyword = "key"
    where: Where
    if is_frame(source):
        where, df, first = FrameSource(), to_polars(source, what=f"{entity} feature table"), 0
    elif isinstance(source, (str, Path)):
        where = Path(source)
        df, first = read_table(where, sep=sep, header=header, encoding=encoding)
    else:
        raise DataError(
            f"the {entity} feature table must be a file path, a pandas or polars DataFrame or an "
            f"Arrow table; got {type(source).__module__}.{type(source).__name__}"
        )
    if not isinstance(features, Mapping) or not features:
        raise DataError(
            f"{where}: pass features= as a mapping of column to kind, e.g. "
            "{'genres': 'multi:|', 'year': 'numeric', 'brand': 'categorical'}"
        )
    cols = df.columns
    if key is None:
        lower = {c.lower(): c for c in cols}
        names = ITEM_NAMES if entity == "item" else USER_NAMES
        key = next((lower[n] for n in names if n in lower), None)
        if key is None:
            raise DataError(
                f"{where}: cannot tell which column holds the {entity} ids; columns are "
                f"{cols}; pass {keyword}="
            )
    elif key not in cols:
        raise DataError(
            f"{where}: {entity} key column '{key}' not found; columns are {cols}; "
            f"pass {keyword}= with one of them"
        )
    specs = {str(n): parse_feature_spec(k, name=str(n)) for n, k in features.items()}
    unknown_cols = [n for n in specs if n not in cols]
    if unknown_cols:
        raise DataError(f"{where}: feature column(s) {unknown_cols} not found; columns are {cols}")
    if key in specs:
        raise DataError(f"{where}: column '{key}' is the {entity} key; it cannot also be a feature")
    ids = parse_ids(df, key, where, first, f"{entity} id")
    rows = vocab.encode(ids)
    known = rows >= 0
    # each dataset id at most once
    if known.any():
        order = np.argsort(rows, kind="stable")
        r_sorted = rows[order]
        dup = np.flatnonzero((r_sorted[1:] == r_sorted[:-1]) & (r_sorted[1:] >= 0))
        if dup.size:
            j2 = int(order[dup[0] + 1])
            j1 = int(order[dup[0]])
            raise DataError(
                f"{_at(where, first, j2)}: {entity} id {_py(ids[j2])!r} appears again (also at "
                f"{_at(where, first, j1)}); keep one row per {entity}"
            )
    out = {
        name: _build(name, kind, sp_, df[name], rows, len(vocab), where, first)
        for name, (kind, sp_) in specs.items()
    }
    covered = np.zeros(len(vocab), dtype=bool)
    covered[rows[known]] = True
    miss_idx = np.flatnonzero(~covered)
    unknown_ids = ids[~known]
    report = FeatureReport(
        entity=entity,
        source=str(where),
        features={n: k for n, (k, _) in specs.items()},
        n_catalog=len(vocab),
        n_rows=int(df.height),
        missing=int(miss_idx.size),
        unknown=int(unknown_ids.size),
        missing_examples=[_py(v) for v in vocab.decode(miss_idx[:5])],
        unknown_examples=[_py(v) for v in unknown_ids[:5]],
    )
    if report.missing or report.unknown:
        warnings.warn(report.summary(), FeatureCoverageWarning, stacklevel=stacklevel + 1)
    return out, report
