"""Feature encoding shared by every neural model.

A :class:`FeatureSpec` is built once from the training :class:`~zenrec.data.Dataset` and
describes every input field: categorical (one embedding row per label), multi-valued
(a padded list of labels, mean-pooled), numeric (z-scored with training statistics), the
user's history (a padded list of item indices, mean-pooled) and per-interaction context
(hour of day and weekday derived from the timestamp, or any context column).

The :class:`FeatureEncoder` holds the spec (JSON) and the per-user / per-item code tables
(numpy arrays). Both go into the model bundle, so training, evaluation and serving encode
features with the same tables. Code 0 always means "missing or padding"; real codes start
at 1. The module imports numpy only; models turn the tables into tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from zenrec._errors import ConfigError, DataError
from zenrec.data.dataset import Dataset, Feature

__all__ = ["FeatureEncoder", "FeatureSpec", "FieldSpec", "build_feature_encoder"]

DERIVED_CONTEXT = ("hour", "weekday")
MAX_MULTI_LEN = 32


class FieldSpec(BaseModel):
    """One input field of a neural model."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Field name (feature or context column; ``history`` for the user's item history)."""
    side: Literal["user", "item", "context"]
    """Which entity (or the interaction) the field describes."""
    kind: Literal["categorical", "multi", "numeric", "history"]
    """How the field is encoded and embedded."""
    cardinality: int = Field(1, ge=1)
    """Embedding rows, including row 0 for missing/padding."""
    max_len: int = Field(1, ge=1)
    """Padded length of multi-valued and history fields."""
    mean: float = 0.0
    """Training mean of a numeric field."""
    std: float = 1.0
    """Training standard deviation of a numeric field."""
    labels: list[str] | None = None
    """Labels of codes 1.. (categorical and multi fields); used to encode new rows."""


class FeatureSpec(BaseModel):
    """All input fields of one model, in a fixed order (JSON round-trippable)."""

    model_config = ConfigDict(extra="forbid")

    fields: list[FieldSpec] = Field(default_factory=list)
    n_users: int = 0
    n_items: int = 0

    def side(self, side: str) -> list[FieldSpec]:
        return [f for f in self.fields if f.side == side]


