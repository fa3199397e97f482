"""iALS: implicit-feedback alternating least squares (Hu, Koren & Volinsky, ICDM 2008).

Backed by the ``implicit`` library's CPU solver (conjugate gradient). zenrec hands it a
users x items matrix itself, so the orientation question of implicit's API never reaches
users; BLAS is limited to one thread while implicit's own threads do the work.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from zenrec._threads import configured_threads
from zenrec.data.dataset import Dataset
from zenrec.models.base import ModelConfig, Recommender

__all__ = ["IALS", "IALSConfig"]


class IALSConfig(ModelConfig):
    factors: int = Field(64, ge=1)
    """Latent dimension."""
    regularization: float = Field(5.0, ge=0)
    """L2 regularisation of the factors."""
    alpha: float = Field(2.0, gt=0)
    """Confidence scaling: c_ui = 1 + alpha * x_ui."""
    iterations: int = Field(15, ge=1)
    """ALS sweeps."""
    num_threads: int = Field(0, ge=0)
    """Solver threads (0: the process thread policy, see :mod:`zenrec._threads`)."""
    seed: int = 0
    """Random seed of the factor initialisation."""


class IALS(Recommender):
    """Implicit ALS through ``implicit.cpu.als.AlternatingLeastSquares``.

    Example:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=40, n_items=30, seed=0)
        >>> IALS(factors=4, iterations=2).fit(ds).item_factors_.shape
        (30, 4)
    """

    name = "ials"
    Config = IALSConfig

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        c = self.config
        threads = c.num_threads or configured_threads()
        assert self.seen_ is not None
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=c.factors,
                regularization=c.regularization,
                alpha=c.alpha,
                iterations=c.iterations,
                num_threads=threads,
                random_state=c.seed,
            )
            model.fit(self.seen_, show_progress=False)  # users x items, as implicit >= 0.5 expects
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", self.user_factors_[users], self.item_factors_[items])

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
