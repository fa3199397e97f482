"""Integration tests on the real MovieLens files (skip when $ZENREC_DATA lacks them)."""

import numpy as np

from datahelp import DATA, data_dir
from zenrec.data import load_builtin, min_rating


def test_ml100k_counts_and_features(ml100k):
    assert (len(ml100k), ml100k.n_users, ml100k.n_items) == (100_000, 943, 1682)
    assert ml100k.describe()["rating_distribution"] == {
        "1": 6110,
        "2": 11370,
        "3": 27145,
        "4": 34174,
        "5": 21201,
    }
    titles = ml100k.item_features["title"]
    assert titles.row(int(ml100k.item_vocab.encode([1])[0])) == "Toy Story (1995)"
    # latin-1 decoded correctly
    assert any("Misérables" in t for t in titles.values)
    genres = ml100k.item_features["genres"]
    assert genres.row(int(ml100k.item_vocab.encode([1])[0])) == [
        "Animation",
        "Children's",
        "Comedy",
    ]
    assert ml100k.user_features["gender"].row(0) in ("M", "F")
    assert (
        ml100k.source_sha256 == "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
    )


def test_ml1m_without_timestamps_and_recbole_filter_counts():
    d = data_dir("ml-1m")
    ds = load_builtin("ml-1m", d, download=False)
    assert (len(ds), ds.n_users, ds.n_items) == (1_000_209, 6040, 3706)
    assert not ds.has_time
    pos = min_rating(ds, 3)
    # ANCHORS.md: 836,478 interactions over 6,039 users and 3,628 items
    assert (len(pos), pos.n_users, pos.n_items) == (836_478, 6039, 3628)
    assert "genres" in ds.item_features and "occupation" in ds.user_features


def test_ml_latest_small():
    d = data_dir("ml-latest-small")
    ds = load_builtin("ml-latest-small", d, download=False)
    assert (len(ds), ds.n_users, ds.n_items) == (100_836, 610, 9724)
    assert set(np.unique(ds.ratings).tolist()) == {x / 2 for x in range(1, 11)}
    assert DATA.exists()
