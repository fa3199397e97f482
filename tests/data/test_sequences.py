"""Chronological sequences, the one-sequence-per-line reader and the ml-1m-ts dataset."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from zenrec import DataError
from zenrec.data import Dataset, load_dataset, read_sequences, user_sequences
from zenrec.data.sequences import chronological_order, pad_left
from zenrec.splits import leave_one_out


def test_sequences_are_chronological_left_padded_and_truncated_to_recent():
    ds = Dataset.from_raw(["a"] * 5 + ["b"], [1, 2, 3, 4, 5, 9], timestamps=[50, 10, 40, 20, 30, 1])
    seq = user_sequences(ds, 3)
    dec = ds.item_vocab.decode
    assert dec(seq[0] - 1).tolist() == [5, 3, 1]  # times 30, 40, 50: the three most recent
    assert seq[1, :2].tolist() == [0, 0] and dec(seq[1, 2:] - 1).tolist() == [9]
    long = user_sequences(ds, 8)
    assert dec(long[0, 3:] - 1).tolist() == [2, 4, 5, 3, 1]
    assert (long[0, :3] == 0).all()


def test_timestamp_ties_keep_file_order():
    ds = Dataset.from_raw(["u"] * 4, [7, 3, 9, 1], timestamps=[5, 5, 5, 1])
    order = chronological_order(ds)
    assert ds.item_vocab.decode(ds.items[order]).tolist() == [1, 7, 3, 9]
    assert ds.item_vocab.decode(user_sequences(ds, 4)[0] - 1).tolist() == [1, 7, 3, 9]


def test_no_timestamps_uses_row_order():
    ds = Dataset.from_raw(["u", "v", "u"], [3, 1, 2])
    assert ds.item_vocab.decode(user_sequences(ds, 2)[0] - 1).tolist() == [3, 2]


def test_pad_left_and_bad_length():
    assert pad_left([np.array([0, 1, 2]), np.array([], np.int64)], 2).tolist() == [[2, 3], [0, 0]]
    with pytest.raises(DataError, match="max_len"):
        user_sequences(Dataset.from_raw([1], [1]), 0)


def test_read_sequences_line_order_and_splits(tmp_path: Path):
    p = tmp_path / "seq.txt"
    p.write_text("1 10 11 12 13\n2 13 11\n\n3 12\n1 14\n")
    ds = read_sequences(p)
    assert (ds.n_users, ds.n_items, len(ds)) == (3, 5, 8)
    assert ds.timestamps is not None and ds.timestamps.tolist() == list(range(8))
    assert ds.item_vocab.decode(
        user_sequences(ds, 10)[ds.user_vocab.encode([1])[0]][-5:] - 1
    ).tolist() == [10, 11, 12, 13, 14]
    sp = leave_one_out(ds, valid=True)
    u1 = sp.test.users == ds.user_vocab.encode([1])[0]
    assert ds.item_vocab.decode(sp.test.items[u1]).tolist() == [14]
    assert load_dataset(p, format="sequences").fingerprint() == ds.fingerprint()


def test_read_sequences_errors(tmp_path: Path):
    p = tmp_path / "bad.txt"
    p.write_text("1,10,11\n")
    with pytest.raises(DataError, match="line 1"):
        read_sequences(p)
    empty = tmp_path / "empty.txt"
    empty.write_text("1\n2\n")
    with pytest.raises(DataError, match="no interactions"):
        read_sequences(empty)
    with pytest.raises(DataError, match="format"):
        load_dataset(p, format="lines")


def test_read_sequences_gzip_and_string_ids(tmp_path: Path):
    p = tmp_path / "s.txt.gz"
    p.write_bytes(gzip.compress(b"alice x y 007\n"))
    ds = read_sequences(p)
    assert ds.item_vocab.decode(user_sequences(ds, 3)[0] - 1).tolist() == ["x", "y", "007"]


DATA = os.environ.get("ZENREC_DATA")


@pytest.mark.skipif(
    not DATA or not (Path(DATA) / "ml-1m" / "ratings.users1-2999.with-timestamps.dat.gz").exists(),
    reason="shared MovieLens data absent",
)
def test_ml1m_ts_builtin():
    ds = load_dataset("ml-1m-ts")
    assert (len(ds), ds.n_users) == (487_650, 2999)
    assert ds.timestamps is not None and ds.timestamps.min() >= 956_703_932
    assert set(ds.user_features) == {"gender", "age", "occupation", "zip_prefix"}
    assert {"title", "genres", "year"} <= set(ds.item_features)
    assert ds.source_sha256 == "2fedcf5405373a49df4041e3d3fe1e8db9eacf2c77c209ae1f686ea06b7a16d9"