def _as_labels(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Codes 1.. for the distinct values of a context column (as strings)."""
    s = values.astype(str)
    labels, inv = np.unique(s, return_inverse=True)
    return (inv + 1).astype(np.int64), labels.tolist()


class FeatureEncoder:
    """Encodes users, items and interactions into integer/float arrays for a neural model.

    Build it with :func:`build_feature_encoder`; save it with :meth:`to_json` and
    :meth:`arrays`; restore it with :meth:`from_state`.

    Examples:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=20, n_items=30, seed=1)
        >>> enc = build_feature_encoder(ds, user_features="all", item_features="all",
        ...                             context=["hour"], history_len=5)
        >>> [f.name for f in enc.spec.fields]
        ['segment', 'activity', 'history', 'genre', 'popularity_rank', 'hour']
        >>> enc.user_inputs([0, 1])["history"].shape
        (2, 5)
    """

    def __init__(self, spec: FeatureSpec, tables: dict[str, np.ndarray]) -> None:
        self.spec = spec
        self.tables = tables

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json")

    def arrays(self, prefix: str = "features.") -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": np.ascontiguousarray(v) for k, v in self.tables.items()}

    @classmethod
    def from_state(
        cls, spec_json: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str = "features."
    ) -> FeatureEncoder:
        spec = FeatureSpec.model_validate(spec_json)
        tables = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        for f in spec.fields:
            if f.side != "context" and f"{f.side}.{f.name}" not in tables:
                raise DataError(
                    f"feature table '{f.side}.{f.name}' is missing from the model state"
                )
        return cls(spec, tables)

    # ------------------------------------------------------------------ encoding
    def _side_inputs(self, side: str, idx: Any) -> dict[str, np.ndarray]:
        ix = np.asarray(idx, dtype=np.int64)
        out = {side: ix + 1}  # id 0 is the padding / unknown row
        for f in self.spec.side(side):
            out[f.name] = self.tables[f"{side}.{f.name}"][ix]
        return out

    def user_inputs(self, users: Any) -> dict[str, np.ndarray]:
        """Encoded user-side fields of user indices ``users`` (arrays with leading dim B)."""
        return self._side_inputs("user", users)

    def item_inputs(self, items: Any) -> dict[str, np.ndarray]:
        """Encoded item-side fields of item indices ``items``."""
        return self._side_inputs("item", items)

    def context_inputs(self, ds: Dataset | None, n: int | None = None) -> dict[str, np.ndarray]:
        """Encoded context of each interaction of ``ds`` (or ``n`` rows of 'missing')."""
        out: dict[str, np.ndarray] = {}
        for f in self.spec.side("context"):
            if ds is None:
                assert n is not None
                out[f.name] = (
                    np.zeros(n, np.float32) if f.kind == "numeric" else np.zeros(n, np.int64)
                )
                continue
            out[f.name] = _encode_context_column(f, ds)
        return out

    def encode_item_rows(self, rows: dict[str, Any]) -> dict[str, np.ndarray]:
        """Encode raw feature values of new items (labels, label lists, numbers).

        ``rows`` maps item-side field names to one value per new item; fields left out
        are treated as missing. The item id input is 0 (unknown) for every row.
        """
        n = None
        for k, v in rows.items():
            if n is None:
                n = len(v)
            elif len(v) != n:
                raise DataError(f"new item rows: field '{k}' has {len(v)} values; expected {n}")
        item_fields = {f.name: f for f in self.spec.side("item")}
        unknown = set(rows) - set(item_fields)
        if unknown:
            raise DataError(
                f"new item rows: {sorted(unknown)} are not item fields of this model; "
                f"expected some of {sorted(item_fields)}"
            )
        n = n or 0
        out: dict[str, np.ndarray] = {"item": np.zeros(n, np.int64)}
        for name, f in item_fields.items():
            vals = rows.get(name)
            if f.kind == "numeric":
                x = (
                    np.full(n, np.nan, np.float32)
                    if vals is None
                    else np.array([np.nan if v is None else float(v) for v in vals], np.float32)
                )
                out[name] = _normalise(x, f)
            elif f.kind == "categorical":
                lookup = {lab: j + 1 for j, lab in enumerate(f.labels or [])}
                out[name] = np.array(
                    [
                        lookup.get(str(v), 0) if vals is not None else 0
                        for v in (vals if vals is not None else range(n))
                    ],
                    np.int64,
                )
            elif f.kind == "multi":
                lookup = {lab: j + 1 for j, lab in enumerate(f.labels or [])}
                m = np.zeros((n, f.max_len), np.int64)
                for r in range(n):
                    codes = [lookup.get(str(x), 0) for x in (vals[r] if vals is not None else [])]
                    codes = [c for c in codes if c][: f.max_len]
                    m[r, : len(codes)] = codes
                out[name] = m
        return out


def _normalise(x: np.ndarray, f: FieldSpec) -> np.ndarray:
    z = (x.astype(np.float32) - np.float32(f.mean)) / np.float32(f.std)
    return np.where(np.isfinite(z), z, 0.0).astype(np.float32)


def _encode_context_column(f: FieldSpec, ds: Dataset) -> np.ndarray:
    if f.name in DERIVED_CONTEXT and f.name not in ds.context:
        if ds.timestamps is None:
            raise DataError(
                f"context field '{f.name}' is derived from timestamps, but dataset '{ds.name}' has "
                "none; drop it from 'context' or use data with a time column"
            )
        t = ds.timestamps.astype(np.int64)
        if f.name == "hour":
            return ((t // 3600) % 24 + 1).astype(np.int64)
        return ((t // 86400 + 3) % 7 + 1).astype(np.int64)  # 1970-01-01 was a Thursday
    col = ds.context.get(f.name)
    if col is None:
        raise DataError(f"context column '{f.name}' is missing from dataset '{ds.name}'")
    if f.kind == "numeric":
        return _normalise(col.astype(np.float32), f)
    lookup = {lab: j + 1 for j, lab in enumerate(f.labels or [])}
    return np.array([lookup.get(s, 0) for s in col.astype(str)], np.int64)


def _select(available: dict[str, Feature], wanted: list[str] | str, side: str) -> list[Feature]:
    if wanted == "all":
        return [f for f in available.values() if f.kind != "text"]
    if isinstance(wanted, str):
        raise ConfigError(
            f"'{side}_features' must be 'all' or a list of feature names; got {wanted!r}"
        )
    out = []
    for name in wanted:
        f = available.get(name)
        if f is None:
            raise ConfigError(
                f"'{side}_features' names '{name}', which the dataset lacks; available: "
                f"{sorted(available) or 'none'}"
            )
        if f.kind == "text":
            raise ConfigError(
                f"'{side}_features': '{name}' is a text feature, which neural models "
                "do not encode; drop it"
            )
        out.append(f)
    return out


def _entity_field(f: Feature, side: Literal["user", "item"]) -> tuple[FieldSpec, np.ndarray]:
    n_labels = len(f.labels or [])
    if f.kind == "categorical":
        codes = np.where(f.values >= 0, f.values + 1, 0).astype(np.int64)
        return FieldSpec(
            name=f.name,
            side=side,
            kind="categorical",
            cardinality=n_labels + 1,
            labels=[str(x) for x in f.labels or []],
        ), codes
    if f.kind == "multi":
        assert f.offsets is not None
        lens = np.diff(f.offsets)
        max_len = int(min(MAX_MULTI_LEN, max(1, lens.max(initial=1))))
        n = lens.size
        m = np.zeros((n, max_len), np.int64)
        pos = np.arange(f.values.size) - np.repeat(f.offsets[:-1], lens)
        rows = np.repeat(np.arange(n), lens)
        keep = pos < max_len
        m[rows[keep], pos[keep]] = f.values[keep] + 1
        return FieldSpec(
            name=f.name,
            side=side,
            kind="multi",
            cardinality=n_labels + 1,
            max_len=max_len,
            labels=[str(x) for x in f.labels or []],
        ), m
    x = f.values.astype(np.float64)
    ok = np.isfinite(x)
    mean = float(x[ok].mean()) if ok.any() else 0.0
    std = float(x[ok].std()) if ok.sum() > 1 else 1.0
    spec = FieldSpec(name=f.name, side=side, kind="numeric", mean=mean, std=std if std > 0 else 1.0)
    return spec, _normalise(f.values, spec)


def _history_table(train: Dataset, max_len: int) -> np.ndarray:
    """Each user's last ``max_len`` training items (index + 1, by time when known), 0-padded."""
    n_u = train.n_users
    key = train.timestamps if train.timestamps is not None else np.arange(len(train))
    order = np.lexsort((np.arange(len(train)), key, train.users))
    u, i = train.users[order], train.items[order]
    counts = np.bincount(u, minlength=n_u)
    ends = np.cumsum(counts)
    rank_from_end = ends[u] - np.arange(u.size) - 1  # 0 for the most recent
    keep = rank_from_end < max_len
    n_kept = np.minimum(counts, max_len)
    col = n_kept[u] - 1 - rank_from_end  # oldest kept at column 0, most recent last
    table = np.zeros((n_u, max_len), np.int64)
    table[u[keep], col[keep]] = i[keep] + 1
    return table


