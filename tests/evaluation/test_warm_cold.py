"""Warm and cold test users reported apart, and the test part's coverage by training data."""

import warnings

import numpy as np
import pytest

import zenrec
from zenrec import ColdStartWarning
from zenrec.data import Dataset
from zenrec.evaluation import evaluate_ranking, evaluate_sampled
from zenrec.splits import Split


def planted() -> Split:
    """Train: a -> {1, 2}, b -> {1, 3}. Test: a -> {3}, c -> {1}, d -> {4}.

    c and d have no training interaction (cold); item 4 never appears in training, so d's test
    interaction is unreachable. Pop scores 1: 2, 2: 1, 3: 1, 4: 0 (ties by item index).
    """
    users = ["a", "a", "b", "b", "a", "c", "d"]
    items = [1, 2, 1, 3, 3, 1, 4]
    ds = Dataset.from_raw(users, items, name="planted")
    return Split(ds.subset(np.arange(4)), None, ds.subset(np.arange(4, 7)), "planted")


def test_warm_and_cold_metrics_and_coverage_by_hand():
    split = planted()
    model = zenrec.create_model("pop").fit(split.train)
    with pytest.warns(ColdStartWarning, match=r"2 of 3 test users \(66.7%\).*1 of 3") as rec:
        res = evaluate_ranking(model, split, ks=(1, 2), metrics=("hit", "recall"))
    assert rec[0].filename == __file__  # stacklevel points at the caller
    # a: 1, 2 masked -> [3, 4]: hit@1. c: [1, 2]: hit@1. d: [1, 2]: item 4 is last, no hit.
    assert res.metrics["hit@1"] == pytest.approx(2 / 3)
    assert res.metrics_warm == {"hit@1": 1.0, "hit@2": 1.0, "recall@1": 1.0, "recall@2": 1.0}
    assert res.metrics_cold == {"hit@1": 0.5, "hit@2": 0.5, "recall@1": 0.5, "recall@2": 0.5}
    assert res.test_coverage == {
        "test_users": 3,
        "cold_users": 2,
        "test_interactions": 3,
        "unreachable_interactions": 1,
    }


def test_sampled_evaluation_reports_the_same_coverage():
    split = planted()
    model = zenrec.create_model("pop").fit(split.train)
    with pytest.warns(ColdStartWarning):
        res = evaluate_sampled(model, split, n_negatives=1, ks=(1,), metrics=("hit",))
    assert res.test_coverage["cold_users"] == 2
    assert res.test_coverage["unreachable_interactions"] == 1
    assert set(res.metrics_warm) == set(res.metrics_cold) == {"hit@1(sampled)"}
    assert res.metrics_warm["hit@1(sampled)"] == 1.0  # a's item 3 beats the only negative, 4


def test_no_cold_users_no_warning_and_no_cold_group():
    # everyone has training data and every test item was seen in training
    ds = Dataset.from_raw(["a", "a", "b", "b", "a", "b"], [1, 2, 2, 3, 3, 1], name="warm")
    split = Split(ds.subset(np.arange(4)), None, ds.subset(np.arange(4, 6)), "warm")
    model = zenrec.create_model("pop").fit(split.train)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = evaluate_ranking(model, split, ks=(1,), metrics=("hit",))
    assert res.metrics_cold == {}
    assert res.metrics_warm == {"hit@1": res.metrics["hit@1"]}
    assert res.test_coverage["cold_users"] == 0
    assert res.test_coverage["unreachable_interactions"] == 0


def test_threshold_is_five_percent():
    # 1 cold user of 20 (5%): no warning; 2 of 20 (10%): a warning
    def run(n_cold: int) -> list:
        warm = [f"w{j}" for j in range(20 - n_cold)]
        cold = [f"c{j}" for j in range(n_cold)]
        users = [u for u in warm for _ in range(2)] + warm + cold
        items = [1, 2] * len(warm) + [1] * len(warm) + [2] * n_cold
        ds = Dataset.from_raw(users, items, name="t")
        n_train = 2 * len(warm)
        split = Split(
            ds.subset(np.arange(n_train)), None, ds.subset(np.arange(n_train, len(ds))), "t"
        )
        model = zenrec.create_model("pop").fit(split.train)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = evaluate_ranking(model, split, exclude=(), ks=(1,), metrics=("hit",))
        assert res.test_coverage["cold_users"] == n_cold
        return [w for w in caught if issubclass(w.category, ColdStartWarning)]

    assert run(1) == []
    assert len(run(2)) == 1


def test_run_protocol_and_record_carry_warm_and_cold(synthetic):
    from zenrec.evaluation import get_protocol
    from zenrec.runs import evaluate_model

    with pytest.warns(ColdStartWarning):
        record, run = evaluate_model(synthetic, get_protocol("temporal"), "pop")
    assert run.test_coverage == run.results[0].test_coverage
    assert record.test_coverage == run.test_coverage
    assert record.test_coverage["cold_users"] > 0
    assert record.metrics_warm == run.metrics_warm and record.metrics_cold == run.metrics_cold
    data = record.to_json()
    assert data["metrics_cold"]["ndcg@10"] == pytest.approx(run.metrics_cold["ndcg@10"])
    # the main figure is the users' mean: warm and cold weighted by their counts
    cov = run.test_coverage
    n_warm = cov["test_users"] - cov["cold_users"]
    mixed = (
        n_warm * run.metrics_warm.get("ndcg@10", 0.0)
        + cov["cold_users"] * run.metrics_cold["ndcg@10"]
    ) / cov["test_users"]
    assert run.metrics["ndcg@10"] == pytest.approx(mixed)


def test_run_protocol_warns_at_the_callers_line(synthetic):
    from zenrec.evaluation import run_protocol

    with pytest.warns(ColdStartWarning, match="test users") as rec:
        run = run_protocol(lambda: zenrec.create_model("pop"), synthetic, "temporal")
    assert [w.filename for w in rec] == [__file__]
    assert run.test_coverage["cold_users"] > 0.05 * run.test_coverage["test_users"]
