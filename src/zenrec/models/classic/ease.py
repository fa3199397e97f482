"""EASE: embarrassingly shallow autoencoder (Steck, "Embarrassingly Shallow Autoencoders for
Sparse Data", WWW 2019), closed form.

B = I - P diagMat(1 / diag(P)) with P = (X^T X + lambda I)^-1, diagonal of B zero;
scores = X_u B; a visitor's history is a binary row x, scored as x B (served online). By default
lambda is set from the data (:func:`zenrec.models.defaults.item_l2`).

How it is computed (all steps bounded by the item count, not the interaction count, except
the Gram product, which is linear in sum over users of n_u^2):

* G = X^T X as a **sparse** product (binary X: co-occurrence counts, exact in float32 up to
  2^24), densified once.
* P by a **Cholesky** factorisation and inverse of the symmetric positive definite
  G + lambda I (LAPACK ``potrf``/``potri`` through scipy: about n^3 flops against 2 n^3 for a
  general inverse), in **float32**: on ML-1M (``recbole`` preset, seed 2020) NDCG@10 is
  0.279003 against 0.279023 in float64, within 1e-4 (docs/results/perf.md). If the float32
  factorisation fails (not positive definite to working precision) the fit repeats in
  float64.
* Scoring X_u B is a sparse-times-dense product done in row **blocks** on the process's
  thread count (:mod:`zenrec._threads`), each block's scores written into one output array.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

import numpy as np
import scipy.linalg.lapack as lapack
import scipy.sparse as sp
from pydantic import Field

from zenrec._arrays import unique
from zenrec._threads import configured_threads
from zenrec.data.dataset import Dataset
from zenrec.models.base import ModelConfig, Recommender
from zenrec.models.defaults import AUTO, Auto, ResolvedParams, data_stats, item_l2

__all__ = ["EASE", "EASEConfig", "spd_inverse"]


class EASEConfig(ModelConfig):
    l2: Annotated[float, Field(gt=0)] | Auto = AUTO
    """L2 regularisation lambda added to the Gram matrix diagonal ("auto": 10 x mean
    interactions per user, e.g. about 1100 on ML-1M; RecBole's fixed default is 250)."""


def spd_inverse(a: np.ndarray) -> np.ndarray | None:
    """Inverse of a symmetric positive definite matrix by Cholesky (LAPACK potrf + potri).

    Works in the dtype of ``a`` (float32 or float64) and overwrites it. Returns None when
    ``a`` is not positive definite to working precision.
    """
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (a,))
    c, info = potrf(a, lower=True, overwrite_a=True, clean=False)
    if info != 0:
        return None
    inv, info = potri(c, lower=True, overwrite_c=True)
    if info != 0:
        return None
    _mirror_lower(inv)
    return np.asarray(inv)


def _mirror_lower(m: np.ndarray, block: int = 512) -> None:
    """Copy the lower triangle of square ``m`` into its upper triangle, in place, by blocks."""
    n = m.shape[0]
    for s in range(0, n, block):
        e = min(n, s + block)
        d = m[s:e, s:e]
        d[...] = np.tril(d) + np.tril(d, -1).T
        m[s:e, e:] = m[e:, s:e].T


def gram(x: sp.csr_matrix, dtype: type[np.floating] = np.float32) -> np.ndarray:
    """Dense X^T X of a sparse matrix, computed as sparse products.

    The output columns are cut into blocks of about equal work (``2 x threads`` blocks by
    column nnz), each block ``X^T X[:, block]`` computed in a thread (scipy's sparse product
    releases the GIL) and written into one dense array: ML-1M's Gram takes 0.56-0.60 s on 2 threads
    against 0.84-0.92 s as one product. Exact: the same integer counts either way.
    """
    xt = x.T.tocsr()
    n = x.shape[1]
    threads = configured_threads()
    if threads <= 1 or n < 256:
        return np.asarray((xt @ x).toarray(), dtype=dtype)
    xc = x.tocsc()
    work = np.concatenate([[0], np.cumsum(np.diff(xc.indptr))])
    cuts = np.unique(np.searchsorted(work, np.linspace(0, work[-1], 2 * threads + 1)).clip(0, n))
    cuts[0], cuts[-1] = 0, n
    out = np.empty((n, n), dtype=dtype)

    def block(k: int) -> None:
        s, e = int(cuts[k]), int(cuts[k + 1])
        if e > s:
            out[:, s:e] = (xt @ xc[:, s:e]).toarray()

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(block, range(len(cuts) - 1)))
    return out


def _block_product(
    rows: sp.csr_matrix, dense: np.ndarray, out: np.ndarray, block: int = 256
) -> None:
    """out = rows @ dense, in row blocks spread over the configured threads (scipy's sparse
    product releases the GIL)."""
    n = rows.shape[0]
    starts = range(0, n, block)

    def one(s: int) -> None:
        out[s : s + block] = rows[s : s + block] @ dense

    threads = min(configured_threads(), max(1, len(starts)))
    if threads <= 1:
        for s in starts:
            one(s)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, starts))


class EASE(ResolvedParams, Recommender):
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

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        X = self.seen_
        assert X is not None
        l2 = item_l2(data_stats(X)) if self.config.l2 == AUTO else float(self.config.l2)
        self.resolved_params_ = {"l2": l2}
        P = self._inverse(X, l2, np.float32)
        if P is None:  # not positive definite to float32 precision: retry in float64
            P = self._inverse(X, l2, np.float64)
        assert P is not None, "G + l2 I with l2 > 0 is positive definite in float64"
        P = P.T  # symmetric: the C-ordered view of LAPACK's Fortran-ordered result, no copy
        d = np.diag(P).copy()
        P /= -d[None, :]
        np.fill_diagonal(P, 0.0)
        self.B_ = np.ascontiguousarray(P, dtype=np.float32)

    def _inverse(self, X: sp.csr_matrix, l2: float, dtype: type[np.floating]) -> np.ndarray | None:
        G = gram(X, dtype)
        G[np.diag_indices_from(G)] += l2
        return spd_inverse(np.asfortranarray(G))

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        assert self.seen_ is not None
        out = np.empty((users.size, self.B_.shape[1]), dtype=np.float32)
        _block_product(self.seen_[users], self.B_, out)
        return out

    def _score_from_items(self, items: np.ndarray) -> np.ndarray:
        # x B for the binary history vector x: the sum of the history items' rows of B.
        return self.B_[unique(items)].sum(axis=0, dtype=np.float32)

    def _similar_items(self, items: np.ndarray) -> np.ndarray:
        return np.asarray(self.B_[items], dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {"B": self.B_}

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.B_ = arrays["B"]
