"""MMoE / shared-bottom, and the ctr and multitask protocol presets."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from zenrec import ConfigError
from zenrec.data import Dataset, synthetic_dataset
from zenrec.evaluation.ctr import ctr_samples, evaluate_multitask
from zenrec.evaluation.protocols import get_protocol, run_protocol
from zenrec.models import create_model
from zenrec.splits import user_random_split
from zenrec.testing import RecommenderConformance

FAST = {"progress": False, "num_threads": 1, "batch_size": 64, "weight_decay": 1e-3}
MT = {
    "dim": 8,
    "expert_layers": [16],
    "tower_layers": [8],
    "epochs": 40,
    "lr": 0.02,
    "eval_every": 40,
    **FAST,
}


PLANTED = {**MT, "dim": 16, "expert_layers": [32], "epochs": 60, "lr": 0.01, "weight_decay": 1e-4}


class TestMMoE(RecommenderConformance):
    history_support = False  # rating/liked heads over features: no history scoring
    similar_support = False

    # A concatenation MLP (no dot term) learns the planted user x item interaction of the rating
    # branch less sharply than the factor models: 84% here, so the bar is 80% (measured).
    min_planted_hit_rate = 0.8

    def make_model(self):
        return create_model("mmoe", n_experts=2, **PLANTED)


class TestSharedBottom(RecommenderConformance):
    history_support = False
    similar_support = False

    min_planted_hit_rate = 0.8

    def make_model(self):
        return create_model("sharedbottom", **PLANTED)


def test_ctr_samples_are_seeded_unseen_and_at_the_stated_ratio():
    ds = synthetic_dataset(n_users=50, n_items=60, seed=1)
    sp = user_random_split(ds, (0.8, 0.1, 0.1), seed=0)
    u, i, y = ctr_samples(sp.test, [sp.train, sp.valid], n_negatives=4, seed=7)
    assert y.sum() == len(sp.test) and (y == 0).sum() == 4 * len(sp.test)
    seen = set(zip(ds.users.tolist(), ds.items.tolist()))
    assert not any((a, b) in seen for a, b in zip(u[y == 0].tolist(), i[y == 0].tolist()))
    _, i2, _ = ctr_samples(sp.test, [sp.train, sp.valid], n_negatives=4, seed=7)
    np.testing.assert_array_equal(i, i2)
    _, i3, _ = ctr_samples(sp.test, [sp.train, sp.valid], n_negatives=4, seed=8)
    assert not np.array_equal(i, i3)


@pytest.mark.parametrize(
    "model,params",
    [
        ("din", {"dim": 8, "attention_layers": [8], "layers": [16], "history_len": 10}),
        ("mlpranker", {"dim": 8, "layers": [16]}),
        ("twotower", {"dim": 8, "layers": [], "out_dim": 8, "loss": "bce", "history_len": 0}),
    ],
)
def test_click_models_run_under_ctr(model, params):
    ds = synthetic_dataset(n_users=120, n_items=80, interactions_per_user=15, noise=0.2, seed=2)
    run = run_protocol(
        lambda: create_model(model, epochs=8, lr=0.02, eval_every=8, **params, **FAST),
        ds,
        get_protocol("ctr"),
    )
    m = run.metrics
    assert set(m) == {"auc", "gauc", "logloss"}
    assert m["auc"] > 0.7 and m["gauc"] > 0.6 and m["logloss"] < 0.69, m


def test_ranking_model_under_ctr_reports_no_logloss():
    ds = synthetic_dataset(n_users=80, n_items=60, seed=2)
    run = run_protocol(lambda: create_model("ease", l2=10.0), ds, get_protocol("ctr"))
    assert set(run.metrics) == {"auc", "gauc"}


def _rated(seed: int = 0) -> Dataset:
    """Users like items of their own parity (rating 5) and dislike the others (rating 1-2)."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(100), 20)
    items = rng.integers(0, 60, users.size)
    good = (items % 2) == (users % 2)
    ratings = np.where(good, rng.choice([4.0, 5.0], users.size), rng.choice([1.0, 2.0], users.size))
    ds = Dataset.from_raw(users, items, ratings)
    from zenrec.data import dedupe

    return dedupe(ds, "last")


def test_multitask_protocol_scores_every_task_and_single_task_models_their_own():
    ds = _rated()
    proto = get_protocol("multitask")
    mm = run_protocol(lambda: create_model("mmoe", n_experts=3, **{**MT, "epochs": 20}), ds, proto)
    assert set(mm.metrics) == {"rating/rmse", "rating/mae", "liked/auc", "liked/logloss"}
    assert mm.metrics["liked/auc"] > 0.9 and mm.metrics["rating/rmse"] < 1.0, mm.metrics
    single = run_protocol(
        lambda: create_model(
            "mlpranker",
            head="rating",
            dim=8,
            layers=[16],
            epochs=10,
            lr=0.02,
            eval_every=10,
            **FAST,
        ),
        ds,
        proto,
    )
    assert set(single.metrics) == {"rating/rmse", "rating/mae"}
    click = run_protocol(
        lambda: create_model(
            "mlpranker", head="click", dim=8, layers=[16], epochs=10, lr=0.02, eval_every=10, **FAST
        ),
        ds,
        proto,
    )
    assert set(click.metrics) == {"liked/auc", "liked/logloss"}


def test_task_weights_matter_and_errors():
    ds = _rated(1)
    only_rating = create_model(
        "mmoe", liked_weight=0.0, **{**MT, "epochs": 20, "weight_decay": 0.0}
    ).fit(ds)
    only_liked = create_model(
        "mmoe", rating_weight=0.0, **{**MT, "epochs": 20, "weight_decay": 0.0}
    ).fit(ds)
    r1 = evaluate_multitask(only_rating, ds).metrics
    r2 = evaluate_multitask(only_liked, ds).metrics
    assert r1["rating/rmse"] < r2["rating/rmse"]
    assert r2["liked/logloss"] < r1["liked/logloss"]
    with pytest.raises(ConfigError, match="both be 0"):
        create_model("mmoe", rating_weight=0.0, liked_weight=0.0)
    implicit = synthetic_dataset(n_users=20, n_items=20, seed=0)
    implicit.ratings = None
    from zenrec import DataError

    with pytest.raises(DataError, match="needs ratings"):
        create_model("mmoe", epochs=1, **{k: v for k, v in FAST.items()}).fit(implicit)
