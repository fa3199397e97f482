"""Biased matrix factorisation for explicit ratings (Koren, Bell & Volinsky, Computer 2009).

r_hat(u, i) = mu + b_u + b_i + p_u . q_i, fitted by alternating ridge regressions
(weighted-lambda regularisation, Zhou et al. 2008): each user's [p_u, b_u] is solved in
closed form with items fixed, then each item's [q_i, b_i] with users fixed. Every step is
exact, so it converges in a few sweeps without a learning rate.

A visitor's history (items without ratings) is folded in by the same ridge solve with the item
factors fixed, each history item counted as rated at the top of the training scale r_max:
``p = (Q_h^T Q_h + n_h reg I)^-1 Q_h^T (r_max - mu - b_h)``, then ``r_hat(i) = mu + b_i + p . q_i``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from zenrec._arrays import unique
from zenrec._errors import DataError
from zenrec.data.dataset import Dataset
from zenrec.models._linalg import cosine_similarities
from zenrec.models.base import ModelConfig, Recommender

__all__ = ["BiasedMF", "BiasedMFConfig"]


class BiasedMFConfig(ModelConfig):
    """Defaults picked by 5-fold CV on ml-latest-small (not on the ML-100K/1M benchmarks)."""

    factors: int = Field(32, ge=1)
    """Latent dimension."""
    reg: float = Field(0.1, ge=0)
    """L2 regularisation of the factors, scaled by each user's/item's rating count."""
    reg_bias: float = Field(0.05, ge=0)
    """L2 regularisation of the biases, scaled by rating count."""
    iterations: int = Field(6, ge=1)
    """Alternating sweeps."""
    solver: Literal["cg", "exact"] = "cg"
    """``cg``: a few conjugate-gradient steps per sweep, vectorised over all users/items
    (Takacs et al. 2011, as in ``implicit``); ``exact``: one dense solve per user/item."""
    cg_steps: int = Field(3, ge=1)
    """Conjugate-gradient steps per sweep (``solver="cg"``)."""
    init_std: float = Field(0.1, gt=0)
    """Standard deviation of the initial factors."""
    seed: int = 0
    """Random seed of the initialisation."""


def _solve_side(
    R: sp.csr_matrix,
    other: np.ndarray,
    other_bias: np.ndarray,
    mu: float,
    reg: float,
    reg_bias: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge-solve [factors, bias] of every row of ``R`` given the other side fixed.

    Rows are solved one by one with BLAS-sized work (A^T A of the row's ratings); the
    right-hand sides for all rows come from one sparse product.
    """
    n, k = R.shape[0], other.shape[1]
    Xa = np.hstack([other, np.ones((other.shape[0], 1))])  # (m, k+1)
    lam = np.full(k + 1, reg)
    lam[k] = reg_bias
    Y = sp.csr_matrix((R.data - mu - other_bias[R.indices], R.indices, R.indptr), shape=R.shape)
    rhs = np.asarray(Y @ Xa)  # (n, k+1)
    counts = np.diff(R.indptr)
    sol = np.zeros((n, k + 1))
    indptr, indices = R.indptr, R.indices
    diag = np.diag_indices(k + 1)
    for r in np.flatnonzero(counts):
        A = Xa[indices[indptr[r] : indptr[r + 1]]]
        M = A.T @ A
        M[diag] += counts[r] * lam
        sol[r] = np.linalg.solve(M, rhs[r])
    return sol[:, :k], sol[:, k]


def _cg_side(
    R: sp.csr_matrix,
    other: np.ndarray,
    other_bias: np.ndarray,
    mu: float,
    reg: float,
    reg_bias: float,
    theta: np.ndarray,
    steps: int,
) -> np.ndarray:
    """Approximately solve every row's ridge system by ``steps`` CG steps from ``theta``.

    The system of row u is (sum_i a_i a_i^T + n_u diag(lam)) t = sum_i y_ui a_i with
    a_i = [q_i, 1]; its product with all rows' vectors at once costs two gathers over the
    ratings and one sparse product, so no Python loop runs per user.
    """
    k1 = other.shape[1] + 1
    Xa = np.hstack([other, np.ones((other.shape[0], 1))])  # (m, k+1)
    lam = np.full(k1, reg)
    lam[-1] = reg_bias
    counts = np.diff(R.indptr)
    rows = np.repeat(np.arange(R.shape[0]), counts)
    A = Xa[R.indices]  # (nnz, k+1), fixed during this half-sweep
    reg_diag = counts[:, None] * lam[None, :]  # (n, k+1)

    def matvec(T: np.ndarray) -> np.ndarray:
        s = np.einsum("ij,ij->i", A, T[rows])  # (nnz,)
        S = sp.csr_matrix((s, R.indices, R.indptr), shape=R.shape)
        return np.asarray(S @ Xa) + reg_diag * T

    y = R.data - mu - other_bias[R.indices]
    b = np.asarray(sp.csr_matrix((y, R.indices, R.indptr), shape=R.shape) @ Xa)
    x = theta.copy()
    r = b - matvec(x)
    p = r.copy()
    rs = np.einsum("ij,ij->i", r, r)
    for _ in range(steps):
        Ap = matvec(p)
        pAp = np.einsum("ij,ij->i", p, Ap)
        alpha = np.divide(rs, pAp, out=np.zeros_like(rs), where=pAp > 1e-30)
        x += alpha[:, None] * p
        r -= alpha[:, None] * Ap
        rs_new = np.einsum("ij,ij->i", r, r)
        beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 1e-30)
        p = r + beta[:, None] * p
        rs = rs_new
    return x


