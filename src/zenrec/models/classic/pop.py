"""Most-popular baseline: items ranked by their number of training interactions."""

from __future__ import annotations

import numpy as np

from zenrec.data.dataset import Dataset
from zenrec.models.base import ModelConfig, Recommender

__all__ = ["Pop", "PopConfig"]


class PopConfig(ModelConfig):
    """Pop has no hyperparameters."""


class Pop(Recommender):
    """Ranks items by training interaction count, the same list for every user.

    Examples:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=30, n_items=20, seed=0)
        >>> Pop().fit(ds).recommend([1000], k=2).items.shape
        (1, 2)
    """

    name = "pop"
    Config = PopConfig
    config: PopConfig

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        self.counts_ = train.item_counts().astype(np.float32)

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts_, (users.size, self.counts_.size)).copy()

    def _state(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts_}

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.counts_ = arrays["counts"]
