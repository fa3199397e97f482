"""SLIM: sparse linear methods (Ning & Karypis, ICDM 2011), ElasticNet item-item weights.

For every item j an ElasticNet regression of its column on the other items' columns:

    w_j = argmin_w  1/(2 n_users) ||x_j - X w||^2 + alpha l1_ratio ||w||_1
                    + alpha (1 - l1_ratio) / 2 ||w||^2,   w >= 0,  w_j = 0,

and scores = X_u W. As in the paper's fsSLIM, the regressors of item j can be restricted to
its ``neighbors`` most co-occurring items (0: all items). Each column is solved by
scikit-learn's coordinate descent on the Gram form: with G_cc = X_c^T X_c = R^T R
(Cholesky, with a 1e-6 relative jitter on the diagonal) and z = R^-T X_c^T x_j,
||x_j - X_c w||^2 = ||z - R w||^2 + const, so the ElasticNet runs on a (c x c) design instead of
(n_users x c) and gives the same weights (alpha is rescaled by n_users / c for scikit-learn's 1/(2 n_samples) loss). Column
blocks are solved in parallel threads (the solver and LAPACK release the GIL).
"""

from __future__ import annotations

import itertools
import os
import warnings

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from pydantic import Field

from zenrec.data.dataset import Dataset
from zenrec.models.base import (
    ItemItemRecommender,
    ModelConfig,
)

__all__ = ["SLIM", "SLIMConfig"]


class SLIMConfig(ModelConfig):
    alpha: float = Field(0.2, gt=0)
    """Overall penalty strength (scikit-learn's ``alpha`` on the n_users-sample problem;
    default RecBole's 0.2)."""
    l1_ratio: float = Field(0.02, ge=0, le=1)
    """Share of the L1 penalty in the ElasticNet mix (1: lasso, 0: ridge)."""
    neighbors: int = Field(200, ge=0)
    """Regressors per item: its most co-occurring items (fsSLIM); 0 uses every item."""
    max_iter: int = Field(100, ge=1)
    """Coordinate-descent sweeps per item."""
    tol: float = Field(1e-4, gt=0)
    """Convergence tolerance of coordinate descent."""
    n_jobs: int = Field(0, ge=0)
    """Threads solving column blocks in parallel (0: one per CPU core)."""


class SLIM(ItemItemRecommender):
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
        G = (X.T @ X).toarray().astype(np.float64)
        jobs = c.n_jobs or (os.cpu_count() or 1)
        n_blocks = max(1, min(n, jobs * 4))
        bounds = np.linspace(0, n, n_blocks + 1).astype(int)
        from sklearn.exceptions import ConvergenceWarning

        # Filters are process-wide; set them here, around the threads, not inside them
        # (catch_warnings is not thread-safe). Non-convergence within max_iter is expected.
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            parts = Parallel(n_jobs=jobs, prefer="threads")(
                delayed(self._solve_block)(G, n_users, int(lo), int(hi))
                for lo, hi in itertools.pairwise(bounds) if hi > lo
            )
        rows = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        cols = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
        vals = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.float32)
        self.W_ = sp.csr_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float32)

    def _solve_block(self, G: np.ndarray, n_users: int, lo: int, hi: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Columns lo..hi-1 of W as (row, col, value) triples."""
        import sklearn

        # scikit-learn's configuration is per thread: skip its parameter validation here, in
        # the worker thread (the arguments are built below; about 0.5 ms per item otherwise)
        with sklearn.config_context(skip_parameter_validation=True):
            return self._solve_columns(G, n_users, lo, hi)

    def _solve_columns(self, G: np.ndarray, n_users: int, lo: int, hi: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from sklearn.linear_model import enet_path

        c = self.config
        n = G.shape[0]
        rows, cols, vals = [], [], []
        for j in range(lo, hi):
            g = G[j].copy()  # G is symmetric: row j (contiguous) is column j
            g[j] = 0.0
            if c.neighbors and c.neighbors < n - 1:
                cand = np.argpartition(-g, c.neighbors - 1)[: c.neighbors]
            else:
                cand = np.delete(np.arange(n), j)
            cand = cand[g[cand] > 0]  # items never co-occurring with j get weight 0 anyway
            if cand.size == 0:
                continue
            Gcc = G[np.ix_(cand, cand)]
            Gcc[np.diag_indices_from(Gcc)] += 1e-6 * max(1.0, float(np.diag(Gcc).mean()))
            R = scipy.linalg.cholesky(Gcc, lower=False, check_finite=False)  # (c, c): R^T R = G_cc
            z = scipy.linalg.solve_triangular(R, g[cand], trans="T", check_finite=False)  # (c,)
            m = R.shape[0]
            # enet_path is ElasticNet.fit's solver without its per-call validation of the
            # estimator and the arrays (about 3 ms per item; R and z are float64, R Fortran)
            _, coefs, _ = enet_path(np.asfortranarray(R), np.ascontiguousarray(z),
                                    l1_ratio=c.l1_ratio, alphas=[c.alpha * n_users / m],
                                    precompute=False, max_iter=c.max_iter, tol=c.tol,
                                    positive=True, check_input=False, copy_X=False)
            w = coefs[:, 0]
            nz = w > 0
            rows.append(cand[nz])
            cols.append(np.full(int(nz.sum()), j))
            vals.append(w[nz].astype(np.float32))
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
