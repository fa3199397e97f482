"""Item attributes of a bundle (``items.json``) as arrays that request filters evaluate on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AttributeFilter", "FilterError", "ItemAttributes"]


class FilterError(ValueError):
    """A request filter names an attribute or value the bundle does not have.

    Attributes:
        field: Dotted location of the offending request field (e.g. ``filters.genres``).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class AttributeFilter:
    """Keep items whose attribute is one of ``any_of`` (labels) and/or within [min, max]."""

    any_of: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None


class ItemAttributes:
    """Per-item attributes with cached boolean masks.

    Kinds are inferred from the JSON values: lists of labels (``multi``, e.g. genres),
    numbers (``numeric``, e.g. year) and strings (``categorical``). Text-like fields with a
    distinct value per item (titles) are display-only and cannot be filtered on.

    Args:
        meta: Attribute name -> one JSON value per item (``Recommender.item_meta``).
        n_items: Catalog size.
    """

    display_only = ("title",)

    def __init__(self, meta: dict[str, list[Any]], n_items: int) -> None:
        self.n_items = n_items
        self.meta = {k: v for k, v in meta.items() if isinstance(v, list) and len(v) == n_items}
        self.kinds: dict[str, str] = {}
        self._numeric: dict[str, np.ndarray] = {}
        self._labels: dict[str, dict[str, np.ndarray]] = {}
        for name, values in self.meta.items():
            if name in self.display_only:
                continue
            present = [v for v in values if v is not None]
            if present and all(isinstance(v, list) for v in present):
                self.kinds[name] = "multi"
                rows: dict[str, list[int]] = {}
                for i, v in enumerate(values):
                    for label in v or ():
                        rows.setdefault(str(label), []).append(i)
                self._labels[name] = {lab: np.asarray(r, np.int64) for lab, r in rows.items()}
            elif present and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in present
            ):
                self.kinds[name] = "numeric"
                self._numeric[name] = np.asarray(
                    [np.nan if v is None else float(v) for v in values]
                )
            elif (
                present
                and all(isinstance(v, str) for v in present)
                and len(set(present)) < max(2, len(present) // 2)
            ):
                self.kinds[name] = "categorical"
                rows = {}
                for i, v in enumerate(values):
                    if v is not None:
                        rows.setdefault(v, []).append(i)
                self._labels[name] = {lab: np.asarray(r, np.int64) for lab, r in rows.items()}

    def describe(self) -> dict[str, Any]:
        """Filterable attributes: kind and, for label kinds, the known labels."""
        out: dict[str, Any] = {}
        for name, kind in self.kinds.items():
            if kind == "numeric":
                vals = self._numeric[name]
                ok = vals[np.isfinite(vals)]
                out[name] = {
                    "kind": kind,
                    "min": float(ok.min()) if ok.size else None,
                    "max": float(ok.max()) if ok.size else None,
                }
            else:
                out[name] = {"kind": kind, "labels": sorted(self._labels[name])}
        return out

    def search_titles(self, query: str, limit: int) -> list[int]:
        """Indices of items whose title contains ``query`` (case-insensitive), catalog order."""
        titles = self.meta.get("title")
        if titles is None:
            return []
        lowered = getattr(self, "_lower_titles", None)
        if lowered is None:
            lowered = [str(t).lower() for t in titles]
            self._lower_titles = lowered
        q = query.lower()
        return [i for i, t in enumerate(lowered) if q in t][:limit]

    def item_metadata(self, idx: int) -> dict[str, Any]:
        """Display metadata of item ``idx`` (every attribute of the bundle)."""
        return {name: values[idx] for name, values in self.meta.items()}

    def mask(
        self, filters: dict[str, AttributeFilter], *, prefix: str = "filters"
    ) -> np.ndarray | None:
        """Boolean mask of the items passing every filter (``None`` when there are none).

        Raises:
            FilterError: Unknown attribute, unknown label, or a range on a label attribute.
        """
        if not filters:
            return None
        keep = np.ones(self.n_items, dtype=bool)
        for name, f in filters.items():
            field = f"{prefix}.{name}"
            kind = self.kinds.get(name)
            if kind is None:
                known = ", ".join(sorted(self.kinds)) or "none"
                raise FilterError(
                    field,
                    f"the bundle has no filterable item attribute '{name}'; "
                    f"filterable attributes: {known}",
                )
            if kind == "numeric":
                if f.any_of is not None:
                    raise FilterError(
                        field, f"'{name}' is numeric: filter it with min/max, not any_of"
                    )
                vals = self._numeric[name]
                with np.errstate(invalid="ignore"):
                    if f.min is not None:
                        keep &= vals >= f.min
                    if f.max is not None:
                        keep &= vals <= f.max
                continue
            if f.min is not None or f.max is not None:
                raise FilterError(
                    field, f"'{name}' holds labels: filter it with any_of, not min/max"
                )
            if f.any_of is not None:
                labels = self._labels[name]
                unknown = [a for a in f.any_of if a not in labels]
                if unknown:
                    sample = ", ".join(sorted(labels)[:20])
                    raise FilterError(
                        field, f"unknown {name} {unknown}; known values include: {sample}"
                    )
                m = np.zeros(self.n_items, dtype=bool)
                for a in f.any_of:
                    m[labels[a]] = True
                keep &= m
        return keep
