import numpy as np
import pytest

from zenrec import ConfigError
from zenrec.data import Dataset
from zenrec.evaluation import (
    PROTOCOLS,
    evaluate_ranking,
    evaluate_rating,
    evaluate_sampled,
    get_protocol,
    prepare_dataset,
)
from zenrec.models import create_model
from zenrec.splits import Split


def tiny_split():
    iv_items = [1, 2, 3, 4, 5]
    train = Dataset.from_raw(["a", "a", "b"], [1, 2, 1])
    full = Dataset.from_raw(["a", "a", "b", "a", "b", "b"], [1, 2, 1, 3, 5, 4], item_vocab=None)
    # shared vocabularies
    from zenrec.data import Vocabulary

    uv = Vocabulary.from_values(["a", "b"])
    iv = Vocabulary.from_values(iv_items)
    train = Dataset.from_raw(["a", "a", "b"], [1, 2, 1], user_vocab=uv, item_vocab=iv)
    test = Dataset.from_raw(["a", "b", "b"], [3, 5, 4], user_vocab=uv, item_vocab=iv)
    del full
    return Split(train, None, test, "tiny")


def test_full_ranking_masks_train_and_matches_hand_computation():
    s = tiny_split()
    model = create_model("pop").fit(s.train)
    # pop counts: item1=2, item2=1, others 0 -> for 'a' (seen 1,2) remaining order 3,4,5 by index
    res = evaluate_ranking(
        model, s.test, [s.train], ks=(1, 3), metrics=("hit", "recall", "precision")
    )
    # user a: top1 = 3 (hit); user b (seen 1): ranking 2,3,4 -> top1 miss; top3 has 4 (hit),
    # recall 1/2
    assert res.per_user["hit@1"].tolist() == [1.0, 0.0]
    assert res.per_user["recall@3"].tolist() == [1.0, 0.5]
    assert res.metrics["precision@3"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert res.users.tolist() == ["a", "b"]
    assert res.n_users == 2 and res.mode == "full"
    assert 0 < res.metrics["coverage@3"] <= 1


def test_batching_does_not_change_results(synthetic):
    from zenrec.splits import user_random_split

    s = user_random_split(synthetic, seed=0)
    m = create_model("ease", l2=5.0).fit(s.train)
    a = evaluate_ranking(m, s.test, [s.train, s.valid], ks=(5, 10), batch_size=7)
    b = evaluate_ranking(m, s.test, [s.train, s.valid], ks=(5, 10))
    assert a.metrics == pytest.approx(b.metrics)


def test_unknown_metric_is_config_error(synthetic):
    m = create_model("pop").fit(synthetic)
    with pytest.raises(ConfigError, match="unknown ranking metrics"):
        evaluate_ranking(m, synthetic, ks=(10,), metrics=("ndgc",))


def test_sampled_is_labelled_and_optimistic(synthetic):
    from zenrec.splits import leave_one_out

    s = leave_one_out(synthetic)
    m = create_model("ease", l2=5.0).fit(s.train)
    sampled = evaluate_sampled(m, s.test, [s.train, s.valid], n_negatives=20, seed=0)
    full = evaluate_ranking(m, s.test, [s.train, s.valid], ks=(10,), metrics=("hit", "ndcg"))
    assert all(k.endswith("(sampled)") for k in sampled.metrics)
    assert "sampled" in sampled.mode
    assert sampled.metrics["hit@10(sampled)"] >= full.metrics["hit@10"]


def test_rating_evaluation(synthetic):
    from zenrec.splits import global_random_split

    s = global_random_split(synthetic, (0.8, 0.2), seed=0)
    m = create_model("biasedmf", factors=4, iterations=5).fit(s.train)
    res = evaluate_rating(m, s.test)
    baseline = np.sqrt(np.mean((s.test.ratings - s.train.ratings.mean()) ** 2))
    assert res.metrics["rmse"] < baseline
    assert res.metrics["mae"] <= res.metrics["rmse"]


def test_protocol_presets_are_complete():
    assert set(PROTOCOLS) >= {"recbole", "msrec", "surprise-cv5", "loo-full", "loo-uni100"}
    assert "SAMPLED" in get_protocol("loo-uni100").description
    with pytest.raises(ConfigError, match="unknown protocol"):
        get_protocol("recbol")


def test_recbole_preset_on_ml1m_reproduces_anchor_counts():
    from datahelp import data_dir
    from zenrec.data import load_builtin

    ds = load_builtin("ml-1m", data_dir("ml-1m"), download=False)
    prepared = prepare_dataset(ds, get_protocol("recbole"))
    assert (len(prepared), prepared.n_users, prepared.n_items) == (836_478, 6039, 3628)
    split = get_protocol("recbole").splits(prepared, 2020)[0]
    assert split.sizes() == (674_674, 80_902, 80_902)  # RecBole's own split sizes


def test_preset_filters_still_apply_with_user_filters(ml100k):
    p = get_protocol("loo-full")
    d = prepare_dataset(ml100k, p, {"min_rating": 4})
    assert any("rating >= 4" in f for f in d.filters)
    assert any("k-core users >= 5" in f for f in d.filters)
