"""Sequence baselines: V-SKNN (sequence-aware nearest neighbours) and a first-order
item-transition model, the simple models the session-recommendation literature finds hard to
beat (Ludewig & Jannach, "Evaluation of session-based recommendation algorithms", UMUAI 2018;
Jannach & Ludewig, "When recurrent neural networks meet the neighborhood for session-based
recommendation", RecSys 2017; Ludewig, Mauro, Latifi & Jannach, "Empirical analysis of
session-based recommendation algorithms", UMUAI 2021).

A user's "session" is their most recent ``max_len`` items in time order (ties by row order, as
:mod:`zenrec.data.sequences` orders them); the other users' training histories are the
sessions of the past.

**V-SKNN** (``vsknn``). The current session ``s = (s_1 .. s_n)`` (oldest first) becomes a
vector ``q`` with ``q[s_p] = p / n``: the most recent item weighs 1, the oldest ``1/n``
(linear decay; a repeated item keeps its most recent weight). Similarity to a training
history ``x_v`` (binary) is ``sim(u, v) = q . x_v`` (``similarity="dot"``, the paper's vector
product) or ``q . x_v / (|q| |x_v|)`` (``"cosine"``). Candidates are the histories sharing an
item with ``s`` (the user's own history excluded), of which the ``sample_size`` most recent (by
their last interaction) are kept (0: all); the ``k`` most similar are the neighbours. Item score:
``score_i = (1 + idf_weight * log(n_users / pop_i)) * sum_{v in N(u)} sim(u, v) x_vi``.

**Item transitions** (``transition``). Counts ``C_ij = sum over users, over steps d = 1..window
with item j d steps after item i, of decay^(d-1)`` (``window=1``: first-order Markov chain;
larger windows: the "sequential rules" baseline SR with geometric instead of ``1/d`` weights);
rows are normalised with shrinkage, ``P_ij = C_ij / (sum_j C_ij + shrink)``. A user with
history ``(h_1 .. h_n)`` is scored ``sum_{r=0}^{n_last-1} history_decay^r P[h_{n-r}]``: the last
item, or the last few with decaying weight.

Both score from histories, not from a user's training row: after ``fit(train, valid)`` with
``history_with_valid=true`` (default) the histories include the validation interactions, which
precede the test item in leave-one-out (as SASRec's do). The neighbour pool and the transition
counts come from the training part only. :meth:`SequenceBaseline.validation_view` returns the
model scoring from the training histories alone, which the protocol's validation evaluation
uses, so tuning never scores a user from a history that holds the validation item.
Everything is sparse matrix products over users in blocks; no loop over users.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from zenrec._errors import DataError
from zenrec.data.dataset import Dataset
from zenrec.models.base import ModelConfig, Recommender, training_history_view

__all__ = [
    "VSKNN",
    "ItemTransition",
    "ItemTransitionConfig",
    "SequenceBaseline",
    "VSKNNConfig",
    "history_table",
]

_BLOCK_FLOATS = 1 << 24  # a dense (rows x n_users) similarity block holds at most 64 MB


def history_table(
    users: np.ndarray,
    items: np.ndarray,
    times: np.ndarray,
    n_users: int,
    max_len: int,
) -> np.ndarray:
    """The last ``max_len`` items of every user in time order, left-padded.

    Ties in time keep the order of the given rows (so rows appended after the training rows,
    such as validation rows, come last among equal times).

    Returns:
        int64 array (n_users, max_len): item index + 1, 0 = padding, most recent last.

    Example:
        >>> history_table(np.array([0, 0, 0, 1]), np.array([4, 5, 6, 4]),
        ...               np.array([3, 1, 2, 5]), 2, 2).tolist()
        [[7, 5], [0, 5]]
    """
    order = np.lexsort((np.arange(users.size), times, users))
    u, it = users[order], items[order]
    counts = np.bincount(u, minlength=n_users)
    ends = np.cumsum(counts)
    from_end = np.repeat(ends, counts) - np.arange(u.size)  # 1 = the user's most recent row
    keep = from_end <= max_len
    out = np.zeros((n_users, max_len), dtype=np.int64)
    out[u[keep], max_len - from_end[keep]] = it[keep] + 1
    return out


def _require_order(name: str, train: Dataset) -> np.ndarray:
    if train.timestamps is None:
        raise DataError(
            f"{name}: dataset '{train.name}' has no timestamps, and this model reads each "
            "user's items in time order; load data with a time column (--time-col, or "
            "timestamps= in Dataset.from_raw) or a one-sequence-per-line file "
            "(zenrec.data.read_sequences)"
        )
    return train.timestamps


class SequenceBaseline(Recommender):
    """Shared part of the sequence baselines: per-user history tables (training, and training +
    validation), scoring in blocks of users, the validation view and the bundle state.

    Subclasses implement ``_learn(train, times)`` and ``_score_histories(hist, users)``.
    """

    config: Any

    def __init__(self, config: Any = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.histories_: np.ndarray | None = None
        self.train_histories_: np.ndarray | None = None

    def _history_len(self) -> int:
        return int(self.config.max_len)

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        times = _require_order(self.name, train)
        n = self._history_len()
        self.histories_ = history_table(train.users, train.items, times, train.n_users, n)
        self.train_histories_ = None
        self._learn(train, times)
        if self.config.history_with_valid and valid is not None and len(valid):
            vt = _require_order(self.name, valid)
            self.train_histories_ = self.histories_
            self.histories_ = history_table(
                np.concatenate([train.users, valid.users]),
                np.concatenate([train.items, valid.items]),
                np.concatenate([times, vt]),
                train.n_users,
                n,
            )

    def _learn(self, train: Dataset, times: np.ndarray) -> None:
        raise NotImplementedError  # pragma: no cover

    def _score_histories(self, hist: np.ndarray, users: np.ndarray | None) -> np.ndarray:
        """Scores (float32, (len(hist), n_items)) of history rows; ``users`` are the rows'
        user indices (``None`` for visitors)."""
        raise NotImplementedError  # pragma: no cover

    def validation_view(self) -> Self:
        """This model scoring from the training histories alone (no validation items); see
        :func:`zenrec.models.base.training_history_view`."""
        return training_history_view(self)

    def history_of(self, users: np.ndarray) -> np.ndarray:
        """(len(users), max_len) rows of the scoring history table (item index + 1, 0 = pad)."""
        self._check_fitted()
        assert self.histories_ is not None
        return self.histories_[np.asarray(users, np.int64)]

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        return self._score_histories(self.history_of(users), users)

    def _score_from_items(self, items: np.ndarray) -> np.ndarray:
        n = self._history_len()
        hist = np.zeros((1, n), dtype=np.int64)
        last = np.asarray(items, dtype=np.int64)[-n:]
        hist[0, n - last.size :] = last + 1
        return self._score_histories(hist, None)[0]

    def _history_state(self) -> dict[str, np.ndarray]:
        assert self.histories_ is not None
        out = {"histories": self.histories_}
        if self.train_histories_ is not None:
            out["train_histories"] = self.train_histories_
        return out

    def _load_history_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.histories_ = np.asarray(arrays["histories"])
        th = arrays.get("train_histories")
        self.train_histories_ = None if th is None else np.asarray(th)


def _history_rows(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, item) of each non-padding entry of a history table, row-major."""
    r, c = np.nonzero(hist)
    return r, c, hist[r, c] - 1


