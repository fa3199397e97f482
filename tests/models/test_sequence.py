"""V-SKNN and item transitions: conformance on planted sequences, order matters (reversing it
breaks them), validation scored without the validation item, bundles, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from zenrec import DataError
from zenrec.data import Dataset
from zenrec.evaluation.protocols import get_protocol
from zenrec.models import create_model, load_model
from zenrec.models.classic.sequence import VSKNN, ItemTransition, history_table
from zenrec.splits import leave_one_out
from zenrec.testing import SequentialConformance, planted_sequences


class TestVSKNN(SequentialConformance):
    # V-SKNN reads order only through the session's position weights; in the small planted
    # groups (1 or 2 users per start of the walk) neighbours that go on past the next step can
    # outvote it for about one user in eight (87 %); the transition model gets every user.
    min_planted_hit_rate = 0.85

    def make_model(self):
        return create_model("vsknn", k=50)


class TestVSKNNCosineSampled(SequentialConformance):
    min_planted_hit_rate = 0.85

    def make_model(self):
        return create_model("vsknn", k=20, sample_size=40, similarity="cosine", idf_weight=1.0)


class TestItemTransition(SequentialConformance):
    def make_model(self):
        return create_model("transition")


class TestItemTransitionWindow(SequentialConformance):
    def make_model(self):
        return create_model("transition", window=3, n_last=3, shrink=2.0)


def _hit_rate(model, p):
    users = list(p.withheld)
    recs = model.recommend(users, k=1)
    return float(np.mean([recs.item_lists[j][0] == p.withheld[u] for j, u in enumerate(users)]))


def _reversed_time(p):
    tr = p.train
    return Dataset.from_raw(
        tr.user_vocab.decode(tr.users),
        tr.item_vocab.decode(tr.items),
        timestamps=-tr.timestamps,
        user_vocab=tr.user_vocab,
        item_vocab=tr.item_vocab,
    )


@pytest.mark.parametrize(
    "name,params", [("vsknn", {"k": 50}), ("transition", {}), ("transition", {"window": 3})]
)
def test_reading_time_backwards_loses_the_next_item(name, params):
    """The planted next step is recovered from the order alone: with time reversed (transitions
    counted the wrong way, the session's decay on the oldest items) it is not."""
    p = planted_sequences()
    assert _hit_rate(create_model(name, **params).fit(p.train), p) >= 0.85
    assert _hit_rate(create_model(name, **params).fit(_reversed_time(p)), p) < 0.2


# The papers' versions (the defaults are tuned ones): formulas are checked on these.
PAPER_VSKNN = {"k": 100, "max_len": 20, "similarity": "dot", "idf_weight": 0.0}
MARKOV = {"window": 1, "decay": 0.5, "shrink": 0.0, "n_last": 1, "history_decay": 0.5}


def test_vsknn_position_weights_favour_the_most_recent_items():
    """Items at the end of the session weigh 1, the oldest 1/n; a repeat keeps its latest."""
    p = planted_sequences()
    m = VSKNN(**PAPER_VSKNN).fit(p.train)
    hist = np.array([[0, 3, 5, 3, 7]])  # items 2, 4, 2, 6 (index + 1), oldest first
    q = m._query(hist).toarray()[0]
    assert q[6] == pytest.approx(1.0) and q[2] == pytest.approx(0.75)
    assert q[4] == pytest.approx(0.5) and np.count_nonzero(q) == 3


def test_vsknn_keeps_k_neighbours_and_excludes_the_user():
    p = planted_sequences()
    m = VSKNN(k=3).fit(p.train)
    users = np.arange(5)
    w = m._neighbours(m._query(m.history_of(users)), users)
    assert w.getnnz(axis=1).max() <= 3
    assert all(w[r, u] == 0 for r, u in enumerate(users))


def test_vsknn_sample_keeps_the_most_recent_candidates():
    # a, b, c share item 1 with the visitor; c was active last, then b, then a
    ds = Dataset.from_raw(
        ["a", "a", "b", "b", "c", "c"], [1, 2, 1, 3, 1, 4], timestamps=[0, 1, 2, 3, 4, 5]
    )
    m = VSKNN(**PAPER_VSKNN, sample_size=1).fit(ds)
    scores = m.score_from_items([1]).scores
    enc = m.item_vocab.encode([2, 3, 4])
    assert scores[enc].tolist() == [0.0, 0.0, 1.0]
    m2 = VSKNN(**PAPER_VSKNN, sample_size=2).fit(ds)
    assert m2.score_from_items([1]).scores[enc].tolist() == [0.0, 1.0, 1.0]


def test_transition_probabilities_are_row_normalised_with_shrinkage():
    # 1 -> 2 twice, 1 -> 3 once
    ds = Dataset.from_raw(
        ["a", "a", "b", "b", "c", "c"], [1, 2, 1, 2, 1, 3], timestamps=[0, 1, 0, 1, 0, 1]
    )
    enc = lambda ids: ItemTransition(**MARKOV).fit(ds).item_vocab.encode(ids)  # noqa: E731
    one, two, three = enc([1, 2, 3])
    P = ItemTransition(**MARKOV).fit(ds).P_.toarray()
    assert P[one, two] == pytest.approx(2 / 3) and P[one, three] == pytest.approx(1 / 3)
    assert P[two].sum() == 0  # nothing follows 2
    Ps = ItemTransition(**{**MARKOV, "shrink": 3.0}).fit(ds).P_.toarray()
    assert Ps[one, two] == pytest.approx(2 / 6)


def test_transition_window_weights_pairs_by_distance():
    ds = Dataset.from_raw(["a"] * 3, [1, 2, 3], timestamps=[0, 1, 2])
    m = ItemTransition(**{**MARKOV, "window": 2, "decay": 0.25}).fit(ds)
    one, two, three = m.item_vocab.encode([1, 2, 3])
    P = m.P_.toarray()
    assert P[one, two] == pytest.approx(1 / 1.25) and P[one, three] == pytest.approx(0.25 / 1.25)


def _loo():
    p = planted_sequences(length=6)
    return p, leave_one_out(p.train, valid=True)


@pytest.mark.parametrize("name", ["vsknn", "transition"])
def test_histories_include_valid_for_test_but_not_for_validation(name):
    """After fit the scoring history ends with the validation item (it precedes the test item);
    the protocol's validation evaluation scores from the training history alone."""
    _, split = _loo()
    m = create_model(name).fit(split.train, split.valid)
    u = split.valid.users[0]
    v_item = split.valid.items[0]
    assert m.history_of([u])[0, -1] == v_item + 1
    view = m.validation_view()
    assert view.history_of([u])[0, -1] != v_item + 1
    assert m.history_of([u])[0, -1] == v_item + 1  # the model itself is unchanged
    off = create_model(name, history_with_valid=False).fit(split.train, split.valid)
    np.testing.assert_array_equal(off.history_of([u]), view.history_of([u]))
    # validation metrics equal those of the model that never saw validation histories
    proto = get_protocol("loo-full")
    got = proto.evaluate(m, split, "valid").metrics
    want = proto.evaluate(off, split, "valid").metrics
    assert got == want
    # and on test the validation item helps: the next step of the walk follows it
    test_with = proto.evaluate(m, split, "test").metrics["hit@10"]
    assert test_with == 1.0


@pytest.mark.parametrize("name", ["vsknn", "transition"])
def test_bundle_keeps_both_history_tables(name, tmp_path):
    _, split = _loo()
    m = create_model(name).fit(split.train, split.valid)
    loaded = load_model(m.save(tmp_path / "b"))
    users = np.arange(split.train.n_users)
    np.testing.assert_array_equal(loaded.score_indices(users), m.score_indices(users))
    np.testing.assert_array_equal(
        loaded.validation_view().score_indices(users), m.validation_view().score_indices(users)
    )


@pytest.mark.parametrize("name", ["vsknn", "transition"])
def test_no_timestamps_is_a_clear_error(name):
    ds = Dataset.from_raw(["a", "a", "b"], [1, 2, 1])
    with pytest.raises(DataError, match=rf"{name}: dataset .* has no timestamps.*--time-col"):
        create_model(name).fit(ds)


def test_history_table_keeps_the_most_recent_items_and_row_order_on_ties():
    t = history_table(np.array([0, 0, 0]), np.array([1, 2, 3]), np.array([5, 5, 1]), 2, 2)
    assert t.tolist() == [[2, 3], [0, 0]]  # item 3 (time 1) first; ties 1, 2 keep row order