class BiasedMF(Recommender):
    """Biased MF for rating prediction (RMSE/MAE); also ranks by predicted rating.

    Examples:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=40, n_items=30, seed=0)
        >>> m = BiasedMF(factors=4, iterations=3).fit(ds)
        >>> bool(abs(float(m.predict([1000], [1001])[0]) - 3) < 3)
        True
    """

    name = "biasedmf"
    Config = BiasedMFConfig
    config: BiasedMFConfig
    task = "rating"

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        if train.ratings is None:
            raise DataError(
                f"biasedmf predicts ratings, but dataset '{train.name}' has none; "
                "read the data with rating_col=COLUMN or use a ranking model (ials, ease)"
            )
        c = self.config
        rng = np.random.default_rng(c.seed)
        R = sp.csr_matrix(
            (train.ratings.astype(np.float64), (train.users, train.items)),
            shape=(train.n_users, train.n_items),
        )
        R.sum_duplicates()
        RT = R.T.tocsr()
        self.mu_ = float(train.ratings.mean())
        self.rating_max_ = float(train.ratings.max())
        P = rng.normal(0, c.init_std, (train.n_users, c.factors))
        Q = rng.normal(0, c.init_std, (train.n_items, c.factors))
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        if c.solver == "exact":
            for _ in range(c.iterations):
                P, bu = _solve_side(R, Q, bi, self.mu_, c.reg, c.reg_bias)
                Q, bi = _solve_side(RT, P, bu, self.mu_, c.reg, c.reg_bias)
        else:
            tu = np.hstack([P, bu[:, None]])
            ti = np.hstack([Q, bi[:, None]])
            for _ in range(c.iterations):
                tu = _cg_side(R, ti[:, :-1], ti[:, -1], self.mu_, c.reg, c.reg_bias, tu, c.cg_steps)
                ti = _cg_side(
                    RT, tu[:, :-1], tu[:, -1], self.mu_, c.reg, c.reg_bias, ti, c.cg_steps
                )
            P, bu, Q, bi = tu[:, :-1], tu[:, -1], ti[:, :-1], ti[:, -1]
        self.P_, self.Q_ = P.astype(np.float32), Q.astype(np.float32)
        self.bu_, self.bi_ = bu.astype(np.float32), bi.astype(np.float32)

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        return self.mu_ + self.bu_[users, None] + self.bi_[None, :] + self.P_[users] @ self.Q_.T

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        dot = np.einsum("ij,ij->i", self.P_[users], self.Q_[items])
        return (self.mu_ + self.bu_[users] + self.bi_[items] + dot).astype(np.float32)

    def _score_from_items(self, items: np.ndarray) -> np.ndarray:
        h = unique(items)
        q = self.Q_[h].astype(np.float64)
        target = self.rating_max_ - self.mu_ - self.bi_[h].astype(np.float64)
        a = q.T @ q + max(self.config.reg, 1e-6) * q.shape[0] * np.eye(q.shape[1])
        p = np.linalg.solve(a, q.T @ target)
        return (self.mu_ + self.bi_ + self.Q_ @ p.astype(np.float32)).astype(np.float32)

    def _similar_items(self, items: np.ndarray) -> np.ndarray:
        return cosine_similarities(self.Q_, items)

    def _predict_fallback(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.full(users.size, self.mu_, dtype=np.float32)
        ku, ki = users >= 0, items >= 0
        out[ku] += self.bu_[users[ku]]
        out[ki] += self.bi_[items[ki]]
        return out

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "P": self.P_,
            "Q": self.Q_,
            "bu": self.bu_,
            "bi": self.bi_,
            "mu": np.asarray([self.mu_], dtype=np.float64),
            "rating_max": np.asarray([self.rating_max_], dtype=np.float64),
        }

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.P_, self.Q_ = arrays["P"], arrays["Q"]
        self.bu_, self.bi_ = arrays["bu"], arrays["bi"]
        self.mu_ = float(arrays["mu"][0])
        # bundles written before history support lack r_max: one point above the mean
        self.rating_max_ = (
            float(arrays["rating_max"][0]) if "rating_max" in arrays else self.mu_ + 1.0
        )
