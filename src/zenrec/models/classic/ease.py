"""EASE: embarrassingly shallow autoencoder (Steck, WWW 2019), closed form.

B = I - P diagMat(1 / diag(P)) with P = (X^T X + lambda I)^-1, diagonal of B zero;
scores = X_u B; a visitor's history is a binary row x, scored as x B (served online).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from pydantic import Field

from zenrec.data.dataset import Dataset
from zenrec.models.base import ModelConfig, Recommender

__all__ = ["EASE", "EASEConfig"]


class EASEConfig(ModelConfig):
    l2: float = Field(250.0, gt=0)
    """L2 regularisation lambda added to the Gram matrix diagonal (RecBole's default 250)."""


class EASE(Recommender):
    """EASE item-item model. Memory is O(n_items^2): suited to catalogs up to ~50k items.

    Examples:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=40, n_items=30, seed=0)
        >>> EASE(l2=10.0).fit(ds).B_.shape
        (30, 30)
    """

    name = "ease"
    Config = EASEConfig
    config: EASEConfig

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        X = self.seen_
        assert X is not None
        G = (X.T @ X).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += self.config.l2
        P = scipy.linalg.inv(G, overwrite_a=True, check_finite=False)
        B = P / (-np.diag(P))[None, :]
        B[np.diag_indices_from(B)] = 0.0
        self.B_ = B.astype(np.float32)

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        assert self.seen_ is not None
        return np.asarray(self.seen_[users] @ self.B_, dtype=np.float32)

    def _score_from_items(self, items: np.ndarray) -> np.ndarray:
        # x B for the binary history vector x: the sum of the history items' rows of B.
        return self.B_[np.unique(items)].sum(axis=0, dtype=np.float32)

    def _similar_items(self, items: np.ndarray) -> np.ndarray:
        return np.asarray(self.B_[items], dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {"B": self.B_}

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.B_ = arrays["B"]
