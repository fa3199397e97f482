"""Sequential recommendation: SASRec, and the attention models' ``Explainable`` mixin.

SASRec (Kang & McAuley, ICDM 2018) reads each user's chronological history (see
:mod:`zenrec.data.sequences`) and predicts the next item at every position. DIN lives in
:mod:`zenrec.models.neural.din`. Formulas and shapes: :mod:`zenrec.models.neural.nn_seq` and
``docs/neural.md``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from zenrec._errors import ConfigError, DataError
from zenrec.data.dataset import Dataset
from zenrec.data.sequences import chronological_order, pad_left, user_sequences
from zenrec.models.base import training_history_view
from zenrec.models.neural.base import NeuralRecommender, TaskOptions
from zenrec.models.neural.features import FeatureEncoder, build_feature_encoder
from zenrec.models.neural.losses import (
    GBCELoss,
    NegativeSoftmaxLoss,
    gbce_beta,
    linear_cross_entropy,
)
from zenrec.models.neural.nn import ScoringModule
from zenrec.models.neural.nn_seq import SASRecNet
from zenrec.models.neural.trainer import TrainingConfig, eval_mode
from zenrec.models.recommendations import Recommendations

__all__ = ["Explainable", "SASRec", "SASRecConfig", "training_windows"]


class Explainable:
    """Mixin of the attention models: ``explain`` lists, for each recommendation, the user's
    history items with the highest attention weight (``zenrec recommend --explain``)."""

    item_vocab: Any
    user_vocab: Any
    item_meta: dict[str, list[Any]]

    def _weights(self, user: int, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError  # pragma: no cover

    def explain(self, recs: Recommendations, top: int = 3) -> Recommendations:
        """Fill ``recs.explanation``: for each recommended item, the ``top`` history items with
        the highest attention weight, as ``{"item", "title", "weight"}`` (title when the bundle
        has titles), highest first. Unknown (fallback) users get empty lists.

        Args:
            recs: The result of ``recommend`` on this model.
            top: History items listed per recommended item (>= 1).
        """
        if top < 1:
            raise ConfigError(f"explain: 'top' must be >= 1; got {top}")
        titles = self.item_meta.get("title")
        out: list[list[list[dict[str, Any]]]] = []
        for user, items, fb in zip(recs.users, recs.item_lists, recs.fallback):
            u = int(self.user_vocab.encode([user])[0]) if not fb else -1
            if u < 0 or len(items) == 0:
                out.append([[] for _ in items])
                continue
            hist, w = self._weights(u, self.item_vocab.encode(items))  # (T,), (K, T)
            per_item = []
            for row in w:
                pos = [int(j) for j in np.argsort(-row, kind="stable") if hist[j] > 0][:top]
                per_item.append(
                    [
                        {
                            "item": _py_id(self.item_vocab.decode([hist[j] - 1])[0]),
                            "title": None if titles is None else titles[int(hist[j]) - 1],
                            "weight": float(row[j]),
                        }
                        for j in pos
                    ]
                )
            out.append(per_item)
        recs.explanation = out
        return recs


def _py_id(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def training_windows(train: Dataset, max_len: int, *, sliding: bool = True) -> np.ndarray:
    """Training rows of SASRec from the training interactions only.

    Each row is ``max_len + 1`` consecutive items of one user (item index + 1, left-padded):
    the model reads positions ``0..max_len-1`` and predicts positions ``1..max_len``. The last
    window of a user ends at their most recent training item; with ``sliding`` earlier
    windows step back ``max_len`` items at a time, so every training item is a target once.
    Users with fewer than 2 training items give no row.
    """
    order = chronological_order(train)
    users, items = train.users[order], train.items[order]
    counts = np.bincount(users, minlength=train.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows: list[np.ndarray] = []
    for u in np.flatnonzero(counts >= 2):
        seq = items[starts[u] : starts[u] + counts[u]]
        end = seq.size
        while end >= 2:
            rows.append(seq[max(0, end - max_len - 1) : end])
            if not sliding:
                break
            end -= max_len
    return pad_left(rows, max_len + 1) if rows else np.zeros((0, max_len + 1), np.int64)


class _SequenceTask:
    """Rows are training windows; loss at every non-padded position (next-item prediction).

    ``softmax`` draws one set of ``n_negatives`` items per batch, shared by every position of
    the batch, so its scores are one (M, D) x (D, K) product instead of a gather of M * K
    embeddings. ``gbce`` draws ``n_negatives`` per sequence, shared by that sequence's
    positions ((B, T, D) x (B, D, K)): a batch-shared set pushes the same K items down from
    every position of the batch at once, and gBCE then barely learned (docs/neural.md).
    ``bce`` draws one negative per position (the SASRec paper).
    """

    def __init__(
        self, model: SASRec, windows: np.ndarray, train: Dataset, device: torch.device
    ) -> None:
        c = model.config
        self.module = model.module_
        self.n_rows = int(windows.shape[0])
        self.seqs = torch.as_tensor(windows, device=device)
        self.loss_name = c.loss
        self.n_neg = c.n_negatives
        self.n_items = train.n_items
        self.device = device
        self.popularity: Tensor | None = None
        self.log_q: Tensor | None = None
        if c.negative_sampling == "popularity" and c.loss != "full_softmax":
            counts = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
            p = np.maximum(counts, 1.0) ** c.popularity_alpha
            p /= p.sum()
            self.popularity = torch.as_tensor(p, dtype=torch.float32, device=device)
            self.log_q = torch.as_tensor(np.log(p), dtype=torch.float32, device=device)
        self.beta = gbce_beta(c.n_negatives, train.n_items, c.gbce_t)
        self.softmax = NegativeSoftmaxLoss()
        self.gbce = GBCELoss()

    def _draw(self, shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
        """Negative items (index + 1) of ``shape``: uniform, or by popularity ** alpha."""
        if self.popularity is None:
            return torch.randint(1, self.n_items + 1, shape, generator=gen, device=self.device)
        n = math.prod(shape)
        idx = torch.multinomial(self.popularity, n, replacement=True, generator=gen)
        return (idx + 1).view(shape)

    def batch(self, rows: Tensor, gen: torch.Generator) -> dict[str, Any]:
        s = self.seqs[rows]  # (B, T+1)
        b: dict[str, Any] = {"seq": s[:, :-1], "target": s[:, 1:]}
        if self.loss_name == "bce":
            b["neg"] = self._draw((s.shape[0], s.shape[1] - 1, 1), gen)  # (B, T, 1)
        elif self.loss_name == "gbce":
            b["neg_seq"] = self._draw((s.shape[0], self.n_neg), gen)  # (B, K)
        elif self.loss_name == "softmax":
            b["neg_shared"] = self._draw((self.n_neg,), gen)  # (K,)
        return b

    def loss(self, module: nn.Module, b: dict[str, Any]) -> Tensor:
        h = module(b["seq"])  # (B, T, D)
        tgt = b["target"]  # (B, T)
        valid = (tgt > 0) & (b["seq"] > 0)
        hv = h[valid]  # (M, D)
        pos = tgt[valid]  # (M,)
        if self.loss_name == "full_softmax":
            w = module.item_weights()  # (N, D)
            if hv.device.type == "cpu" and hv.dtype == w.dtype == torch.float32:
                return linear_cross_entropy(hv, w, pos - 1)  # the (M, N) logits in chunks
            logits = hv @ w.T  # (M, N)
            return nn.functional.cross_entropy(logits.float(), pos - 1)
        s_pos = (hv * module.item(pos)).sum(-1)  # (M,)
        if self.loss_name == "bce":
            neg = b["neg"][valid]  # (M, 1)
            s_neg = (hv.unsqueeze(1) * module.item(neg)).sum(-1)  # (M, 1)
            return (nn.functional.softplus(-s_pos) + nn.functional.softplus(s_neg).sum(-1)).mean()
        if self.loss_name == "gbce":
            e_neg = module.item(b["neg_seq"])  # (B, K, D)
            s_all = torch.bmm(h, e_neg.transpose(1, 2))  # (B, T, K)
            neg = b["neg_seq"].unsqueeze(1).expand(-1, tgt.shape[1], -1)[valid]  # (M, K)
            return self.gbce(s_pos, s_all[valid], self.beta, neg == pos.unsqueeze(1))
        shared = b["neg_shared"]  # (K,)
        s_neg = hv @ module.item(shared).T  # (M, K)
        hit = shared.unsqueeze(0) == pos.unsqueeze(1)  # (M, K)
        log_q = None if self.log_q is None else self.log_q[shared - 1]  # (K,)
        return self.softmax(s_pos, s_neg, hit, log_q)


class SASRecConfig(TrainingConfig):
    """SASRec: self-attentive sequential recommendation."""

    dim: int = Field(64, ge=1)
    """Hidden size D (item and position embeddings)."""
    max_len: int = Field(50, ge=2)
    """Sequence length T: the most recent T items are read (older ones are dropped)."""
    n_blocks: int = Field(2, ge=1)
    """Self-attention blocks."""
    n_heads: int = Field(1, ge=1)
    """Attention heads (must divide dim)."""
    dropout: float = Field(0.2, ge=0, lt=1)
    """Dropout on embeddings, attention weights and block outputs."""
    loss: Literal["full_softmax", "softmax", "gbce", "bce"] = "full_softmax"
    """full_softmax: cross-entropy over the whole catalog; softmax: sampled softmax over the
    positive and n_negatives negatives shared by the batch (log-Q corrected when
    negative_sampling=popularity); gbce: gSASRec's generalised BCE with n_negatives shared
    negatives and calibration gbce_t; bce: the SASRec paper's BCE with one negative per
    position. References: docs/neural.md."""
    n_negatives: int = Field(256, ge=1)
    """Negatives per batch of loss=softmax and loss=gbce (drawn once per optimiser step and
    shared by every position of the batch; 256 as in gSASRec)."""
    gbce_t: float = Field(0.75, ge=0, le=1)
    """gBCE calibration t: 0 is plain BCE, 1 fully corrects for the negative sampling rate
    (gSASRec's recommended value is 0.75)."""
    sliding: bool = True
    """Train on every max_len window of a long history (False: the most recent window only)."""
    history_with_valid: bool = True
    """After training, score from histories that include the validation interactions (they
    precede the test items in leave-one-out), as the SASRec paper and RecBole do."""
    init_std: float = Field(0.02, gt=0)
    """Standard deviation of the initial embeddings."""
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(2e-3, gt=0)
    """2e-3: on ml-1m-ts it reaches in 7 epochs the validation NDCG@10 that 1e-3 reaches in 14;
    on ML-100K its best is as good and sooner (docs/results/sequential.md, "SASRec: time to
    fit")."""
    eval_every: int = Field(1, ge=1)
    """Validate every epoch (a round costs about 0.2 s on ML-100K, 1 s on ml-1m-ts)."""
    patience: int = Field(10, ge=0)
    """Stop 10 epochs after the best validation epoch."""

    @model_validator(mode="after")
    def _heads_divide(self) -> SASRecConfig:
        if self.dim % self.n_heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by n_heads ({self.n_heads})")
        if self.loss == "gbce" and self.negative_sampling != "uniform":
            raise ValueError(
                "loss=gbce calibrates for uniform negatives; set negative_sampling=uniform "
                "(or use loss=softmax, which corrects popularity sampling with log-Q)"
            )
        return self


class SASRec(Explainable, NeuralRecommender):
    """SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018).

    Scores of a user are ``F_T . M_i`` for the last position of the user's most recent
    ``max_len`` items; :meth:`_score_from_items` does the same for any given item list, so
    ``recommend_from_items`` works for pseudo-users.

    Example:
        >>> from zenrec.testing import planted_sequences
        >>> p = planted_sequences()
        >>> m = SASRec(dim=16, max_len=8, epochs=2, progress=False).fit(p.train)
        >>> m.recommend([100], k=3).item_lists[0].shape
        (3,)
    """

    name = "sasrec"
    Config = SASRecConfig
    holdout_kind = "none"  # validation is the next item, not a random share
    config: SASRecConfig

    def _task_options(self) -> TaskOptions:
        return replace(
            super()._task_options(),
            n_negatives=self.config.n_negatives,
            init_std=self.config.init_std,
        )

    allowed_losses = ("full_softmax", "softmax", "gbce", "bce")

    def __init__(self, config: Any = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.histories_: np.ndarray | None = None
        self.train_histories_: np.ndarray | None = None
        """The training-only histories when ``histories_`` also holds the validation items."""

    def _build_encoder(self, train: Dataset) -> FeatureEncoder:
        return build_feature_encoder(train)  # no features: SASRec reads item ids only

    def _build_module(self) -> ScoringModule:
        c = self.config
        return SASRecNet(len(self.item_vocab), c.dim, c.max_len, c.n_blocks, c.n_heads, c.dropout)

    def _make_task(self, train: Dataset) -> Any:
        assert self.device_ is not None
        c = self.config
        self.histories_ = user_sequences(train, c.max_len)
        windows = training_windows(train, c.max_len, sliding=c.sliding)
        if windows.shape[0] == 0:
            raise DataError(
                f"sasrec: no user of '{train.name}' has 2 or more training interactions"
            )
        return _SequenceTask(self, windows, train, self.device_)

    def _after_fit(self, train: Dataset, valid: Dataset | None) -> None:
        self.train_histories_ = None
        if self.config.history_with_valid and valid is not None and len(valid):
            self.train_histories_ = self.histories_
            both = Dataset.from_raw(
                train.user_vocab.decode(np.concatenate([train.users, valid.users])),
                train.item_vocab.decode(np.concatenate([train.items, valid.items])),
                timestamps=None
                if train.timestamps is None or valid.timestamps is None
                else np.concatenate([train.timestamps, valid.timestamps]),
                user_vocab=train.user_vocab,
                item_vocab=train.item_vocab,
            )
            self.histories_ = user_sequences(both, self.config.max_len)

    def validation_view(self) -> SASRec:
        """This model scoring from the training histories alone (no validation items); see
        :func:`zenrec.models.base.training_history_view`."""
        return training_history_view(self)

    # ------------------------------------------------------------------ scoring
    def _score_seqs(self, seqs: np.ndarray) -> np.ndarray:
        module = self._require_module()
        out = []
        with eval_mode(module), torch.no_grad():
            for s in range(0, seqs.shape[0], 512):
                x = torch.as_tensor(seqs[s : s + 512], device=self.device_)
                h = module.last_hidden(x)  # (B, D)
                out.append((h @ module.item_weights().T).float().cpu())  # (B, N)
        return torch.cat(out).numpy() if out else np.zeros((0, self.n_items), np.float32)

    def _user_seqs(self, users: np.ndarray) -> np.ndarray:
        if self.histories_ is None:
            self._check_fitted()
            raise ConfigError("sasrec: the model has no histories; fit it first")
        return self.histories_[np.asarray(users, np.int64)]

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        return self._score_seqs(self._user_seqs(users))

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.empty(users.size, np.float32)
        uniq, inv = np.unique(users, return_inverse=True)
        for s in range(0, uniq.size, 512):
            sc = self._score_users(uniq[s : s + 512])
            m = (inv >= s) & (inv < s + 512)
            out[m] = sc[inv[m] - s, items[m]]
        return out

    def _score_from_items(self, items: np.ndarray) -> np.ndarray | None:
        """Scores over the catalog for a pseudo-user whose history is ``items`` (indices,
        oldest first); the most recent ``max_len`` are read."""
        seq = pad_left([np.asarray(items, np.int64)], self.config.max_len)
        return self._score_seqs(seq)[0]

    def explain_indices(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Attention weight of each history position for each recommended item.

        SASRec's attention does not depend on the candidate: every recommended item gets the
        last block's attention of the most recent position (averaged over heads).

        Args:
            history: (T,) item index + 1, left-padded (a row of the history table).
            items: (K,) recommended item indices.

        Returns:
            (K, T) float32 weights.
        """
        module = self._require_module()
        with eval_mode(module), torch.no_grad():
            w = module.last_attention(torch.as_tensor(history[None, :], device=self.device_))
        return np.repeat(w.float().cpu().numpy(), len(items), 0)

    def _weights(self, user: int, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hist = self._user_seqs(np.array([user]))[0]
        return hist, self.explain_indices(hist, items)

    def history_of(self, users: np.ndarray) -> np.ndarray:
        """(len(users), max_len) history table rows (item index + 1, 0 = padding)."""
        return self._user_seqs(users)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, np.ndarray]:
        out = super()._state()
        assert self.histories_ is not None
        out["histories"] = self.histories_
        if self.train_histories_ is not None:
            out["train_histories"] = self.train_histories_
        return out

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        arrays = dict(arrays)
        self.histories_ = arrays.pop("histories")
        self.train_histories_ = arrays.pop("train_histories", None)
        super()._load_state(arrays)
