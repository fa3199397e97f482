"""Neighbourhood models: ItemKNN (Sarwar et al., WWW 2001) and UserKNN (Herlocker et al., 1999).

Cosine similarity with optional shrinkage, ``sim(a, b) = <x_a, x_b> / (|x_a| |x_b| + shrink)``,
computed in row blocks and kept sparse with the top-k neighbours of each row, so memory stays
at O(block x n + n x k) rather than O(n^2).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from zenrec.data.dataset import Dataset
from zenrec.models.base import ModelConfig, Recommender
from zenrec.models.bundle import sparse_from_state, sparse_state
from zenrec.models.classic.item_item import ItemItemRecommender
from zenrec.models.defaults import AUTO, Auto, ResolvedParams, data_stats, knn_shrink, user_knn_k

__all__ = ["ItemKNN", "ItemKNNConfig", "KNNConfig", "UserKNN", "UserKNNConfig", "topk_cosine"]


class KNNConfig(ModelConfig):
    k: int = Field(100, ge=1)
    """Neighbours kept per user/item."""
    shrink: float = Field(0.0, ge=0)
    """Shrinkage added to the cosine denominator (damps similarities on little support)."""
    block_bytes: int = Field(256 * 2**20, ge=2**20)
    """Memory budget of one dense similarity block."""


class ItemKNNConfig(KNNConfig):
    shrink: Annotated[float, Field(ge=0)] | Auto = AUTO  # type: ignore[assignment]
    """Shrinkage added to the cosine denominator ("auto": 300 / mean interactions per user, at
    most 300: about 0 on MovieLens, large on sparse data; see ``zenrec.models.defaults``)."""


class UserKNNConfig(KNNConfig):
    k: Annotated[int, Field(ge=1)] | Auto = AUTO  # type: ignore[assignment]
    """Neighbours kept per user ("auto": 10,000 / mean interactions per user, within 20 and
    n_users - 1: about 100 on MovieLens, thousands on sparse data; see
    ``zenrec.models.defaults``)."""


def topk_cosine(
    M: sp.csr_matrix, k: int, shrink: float = 0.0, block_bytes: int = 256 * 2**20
) -> sp.csr_matrix:
    """Top-``k`` cosine neighbours of every row of ``M`` (self excluded), as a sparse matrix.

    Args:
        M: (n, d) sparse matrix; rows are the entities compared.
        k: Neighbours kept per row.
        shrink: Shrinkage term of the denominator.
        block_bytes: Memory budget of one dense (block, n) similarity block.

    Returns:
        (n, n) CSR matrix whose row r holds the similarities of r's k nearest rows.
    """
    M = M.tocsr().astype(np.float32)
    n = M.shape[0]
    norms = np.sqrt(np.asarray(M.multiply(M).sum(axis=1)).ravel()).astype(np.float32)
    MT = M.T.tocsr()
    k = min(k, max(n - 1, 1))
    block = max(1, min(n, block_bytes // max(1, 4 * n)))
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        stop = min(n, start + block)
        G = (M[start:stop] @ MT).toarray()  # (b, n)
        denom = norms[start:stop, None] * norms[None, :] + shrink
        with np.errstate(divide="ignore", invalid="ignore"):
            S = np.where(denom > 0, G / denom, 0.0).astype(np.float32)
        S[np.arange(stop - start), np.arange(start, stop)] = 0.0
        top = (
            np.argpartition(-S, k - 1, axis=1)[:, :k]
            if k < n
            else np.tile(np.arange(n), (stop - start, 1))
        )
        v = np.take_along_axis(S, top, 1)
        keep = v > 0
        rows.append(np.repeat(np.arange(start, stop), keep.sum(1)))
        cols.append(top[keep])
        vals.append(v[keep])
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float32,
    )


class ItemKNN(ResolvedParams, ItemItemRecommender):
    """Item-based k-nearest-neighbours: ``score(u, i) = sum_{j in N_k(i)} sim(i, j) x_uj``.

    Examples:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=40, n_items=30, seed=0)
        >>> m = ItemKNN(k=5).fit(ds)
        >>> int(m.W_.getnnz(axis=0).max()) <= 5
        True
    """

    name = "itemknn"
    Config = ItemKNNConfig
    config: ItemKNNConfig

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        assert self.seen_ is not None
        c = self.config
        shrink = knn_shrink(data_stats(self.seen_)) if c.shrink == AUTO else float(c.shrink)
        self.resolved_params_ = {"shrink": shrink}
        S = topk_cosine(self.seen_.T.tocsr(), c.k, shrink, c.block_bytes)
        self.W_ = S.T.tocsr()  # column i holds the neighbours of target item i


class UserKNN(ResolvedParams, Recommender):
    """User-based k-nearest-neighbours: ``score(u, i) = sum_{v in N_k(u)} sim(u, v) x_vi``.

    Examples:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=40, n_items=30, seed=0)
        >>> UserKNN(k=5).fit(ds).S_.shape
        (40, 40)
    """

    name = "userknn"
    Config = UserKNNConfig
    config: UserKNNConfig

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        assert self.seen_ is not None
        c = self.config
        k = user_knn_k(data_stats(self.seen_)) if c.k == AUTO else int(c.k)
        self.resolved_params_ = {"k": k}
        self.S_ = topk_cosine(self.seen_, k, c.shrink, c.block_bytes)

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        assert self.seen_ is not None
        return np.asarray((self.S_[users] @ self.seen_).toarray(), dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return sparse_state("S", self.S_)

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.S_ = sparse_from_state("S", arrays)
