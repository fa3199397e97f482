"""DIN (Zhou et al., KDD 2018): a (user, candidate) pair scored by attending over the user's
history with the candidate as the query. Formulas and shapes: :mod:`zenrec.models.neural.nn_seq`
and ``docs/neural.md``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from zenrec._arrays import unique
from zenrec._errors import DataError
from zenrec.data.dataset import Dataset
from zenrec.models.neural.base import FeatureConfig, NeuralRecommender, TaskOptions
from zenrec.models.neural.features import FeatureEncoder, build_feature_encoder
from zenrec.models.neural.nn import ScoringModule
from zenrec.models.neural.nn_seq import DINNet
from zenrec.models.neural.sequential import Explainable
from zenrec.models.neural.trainer import eval_mode

__all__ = ["DIN", "DINConfig"]


class DINConfig(FeatureConfig):
    """DIN: target attention over the behaviour history for click-through prediction."""

    dim: int = Field(32, ge=1)
    """Embedding size of each field (and of the item ids in the history)."""
    history_len: int = Field(50, ge=1)
    """Most recent training items attended over."""
    attention_layers: list[int] = Field(default_factory=lambda: [64, 32])
    """Hidden widths of the activation unit (input [e, v, e - v, e * v], 4D wide)."""
    layers: list[int] = Field(default_factory=lambda: [200, 80])
    """Hidden widths of the output MLP."""
    attention_softmax: bool = False
    """Normalise attention weights with a softmax (the paper uses the raw weights)."""
    user_id: bool = True
    """Embed the user id beside the history (false: a user is their history and features)."""
    labels: Literal["auto", "implicit", "click"] = "auto"
    """implicit: interactions are positives and n_negatives unseen items per positive are
    sampled (seeded); click: a 0/1 label column is used as is; auto: click when the data's
    values are all 0/1, else implicit."""
    n_negatives: int = Field(4, ge=1)
    """Sampled negatives per positive (the stated ratio 1:n_negatives)."""
    context_dropout: float = Field(0.5, ge=0, le=1)
    epochs: int = Field(20, ge=1)
    lr: float = Field(2e-3, gt=0)
    batch_size: int = Field(2048, ge=1)
    weight_decay: float = Field(1e-6, ge=0)
    valid_metric: str = "auc"
    valid_users: int = Field(2000, ge=0)
    eval_every: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _widths(self) -> DINConfig:
        if any(w < 1 for w in [*self.attention_layers, *self.layers]):
            raise ValueError("layer widths must be >= 1")
        return self


class DIN(Explainable, NeuralRecommender):
    """DIN (Zhou et al., "Deep Interest Network for Click-Through Rate Prediction", KDD 2018).

    Example:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=50, n_items=40, seed=0)
        >>> m = DIN(epochs=2, progress=False).fit(ds)
        >>> m.predict_proba([1000], [1001]).shape
        (1,)
    """

    name = "din"
    Config = DINConfig
    holdout_kind = "none"  # validation is the next click, not a random share
    config: DINConfig

    def _task_options(self) -> TaskOptions:
        return replace(super()._task_options(), n_negatives=self.config.n_negatives)

    allowed_losses = ("bce",)
    score_budget = 2**22

    def _click_mode(self, ds: Dataset) -> bool:
        mode = self.config.labels
        if mode == "auto":
            return ds.ratings is not None and bool(np.isin(unique(ds.ratings), [0.0, 1.0]).all())
        if mode == "click" and ds.ratings is None:
            raise DataError(f"din: labels='click' needs a 0/1 label column in '{ds.name}'")
        return mode == "click"

    def _loss_name(self) -> str:
        return "click" if getattr(self, "_clicks", False) else "bce"

    def _labels(self, train: Dataset) -> np.ndarray | None:
        if not getattr(self, "_clicks", False):
            return None
        assert train.ratings is not None
        return (train.ratings > 0).astype(np.float32)

    def _build_encoder(self, train: Dataset) -> FeatureEncoder:
        c = self.config
        enc = super()._build_encoder(train)
        assert enc is not None
        if self._clicks:  # the behaviour history is the user's clicks, not every impression
            assert train.ratings is not None
            clicked = train.subset(train.ratings > 0)
            enc.tables["user.history"] = build_feature_encoder(
                clicked, history_len=c.history_len
            ).tables["user.history"]
        return enc

    def _prepare(self, train: Dataset) -> None:
        self._clicks = self._click_mode(train)

    def _build_module(self) -> ScoringModule:
        c = self.config
        assert self.encoder_ is not None
        spec = self.encoder_.spec
        user = [f for f in spec.side("user") + spec.side("context") if f.kind != "history"]
        return DINNet(
            user,
            spec.side("item"),
            len(self.user_vocab),
            len(self.item_vocab),
            c.dim,
            c.attention_layers,
            c.layers,
            c.attention_softmax,
            c.user_id,
        )

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        module = self._require_module()
        with eval_mode(module), torch.no_grad():
            ir = module.item_repr(self._all_item_inputs())  # (N, Fi*D)
            t = max(1, self.config.history_len)
            chunk = max(1, self.score_budget // max(1, self.n_items * t * 4 * self.config.dim))
            u = torch.as_tensor(np.asarray(users, np.int64), device=self.device_)
            parts = [
                module.score_matrix(module.user_repr(self._user_inputs(u[s : s + chunk])), ir)
                for s in range(0, u.numel(), chunk)
            ]
            out = torch.cat(parts, 0) if parts else torch.zeros(0, self.n_items)
        return out.float().cpu().numpy()

    def explain_indices(self, user: int, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Activation-unit weights of the user's history for each candidate.

        Returns:
            (history (T,) item index + 1 with 0 = padding, weights (K, T) float32).
        """
        module = self._module_of(DINNet)
        with eval_mode(module), torch.no_grad():
            u = torch.full((len(items),), int(user), dtype=torch.int64, device=self.device_)
            ur = module.user_repr(self._user_inputs(u))
            v = module.item_repr(
                self._item_inputs(torch.as_tensor(np.asarray(items, np.int64), device=self.device_))
            )
            w = module.attention(ur, v)
        return ur[1][0].cpu().numpy(), w.float().cpu().numpy()

    def _weights(self, user: int, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.explain_indices(user, items)

    def _meta_state(self) -> dict[str, Any]:
        return {**super()._meta_state(), "clicks": bool(getattr(self, "_clicks", False))}

    def _load_meta_state(self, state: dict[str, Any]) -> None:
        super()._load_meta_state(state)
        self._clicks = bool(state.get("clicks", False))