def build_feature_encoder(
    train: Dataset,
    *,
    user_features: Sequence[str] | str = (),
    item_features: Sequence[str] | str = (),
    context: Sequence[str] = (),
    history_len: int = 0,
) -> FeatureEncoder:
    """Build the feature spec and code tables from the training part.

    Args:
        train: Training interactions with their user/item features.
        user_features: ``"all"`` (every non-text user feature) or a list of names.
        item_features: ``"all"`` or a list of item feature names.
        context: Context fields: ``hour``/``weekday`` (from timestamps) or columns of
            ``train.context``.
        history_len: Length of the user-history field (0: none).
    """
    fields: list[FieldSpec] = []
    tables: dict[str, np.ndarray] = {}
    for f in _select(
        train.user_features,
        list(user_features) if not isinstance(user_features, str) else user_features,
        "user",
    ):
        spec, table = _entity_field(f, "user")
        fields.append(spec)
        tables[f"user.{f.name}"] = table
    if history_len > 0:
        fields.append(
            FieldSpec(
                name="history",
                side="user",
                kind="history",
                cardinality=train.n_items + 1,
                max_len=history_len,
            )
        )
        tables["user.history"] = _history_table(train, history_len)
    for f in _select(
        train.item_features,
        list(item_features) if not isinstance(item_features, str) else item_features,
        "item",
    ):
        spec, table = _entity_field(f, "item")
        fields.append(spec)
        tables[f"item.{f.name}"] = table
    for name in context:
        if name in DERIVED_CONTEXT and name not in train.context:
            if train.timestamps is None:
                raise ConfigError(
                    f"'context' asks for '{name}', derived from timestamps, but dataset "
                    f"'{train.name}' has none; drop it or use data with a time column"
                )
            card = 25 if name == "hour" else 8
            fields.append(
                FieldSpec(name=name, side="context", kind="categorical", cardinality=card)
            )
            continue
        col = train.context.get(name)
        if col is None:
            raise ConfigError(
                f"'context' names '{name}', which dataset '{train.name}' lacks; available: "
                f"{sorted(set(train.context) | ({'hour', 'weekday'} if train.has_time else set()))}"
            )
        if np.issubdtype(col.dtype, np.floating):
            x = col.astype(np.float64)
            ok = np.isfinite(x)
            std = float(x[ok].std()) if ok.sum() > 1 else 1.0
            fields.append(
                FieldSpec(
                    name=name,
                    side="context",
                    kind="numeric",
                    mean=float(x[ok].mean()) if ok.any() else 0.0,
                    std=std if std > 0 else 1.0,
                )
            )
        else:
            _, labels = _as_labels(col)
            fields.append(
                FieldSpec(
                    name=name,
                    side="context",
                    kind="categorical",
                    cardinality=len(labels) + 1,
                    labels=labels,
                )
            )
    return FeatureEncoder(
        FeatureSpec(fields=fields, n_users=train.n_users, n_items=train.n_items), tables
    )
