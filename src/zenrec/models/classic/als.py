"""iALS: implicit-feedback alternating least squares (Hu, Koren & Volinsky, ICDM 2008).

Backed by the ``implicit`` library's CPU solver (conjugate gradient). zenrec hands it a
users x items matrix itself, so the orientation question of implicit's API never reaches
users; BLAS is limited to one thread while implicit's own threads do the work. A visitor's
history is folded in by ``implicit``'s ``recalculate_user`` (one exact least-squares solve of
the user's factors with the item factors fixed, as in one ALS half-sweep).
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import Field

from zenrec._arrays import unique
from zenrec._threads import configured_threads
from zenrec.data.dataset import Dataset
from zenrec.models._linalg import cosine_similarities
from zenrec.models.base import ModelConfig, Recommender
from zenrec.models.defaults import (
    AUTO,
    Auto,
    ResolvedParams,
    als_factors,
    als_regularization,
    data_stats,
)

__all__ = ["IALS", "IALSConfig"]


class IALSConfig(ModelConfig):
    factors: Annotated[int, Field(ge=1)] | Auto = AUTO
    """Latent dimension ("auto": about sqrt(interactions) / 10 in steps of 16, 16..256)."""
    regularization: Annotated[float, Field(ge=0)] | Auto = AUTO
    """L2 regularisation of the factors ("auto": 7 / sqrt(density): 40 on ML-1M, 343 on a
    0.04%-dense set)."""
    alpha: float = Field(5.0, gt=0)
    """Confidence scaling: c_ui = 1 + alpha * x_ui."""
    iterations: int = Field(15, ge=1)
    """ALS sweeps."""
    num_threads: int = Field(0, ge=0)
    """Solver threads (0: the process thread policy, see :mod:`zenrec._threads`)."""
    seed: int = 0
    """Random seed of the factor initialisation."""


class IALS(ResolvedParams, Recommender):
    """Implicit ALS through ``implicit.cpu.als.AlternatingLeastSquares``.

    Examples:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=40, n_items=30, seed=0)
        >>> IALS(factors=4, iterations=2).fit(ds).item_factors_.shape
        (30, 4)
    """

    name = "ials"
    Config = IALSConfig
    config: IALSConfig

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        c = self.config
        threads = c.num_threads or configured_threads()
        assert self.seen_ is not None
        stats = data_stats(self.seen_)
        factors = als_factors(stats) if c.factors == AUTO else int(c.factors)
        reg = (
            als_regularization(stats, c.alpha)
            if c.regularization == AUTO
            else float(c.regularization)
        )
        self.resolved_params_ = {"factors": factors, "regularization": reg}
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=factors,
                regularization=reg,
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

    def _solver(self) -> Any:
        """An ``implicit`` ALS object holding this model's item factors (built once, cached)."""
        solver = getattr(self, "_implicit_solver", None)
        if solver is None:
            from implicit.cpu.als import AlternatingLeastSquares

            c = self.config
            factors = int(self.item_factors_.shape[1])
            reg = float(self.resolved_params_.get("regularization", c.regularization))
            solver = AlternatingLeastSquares(
                factors=factors,
                regularization=reg,
                alpha=c.alpha,
                num_threads=1,
                random_state=c.seed,
            )
            solver.item_factors = self.item_factors_
            solver.user_factors = np.zeros((1, factors), dtype=np.float32)
            _ = solver.YtY  # computed once here, not under concurrent requests
            self._implicit_solver = solver
        return solver

    def _score_from_items(self, items: np.ndarray) -> np.ndarray:
        import scipy.sparse as sp
        from threadpoolctl import threadpool_limits

        uniq = unique(items)
        row = sp.csr_matrix(
            (np.ones(uniq.size, np.float32), uniq, [0, uniq.size]),
            shape=(1, self.item_factors_.shape[0]),
        )
        with threadpool_limits(1, "blas"):
            x = np.asarray(self._solver().recalculate_user(0, row), dtype=np.float32)
        return self.item_factors_ @ x

    def _similar_items(self, items: np.ndarray) -> np.ndarray:
        return cosine_similarities(self.item_factors_, items)

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
        self._implicit_solver = None
