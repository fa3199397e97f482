"""EDLAE: emphasized denoising linear autoencoder (Steck, "Autoencoders that don't overfit
towards the identity", NeurIPS 2020), closed form.

Training a linear autoencoder B on inputs whose entries are dropped with probability ``p``
equals, in expectation, ridge regression with a data-dependent penalty

    min_B ||X - X B||_F^2 + ||Lambda^(1/2) B||_F^2,
    Lambda = p / (1 - p) * diagMat(diag(X^T X)) + lambda I.

Full emphasis on the dropped-out entries (the paper's EDLAE) makes the learned weights ignore
the identity, which gives the zero-diagonal closed form

    P = (X^T X + Lambda)^-1,   B = I - P diagMat(1 / diag(P))   (diag(B) = 0);

without emphasis (``emphasis = "none"``, the DLAE) it is B = P X^T X = I - P Lambda.
Low-rank variant (``rank > 0``): the best rank-r B for the DLAE objective. With M = X^T X +
Lambda the objective is ||M^(1/2) (B - M^-1 X^T X)||_F^2 + const, so B = M^(-1/2) [M^(-1/2)
X^T X]_r, with [.]_r the truncated SVD, stored as two (n_items, r) factors; scores cost
O(n_items r) per user instead of O(n_items^2).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import scipy.linalg
from pydantic import Field

from zenrec.data.dataset import Dataset
from zenrec.models.base import ModelConfig, Recommender
from zenrec.models.defaults import AUTO, Auto, ResolvedParams, data_stats, item_l2

__all__ = ["EDLAE", "EDLAEConfig"]


class EDLAEConfig(ModelConfig):
    dropout: float = Field(0.25, ge=0, lt=1)
    """Dropout probability p of the denoising; Lambda grows as p / (1 - p) diag(X^T X)."""
    l2: Annotated[float, Field(ge=0)] | Auto = AUTO
    """Plain L2 regularisation lambda added on top of the dropout penalty ("auto": EASE's
    data-dependent lambda, 10 x mean interactions per user)."""
    emphasis: Literal["full", "none"] = "full"
    """'full': errors on dropped-out entries only (zero diagonal, EDLAE); 'none': DLAE."""
    rank: int = Field(0, ge=0)
    """Rank of the low-rank DLAE variant (0: full rank). The low-rank model has no emphasis."""


class EDLAE(ResolvedParams, Recommender):
    """EDLAE item-item model. Fitting is O(n_items^3) time and O(n_items^2) memory.

    Example:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=40, n_items=30, seed=0)
        >>> EDLAE(dropout=0.25, l2=1.0).fit(ds).B_.shape
        (30, 30)
        >>> EDLAE(rank=4).fit(ds).left_.shape
        (30, 4)
    """

    name = "edlae"
    Config = EDLAEConfig
    config: EDLAEConfig

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        X = self.seen_
        assert X is not None
        G = (X.T @ X).toarray().astype(np.float64)
        l2 = item_l2(data_stats(X)) if c.l2 == AUTO else float(c.l2)
        self.resolved_params_ = {"l2": l2}
        lam = c.dropout / (1.0 - c.dropout) * np.diag(G) + l2
        lam = np.maximum(lam, 1e-8)  # items never seen would make M singular
        self.B_ = np.zeros((0, 0), np.float32)
        self.left_ = np.zeros((0, 0), np.float32)
        self.right_ = np.zeros((0, 0), np.float32)
        if c.rank > 0:
            M = G.copy()
            M[np.diag_indices_from(M)] += lam
            w, Q = scipy.linalg.eigh(M, check_finite=False)
            inv_sqrt = (Q / np.sqrt(np.maximum(w, 1e-12))[None, :]) @ Q.T  # M^(-1/2)
            A = inv_sqrt @ G
            U, s, Vt = scipy.linalg.svd(A, full_matrices=False, check_finite=False)
            r = min(c.rank, s.size)
            self.left_ = (inv_sqrt @ (U[:, :r] * s[None, :r])).astype(np.float32)  # (I, r)
            self.right_ = np.ascontiguousarray(Vt[:r].T, dtype=np.float32)  # (I, r)
            return
        G[np.diag_indices_from(G)] += lam
        P = scipy.linalg.inv(G, overwrite_a=True, check_finite=False)
        if c.emphasis == "full":
            B = P / (-np.diag(P))[None, :]
            B[np.diag_indices_from(B)] = 0.0
        else:
            B = -P * lam[None, :]
            B[np.diag_indices_from(B)] += 1.0
        self.B_ = B.astype(np.float32)

    def _weights_rows(self, x: np.ndarray) -> np.ndarray:
        if self.config.rank > 0:
            return np.asarray((x @ self.left_) @ self.right_.T, dtype=np.float32)
        return np.asarray(x @ self.B_, dtype=np.float32)

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        assert self.seen_ is not None
        X = self.seen_[users]
        if self.config.rank > 0:
            return np.asarray((X @ self.left_) @ self.right_.T, dtype=np.float32)
        return np.asarray(X @ self.B_, dtype=np.float32)

    def _score_from_items(self, items: np.ndarray) -> np.ndarray | None:
        x = np.zeros((1, self.n_items), dtype=np.float32)
        x[0, np.asarray(items, dtype=np.int64)] = 1.0
        return self._weights_rows(x)[0]

    def _similar_items(self, items: np.ndarray) -> np.ndarray | None:
        idx = np.asarray(items, dtype=np.int64)
        if self.config.rank > 0:
            return np.asarray(self.left_[idx] @ self.right_.T, dtype=np.float32)
        return np.asarray(self.B_[idx], dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        if self.config.rank > 0:
            return {"left": self.left_, "right": self.right_}
        return {"B": self.B_}

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.B_ = arrays.get("B", np.zeros((0, 0), np.float32))
        self.left_ = arrays.get("left", np.zeros((0, 0), np.float32))
        self.right_ = arrays.get("right", np.zeros((0, 0), np.float32))
