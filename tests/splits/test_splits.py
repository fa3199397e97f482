import numpy as np
import pytest

from zenrec import ConfigError, ProtocolError
from zenrec.data import Dataset
from zenrec.splits import (
    global_random_split,
    kfold_splits,
    leave_one_out,
    recbole_split_sizes,
    time_cutoff_split,
    user_random_split,
    user_stratified_split,
    user_temporal_split,
)


def keys(ds):
    """Interaction identities (user, item, time) as a multiset of tuples."""
    t = ds.timestamps if ds.timestamps is not None else np.zeros(len(ds), np.int64)
    return sorted(
        zip(
            ds.user_vocab.decode(ds.users).tolist(),
            ds.item_vocab.decode(ds.items).tolist(),
            t.tolist(),
        )
    )


def assert_partition(full, split):
    parts = [split.train, split.test] + ([split.valid] if split.valid is not None else [])
    assert sum(len(p) for p in parts) == len(full)
    seen = set()
    for p in parts:
        k = set(keys(p))
        assert not (seen & k), "an interaction landed in two parts"
        seen |= k
        assert p.user_vocab is full.user_vocab and p.item_vocab is full.item_vocab
    assert sorted(seen) == keys(full)


ALL_SPLITS = [
    ("global", lambda d, s: global_random_split(d, (0.8, 0.1, 0.1), seed=s)),
    ("user_random", lambda d, s: user_random_split(d, seed=s)),
    ("stratified", lambda d, s: user_stratified_split(d, 0.75, seed=s)),
    ("temporal", lambda d, s: user_temporal_split(d)),
    ("loo", lambda d, s: leave_one_out(d)),
    ("cutoff", lambda d, s: time_cutoff_split(d, test_fraction=0.2, valid_fraction=0.1)),
    ("kfold", lambda d, s: list(kfold_splits(d, 5, seed=s))[2]),
]


@pytest.mark.parametrize(("name", "fn"), ALL_SPLITS)
def test_split_is_a_partition_and_deterministic(synthetic, name, fn):
    a, b = fn(synthetic, 3), fn(synthetic, 3)
    assert_partition(synthetic, a)
    assert keys(a.test) == keys(b.test) and keys(a.train) == keys(b.train)


@pytest.mark.parametrize(
    ("name", "fn"),
    [s for s in ALL_SPLITS if s[0] in ("global", "user_random", "stratified", "kfold")],
)
def test_random_splits_change_with_seed(synthetic, name, fn):
    assert keys(fn(synthetic, 1).test) != keys(fn(synthetic, 2).test)


def test_recbole_rounding_reproduces_published_sizes():
    assert recbole_split_sizes(20, np.array([0.8, 0.1, 0.1])) == [16, 2, 2]
    assert recbole_split_sizes(5, np.array([0.8, 0.1, 0.1])) == [3, 1, 1]
    assert recbole_split_sizes(2, np.array([0.8, 0.1, 0.1])) == [1, 0, 1]


def test_user_random_split_is_per_user(synthetic):
    s = user_random_split(synthetic, seed=0)
    tr, te = s.train.user_counts(), s.test.user_counts()
    total = synthetic.user_counts()
    ok = total >= 10
    np.testing.assert_allclose(tr[ok] / total[ok], 0.8, atol=0.1)
    assert (te[ok] >= 1).all()


def test_temporal_and_loo_never_train_on_the_future(synthetic):
    for s in (user_temporal_split(synthetic), leave_one_out(synthetic)):
        for u in range(synthetic.n_users):
            tr = s.train.timestamps[s.train.users == u]
            later = [p.timestamps[p.users == u] for p in (s.valid, s.test) if p is not None]
            later = np.concatenate(later)
            if tr.size and later.size:
                assert tr.max() <= later.min()
    loo = leave_one_out(synthetic)
    assert loo.test.user_counts().max() == 1 and loo.valid.user_counts().max() == 1


def test_time_cutoff_is_global(synthetic):
    s = time_cutoff_split(synthetic, test_fraction=0.2)
    assert s.train.timestamps.max() < s.test.timestamps.min()


def test_kfold_test_parts_cover_everything_once(synthetic):
    folds = list(kfold_splits(synthetic, 4, seed=0))
    all_test = sorted(k for f in folds for k in keys(f.test))
    assert all_test == keys(synthetic)


def test_time_splits_refuse_data_without_time():
    ds = Dataset.from_raw([1, 1, 2], [1, 2, 1], name="ml-1m")
    for fn in (
        leave_one_out,
        user_temporal_split,
        lambda d: time_cutoff_split(d, test_fraction=0.5),
    ):
        with pytest.raises(ProtocolError, match=r"needs timestamps.*random split"):
            fn(ds)


def test_bad_ratios():
    ds = Dataset.from_raw([1, 1], [1, 2])
    with pytest.raises(ConfigError):
        user_random_split(ds, (0.8, -0.1, 0.3))
    with pytest.raises(ConfigError):
        list(kfold_splits(ds, 1))


def test_recbole_split_of_ml100k_matches_recbole_sizes(ml100k):
    # RecBole 1.2.1's own split of ML-100K (seed 2020) is on disk: every user's train, valid
    # and test counts must equal it (RecBole's rounding per user), not only the totals.
    from datahelp import data_dir

    golden = data_dir("golden/ml-100k-recbole-split")
    s = user_random_split(ml100k, seed=2020)
    assert s.sizes() == (80_808, 9_596, 9_596)  # golden split README
    assert_partition(ml100k, s)
    for part, name in ((s.train, "train"), (s.valid, "valid"), (s.test, "test")):
        users = np.loadtxt(golden / f"{name}.tsv", skiprows=1, usecols=0, dtype=np.int64)
        want = dict(zip(*np.unique(users, return_counts=True)))
        got = dict(zip(*np.unique(part.user_vocab.decode(part.users), return_counts=True)))
        assert {int(u): int(n) for u, n in got.items()} == {
            int(u): int(n) for u, n in want.items()
        }, name
    # the rows in each part are drawn at random within a user, by the seed
    again, other = user_random_split(ml100k, seed=2020), user_random_split(ml100k, seed=1)
    assert keys(again.test) == keys(s.test)
    assert keys(other.test) != keys(s.test) and other.sizes() == s.sizes()
    # not by time: the test part is not each user's latest interactions
    latest = user_temporal_split(ml100k)
    overlap = len(set(keys(s.test)) & set(keys(latest.test))) / len(s.test)
    assert overlap < 0.3
