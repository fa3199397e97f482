"""One data spec: the same filters through a CLI flag, a Python keyword, Dataset.filter and a
[data] table give the same dataset; errors name docs/data-spec.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import zenrec
from zenrec import ConfigError, DataError
from zenrec.data import DataSpec
from zenrec.data.config import read_data_config

FILTERS = {"min_rating": 3, "min_user_count": 4, "start": "2020-01-05", "end": 1579000000}
FLAGS = ["--min-rating", "3", "--min-user-count", "4", "--start", "2020-01-05"]
FLAGS += ["--end", "1579000000"]


@pytest.fixture
def log_csv(tmp_path):
    """Ratings 1-5 and times over 20 days of 2020 (one day = 86400 s), with repeated pairs."""
    rng = np.random.default_rng(0)
    n = 600
    users = rng.integers(0, 40, n)
    items = rng.integers(0, 30, n)
    ratings = rng.integers(1, 6, n)
    times = 1577836800 + rng.integers(0, 20 * 86400, n)  # 2020-01-01 onwards
    p = tmp_path / "log.csv"
    rows = ["user,item,rating,timestamp"]
    rows += [f"u{u},i{i},{r},{t}" for u, i, r, t in zip(users, items, ratings, times)]
    p.write_text("\n".join(rows) + "\n")
    return p


def _same(a: zenrec.Dataset, b: zenrec.Dataset) -> None:
    assert a.fingerprint() == b.fingerprint()
    assert a.filters == b.filters
    assert a.user_vocab.ids.tolist() == b.user_vocab.ids.tolist()


def test_same_filters_four_ways(log_csv, tmp_path):
    via_kwarg = zenrec.load_dataset(log_csv, **FILTERS)
    via_method = zenrec.load_dataset(log_csv).filter(**FILTERS)
    via_reader = zenrec.read_interactions(log_csv, **FILTERS)
    cfg = tmp_path / "log.toml"
    cfg.write_text(
        '[data]\npath = "log.csv"\nname = "log.csv"\nmin_rating = 3\nmin_user_count = 4\n'
        "start = 2020-01-05\nend = 1579000000\n"
    )
    via_toml = zenrec.load_dataset(cfg)
    for other in (via_method, via_reader, via_toml):
        _same(via_kwarg, other)
    # the filters did something, in the documented order and meaning
    full = zenrec.load_dataset(log_csv)
    assert len(via_kwarg) < len(full)
    assert via_kwarg.timestamps.min() >= 1578182400  # 2020-01-05T00:00Z
    assert via_kwarg.timestamps.max() < 1579000000
    assert via_kwarg.ratings.min() >= 3 and via_kwarg.user_counts().min() >= 4
    assert [f.split(" (")[0] for f in via_kwarg.filters] == [
        "time >= 2020-01-05 and time < 1579000000",
        "duplicates: last",
        "rating >= 3",
        "k-core users >= 4, items >= 0",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run(
        [sys.executable, "-m", "zenrec", "data", "info", str(log_csv), "--json", *FLAGS],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == json.loads(json.dumps(via_kwarg.describe()))


def test_time_window_bounds_are_start_inclusive_end_exclusive():
    ds = zenrec.Dataset.from_raw(
        np.array([1, 1, 2, 2]), np.array([5, 6, 5, 7]), None, np.array([10, 20, 30, 40])
    )
    kept = ds.filter(start=20, end=40, duplicates="keep")
    assert sorted(kept.timestamps.tolist()) == [20, 30]
    assert ds.filter(start="1970-01-01T00:00:30Z").timestamps.tolist() == [30, 40]
    with pytest.raises(ConfigError, match=r"'end'.*must be after 'start'"):
        ds.filter(start=30, end=30)
    no_time = zenrec.Dataset.from_raw(np.array([1]), np.array([5]))
    with pytest.raises(DataError, match=r"no time column.*time_col"):
        no_time.filter(end=5)


def test_bad_filters_and_keys_name_the_spec_page(log_csv, tmp_path):
    with pytest.raises(ConfigError, match=r"min_user_count.*greater than or equal to 1.*data-spec"):
        zenrec.load_dataset(log_csv, min_user_count=0)
    with pytest.raises(ConfigError, match=r"'start'.*ISO 8601.*got 'yesterday'.*data-spec"):
        zenrec.load_dataset(log_csv).filter(start="yesterday")
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[data]\npath = "log.csv"\nmin_ratings = 3\n')
    with pytest.raises(ConfigError, match=r"unknown key 'data.min_ratings'.*docs/data-spec.md"):
        read_data_config(cfg)
    cfg.write_text('[data]\npath = "log.csv"\nduplicates = "first"\n')
    with pytest.raises(ConfigError, match=r"'data.duplicates'.*docs/data-spec.md"):
        read_data_config(cfg)


def test_data_spec_carries_the_time_window_to_the_command_line():
    spec = DataSpec(source="ml-100k", min_rating=4, start="1997-12-01", end=893286638)
    args = spec.cli_args()
    assert args[args.index("--start") + 1] == "1997-12-01"
    assert args[args.index("--end") + 1] == "893286638"
    assert spec.user_filters()["start"] == "1997-12-01"
