import numpy as np
import polars as pl
import pytest

from zenrec import DataError
from zenrec.data import load_dataset, read_interactions


def write(tmp_path, name, text, mode="w"):
    p = tmp_path / name
    p.write_text(text) if mode == "w" else p.write_bytes(text)
    return p


def test_detects_common_column_names(tmp_path):
    p = write(
        tmp_path,
        "log.csv",
        "userId,movieId,rating,timestamp\n1,10,4.5,100\n2,10,3,200\n1,11,5,300\n",
    )
    ds = read_interactions(p)
    assert (ds.n_users, ds.n_items, len(ds)) == (2, 2, 3)
    assert ds.ratings.tolist() == [4.5, 3.0, 5.0]
    assert ds.timestamps.tolist() == [100, 200, 300]
    assert ds.source_sha256 and len(ds.source_sha256) == 64


def test_multichar_separator_without_header_by_position(tmp_path):
    p = write(tmp_path, "ratings.dat", "1::10::5\n1::11::3\n2::10::4\n")
    ds = read_interactions(p, sep="::", header=False, user_col="0", item_col="1", rating_col="2")
    assert ds.user_vocab.ids.tolist() == [1, 2]
    assert ds.ratings.tolist() == [5.0, 3.0, 4.0]


def test_string_ids_and_iso_times(tmp_path):
    p = write(
        tmp_path,
        "e.tsv",
        "user\titem\ttime\nalice\tbook-1\t2024-01-02T03:04:05Z\nbob\tbook-2\t2024-01-03\n",
    )
    ds = read_interactions(p)
    assert ds.user_vocab.ids.tolist() == ["alice", "bob"]
    assert ds.timestamps[0] == 1704164645


def test_parquet(tmp_path):
    p = tmp_path / "x.parquet"
    pl.DataFrame({"u": [1, 2], "i": ["a", "b"], "r": [1.0, 2.0]}).write_parquet(p)
    ds = read_interactions(p, user_col="u", item_col="i", rating_col="r")
    assert ds.item_vocab.ids.tolist() == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "kwargs", "pattern"),
    [
        ("", {}, "empty"),
        ("user,item\n", {}, "no data rows"),
        (
            "user,item,rating\n1,2,5\n1,3,five\n",
            {},
            r"line 3: column 'rating' \(rating\) is 'five', expected a number",
        ),
        ("user,item,rating\n1,2,5\n3,4,5,6\n", {}, "line 3: 4 fields, expected 3"),
        ("who,what\n1,2\n", {}, "cannot tell which column holds the user id"),
        ("user,item\n1,2\n", {"user_col": "customer"}, "user id column 'customer' not found"),
        ("user,item\n,2\n,3\n", {}, "empty on every row"),
        ("user,item\n1,2\n,3\n", {}, "line 3: column 'user'"),
        (
            "1::2\n1::2::3\n",
            {"sep": "::", "header": False, "user_col": "0", "item_col": "1"},
            "line 2: 3 fields, expected 2",
        ),
        ("user,item,time\n1,2,yesterday\n", {}, "line 2: column 'time' \\(time\\) is 'yesterday'"),
    ],
)
def test_bad_input_names_file_line_and_column(tmp_path, text, kwargs, pattern):
    p = write(tmp_path, "bad.csv", text)
    with pytest.raises(DataError, match=pattern) as exc:
        read_interactions(p, **kwargs)
    assert "bad.csv" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(DataError, match="neither a built-in dataset"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        load_dataset(tmp_path)


def test_builtin_resolution_lists_every_place_tried(tmp_path, monkeypatch):
    from zenrec.data import resolve_builtin

    monkeypatch.setenv("ZENREC_DATA", str(tmp_path / "none"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(DataError) as exc:
        resolve_builtin("ml-100k", download=False)
    msg = str(exc.value)
    assert str(tmp_path / "none" / "ml-100k") in msg and str(tmp_path / "cache") in msg
    assert "ZENREC_DATA" in msg
    with pytest.raises(DataError, match="unknown dataset"):
        resolve_builtin("ml-2m")


def test_explicit_path_wins(tmp_path, monkeypatch):
    from datahelp import data_dir
    from zenrec.data import resolve_builtin

    d = data_dir("ml-100k")
    monkeypatch.setenv("ZENREC_DATA", str(tmp_path))
    assert resolve_builtin("ml-100k", d, download=False) == d


def test_reads_a_50k_row_file(tmp_path):
    n = 50_000
    rng = np.random.default_rng(0)
    lines = "\n".join(
        f"{u}\t{i}\t{r}"
        for u, i, r in zip(rng.integers(0, 500, n), rng.integers(0, 900, n), rng.integers(1, 6, n))
    )
    p = write(tmp_path, "big.tsv", "user\titem\trating\n" + lines + "\n")
    ds = read_interactions(p)
    assert len(ds) == n


def test_gzipped_file(tmp_path):
    import gzip

    p = tmp_path / "log.tsv.gz"
    p.write_bytes(gzip.compress(b"user\titem\trating\n1\t10\t4\n2\t11\t5\n"))
    ds = read_interactions(p)
    assert (ds.n_users, ds.n_items, ds.ratings.tolist()) == (2, 2, [4.0, 5.0])
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not a readable gzip file"):
        read_interactions(bad)
