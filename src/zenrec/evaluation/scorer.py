"""What the evaluators need from a model: the :class:`Scorer` protocol.

The evaluation layer sits below the models: it never imports model code. Any object with these
attributes (every :class:`zenrec.models.Recommender` has them) can be evaluated.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from zenrec.data.vocab import Vocabulary

__all__ = ["Scorer"]


@runtime_checkable
class Scorer(Protocol):
    """A fitted model as the evaluators see it."""

    user_vocab: Vocabulary | None
    """Raw user ids of the training data (index = user index)."""
    item_vocab: Vocabulary | None
    """Raw item ids of the catalog (index = item index)."""
    item_popularity_: np.ndarray | None
    """Training interactions per item (popularity fallback, novelty metrics, sampled negatives)."""

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` (or ``load``) has run."""
        ...

    @property
    def n_items(self) -> int:
        """Catalog size."""
        ...

    def _check_fitted(self) -> None:
        """Raise :class:`zenrec.NotFittedError` when the model is not fitted."""
        ...

    def score_indices(self, users: np.ndarray) -> np.ndarray:
        """Scores (len(users), n_items) of known user indices over the whole catalog."""
        ...

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted rating or score of raw (user, item) pairs."""
        ...
