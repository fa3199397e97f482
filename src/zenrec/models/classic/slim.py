"""SLIM: sparse linear methods (Ning & Karypis, ICDM 2011), ElasticNet item-item weights.

For every item j an ElasticNet regression of its column on the other items' columns:

    w_j = argmin_w  1/(2 n_users) ||x_j - X w||^2 + alpha l1_ratio ||w||_1
                    + alpha (1 - l1_ratio) / 2 ||w||^2,   w >= 0,  w_j = 0,

and scores = X_u W. Each column is solved by scikit-learn's coordinate descent on the Gram form
(``enet_path`` with ``precompute`` = G_cc = X_c^T X_c and ``Xy`` = X_c^T x_j, G = X^T X computed
once), so the cost of a column grows with its regressors, not with the number of users.

By default (``neighbors=0``) every item is a regressor, as in the paper and in RecBole's
SLIMElastic, and the solution is exact: each column starts from a working set of its most
co-occurring items, and after each solve the optimality (KKT) conditions of the left-out items
are checked, g_k = (x_k^T (x_j - X_c w)) <= n_users alpha l1_ratio for a weight held at 0; the
items that violate them join the working set and the column is solved again, warm-started, until
none does. Items that never co-occur with j have g_k = 0 and never enter. With ``neighbors`` = k
> 0 the regressors are restricted to the k most co-occurring items (the paper's fsSLIM), which
bounds the cost when the penalty is weak. Column blocks are solved in parallel threads (the
solver releases the GIL).
"""

from __future__ import annotations

import itertools
import warnings
from typing import Annotated

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from zenrec._threads import configured_threads
from zenrec.data.dataset import Dataset
from zenrec.models.base import ModelConfig
from zenrec.models.classic.item_item import ItemItemRecommender
from zenrec.models.defaults import AUTO, Auto, ResolvedParams, data_stats, slim_alpha

__all__ = ["SLIM", "SLIMConfig"]

WORKING_SET = 100
"""Initial working set of a column under ``neighbors=0``: its most co-occurring items."""


class SLIMConfig(ModelConfig):
    alpha: Annotated[float, Field(gt=0)] | Auto = AUTO
    """Overall penalty strength (scikit-learn's ``alpha`` on the n_users-sample problem).
    "auto": RecBole's 0.2, lowered to the L2 of EASE's rule in Gram units, ``10 x interactions
    per user / (n_users (1 - l1_ratio))``, where that is smaller (many users with few
    interactions; :func:`zenrec.models.defaults.slim_alpha`)."""
    l1_ratio: float = Field(0.02, ge=0, le=1)
    """Share of the L1 penalty in the ElasticNet mix (1: lasso, 0: ridge)."""
    neighbors: int = Field(0, ge=0)
    """Regressors per item: 0 (default) every item, exactly; k > 0 only its k most co-occurring
    items (fsSLIM), cheaper when the penalty is weak."""
    max_iter: int = Field(100, ge=1)
    """Coordinate-descent sweeps per item."""
    tol: float = Field(1e-4, gt=0)
    """Convergence tolerance of coordinate descent."""
    n_jobs: int = Field(0, ge=0)
    """Threads solving column blocks in parallel (0: zenrec's thread setting, ``--threads`` /
    ``$ZENREC_THREADS``, else every core)."""


