import numpy as np
import pytest

from zenrec import ConfigError, DataError
from zenrec.data import Dataset, Vocabulary, dedupe, kcore, min_rating


def test_vocabulary_round_trip_ints_and_strings():
    v = Vocabulary.from_values([30, 10, 20, 10])
    assert v.ids.tolist() == [10, 20, 30]
    assert v.encode([20, 99, 10]).tolist() == [1, -1, 0]
    assert v.decode(v.encode([30, 10])).tolist() == [30, 10]
    s = Vocabulary.from_values(["b", "a", "c"])
    assert s.encode(["c", "zz"]).tolist() == [2, -1]
    assert Vocabulary.from_json(s.to_json()) == s
    assert Vocabulary.from_json(v.to_json()) == v
    assert v.encode(["20", "x"]).tolist() == [1, -1]  # CLI strings coerce to int ids


def test_dataset_from_raw_and_csr():
    ds = Dataset.from_raw(["a", "b", "a"], [5, 7, 7], ratings=[1, 2, 3])
    assert (ds.n_users, ds.n_items, len(ds)) == (2, 2, 3)
    m = ds.csr()
    assert m.shape == (2, 2) and m.nnz == 3
    assert ds.csr("rating").toarray().tolist() == [[1.0, 3.0], [0.0, 2.0]]
    with pytest.raises(DataError, match="same length"):
        Dataset.from_raw([1, 2], [1])


def test_min_rating_and_kcore_and_compaction():
    users = [1, 1, 1, 2, 2, 3]
    items = [10, 11, 12, 10, 11, 13]
    ratings = [5, 4, 1, 5, 2, 5]
    ds = Dataset.from_raw(users, items, ratings)
    pos = min_rating(ds, 4)
    assert len(pos) == 4 and pos.filters[-1].startswith("rating >= 4")
    assert 12 not in pos.item_vocab.ids.tolist()  # compacted
    core = kcore(ds, 2, 2)
    assert set(core.user_vocab.ids.tolist()) == {1, 2}
    assert set(core.item_vocab.ids.tolist()) == {10, 11}
    # every remaining user and item satisfies the thresholds
    assert core.user_counts().min() >= 2 and core.item_counts().min() >= 2
    with pytest.raises(DataError, match="no rating column"):
        min_rating(Dataset.from_raw([1], [2]), 3)


def test_dedupe_policies():
    ds = Dataset.from_raw([1, 1, 2], [9, 9, 9], ratings=[2, 4, 5], timestamps=[20, 10, 5])
    last = dedupe(ds, "last")
    assert len(last) == 2
    r = dict(zip(last.user_vocab.decode(last.users).tolist(), last.ratings.tolist()))
    assert r[1] == 2.0  # the later timestamp (20) wins
    mean = dedupe(ds, "mean")
    r = dict(zip(mean.user_vocab.decode(mean.users).tolist(), mean.ratings.tolist()))
    assert r[1] == 3.0
    with pytest.raises(DataError, match="repeated"):
        dedupe(ds, "error")
    with pytest.raises(ConfigError):
        dedupe(ds, "first")


def test_synthetic_is_deterministic_and_planted(synthetic):
    from zenrec.data import synthetic_dataset

    again = synthetic_dataset(n_users=300, n_items=120, interactions_per_user=15, seed=7)
    assert np.array_equal(again.users, synthetic.users) and np.array_equal(
        again.items, synthetic.items
    )
    # popularity skew: the top decile of items holds far more than 10% of interactions
    counts = np.sort(synthetic.item_counts())[::-1]
    assert counts[: len(counts) // 10].sum() > 0.2 * counts.sum()
    # users interact mostly within their own cluster's items
    seg = synthetic.user_features["segment"].values[synthetic.users]
    genre = synthetic.item_features["genre"].values[synthetic.items]
    assert (seg == genre).mean() > 0.4  # 5 clusters: chance is about 0.2
    assert synthetic.has_time and synthetic.ratings.min() >= 1 and synthetic.ratings.max() <= 5


def test_describe(synthetic):
    info = synthetic.describe()
    assert info["interactions"] == len(synthetic)
    assert 0 < info["density"] < 1
    assert set(info["rating_distribution"]) <= {"1", "2", "3", "4", "5"}
    assert info["item_features"]["genre"] == "multi"
