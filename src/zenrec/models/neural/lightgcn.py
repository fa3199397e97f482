"""LightGCN (He, Deng, Wang, Li, Zhang & Wang, "LightGCN: Simplifying and Powering Graph
Convolution Network for Recommendation", SIGIR 2020).

Embeddings E^(0) of users and items are propagated on the normalised bipartite graph, with no
feature transform and no non-linearity, and the layers are averaged:

    A = [[0, R], [R^T, 0]],   A_hat = D^(-1/2) A D^(-1/2),
    E^(k+1) = A_hat E^(k),    E = 1/(K+1) sum_{k=0..K} E^(k),   y_ui = e_u^T e_i,

trained with BPR, -log sigmoid(y_ui - y_uj), plus lambda ||E^(0)_batch||^2 / B on the batch's
ego embeddings. Propagation is a torch sparse-dense product over the whole graph each step.
A history (for serving) is folded in through the stored per-layer item embeddings: a new user
with items H gets e_u^(k+1) = sum_{i in H} e_i^(k) / sqrt(|H| deg(i)), e_u^(0) = 0.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn import functional as F

from zenrec._arrays import unique
from zenrec.data.dataset import Dataset
from zenrec.models.defaults import AUTO, Auto, interaction_batch
from zenrec.models.neural.base import NeuralRecommender
from zenrec.models.neural.features import FeatureEncoder
from zenrec.models.neural.nn import LightGCNModule, ScoringModule
from zenrec.models.neural.sampling import NegativeSampler
from zenrec.models.neural.trainer import TrainingConfig, resolve_device

__all__ = ["LightGCN", "LightGCNConfig", "normalized_adjacency"]


def normalized_adjacency(R: sp.csr_matrix) -> sp.csr_matrix:
    """D^(-1/2) A D^(-1/2) of the bipartite graph of the (users x items) matrix ``R``
    (symmetric)."""
    B = (R > 0).astype(np.float32)
    A = sp.bmat([[None, B], [B.T, None]], format="csr", dtype=np.float32)
    deg = np.asarray(A.sum(axis=1)).ravel()
    d = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0).astype(np.float32)
    out = sp.csr_matrix(sp.diags(d) @ A @ sp.diags(d), dtype=np.float32)
    out.sort_indices()
    return out


class LightGCNConfig(TrainingConfig):
    """LightGCN: embedding size, propagation layers, L2 weight and negatives per positive."""

    dim: int = Field(64, ge=1)
    """Embedding size (the paper's 64)."""
    layers: int = Field(3, ge=0)
    """Propagation layers K (the paper's best is 3 or 4)."""
    reg: float = Field(1e-4, ge=0)
    """L2 weight lambda on the batch's ego embeddings."""
    n_negatives: int = Field(1, ge=1)
    """Sampled negatives per positive."""
    epochs: int = Field(200, ge=1)
    batch_size: Annotated[int, Field(ge=1)] | Auto = AUTO
    """Interactions per step; 'auto': 64-128 steps per epoch, 256..4096 (ML-1M: 4096)."""
    lr: float = Field(1e-3, gt=0)
    eval_every: int = Field(5, ge=1)
    patience: int = Field(10, ge=0)
    """Validation rounds (of ``eval_every`` epochs) without improvement before stopping. At lr
    0.001 the validation curve has a plateau (ML-100K: epochs 15-40) before it climbs again to
    epoch 150-200; with 4 rounds a 10% holdout stopped in it (NDCG@10 0.121 at epoch 15, against
    0.150 at epoch 180 with 10 rounds)."""


class _GraphTask:
    """Training rows are interactions; each step propagates the whole graph."""

    def __init__(self, model: LightGCN, train: Dataset, device: torch.device) -> None:
        c = model.config
        assert model.seen_ is not None and model.module_ is not None
        self.module: nn.Module = model.module_
        self.device = device
        X = model.seen_.tocoo()
        self.users = torch.as_tensor(X.row.astype(np.int64), device=device)
        self.items = torch.as_tensor(X.col.astype(np.int64), device=device)
        self.n_rows = int(X.nnz)
        self.adj = model._adjacency()
        counts = np.asarray(model.seen_.sum(axis=0)).ravel()
        self.sampler = NegativeSampler(
            X.shape[1], counts, c.negative_sampling, c.popularity_alpha, X.row, X.col, device
        )
        self.k = c.n_negatives
        self.reg = c.reg

    def batch(self, rows: Tensor, gen: torch.Generator) -> dict[str, Any]:
        u = self.users[rows]
        return {"u": u, "i": self.items[rows], "neg": self.sampler.sample(u, self.k, gen)}

    def loss(self, module: nn.Module, b: dict[str, Any]) -> Tensor:
        users, items = module(self.adj)  # (U, D), (I, D)
        u, i, neg = b["u"], b["i"], b["neg"]  # (B,), (B,), (B, K)
        eu = users[u]  # (B, D)
        pos = (eu * items[i]).sum(1)  # (B,)
        negs = torch.einsum("bd,bkd->bk", eu, items[neg])  # (B, K)
        bpr = -F.logsigmoid(pos.unsqueeze(1) - negs).mean()
        uw, iw = module.get_parameter("user.weight"), module.get_parameter("item.weight")
        ego = uw[u].pow(2).sum() + iw[i].pow(2).sum() + iw[neg].pow(2).sum() / neg.shape[1]
        return bpr + self.reg * ego / (2 * u.numel())


class LightGCN(NeuralRecommender):
    """LightGCN on the shared trainer; scoring uses the propagated embeddings computed once.

    Example:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=50, n_items=40, seed=0)
        >>> m = LightGCN(dim=8, layers=2, epochs=2, batch_size=256, progress=False).fit(ds)
        >>> m.item_layers_.shape
        (3, 40, 8)
    """

    name = "lightgcn"
    Config = LightGCNConfig
    config: LightGCNConfig
    allowed_losses = ("bpr",)
    _graph: Tensor | None = None
    """The normalised adjacency while ``fit`` runs (the training task builds it)."""

    def _auto_batch_size(self, train: Dataset) -> int:
        return interaction_batch(len(train))

    def _loss_name(self) -> str:
        return "bpr"

    def _build_module(self) -> ScoringModule:
        c = self.config
        assert self.user_vocab is not None and self.item_vocab is not None
        return LightGCNModule(len(self.user_vocab), len(self.item_vocab), c.dim, c.layers)

    def _adjacency(self) -> Tensor:
        assert self.seen_ is not None and self.device_ is not None
        A = normalized_adjacency(self.seen_)
        with (
            warnings.catch_warnings()
        ):  # "sparse CSR support is in beta": CSR @ dense is all we use
            warnings.simplefilter("ignore", UserWarning)
            t = torch.sparse_csr_tensor(
                torch.as_tensor(A.indptr.astype(np.int64)),
                torch.as_tensor(A.indices.astype(np.int64)),
                torch.as_tensor(A.data, dtype=torch.float32),
                A.shape,
                check_invariants=False,
            )
        return t.to(self.device_)

    def _build_encoder(self, train: Dataset) -> FeatureEncoder | None:
        return None  # reads the interaction graph only

    def _init_parameters(self, module: ScoringModule, gen: torch.Generator) -> None:
        for p in module.parameters():  # Xavier-uniform, as in the authors' code
            nn.init.xavier_uniform_(p, generator=gen)

    def _make_task(self, train: Dataset) -> Any:
        assert self.device_ is not None
        task = _GraphTask(self, train, self.device_)
        self._graph = task.adj  # validation and _after_fit propagate on it
        return task

    def _make_validate(self, train: Dataset, valid: Dataset) -> Any:
        inner = super()._make_validate(train, valid)

        def validate() -> dict[str, float]:
            self._refresh_embeddings(self._graph)
            return dict(inner())

        return validate

    def _after_fit(self, train: Dataset, valid: Dataset | None) -> None:
        self._refresh_embeddings(self._graph)
        self._graph = None  # the scores need only the stored embeddings

    def _refresh_embeddings(self, adj: Tensor | None) -> None:
        module = self._require_module()
        assert adj is not None
        assert isinstance(module, LightGCNModule)
        with torch.no_grad():
            layers = torch.stack(module.propagate(adj), 0)  # (K+1, U+I, D)
        n_u = module.n_users
        self.user_emb_ = layers[:, :n_u].mean(0).float().cpu().numpy()
        self.item_layers_ = layers[:, n_u:].float().cpu().numpy()
        self.item_emb_ = self.item_layers_.mean(0)

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(
            self.user_emb_[np.asarray(users, dtype=np.int64)] @ self.item_emb_.T, dtype=np.float32
        )

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", self.user_emb_[users], self.item_emb_[items]).astype(
            np.float32
        )

    def _score_from_items(self, items: np.ndarray) -> np.ndarray | None:
        assert self.item_popularity_ is not None
        idx = unique(np.asarray(items, dtype=np.int64))
        if idx.size == 0:
            return None
        K = self.item_layers_.shape[0] - 1
        w = 1.0 / np.sqrt(idx.size * np.maximum(self.item_popularity_[idx], 1.0))  # (H,)
        layers = [np.zeros(self.item_layers_.shape[2], np.float32)]  # e_u^(0) = 0
        for k in range(K):
            layers.append(w @ self.item_layers_[k, idx])
        e_u = np.mean(layers, axis=0)
        return np.asarray(self.item_emb_ @ e_u, dtype=np.float32)

    def _similar_items(self, items: np.ndarray) -> np.ndarray | None:
        e = self.item_emb_ / np.maximum(
            np.linalg.norm(self.item_emb_, axis=1, keepdims=True), 1e-12
        )
        return np.asarray(e[np.asarray(items, dtype=np.int64)] @ e.T, dtype=np.float32)

    def _meta_state(self) -> dict[str, Any]:
        return self._training_meta()

    def _load_meta_state(self, state: dict[str, Any]) -> None:
        self._load_training_meta(state)

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_emb": self.user_emb_, "item_layers": self.item_layers_}

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.device_ = resolve_device(self.config.device)
        self.module_ = None
        self.user_emb_ = arrays["user_emb"]
        self.item_layers_ = arrays["item_layers"]
        self.item_emb_ = self.item_layers_.mean(0)