class SLIM(ResolvedParams, ItemItemRecommender):
    """SLIM ElasticNet item-item model with non-negative, sparse weights.

    Example:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=40, n_items=30, seed=0)
        >>> m = SLIM(alpha=0.01, n_jobs=1).fit(ds)
        >>> bool((m.W_.data >= 0).all()) and float(m.W_.diagonal().max()) == 0.0
        True
    """

    name = "slim"
    Config = SLIMConfig
    config: SLIMConfig

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        from joblib import Parallel, delayed
        from threadpoolctl import threadpool_limits

        c = self.config
        X = self.seen_
        assert X is not None
        n_users, n = X.shape
        alpha = slim_alpha(data_stats(X), c.l1_ratio) if c.alpha == AUTO else float(c.alpha)
        self.resolved_params_ = {"alpha": alpha}
        G = (X.T @ X).toarray().astype(np.float64)
        jobs = c.n_jobs or configured_threads()
        n_blocks = max(1, min(n, jobs * 4))
        bounds = np.linspace(0, n, n_blocks + 1).astype(int)
        from sklearn.exceptions import ConvergenceWarning

        # Filters are process-wide; set them here, around the threads, not inside them
        # (catch_warnings is not thread-safe). Non-convergence within max_iter is expected.
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            parts = Parallel(n_jobs=jobs, prefer="threads")(
                delayed(self._solve_block)(G, n_users, alpha, int(lo), int(hi))
                for lo, hi in itertools.pairwise(bounds)
                if hi > lo
            )
        rows = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        cols = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
        vals = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.float32)
        self.W_ = sp.csr_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float32)

    def _solve_block(
        self, G: np.ndarray, n_users: int, alpha: float, lo: int, hi: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Columns lo..hi-1 of W as (row, col, value) triples."""
        import sklearn

        # scikit-learn's configuration is per thread: skip its parameter validation here, in
        # the worker thread (the arguments are built below; about 0.5 ms per item otherwise)
        with sklearn.config_context(skip_parameter_validation=True):
            return self._solve_columns(G, n_users, alpha, lo, hi)

    def _solve_columns(
        self, G: np.ndarray, n_users: int, alpha: float, lo: int, hi: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from sklearn.linear_model import enet_path

        c = self.config
        n = G.shape[0]
        l1_reg = alpha * c.l1_ratio * n_users  # the L1 threshold on x_k^T residual
        exact = c.neighbors == 0 or c.neighbors >= n - 1
        start = WORKING_SET if exact else c.neighbors
        rows, cols, vals = [], [], []
        for j in range(lo, hi):
            g = G[j].copy()  # G is symmetric: row j (contiguous) is column j, x_k^T x_j
            g[j] = 0.0
            pos = np.flatnonzero(g > 0)  # items never co-occurring with j keep weight 0
            if pos.size == 0:
                continue
            cand = pos[np.argsort(-g[pos], kind="stable")[:start]] if pos.size > start else pos
            # the Gram solver reads y only for ||y||^2 = G_jj (duality-gap scale) and X only for
            # its shape (n_samples scales the penalties): a zero-strided stand-in for X
            y = np.zeros(n_users)
            y[0] = np.sqrt(G[j, j])
            w0: np.ndarray | None = None
            while True:
                Q = np.ascontiguousarray(G[np.ix_(cand, cand)])
                X_shape = np.broadcast_to(np.zeros((1, 1)), (n_users, cand.size))
                _, coefs, _ = enet_path(
                    X_shape,
                    y,
                    l1_ratio=c.l1_ratio,
                    alphas=[alpha],
                    precompute=Q,
                    Xy=np.ascontiguousarray(g[cand]),
                    coef_init=w0,
                    max_iter=c.max_iter,
                    tol=c.tol,
                    positive=True,
                    check_input=False,
                    copy_X=False,
                )
                w = coefs[:, 0]
                if not exact:
                    break
                nz = w > 0
                grad = g - w[nz] @ G[cand[nz]]  # x_k^T (x_j - X_c w) for every item k
                grad[cand] = -np.inf
                grad[j] = -np.inf
                viol = np.flatnonzero(grad > l1_reg)
                if viol.size == 0:
                    break
                w0 = np.concatenate([w, np.zeros(viol.size)])
                cand = np.concatenate([cand, viol])
            nz = w > 0
            rows.append(cand[nz])
            cols.append(np.full(int(nz.sum()), j))
            vals.append(w[nz].astype(np.float32))
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
