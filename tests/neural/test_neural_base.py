"""The shared base of the neural recommenders: one fitting routine, scoring in eval mode."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from zenrec.models import create_model
from zenrec.models.neural.base import NeuralRecommender
from zenrec.models.neural.trainer import eval_mode
from zenrec.models.registry import MODELS, get_model_class
from zenrec.testing import planted_sequences

FAST = {"progress": False, "num_threads": 1}
NEURAL = [name for name, target in MODELS.items() if target.startswith("zenrec.models.neural.")]


def test_eval_mode_restores_the_mode_the_module_had():
    layer = torch.nn.Dropout(0.5)
    with eval_mode(layer):
        assert not layer.training
    assert layer.training
    layer.eval()
    with eval_mode(layer):
        assert not layer.training
    assert not layer.training


def test_eval_mode_restores_the_mode_when_the_block_raises():
    layer = torch.nn.Dropout(0.5)
    with pytest.raises(RuntimeError, match="boom"), eval_mode(layer):
        raise RuntimeError("boom")
    assert layer.training


@pytest.mark.parametrize("name", NEURAL)
def test_every_neural_model_trains_through_the_one_fit(name):
    cls = get_model_class(name)
    assert issubclass(cls, NeuralRecommender)
    assert cls._fit is NeuralRecommender._fit, f"{cls.__name__} overrides _fit; use the hooks"


def _fit_and_train_mode(name, data, **params):
    m = create_model(name, **params, **FAST).fit(data)
    before = m.recommend(data.user_vocab.decode(np.arange(5)), k=5)
    m.module_.train()  # scoring must switch dropout off and leave this mode alone
    return m, before


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("sasrec", {"dim": 16, "max_len": 8, "epochs": 2, "dropout": 0.5}),
        ("multvae", {"hidden": 16, "latent": 4, "epochs": 2, "batch_size": 16}),
        ("din", {"epochs": 1}),
        ("mlpranker", {"epochs": 1}),
        ("mmoe", {"epochs": 1, "dropout": 0.5}),
    ],
)
def test_scoring_runs_in_eval_mode_and_restores_train_mode(name, params, synthetic):
    data = planted_sequences().train if name == "sasrec" else synthetic
    m, before = _fit_and_train_mode(name, data, **params)
    users = data.user_vocab.decode(np.arange(5))
    after = m.recommend(users, k=5)
    assert m.module_.training
    for a, b in zip(before.score_lists, after.score_lists, strict=True):
        np.testing.assert_array_equal(a, b)
    assert m.module_.training
    pairs = m.predict(users, data.item_vocab.decode(np.arange(5)))
    assert m.module_.training
    m.module_.eval()
    np.testing.assert_array_equal(pairs, m.predict(users, data.item_vocab.decode(np.arange(5))))
    if name == "mmoe":
        m.module_.train()
        liked = m.predict_tasks(users, data.item_vocab.decode(np.arange(5)))["liked"]
        assert m.module_.training
        m.module_.eval()
        np.testing.assert_array_equal(
            liked, m.predict_tasks(users, data.item_vocab.decode(np.arange(5)))["liked"]
        )
