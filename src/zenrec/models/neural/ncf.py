"""Neural collaborative filtering: NCF-MLP and NeuMF (GMF lives in :mod:`.mf`).

He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering", WWW 2017. NCF-MLP scores
``MLP([p_u; q_i])``; NeuMF fuses a GMF branch and an MLP branch in one output layer and may be
initialised from a trained GMF and NCF-MLP (section 3.4.1). Both are trained with a pointwise
log loss against sampled negatives (or BPR). Modules: :class:`zenrec.models.neural.nn.NCFMLP`,
:class:`~zenrec.models.neural.nn.NeuMF`.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator

from zenrec._errors import ConfigError
from zenrec.data.dataset import Dataset
from zenrec.models.neural import nn as zn
from zenrec.models.neural.base import IdModelConfig, NeuralRecommender
from zenrec.models.neural.mf import GMF
from zenrec.models.neural.trainer import TrainingConfig

__all__ = ["NCFMLP", "NCFMLPConfig", "NeuMF", "NeuMFConfig"]


class NCFMLPConfig(IdModelConfig):
    """NCF's MLP model."""

    factors: int = Field(32, ge=1)
    """Embedding size of users and items."""
    layers: list[int] = Field(default_factory=lambda: [64, 32, 16], min_length=1)
    """Hidden layer widths."""
    loss: Literal["bce", "bpr"] = "bce"
    """Pointwise log loss with sampled negatives, or BPR."""
    n_negatives: int = Field(4, ge=1)
    epochs: int = Field(30, ge=1)
    lr: float = Field(2e-3, gt=0)
    batch_size: int = Field(4096, ge=1)
    valid_users: int = Field(2000, ge=0)

    @model_validator(mode="after")
    def _positive_layers(self) -> NCFMLPConfig:
        if any(w < 1 for w in self.layers):
            raise ValueError(f"layer widths must be >= 1; got {self.layers}")
        return self


class NCFMLP(NeuralRecommender):
    """NCF-MLP (He et al., WWW 2017): an MLP over concatenated user and item embeddings."""

    name = "ncf-mlp"
    Config = NCFMLPConfig
    config: NCFMLPConfig
    allowed_losses = ("bce", "bpr")

    def _build_module(self) -> zn.ScoringModule:
        c = self.config
        return zn.NCFMLP(*self._vocab_sizes(), c.factors, c.layers)


class NeuMFConfig(IdModelConfig):
    """NeuMF: GMF and MLP branches fused in one output layer."""

    gmf_factors: int = Field(64, ge=1)
    """GMF embedding size."""
    mlp_factors: int = Field(32, ge=1)
    """MLP embedding size."""
    layers: list[int] = Field(default_factory=lambda: [64, 32, 16], min_length=1)
    """MLP hidden widths."""
    loss: Literal["bce", "bpr"] = "bce"
    """Pointwise log loss with sampled negatives, or BPR."""
    pretrain: bool = False
    """Train GMF and NCF-MLP first and initialise NeuMF from them (He et al., section 3.4.1)."""
    pretrain_epochs: int = Field(10, ge=1)
    """Epochs of each pre-training run."""
    pretrain_alpha: float = Field(0.5, ge=0, le=1)
    """Weight of the GMF output layer in the fused layer after pre-training."""
    n_negatives: int = Field(4, ge=1)
    epochs: int = Field(20, ge=1)
    lr: float = Field(2e-3, gt=0)
    batch_size: int = Field(4096, ge=1)
    weight_decay: float = Field(1e-6, ge=0)
    valid_users: int = Field(2000, ge=0)
    eval_every: int = Field(2, ge=1)


class NeuMF(NeuralRecommender):
    """NeuMF (He et al., WWW 2017), optionally initialised from trained GMF and NCF-MLP."""

    name = "neumf"
    Config = NeuMFConfig
    config: NeuMFConfig
    allowed_losses = ("bce", "bpr")

    def _build_module(self) -> zn.ScoringModule:
        c = self.config
        return zn.NeuMF(*self._vocab_sizes(), c.gmf_factors, c.mlp_factors, c.layers)

    def _after_init(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        if not c.pretrain:
            return
        shared = c.model_dump(include=set(TrainingConfig.model_fields) - {"epochs"})
        shared.update(n_negatives=c.n_negatives, init_std=c.init_std, loss=c.loss)
        gmf = GMF(factors=c.gmf_factors, epochs=c.pretrain_epochs, **shared).fit(train, valid)
        mlp = NCFMLP(
            factors=c.mlp_factors, layers=c.layers, epochs=c.pretrain_epochs, **shared
        ).fit(train, valid)
        self.init_from(gmf, mlp)

    def init_from(self, gmf: GMF, mlp: NCFMLP) -> None:
        """Copy the embeddings and layers of a trained GMF and NCF-MLP into this NeuMF."""
        c = self.config
        m = self.module_
        g, p = gmf._module_of(zn.GMF), mlp._module_of(zn.NCFMLP)
        if not isinstance(m, zn.NeuMF):
            raise ConfigError(
                "NeuMF.init_from: fit NeuMF's vocabularies first (call from _after_init)"
            )
        if (
            g.user.weight.shape != m.gmf_user.weight.shape
            or p.user.weight.shape != m.mlp_user.weight.shape
        ):
            raise ConfigError(
                "NeuMF.init_from: GMF/MLP sizes differ from this NeuMF's "
                "gmf_factors/mlp_factors or vocabularies"
            )
        with torch.no_grad():
            m.gmf_user.weight.copy_(g.user.weight)
            m.gmf_item.weight.copy_(g.item.weight)
            m.mlp_user.weight.copy_(p.user.weight)
            m.mlp_item.weight.copy_(p.item.weight)
            m.mlp.load_state_dict(p.mlp.state_dict())
            a = c.pretrain_alpha
            m.out.weight.copy_(torch.cat([a * g.h.weight, (1 - a) * p.out.weight], 1))
            m.out.bias.copy_((1 - a) * p.out.bias)
