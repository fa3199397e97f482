"""Ensembles: conformance, fusion arithmetic, self-contained bundles, bundle members."""

import json

import numpy as np
import pytest

from zenrec import ConfigError
from zenrec.models import create_model, load_model
from zenrec.models.ensemble import normalize_scores
from zenrec.testing import RecommenderConformance, planted_blocks

MEMBERS = [{"model": "ease", "params": {"l2": 1.0}}, {"model": "rp3beta", "params": {"k": 20}}]


class TestEnsembleZscore(RecommenderConformance):
    similar_support = False  # a score fusion has no item-item similarity of its own

    def make_model(self):
        return create_model("ensemble", members=MEMBERS, w1=0.6, w2=0.4)


class TestEnsembleRank(RecommenderConformance):
    similar_support = False

    def make_model(self):
        return create_model("ensemble", members=MEMBERS, normalize="rank", w1=0.5, w2=0.5)


def test_normalisations():
    S = np.array([[5.0, 1.0, 2.0, 3.0]])
    seen = np.array([[True, False, False, False]])
    z = normalize_scores(S, seen, "zscore")
    free = S[0, 1:]
    np.testing.assert_allclose(z[0, 1:], (free - free.mean()) / free.std(), rtol=1e-6)
    r = normalize_scores(S, seen, "rank")
    assert r[0].tolist() == pytest.approx([1 - 3 / 4, 1 - 2 / 4, 1 - 1 / 4, 1.0])


def test_fusion_is_the_weighted_sum_and_zero_weight_drops_a_member(synthetic):
    ens = create_model("ensemble", members=MEMBERS, w1=0.3, w2=0.7).fit(synthetic)
    users = np.arange(10)
    seen = ens._seen_mask(users)
    a, b = (m.score_indices(users) for m in ens.members_)
    expect = 0.3 * normalize_scores(a, seen, "zscore") + 0.7 * normalize_scores(b, seen, "zscore")
    np.testing.assert_allclose(ens.score_indices(users), expect, rtol=1e-5, atol=1e-5)
    only_ease = create_model("ensemble", members=MEMBERS, w1=1.0, w2=0.0).fit(synthetic)
    ease = create_model("ease", l2=1.0).fit(synthetic)
    ids = synthetic.user_vocab.ids[:20]
    assert [x.tolist() for x in only_ease.recommend(ids, k=5).item_lists] == [
        x.tolist() for x in ease.recommend(ids, k=5).item_lists
    ]


def test_members_are_fitted_once_per_training_set(synthetic):
    a = create_model("ensemble", members=MEMBERS, w1=0.1).fit(synthetic)
    b = create_model("ensemble", members=MEMBERS, w1=0.9).fit(synthetic)
    assert all(x is y for x, y in zip(a.members_, b.members_))


def test_bundle_is_self_contained_and_bundle_members_are_checked(tmp_path):
    planted = planted_blocks()
    ease = create_model("ease", l2=1.0).fit(planted.train)
    ease.save(tmp_path / "ease")
    ens = create_model(
        "ensemble",
        members=[{"bundle": str(tmp_path / "ease")}, {"model": "rp3beta", "params": {"k": 20}}],
        normalize="rank",
    ).fit(planted.train)
    users = list(planted.withheld)[:8]
    before = ens.recommend(users, k=5)
    ens.save(tmp_path / "ens")
    import shutil

    shutil.rmtree(tmp_path / "ease")  # the ensemble bundle does not need the member's files
    meta = json.loads((tmp_path / "ens" / "bundle.json").read_text())
    assert [m["model"] for m in meta["model_state"]["members"]] == ["ease", "rp3beta"]
    loaded = load_model(tmp_path / "ens")
    after = loaded.recommend(users, k=5)
    for x, y in zip(before.score_lists, after.score_lists):
        np.testing.assert_array_equal(x, y)
    other = planted_blocks(seed=1, users_per_group=(30, 10, 10, 10))
    create_model("ease", l2=1.0).fit(other.train).save(tmp_path / "other")
    with pytest.raises(ConfigError, match=r"member 1 .* fitted on other data"):
        create_model("ensemble", members=[{"bundle": str(tmp_path / "other")}]).fit(planted.train)


def test_member_specs_are_validated():
    with pytest.raises(ConfigError, match="either 'model'"):
        create_model("ensemble", members=[{"params": {"l2": 1}}])
    # at most six members (weights w1..w6): six are accepted, a seventh is refused by name
    assert len(create_model("ensemble", members=[{"model": "pop"}] * 6).config.members) == 6
    with pytest.raises(ConfigError, match=r"'members' .*at most 6 items.*not 7"):
        create_model("ensemble", members=[{"model": "pop"}] * 7)


def test_six_members_each_weighted(synthetic):
    # up to six members, w5 and w6 weight the fifth and sixth: a weight of 0 removes a member
    specs = [
        {"model": "pop"},
        {"model": "itemknn"},
        {"model": "ease", "params": {"l2": 10.0}},
        {"model": "rp3beta", "params": {"k": 20}},
        {"model": "edlae", "params": {"l2": 5.0}},
        {"model": "itemknn", "params": {"k": 5}},
    ]
    users = np.arange(10)
    six = create_model("ensemble", members=specs, w1=0, w2=0, w3=0, w4=0, w5=1.0, w6=0).fit(
        synthetic
    )
    one = create_model("ensemble", members=[specs[4]]).fit(synthetic)
    np.testing.assert_allclose(six.score_indices(users), one.score_indices(users), atol=1e-5)
    assert six.config.weights() == [0, 0, 0, 0, 1.0, 0]


def test_history_scoring_combines_member_hooks():
    planted = planted_blocks()
    ens = create_model(
        "ensemble",
        members=[
            {"model": "rp3beta", "params": {"k": 20}},
            {"model": "edlae", "params": {"l2": 1.0}},
        ],
    ).fit(planted.train)
    tr = planted.train
    uidx = 3
    s = ens._score_from_items(tr.items[tr.users == uidx])
    np.testing.assert_allclose(s, ens.score_indices(np.array([uidx]))[0], rtol=1e-4, atol=1e-4)


def test_members_do_not_see_the_validation_data_the_weights_are_tuned_on(synthetic):
    # a neural member of an ensemble fitted with validation data picks its epochs on its own
    # holdout of train, exactly as when the ensemble is refitted without validation data
    from zenrec.splits import user_random_split

    sp = user_random_split(synthetic, (0.8, 0.2), seed=0)
    member = {
        "model": "bprmf",
        "params": {"epochs": 4, "eval_every": 1, "patience": 2, "factors": 8, "progress": False},
    }
    ens = create_model("ensemble", members=[member, {"model": "pop"}]).fit(sp.train, sp.test)
    m = ens.members_[0]
    assert m.holdout_ is not None and m.holdout_["interactions"] > 0
    alone = create_model("bprmf", **member["params"]).fit(sp.train, sp.test)
    assert alone.holdout_ is None  # the same member on its own stops on the given validation