# ---------------------------------------------------------------------------------- V-SKNN
class VSKNNConfig(ModelConfig):
    """V-SKNN: a user's recent items, weighted by position, against other users' histories."""

    k: int = Field(200, ge=1)
    """Neighbours: the k training histories most similar to the current session."""
    max_len: int = Field(5, ge=1)
    """Session length: the user's most recent max_len items form the current session."""
    sample_size: int = Field(0, ge=0)
    """Candidates kept before choosing neighbours: the sample_size histories sharing an item
    with the session that were active most recently (0: every history sharing an item)."""
    similarity: Literal["dot", "cosine"] = "cosine"
    """dot: q . x_v (the paper's vector product, which favours long histories); cosine:
    q . x_v / (|q| |x_v|)."""
    idf_weight: Annotated[float, Field(ge=0)] = 3.8
    """Item scores are multiplied by 1 + idf_weight * log(n_users / popularity) (0: off).

    The defaults (k 200, max_len 5, cosine, idf_weight 3.8) are the geometric midpoints of the
    values tuned on ML-100K and ml-latest-small; on ml-1m-ts, held out of that choice, they
    score 102% of the tuned model (docs/results/sequential.md)."""
    history_with_valid: bool = True
    """After fitting, score from histories that include the validation interactions (they
    precede the test item in leave-one-out); validation itself is scored without them."""


