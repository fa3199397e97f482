"""The :class:`Dataset`: interactions plus user, item and context features.

Users and items are stored as contiguous indices into :class:`~zenrec.data.vocab.Vocabulary`
objects; every public API of zenrec takes and returns raw ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from zenrec._arrays import unique
from zenrec._errors import DataError
from zenrec.data.vocab import Vocabulary

__all__ = ["Dataset", "Feature", "FeatureKind", "FeatureTable"]

FeatureKind = Literal["categorical", "numeric", "multi", "text"]


@dataclass(eq=False)
class Feature:
    """One column of a user or item feature table, aligned to the entity vocabulary.

    Attributes:
        name: Column name.
        kind: ``categorical`` (``values`` are int codes into ``labels``, -1 missing),
            ``numeric`` (float32, NaN missing), ``multi`` (CSR: ``values`` are codes into
            ``labels`` and ``offsets`` has n+1 entries, e.g. genres) or ``text`` (strings).
        values: The column, one entry per entity (or the flat codes for ``multi``).
        labels: Category labels for ``categorical`` and ``multi``.
        offsets: Row offsets for ``multi``.
    """

    name: str
    kind: FeatureKind
    values: np.ndarray
    labels: list[str] | None = None
    offsets: np.ndarray | None = None

    def __post_init__(self) -> None:
        where = f"Feature '{self.name}' ({self.kind})"
        if self.kind not in ("categorical", "numeric", "multi", "text"):
            raise DataError(
                f"Feature '{self.name}': kind must be categorical, numeric, multi or text; "
                f"got {self.kind!r}"
            )
        self.values = np.asarray(self.values)
        if self.values.ndim != 1:
            raise DataError(
                f"{where}: values must be one-dimensional; got shape {self.values.shape}"
            )
        if self.kind in ("categorical", "multi"):
            if self.labels is None:
                raise DataError(f"{where}: labels are required (values are codes into labels)")
            if self.values.size and self.values.dtype.kind not in "iu":
                raise DataError(
                    f"{where}: values must be integer codes into labels; got dtype "
                    f"{self.values.dtype}"
                )
            low = -1 if self.kind == "categorical" else 0
            if self.values.size and (
                int(self.values.min()) < low or int(self.values.max()) >= len(self.labels)
            ):
                raise DataError(
                    f"{where}: codes must lie in [{low}, {len(self.labels) - 1}] "
                    f"({len(self.labels)} labels{', -1 = missing' if low < 0 else ''}); "
                    f"got {int(self.values.min())}..{int(self.values.max())}"
                )
        if self.kind == "multi":
            if self.offsets is None:
                raise DataError(f"{where}: offsets are required (n + 1 row offsets into values)")
            self.offsets = np.asarray(self.offsets, dtype=np.int64)
            off = self.offsets
            if (
                off.ndim != 1
                or off.size < 1
                or off[0] != 0
                or (np.diff(off) < 0).any()
                or off[-1] != self.values.size
            ):
                raise DataError(
                    f"{where}: offsets must start at 0, never decrease and end at len(values) = "
                    f"{self.values.size}; got {off.size} offsets ending at "
                    f"{int(off[-1]) if off.size else None}"
                )
        elif self.offsets is not None:
            raise DataError(f"{where}: only 'multi' features take offsets")
        if self.kind == "numeric" and self.values.dtype.kind not in "fiub":
            raise DataError(
                f"{where}: values must be numbers (NaN = missing); got dtype {self.values.dtype}"
            )

    def __len__(self) -> int:
        if self.kind == "multi":
            assert self.offsets is not None
            return int(self.offsets.size - 1)
        return int(self.values.size)

    def take(self, rows: np.ndarray) -> Feature:
        """Rows ``rows`` of this feature (``-1`` rows become missing)."""
        rows = np.asarray(rows, dtype=np.int64)
        missing = rows < 0
        safe = np.where(missing, 0, rows)
        if self.kind == "multi" and self.offsets is not None:
            starts, ends = self.offsets[safe], self.offsets[safe + 1]
            lens = np.where(missing, 0, ends - starts)
            offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
            idx = np.concatenate(
                [np.arange(s, s + n) for s, n in zip(starts, lens)] or [np.zeros(0, np.int64)]
            ).astype(np.int64)
            return Feature(self.name, self.kind, self.values[idx], self.labels, offsets)
        vals = self.values[safe].copy()
        if missing.any():
            if self.kind == "categorical":
                vals[missing] = -1
            elif self.kind == "numeric":
                vals[missing] = np.nan
            else:
                vals[missing] = ""
        return Feature(self.name, self.kind, vals, self.labels, None)

    def row(self, i: int) -> Any:
        """Human-readable value of row ``i``."""
        if self.kind == "multi" and self.offsets is not None and self.labels is not None:
            return [self.labels[c] for c in self.values[self.offsets[i] : self.offsets[i + 1]]]
        if self.kind == "categorical" and self.labels is not None:
            code = int(self.values[i])
            return None if code < 0 else self.labels[code]
        if self.kind == "numeric":
            v = float(self.values[i])
            return None if np.isnan(v) else v
        return str(self.values[i])


class FeatureTable(dict[str, Feature]):
    """Features of one entity (users or items), each checked to have one row per id.

    Assigning ``ds.item_features["x"] = feature`` with the wrong number of rows fails at
    once, naming the feature, its length and the catalog size.
    """

    def __init__(self, entity: str, n: int, features: dict[str, Feature] | None = None) -> None:
        super().__init__()
        self.entity = entity
        self.n = n
        for k, v in (features or {}).items():
            self[k] = v

    def __setitem__(self, name: str, feature: Feature) -> None:
        if not isinstance(feature, Feature):
            raise DataError(
                f"{self.entity} feature '{name}' must be a zenrec.data.Feature; got "
                f"{type(feature).__name__}"
            )
        if len(feature) != self.n:
            raise DataError(
                f"{self.entity} feature '{name}' has {len(feature):,} rows but the dataset has "
                f"{self.n:,} {self.entity}s; a Feature holds one row per {self.entity}, in "
                f"{self.entity}_vocab order. To attach a table keyed by raw ids (rows may be "
                f"missing or extra), use Dataset.with_{self.entity}_features(frame, key=..., "
                "features={...})"
            )
        super().__setitem__(name, feature)

    def update(self, *args: Any, **kwargs: Any) -> None:  # route through the check
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def setdefault(self, name: str, default: Any = None) -> Feature:
        if name not in self:
            self[name] = default
        return self[name]


@dataclass(eq=False)
class Dataset:
    """Interactions between users and items, with optional ratings, time, context and features.

    Attributes:
        users: int64 user index per interaction.
        items: int64 item index per interaction.
        ratings: float32 rating/value per interaction, or ``None`` for implicit data.
        timestamps: int64 unix seconds per interaction, or ``None``.
        user_vocab: Raw user ids.
        item_vocab: Raw item ids (the catalog).
        context: Per-interaction context columns (name -> array).
        user_features: Per-user features (aligned to ``user_vocab``).
        item_features: Per-item features (aligned to ``item_vocab``).
        name: Human-readable name.
        source_sha256: Hash of the source file(s) the data came from.
        filters: Descriptions of every filter applied so far, in order.

    Examples:
        >>> ds = Dataset.from_raw(users=["a", "b", "a"], items=[1, 2, 2])
        >>> (ds.n_users, ds.n_items, len(ds))
        (2, 2, 3)
    """

    users: np.ndarray
    items: np.ndarray
    user_vocab: Vocabulary
    item_vocab: Vocabulary
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    context: dict[str, np.ndarray] = field(default_factory=dict)
    user_features: dict[str, Feature] = field(default_factory=dict)
    item_features: dict[str, Feature] = field(default_factory=dict)
    name: str = "dataset"
    source_sha256: str | None = None
    filters: list[str] = field(default_factory=list)
    feature_reports: list[Any] = field(default_factory=list)
    """Coverage reports of feature tables attached with ``with_item/user_features``."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("user_features", "item_features"):
            entity = "user" if name == "user_features" else "item"
            vocab = self.__dict__.get(f"{entity}_vocab")
            if vocab is not None:
                value = FeatureTable(entity, len(vocab), dict(value or {}))
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_raw(
        cls,
        users: Any,
        items: Any,
        ratings: Any = None,
        timestamps: Any = None,
        *,
        context: dict[str, Any] | None = None,
        name: str = "dataset",
        source_sha256: str | None = None,
        user_vocab: Vocabulary | None = None,
        item_vocab: Vocabulary | None = None,
    ) -> Dataset:
        """Build a dataset from raw id columns (vocabularies are built from the data)."""
        users_arr = np.asarray(users)
        items_arr = np.asarray(items)
        if users_arr.shape != items_arr.shape or users_arr.ndim != 1:
            raise DataError(
                f"users and items must be 1-D columns of the same length; got {users_arr.shape} "
                f"and {items_arr.shape}"
            )
        uv = user_vocab or Vocabulary.from_values(users_arr)
        iv = item_vocab or Vocabulary.from_values(items_arr)
        u = uv.encode(users_arr)
        i = iv.encode(items_arr)
        if (u < 0).any() or (i < 0).any():
            raise DataError("some interactions use ids missing from the given vocabularies")
        r = None if ratings is None else np.asarray(ratings, dtype=np.float32)
        t = None if timestamps is None else np.asarray(timestamps, dtype=np.int64)
        ctx = {k: np.asarray(v) for k, v in (context or {}).items()}
        for label, col in [("ratings", r), ("timestamps", t), *ctx.items()]:
            if col is not None and col.shape != u.shape:
                raise DataError(f"column '{label}' has {col.shape[0]} rows; expected {u.size}")
        return cls(
            users=u,
            items=i,
            user_vocab=uv,
            item_vocab=iv,
            ratings=r,
            timestamps=t,
            context=ctx,
            name=name,
            source_sha256=source_sha256,
        )

    @classmethod
    def from_frame(
        cls,
        frame: Any,
        *,
        user_col: str | None = None,
        item_col: str | None = None,
        rating_col: str | None = None,
        time_col: str | None = None,
        context_cols: Sequence[str] = (),
        name: str | None = None,
    ) -> Dataset:
        """Build a dataset from a pandas or polars DataFrame (or an Arrow table).

        The column mapping, the detection of common names and the checks are those of
        :func:`zenrec.data.read_interactions`; errors name the 0-based row.

        Examples:
            >>> import polars as pl
            >>> df = pl.DataFrame({"customer": ["a", "b", "a"], "sku": [1, 2, 2], "qty": [1, 3, 2]})
            >>> Dataset.from_frame(df, user_col="customer", item_col="sku", rating_col="qty")
            Dataset(name='DataFrame', interactions=3, users=2, items=2, ratings=True, time=False)
        """
        from zenrec.data.readers import _read_interactions, is_frame

        if not is_frame(frame):
            raise DataError(
                "Dataset.from_frame: frame must be a pandas or polars DataFrame or an Arrow table; "
                f"got {type(frame).__module__}.{type(frame).__name__} "
                "(use read_interactions for files)"
            )
        return _read_interactions(
            frame,
            user_col=user_col,
            item_col=item_col,
            rating_col=rating_col,
            time_col=time_col,
            context_cols=context_cols,
            sep=None,
            header=True,
            encoding="utf-8",
            name=name,
            stacklevel=2,
        )

    def with_item_features(
        self,
        table: Any,
        *,
        key: str | None = None,
        features: Mapping[str, str],
        sep: str | None = None,
        header: bool = True,
        encoding: str = "utf-8",
    ) -> Dataset:
        """A copy of this dataset with item features read from a file or a DataFrame.

        Args:
            table: CSV/TSV/Parquet file, or a pandas/polars DataFrame or Arrow table, with
                one row per item.
            key: Column of the raw item ids (default: a column named like ``item_id``).
            features: Column -> kind: ``numeric``, ``categorical``, ``text`` or
                ``multi[:SEP]`` (multi-valued, ``SEP`` default ``|``). A ``text`` column named
                ``title`` is shown beside recommendations.
            sep: Separator, as for :func:`~zenrec.data.read_interactions` (files only).
            header: Whether the file has a header row (files only).
            encoding: Text encoding (files only).

        Returns:
            A new Dataset (interactions shared) whose ``item_features`` hold the new columns
            (replacing same-named ones); ``feature_reports`` gains the coverage report.

        Warns:
            FeatureCoverageWarning: Catalog items without a row (they get missing values)
                or table rows whose ids the catalog lacks (not used), with counts and examples.

        Raises:
            DataError: An unknown column, a bad kind, a value that does not fit its kind,
                or a repeated or empty id.

        Examples:
            >>> import polars as pl
            >>> ds = Dataset.from_raw(users=["a", "b", "a"], items=[1, 2, 2])
            >>> items = pl.DataFrame({"sku": [1, 2], "genres": ["A|B", "B"], "year": [1999, 2004]})
            >>> ds2 = ds.with_item_features(
            ...     items, key="sku", features={"genres": "multi:|", "year": "numeric"}
            ... )
            >>> ds2.item_features["genres"].row(0), ds2.item_features["year"].row(1)
            (['A', 'B'], 2004.0)
        """
        return self._with_features(
            "item", table, key=key, features=features, sep=sep, header=header, encoding=encoding
        )

    def with_user_features(
        self,
        table: Any,
        *,
        key: str | None = None,
        features: Mapping[str, str],
        sep: str | None = None,
        header: bool = True,
        encoding: str = "utf-8",
    ) -> Dataset:
        """A copy of this dataset with user features; see :meth:`with_item_features`."""
        return self._with_features(
            "user", table, key=key, features=features, sep=sep, header=header, encoding=encoding
        )

    def _with_features(
        self,
        entity: Literal["item", "user"],
        table: Any,
        *,
        key: str | None,
        features: Mapping[str, str],
        sep: str | None,
        header: bool,
        encoding: str,
    ) -> Dataset:
        from zenrec.data.features import read_features

        vocab = self.item_vocab if entity == "item" else self.user_vocab
        new, report = read_features(
            table,
            vocab=vocab,
            entity=entity,
            key=key,
            features=features,
            sep=sep,
            header=header,
            encoding=encoding,
            stacklevel=3,
        )
        current = self.item_features if entity == "item" else self.user_features
        merged = {**current, **new}
        out = replace(
            self, filters=list(self.filters), feature_reports=[*self.feature_reports, report]
        )
        if entity == "item":
            out.item_features = merged
        else:
            out.user_features = merged
        return out

    # ------------------------------------------------------------------ basic facts
    def __len__(self) -> int:
        return int(self.users.size)

    @property
    def n_users(self) -> int:
        return len(self.user_vocab)

    @property
    def n_items(self) -> int:
        return len(self.item_vocab)

    @property
    def has_ratings(self) -> bool:
        return self.ratings is not None

    @property
    def has_time(self) -> bool:
        return self.timestamps is not None

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, interactions={len(self)}, users={self.n_users}, "
            f"items={self.n_items}, ratings={self.has_ratings}, time={self.has_time})"
        )

    # ------------------------------------------------------------------ derived views
    def subset(self, rows: np.ndarray, *, name: str | None = None) -> Dataset:
        """Interactions ``rows`` (bool mask or indices), keeping vocabularies and features."""
        rows = np.asarray(rows)
        return replace(
            self,
            users=self.users[rows],
            items=self.items[rows],
            ratings=None if self.ratings is None else self.ratings[rows],
            timestamps=None if self.timestamps is None else self.timestamps[rows],
            context={k: v[rows] for k, v in self.context.items()},
            name=name or self.name,
            filters=list(self.filters),
        )

    def filter(
        self,
        *,
        min_rating: float | None = None,
        min_user_count: int | None = None,
        min_item_count: int | None = None,
        duplicates: Literal["last", "mean", "error", "keep"] = "last",
        start: Any = None,
        end: Any = None,
    ) -> Dataset:
        """The dataset after the standard filters, as the command line's flags apply them.

        Same names and meaning as ``--min-rating``, ``--min-user-count``, ``--min-item-count``,
        ``--duplicates``, ``--start``, ``--end``, the keyword arguments of
        :func:`zenrec.load_dataset` and the keys of a ``[data]`` table (docs/data-spec.md).
        Order: time window, duplicates, rating threshold, k-core. Each filter is recorded in
        ``filters``; users and items left without interactions are dropped.

        Args:
            min_rating: Keep interactions with rating >= this (e.g. 4 for positives).
            min_user_count: k-core: users with at least this many interactions.
            min_item_count: k-core: items with at least this many interactions.
            duplicates: Repeated (user, item) rows: ``last`` (default, as on the command
                line), ``mean``, ``error`` or ``keep``.
            start: Keep interactions at or after this time (unix seconds or ISO 8601).
            end: Keep interactions before this time (unix seconds or ISO 8601).

        Raises:
            ConfigError: A filter value is invalid.
            DataError: The data lacks the column a filter needs, or nothing is left.

        Examples:
            >>> from zenrec.data import synthetic_dataset
            >>> ds = synthetic_dataset(n_users=30, n_items=20, seed=0)
            >>> kept = ds.filter(min_user_count=5)
            >>> bool(kept.user_counts().min() >= 5)
            True
        """
        from zenrec.data.filters import DataFilters

        return DataFilters.of(
            "Dataset.filter",
            min_rating=min_rating,
            min_user_count=min_user_count,
            min_item_count=min_item_count,
            duplicates=duplicates,
            start=start,
            end=end,
        ).apply(self)

    def with_filter(self, rows: np.ndarray, description: str, *, compact: bool = True) -> Dataset:
        """Keep ``rows`` (a bool mask or indices) and record ``description`` in ``filters``; by
        default drop users and items left without interactions.

        The primitive under every filter; for the standard filters use :meth:`filter`.
        """
        out = self.subset(rows)
        out.filters.append(description)
        return out.compacted() if compact else out

    def compacted(self) -> Dataset:
        """Drop users and items with no interactions, remapping indices and features."""
        used_u = unique(self.users)
        used_i = unique(self.items)
        if used_u.size == self.n_users and used_i.size == self.n_items:
            return self
        umap = np.full(self.n_users, -1, dtype=np.int64)
        umap[used_u] = np.arange(used_u.size)
        imap = np.full(self.n_items, -1, dtype=np.int64)
        imap[used_i] = np.arange(used_i.size)
        return replace(
            self,
            users=umap[self.users],
            items=imap[self.items],
            user_vocab=Vocabulary(self.user_vocab.ids[used_u]),
            item_vocab=Vocabulary(self.item_vocab.ids[used_i]),
            user_features={k: f.take(used_u) for k, f in self.user_features.items()},
            item_features={k: f.take(used_i) for k, f in self.item_features.items()},
            filters=list(self.filters),
        )

    def csr(self, values: Literal["binary", "rating"] = "binary") -> sp.csr_matrix:
        """User x item matrix (users are rows). Duplicate pairs are summed."""
        if values == "rating":
            if self.ratings is None:
                raise DataError(f"dataset '{self.name}' has no rating column")
            data = self.ratings.astype(np.float32)
        else:
            data = np.ones(len(self), dtype=np.float32)
        m = sp.csr_matrix(
            (data, (self.users, self.items)), shape=(self.n_users, self.n_items), dtype=np.float32
        )
        m.sum_duplicates()
        if values == "binary":
            m.data[:] = 1.0
        return m

    def user_counts(self) -> np.ndarray:
        return np.bincount(self.users, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.items, minlength=self.n_items)

    def item_titles(self) -> np.ndarray | None:
        f = self.item_features.get("title")
        return None if f is None else f.values

    def fingerprint(self) -> str:
        """sha256 of the interactions (raw ids, ratings, times) in a canonical order."""
        h = hashlib.sha256()
        order = np.lexsort((self.items, self.users))
        h.update(np.ascontiguousarray(self.user_vocab.decode(self.users[order])).tobytes())
        h.update(np.ascontiguousarray(self.item_vocab.decode(self.items[order])).tobytes())
        if self.ratings is not None:
            h.update(self.ratings[order].tobytes())
        if self.timestamps is not None:
            h.update(self.timestamps[order].tobytes())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """Summary facts: counts, sparsity, time range, rating distribution, features."""
        n = len(self)
        info: dict[str, Any] = {
            "name": self.name,
            "interactions": n,
            "users": self.n_users,
            "items": self.n_items,
            "density": n / max(1, self.n_users * self.n_items),
            "sparsity": 1.0 - n / max(1, self.n_users * self.n_items),
            "filters": list(self.filters),
            "source_sha256": self.source_sha256,
        }
        if n:
            uc, ic = self.user_counts(), self.item_counts()
            info["interactions_per_user"] = {
                "min": int(uc.min()),
                "median": float(np.median(uc)),
                "max": int(uc.max()),
            }
            info["interactions_per_item"] = {
                "min": int(ic.min()),
                "median": float(np.median(ic)),
                "max": int(ic.max()),
            }
        if self.timestamps is not None and n:
            info["time_range"] = [int(self.timestamps.min()), int(self.timestamps.max())]
        if self.ratings is not None and n:
            vals, counts = np.unique(self.ratings, return_counts=True)
            if vals.size <= 20:
                info["rating_distribution"] = {f"{v:g}": int(c) for v, c in zip(vals, counts)}
            else:
                info["rating_summary"] = {
                    "min": float(vals.min()),
                    "mean": float(self.ratings.mean()),
                    "max": float(vals.max()),
                }
        info["user_features"] = {k: f.kind for k, f in self.user_features.items()}
        info["item_features"] = {k: f.kind for k, f in self.item_features.items()}
        info["context_columns"] = list(self.context)
        if self.feature_reports:
            info["feature_coverage"] = [r.summary() for r in self.feature_reports]
        return info
