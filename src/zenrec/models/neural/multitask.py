"""Multi-task recommenders: MMoE and the shared-bottom baseline.

One network learns two tasks from rated interactions: ``rating`` (regression, MSE) and
``liked`` (rating >= ``liked_threshold``, binary cross-entropy), with the loss
``rating_weight * MSE + liked_weight * BCE``. MMoE (Ma et al., KDD 2018) shares ``n_experts``
expert MLPs and mixes them per task with a softmax gate; shared-bottom (Caruana, 1997) feeds
one bottom MLP to both towers. Formulas and shapes: :mod:`zenrec.models.neural.nn_seq`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from zenrec._errors import DataError
from zenrec.data.dataset import Dataset
from zenrec.models.neural.base import FeatureConfig, InteractionTask, NeuralRecommender
from zenrec.models.neural.losses import BCELoss, MSELoss
from zenrec.models.neural.nn import ScoringModule
from zenrec.models.neural.nn_seq import MultiTaskNet

__all__ = ["MMoE", "MMoEConfig", "SharedBottom", "SharedBottomConfig"]

TASKS = ("rating", "liked")


class _MultiTaskTask(InteractionTask):
    """Interaction rows with a rating; the loss sums the weighted task losses."""

    def __init__(self, model: _MultiTask, train: Dataset, device: torch.device) -> None:
        super().__init__(model, train, device)
        c = model.config
        self.w = (c.rating_weight, c.liked_weight)
        self.threshold = c.liked_threshold
        self.mse, self.bce = MSELoss(), BCELoss()

    def loss(self, module: nn.Module, b: dict[str, Any]) -> Tensor:
        m = self.model
        u = module.user_repr(
            m._user_inputs(b["u"], b.get("ctx"), target=b["i"], drop=b.get("drop_u"))
        )
        v = module.item_repr(m._item_inputs(b["i"], drop=b.get("drop_i")))
        out = module.tasks(u, v)  # (B, 2): rating, liked logit
        y = b["y"]
        liked = (y >= self.threshold).float()
        return self.w[0] * self.mse(out[:, 0], y) + self.w[1] * self.bce(out[:, 1], labels=liked)


class _MultiTaskConfig(FeatureConfig):
    dim: int = Field(16, ge=1)
    """Embedding size of each field."""
    expert_layers: list[int] = Field(default_factory=lambda: [64, 32], min_length=1)
    """Hidden widths of each expert (shared-bottom: of the bottom MLP)."""
    tower_layers: list[int] = Field(default_factory=lambda: [16])
    """Hidden widths of each task tower."""
    rating_weight: float = Field(1.0, ge=0)
    """Weight of the rating MSE in the loss."""
    liked_weight: float = Field(1.0, ge=0)
    """Weight of the liked BCE in the loss."""
    liked_threshold: float = 4.0
    """liked = rating >= this."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout after hidden layers."""
    epochs: int = Field(20, ge=1)
    lr: float = Field(2e-3, gt=0)
    batch_size: int = Field(2048, ge=1)
    weight_decay: float = Field(1e-6, ge=0)
    valid_metric: str = "rmse"
    eval_every: int = Field(1, ge=1)
    patience: int = Field(3, ge=0)

    @model_validator(mode="after")
    def _weights(self) -> _MultiTaskConfig:
        if self.rating_weight == 0 and self.liked_weight == 0:
            raise ValueError("rating_weight and liked_weight cannot both be 0")
        if any(w < 1 for w in [*self.expert_layers, *self.tower_layers]):
            raise ValueError("layer widths must be >= 1")
        return self


class _MultiTask(NeuralRecommender):
    """Shared code of MMoE and shared-bottom."""

    task = "rating"
    allowed_losses = ("mse",)
    gated: ClassVar[bool] = True
    config: _MultiTaskConfig

    @property
    def predicts_probability(self) -> bool:
        return True

    def _loss_name(self) -> str:
        return "mse"

    def _labels(self, train: Dataset) -> np.ndarray | None:
        if train.ratings is None:
            raise DataError(
                f"{self.name}: multi-task training needs ratings, and '{train.name}' has none"
            )
        return train.ratings

    def _n_experts(self) -> int:
        return 1

    def _build_module(self) -> ScoringModule:
        c = self.config
        assert (
            self.encoder_ is not None
            and self.user_vocab is not None
            and self.item_vocab is not None
        )
        spec = self.encoder_.spec
        return MultiTaskNet(
            spec.side("user") + spec.side("context"),
            spec.side("item"),
            len(self.user_vocab),
            len(self.item_vocab),
            c.dim,
            self._n_experts(),
            c.expert_layers,
            c.tower_layers,
            2,
            self.gated,
            (self.global_mean_, 0.0),
            c.dropout,
        )

    def _make_task(self, train: Dataset) -> Any:
        assert self.device_ is not None
        return _MultiTaskTask(self, train, self.device_)

    def _task_outputs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._pair_outputs(users, items, "tasks", (0, 2))

    def predict_tasks(self, users: Any, items: Any) -> dict[str, np.ndarray]:
        """Both tasks for raw (user, item) pairs: ``rating`` (predicted rating) and ``liked``
        (probability that rating >= liked_threshold). Unknown ids get the mean rating and 0.5."""
        self._check_fitted()
        assert self.user_vocab is not None and self.item_vocab is not None
        u, i = self.user_vocab.encode(users), self.item_vocab.encode(items)
        out = np.column_stack(
            [np.full(u.size, self.global_mean_, np.float32), np.zeros(u.size, np.float32)]
        )
        ok = (u >= 0) & (i >= 0)
        if ok.any():
            out[ok] = self._task_outputs(u[ok], i[ok])
        return {"rating": out[:, 0], "liked": 1.0 / (1.0 + np.exp(-out[:, 1].astype(np.float64)))}

    def predict_proba(self, users: Any, items: Any) -> np.ndarray:
        """Probability that the user likes the item (the ``liked`` task)."""
        return self.predict_tasks(users, items)["liked"]


class MMoEConfig(_MultiTaskConfig):
    """MMoE: multi-gate mixture of experts over user, item and context fields."""

    n_experts: int = Field(4, ge=1)
    """Experts shared by the tasks."""


class MMoE(_MultiTask):
    """MMoE (Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate
    Mixture-of-Experts", KDD 2018): rating regression and liked classification in one network.

    Example:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=50, n_items=40, seed=0)
        >>> m = MMoE(epochs=2, progress=False).fit(ds)
        >>> sorted(m.predict_tasks([1000], [1001]))
        ['liked', 'rating']
    """

    name = "mmoe"
    Config = MMoEConfig
    config: MMoEConfig

    def _n_experts(self) -> int:
        return int(self.config.n_experts)


class SharedBottomConfig(_MultiTaskConfig):
    """Shared-bottom multi-task baseline: one bottom MLP, one tower per task."""


class SharedBottom(_MultiTask):
    """Shared-bottom multi-task model (Caruana, "Multitask Learning", 1997), the MMoE paper's
    baseline: both task towers read one shared bottom MLP."""

    name = "sharedbottom"
    Config = SharedBottomConfig
    config: SharedBottomConfig
    gated = False