class VSKNN(SequenceBaseline):
    """V-SKNN (Jannach & Ludewig, RecSys 2017; Ludewig & Jannach, UMUAI 2018).

    Scores a user from the neighbours of their recent items; see the module docstring for the
    formulas. Memory: the training matrix, plus a dense block of at most 2^24 similarities.

    Examples:
        >>> from zenrec.testing import planted_sequences
        >>> p = planted_sequences()
        >>> m = VSKNN(k=50).fit(p.train)
        >>> u = next(iter(p.withheld))
        >>> m.recommend([u], k=1).item_lists[0].tolist() == [p.withheld[u]]
        True
    """

    name = "vsknn"
    Config = VSKNNConfig
    config: VSKNNConfig

    def _learn(self, train: Dataset, times: np.ndarray) -> None:
        assert self.seen_ is not None
        X = self.seen_  # binary (n_users, n_items)
        self.pool_t_ = X.T.tocsr()  # (n_items, n_users): one sparse product gives q . x_v
        n_users = X.shape[0]
        last = np.full(n_users, np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(last, train.users, times)
        # users by their last training interaction, most recent first (ties by index)
        self.recency_order_ = np.lexsort((np.arange(n_users), -last)).astype(np.int64)
        self.norms_ = np.sqrt(np.diff(X.indptr)).astype(np.float32)
        pop = np.asarray(self.item_popularity_, dtype=np.float64)
        idf = np.log(n_users / np.maximum(pop, 1.0))
        self.idf_ = idf.astype(np.float32)

    def _query(self, hist: np.ndarray) -> sp.csr_matrix:
        """Session vectors q (rows of ``hist``): item at position p of n weighs p / n."""
        r, c, it = _history_rows(hist)
        n = np.count_nonzero(hist, axis=1)
        start = hist.shape[1] - n  # first non-padding column of each row
        w = (c - start[r] + 1) / n[r]
        # a repeated item keeps its most recent (largest) weight: keep the last of each pair
        key = r * self.n_items + it
        _, last = np.unique(key[::-1], return_index=True)
        keep = key.size - 1 - last
        q = sp.csr_matrix(
            (w[keep].astype(np.float32), (r[keep], it[keep])),
            shape=(hist.shape[0], self.n_items),
        )
        if self.config.similarity == "cosine":
            qn = np.sqrt(np.asarray(q.multiply(q).sum(axis=1)).ravel())
            q = sp.diags_array(1.0 / np.maximum(qn, 1e-12)).astype(np.float32) @ q
        return sp.csr_matrix(q)

    def _neighbours(self, q: sp.csr_matrix, users: np.ndarray | None) -> sp.csr_matrix:
        """Sparse (rows, n_users) weights: each row's k neighbours with their similarity."""
        c = self.config
        s = np.asarray((q @ self.pool_t_).toarray(), dtype=np.float32)  # (B, n_users)
        if c.similarity == "cosine":
            s /= np.maximum(self.norms_, 1e-12)[None, :]
        if users is not None:  # a user's own history is not a neighbour
            s[np.arange(users.size), users] = 0.0
        n_users = s.shape[1]
        if 0 < c.sample_size < n_users:
            by_recency = s[:, self.recency_order_]  # (B, n_users), most recent first
            by_recency[np.cumsum(by_recency > 0, axis=1) > c.sample_size] = 0.0
            s = np.empty_like(by_recency)
            s[:, self.recency_order_] = by_recency
        rows = np.arange(s.shape[0])[:, None]
        if c.k < n_users:
            top = np.argpartition(-s, c.k - 1, axis=1)[:, : c.k]  # (B, k)
        else:
            top = np.broadcast_to(np.arange(n_users), s.shape)
        vals = s[rows, top]
        ok = vals > 0
        return sp.csr_matrix(
            (vals[ok], (np.broadcast_to(rows, top.shape)[ok], top[ok])), shape=s.shape
        )

    def _score_histories(self, hist: np.ndarray, users: np.ndarray | None) -> np.ndarray:
        assert self.seen_ is not None
        out = np.empty((hist.shape[0], self.n_items), dtype=np.float32)
        step = max(1, _BLOCK_FLOATS // max(1, self.seen_.shape[0]))
        for s in range(0, hist.shape[0], step):
            b = slice(s, s + step)
            w = self._neighbours(self._query(hist[b]), None if users is None else users[b])
            out[b] = (w @ self.seen_).toarray()
        if self.config.idf_weight > 0:
            out *= 1.0 + np.float32(self.config.idf_weight) * self.idf_[None, :]
        return out

    def _state(self) -> dict[str, np.ndarray]:
        return {
            **self._history_state(),
            "recency_order": self.recency_order_,
            "idf": self.idf_,
        }

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        assert self.seen_ is not None
        self._load_history_state(arrays)
        self.recency_order_ = np.asarray(arrays["recency_order"])
        self.idf_ = np.asarray(arrays["idf"])
        self.pool_t_ = self.seen_.T.tocsr()
        self.norms_ = np.sqrt(np.diff(self.seen_.indptr)).astype(np.float32)


# ---------------------------------------------------------------------------------- transitions
class ItemTransitionConfig(ModelConfig):
    """Item-to-item transition probabilities from consecutive items of users' histories."""

    window: int = Field(12, ge=1)
    """Steps counted: item j counts as following item i when it comes 1..window steps later
    (1: a first-order Markov chain)."""
    decay: Annotated[float, Field(gt=0, le=1)] = 0.85
    """Weight of a pair d steps apart: decay^(d-1)."""
    shrink: Annotated[float, Field(ge=0)] = 650.0
    """Shrinkage added to each row's total before normalising: rare items' rows shrink."""
    n_last: int = Field(8, ge=1)
    """A user is scored from their last n_last items."""
    history_decay: Annotated[float, Field(gt=0, le=1)] = 0.65
    """Weight of the r-th most recent of those items (r = 0 for the last): history_decay^r.

    The defaults (window 12, decay 0.85, shrink 650, n_last 8, history_decay 0.65) are the
    midpoints of the values tuned on ML-100K and ml-latest-small; on ml-1m-ts, held out of that
    choice, they score 100% of the tuned model (docs/results/sequential.md). window=1,
    n_last=1 is the first-order Markov chain."""
    history_with_valid: bool = True
    """After fitting, score from histories that include the validation interactions (they
    precede the test item in leave-one-out); validation itself is scored without them."""


class ItemTransition(SequenceBaseline):
    """First-order item transitions ("Markov" / sequential rules) with shrinkage.

    See the module docstring for the formulas. Memory: the sparse transition matrix (at most
    the number of training interactions times ``window`` entries).

    Examples:
        >>> from zenrec.testing import planted_sequences
        >>> p = planted_sequences()
        >>> m = ItemTransition().fit(p.train)
        >>> u = next(iter(p.withheld))
        >>> m.recommend([u], k=1).item_lists[0].tolist() == [p.withheld[u]]
        True
    """

    name = "transition"
    Config = ItemTransitionConfig
    config: ItemTransitionConfig

    def _history_len(self) -> int:
        return int(self.config.n_last)

    def _learn(self, train: Dataset, times: np.ndarray) -> None:
        c = self.config
        order = np.lexsort((np.arange(len(train)), times, train.users))
        u, it = train.users[order], train.items[order]
        src: list[np.ndarray] = []
        dst: list[np.ndarray] = []
        wts: list[np.ndarray] = []
        for d in range(1, min(c.window, max(1, u.size - 1)) + 1):
            same = (u[:-d] == u[d:]) & (it[:-d] != it[d:])  # same user; no self-transition
            src.append(it[:-d][same])
            dst.append(it[d:][same])
            wts.append(np.full(int(same.sum()), c.decay ** (d - 1), dtype=np.float64))
        n = self.n_items
        counts = sp.csr_matrix(
            (np.concatenate(wts), (np.concatenate(src), np.concatenate(dst))), shape=(n, n)
        )
        counts.sum_duplicates()
        totals = np.asarray(counts.sum(axis=1)).ravel() + c.shrink
        scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
        self.P_ = sp.csr_matrix(sp.diags_array(scale) @ counts, dtype=np.float32)

    def _score_histories(self, hist: np.ndarray, users: np.ndarray | None) -> np.ndarray:
        r, col, it = _history_rows(hist)
        age = hist.shape[1] - 1 - col  # 0: the most recent item
        w = np.power(self.config.history_decay, age).astype(np.float32)
        q = sp.csr_matrix((w, (r, it)), shape=(hist.shape[0], self.n_items))
        return np.asarray((q @ self.P_).toarray(), dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {
            **self._history_state(),
            "P.data": self.P_.data.astype(np.float32),
            "P.indices": self.P_.indices.astype(np.int64),
            "P.indptr": self.P_.indptr.astype(np.int64),
        }

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._load_history_state(arrays)
        n = self.n_items
        self.P_ = sp.csr_matrix(
            (arrays["P.data"], arrays["P.indices"], arrays["P.indptr"]), shape=(n, n)
        )
