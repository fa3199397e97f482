"""EASE: embarrassingly shallow autoencoder (Steck, WWW 2019), closed form.

B = I - P diagMat(1 / diag(P)) with P = (X^T X + lambda I)^-1, diagonal of B zero;
scores = X_u B; a visitor's history is a binary row x, scored as x B (served online). By default
lambda is set from the data (:func:`zenrec.models.defaults.item_l2`).
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import scipy.linalg
from pydantic import Field

from zenrec.data.dataset import Dataset
from zenrec.models.base import ModelConfig, Recommender
from zenrec.models.defaults import AUTO, Auto, data_stats, item_l2

__all__ = ["EASE", "EASEConfig"]


class EASEConfig(ModelConfig):
    l2: Annotated[float, Field(gt=0)] | Auto = AUTO
    """L2 regularisation lambda added to the Gram matrix diagonal ("auto": 10 x mean
    interactions per user, e.g. about 1100 on ML-1M; RecBole's fixed default is 250)."""


class EASE(Recommender):
    """EASE item-item model. Memory is O(n_items^2): suited to catalogs up to ~50k items.

    Examples:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=40, n_items=30, seed=0)
        >>> EASE(l2=10.0).fit(ds).B_.shape
        (30, 30)
        >>> EASE().fit(ds).resolved_params_["l2"] > 0
        True
    """

    name = "ease"
    Config = EASEConfig
    config: EASEConfig
    resolved_params_: dict[str, Any]

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        X = self.seen_
        assert X is not None
        l2 = item_l2(data_stats(X)) if self.config.l2 == AUTO else float(self.config.l2)
        self.resolved_params_ = {"l2": l2}
        G = (X.T @ X).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += l2
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

    def _meta_state(self) -> dict[str, Any]:
        return {"resolved": self.resolved_params_}

    def _load_meta_state(self, state: dict[str, Any]) -> None:
        self.resolved_params_ = dict(state.get("resolved", {}))
