"""ItemItemRecommender: scoring, history and bundle state shared by ItemKNN, RP3beta and SLIM."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from zenrec._arrays import unique
from zenrec.models.base import Recommender
from zenrec.models.bundle import sparse_from_state, sparse_state

__all__ = ["ItemItemRecommender"]


class ItemItemRecommender(Recommender):
    """A model whose scores are ``X_u W`` for a sparse item-item weight matrix ``W_``.

    Row j of ``W_`` holds item j's weight towards each target item: how much consuming j raises
    each item's score. Subclasses set ``W_`` in ``_fit``; scoring users, scoring a visitor's
    history (the sum of the history items' rows), item-item similarity (the item's row) and the
    bundle state are shared.
    """

    W_: sp.csr_matrix

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        assert self.seen_ is not None
        return np.asarray((self.seen_[users] @ self.W_).toarray(), dtype=np.float32)

    def _score_from_items(self, items: np.ndarray) -> np.ndarray:
        rows = self.W_[unique(items)]
        return np.asarray(rows.sum(axis=0), dtype=np.float32).ravel()

    def _similar_items(self, items: np.ndarray) -> np.ndarray:
        return np.asarray(self.W_[np.asarray(items, dtype=np.int64)].toarray(), dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return sparse_state("W", self.W_)

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.W_ = sparse_from_state("W", arrays)
