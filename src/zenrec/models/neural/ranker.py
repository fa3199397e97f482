"""The feature MLP ranker: user, item and context fields into an MLP, three heads.

The design follows Covington, Adams & Sargin, "Deep Neural Networks for YouTube
Recommendations", RecSys 2016, and Cheng et al., "Wide & Deep Learning for Recommender
Systems", DLRS 2016: field embeddings concatenated into an MLP (plus a dot term), trained as a
rating regressor (MSE), a click model (BCE on labels) or an implicit ranker (BCE against
sampled negatives). Module: :class:`zenrec.models.neural.nn.MLPRanker`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from zenrec._arrays import unique
from zenrec._errors import DataError
from zenrec.data.dataset import Dataset
from zenrec.models.neural import nn as zn
from zenrec.models.neural.base import FeatureConfig, NeuralRecommender, TaskOptions

__all__ = ["MLPRanker", "MLPRankerConfig"]


class MLPRankerConfig(FeatureConfig):
    """MLP ranker over user, item and context features."""

    head: Literal["implicit", "rating", "click"] = "implicit"
    """implicit: BCE against sampled negatives (top-K); rating: MSE; click: BCE on labels."""
    dim: int = Field(32, ge=1)
    """Embedding size of each field."""
    layers: list[int] = Field(default_factory=lambda: [128, 64], min_length=1)
    """Hidden layer widths."""
    dot_term: bool = True
    """Add the dot product of summed user-side and item-side field embeddings to the MLP."""
    n_negatives: int = Field(4, ge=1)
    """Sampled negatives per positive (implicit head)."""
    click_threshold: float = 4.0
    """Click head on rated data: label = rating >= threshold (0/1 data is used as is)."""
    epochs: int = Field(20, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-6, ge=0)
    valid_users: int = Field(2000, ge=0)
    eval_every: int = Field(2, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _head_metric(cls, data: Any) -> Any:
        if isinstance(data, dict) and "valid_metric" not in data:
            head = data.get("head", "implicit")
            if head == "rating":
                data = {**data, "valid_metric": "rmse"}
            elif head == "click":
                data = {**data, "valid_metric": "auc"}
        return data


class MLPRanker(NeuralRecommender):
    """Feature MLP ranker with rating, click or implicit (sampled-negative) heads.

    Examples:
        >>> from zenrec.data import synthetic_dataset
        >>> ds = synthetic_dataset(n_users=50, n_items=40, seed=0)
        >>> m = MLPRanker(head="rating", epochs=2, progress=False).fit(ds)
        >>> m.predict([1000], [1001]).shape
        (1,)
    """

    name = "mlpranker"
    Config = MLPRankerConfig
    config: MLPRankerConfig

    def __init__(self, config: Any = None, **params: Any) -> None:
        super().__init__(config, **params)
        if self.config.head == "rating":
            self.task = "rating"

    def _task_options(self) -> TaskOptions:
        return replace(super()._task_options(), n_negatives=self.config.n_negatives)

    def _loss_name(self) -> str:
        return {"implicit": "bce", "rating": "mse", "click": "click"}[self.config.head]

    def _labels(self, train: Dataset) -> np.ndarray | None:
        head = self.config.head
        if head == "implicit":
            return None
        if train.ratings is None:
            raise DataError(
                f"mlpranker: head={head!r} needs a rating/label column in '{train.name}'; "
                "use head='implicit' for data without one"
            )
        if head == "rating":
            return train.ratings
        r = train.ratings
        binary = np.isin(unique(r), [0.0, 1.0]).all()
        return (r if binary else (r >= self.config.click_threshold)).astype(np.float32)

    def _build_module(self) -> zn.ScoringModule:
        c = self.config
        assert self.encoder_ is not None
        spec = self.encoder_.spec
        bias = self.global_mean_ if c.head == "rating" else 0.0
        return zn.MLPRanker(
            spec.side("user") + spec.side("context"),
            spec.side("item"),
            *self._vocab_sizes(),
            c.dim,
            c.layers,
            bias,
            c.dot_term,
        )
