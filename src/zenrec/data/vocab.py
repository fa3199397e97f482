"""Reversible vocabularies between raw ids and contiguous indices."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from zenrec._arrays import unique

__all__ = ["Vocabulary"]


def _as_id_array(values: Any) -> np.ndarray:
    """Return raw ids as an int64 array when all are integers, else as a unicode array."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
        return arr.astype(str)
    if arr.dtype.kind == "O":
        if arr.size and all(isinstance(v, (int, np.integer)) for v in arr.ravel()):
            return arr.astype(np.int64)
        return arr.astype(str)
    return arr.astype(str)


class Vocabulary:
    """Sorted, unique raw ids mapped to indices ``0..n-1``.

    Raw ids are int64 when every id is an integer, else strings. Encoding is vectorised
    (binary search) and unknown ids encode to ``-1``.

    Examples:
        >>> v = Vocabulary.from_values([30, 10, 20, 10])
        >>> v.encode([20, 99]).tolist()
        [1, -1]
        >>> v.decode([0, 2]).tolist()
        [10, 30]
    """

    __slots__ = ("ids",)

    def __init__(self, ids: np.ndarray) -> None:
        ids = _as_id_array(ids)
        if ids.ndim != 1:
            raise ValueError("Vocabulary ids must be one-dimensional")
        if ids.size > 1 and not np.all(ids[1:] > ids[:-1]):
            ids = unique(ids)
        self.ids = ids

    @classmethod
    def from_values(cls, values: Iterable[Any] | np.ndarray) -> Vocabulary:
        return cls(unique(_as_id_array(np.asarray(values))))

    def __len__(self) -> int:
        return int(self.ids.size)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary)
            and self.ids.dtype.kind == other.ids.dtype.kind
            and np.array_equal(self.ids, other.ids)
        )

    def __hash__(self) -> int:  # pragma: no cover - vocabularies are not dict keys
        return hash((len(self), self.ids.dtype.kind))

    @property
    def is_integer(self) -> bool:
        return self.ids.dtype.kind == "i"

    def coerce(self, values: Any) -> np.ndarray:
        """Convert user-supplied raw ids (e.g. CLI strings) to this vocabulary's dtype."""
        arr = np.atleast_1d(np.asarray(values))
        if self.is_integer:
            if arr.dtype.kind in "iu":
                return arr.astype(np.int64)
            out = np.empty(arr.shape, dtype=np.int64)
            for i, v in enumerate(arr.ravel()):
                try:
                    out.flat[i] = int(str(v))
                except ValueError:
                    out.flat[i] = np.iinfo(np.int64).min  # never a real id -> unknown
            return out
        return arr.astype(str)

    def encode(self, values: Any) -> np.ndarray:
        """Map raw ids to indices; unknown ids give ``-1``."""
        arr = self.coerce(values)
        if self.ids.size == 0:
            return np.full(arr.shape, -1, dtype=np.int64)
        pos = np.searchsorted(self.ids, arr)
        pos_c = np.minimum(pos, self.ids.size - 1)
        found = self.ids[pos_c] == arr
        return np.where(found, pos_c, -1).astype(np.int64)

    def decode(self, indices: Any) -> np.ndarray:
        """Map indices back to raw ids."""
        return self.ids[np.asarray(indices, dtype=np.int64)]

    def to_json(self) -> dict[str, Any]:
        return {"kind": "int" if self.is_integer else "str", "ids": self.ids.tolist()}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Vocabulary:
        ids = payload["ids"]
        arr = (
            np.asarray(ids, dtype=np.int64)
            if payload["kind"] == "int"
            else np.asarray(ids, dtype=str)
        )
        return cls(arr)

    def __repr__(self) -> str:
        return f"Vocabulary(n={len(self)}, kind={'int' if self.is_integer else 'str'})"
