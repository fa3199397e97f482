"""Side features for any dataset: with_item/user_features, the CLI options and the [data] TOML
(one code path), validated and reported."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest

from zenrec import ConfigError, DataError, FeatureCoverageWarning
from zenrec.data import Dataset, load_dataset, parse_feature_specs

ITEMS = (
    "sku,genres,year,brand,title\n10,Action|Comedy,1999,acme,Ten\n11,Comedy,,zeta,Eleven\n"
    "12,,2004,acme,Twelve\n"
)
EVENTS = "customer,sku,qty\nu1,10,1\nu2,10,3\nu1,11,2\nu3,12,1\nu3,10,1\n"
SPEC = {"genres": "multi:|", "year": "numeric", "brand": "categorical", "title": "text"}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "events.csv").write_text(EVENTS)
    (tmp_path / "items.csv").write_text(ITEMS)
    (tmp_path / "users.csv").write_text(
        "customer,age,country\nu1,31,FR\nu2,45,DE\nu3,22,FR\nu9,50,US\n"
    )
    return tmp_path


@pytest.fixture
def events(files) -> Dataset:
    return load_dataset(files / "events.csv", user_col="customer", item_col="sku", rating_col="qty")


def test_item_features_from_a_file_align_by_id(files, events):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # full coverage: no warning
        ds = events.with_item_features(files / "items.csv", key="sku", features=SPEC)
    f = ds.item_features
    iv = ds.item_vocab.ids.tolist()
    assert iv == [10, 11, 12]
    assert [f["genres"].row(i) for i in range(3)] == [["Action", "Comedy"], ["Comedy"], []]
    assert [f["year"].row(i) for i in range(3)] == [1999.0, None, 2004.0]
    assert [f["brand"].row(i) for i in range(3)] == ["acme", "zeta", "acme"]
    assert ds.item_titles().tolist() == ["Ten", "Eleven", "Twelve"]
    assert events.item_features == {}  # a new dataset; the original is unchanged
    assert ds.feature_reports[0].missing == 0 and ds.feature_reports[0].unknown == 0
    assert np.shares_memory(ds.users, events.users)


def test_same_features_from_pandas_polars_and_file(files, events):
    pdf = pd.read_csv(files / "items.csv")
    a = events.with_item_features(files / "items.csv", key="sku", features=SPEC)
    for table in (pdf, pl.from_pandas(pdf)):
        b = events.with_item_features(table, key="sku", features=SPEC)
        for name in SPEC:
            assert [a.item_features[name].row(i) for i in range(3)] == [
                b.item_features[name].row(i) for i in range(3)
            ]


def test_missing_and_unknown_ids_are_counted_and_reported(files, events):
    items = pd.DataFrame({"sku": [10, 99, 98], "brand": ["acme", "x", "y"]})
    with pytest.warns(
        FeatureCoverageWarning,
        match=r"cover 1 of 3 items; 2 items have no row \(e\.g\. \[11, 12\]\) .* "
        r"2 rows have item ids the dataset does not have \(e\.g\. \[99, 98\]\)",
    ) as rec:
        ds = events.with_item_features(items, key="sku", features={"brand": "categorical"})
    assert rec[0].filename == __file__
    rep = ds.feature_reports[-1]
    assert (rep.n_catalog, rep.n_rows, rep.missing, rep.unknown) == (3, 3, 2, 2)
    assert [ds.item_features["brand"].row(i) for i in range(3)] == ["acme", None, None]
    assert ds.describe()["feature_coverage"] == [rep.summary()]


def test_user_features(files, events):
    with pytest.warns(
        FeatureCoverageWarning, match="1 rows have user ids the dataset does not have"
    ):
        ds = events.with_user_features(
            files / "users.csv",
            key="customer",
            features={"age": "numeric", "country": "categorical"},
        )
    assert [ds.user_features["country"].row(i) for i in range(3)] == ["FR", "DE", "FR"]
    assert ds.user_features["age"].values.tolist() == [31.0, 45.0, 22.0]


@pytest.mark.parametrize(
    ("table", "kwargs", "pattern"),
    [
        (
            ITEMS,
            {"key": "item"},
            r"item key column 'item' not found; columns are \[.*\]; pass key=",
        ),
        (
            ITEMS,
            {"features": {"colour": "categorical"}},
            r"feature column\(s\) \['colour'\] not found",
        ),
        (
            ITEMS,
            {"features": {"year": "float"}},
            "feature 'year': unknown kind 'float'; use one of numeric",
        ),
        (
            ITEMS,
            {"features": {"brand": "numeric"}},
            r"items.csv line 2: column 'brand' is 'acme', expected a number",
        ),
        (
            ITEMS + "10,Drama,2000,acme,Again\n",
            {},
            r"items.csv line 5: item id 10 appears again \(also at .*line 2\)",
        ),
        (ITEMS, {"features": {}}, "pass features= as a mapping"),
        (
            ITEMS,
            {"features": {"sku": "categorical"}},
            "is the item key; it cannot also be a feature",
        ),
    ],
)
def test_bad_feature_tables_fail_with_one_clear_line(files, events, table, kwargs, pattern):
    (files / "items.csv").write_text(table)
    args = {"key": "sku", "features": SPEC, **kwargs}
    with pytest.raises(DataError, match=pattern) as exc:
        events.with_item_features(files / "items.csv", **args)
    assert "\n" not in str(exc.value)


def test_dataframe_feature_errors_name_the_row(events):
    items = pd.DataFrame({"sku": [10, 11], "year": ["1999", "soon"]})
    with pytest.raises(
        DataError, match=r"DataFrame row 1 \(0-based\): column 'year' is 'soon', expected a number"
    ):
        events.with_item_features(items, key="sku", features={"year": "numeric"})


def test_parse_feature_specs():
    assert parse_feature_specs("genre:multi:|,year:numeric, brand:categorical") == {
        "genre": "multi:|",
        "year": "numeric",
        "brand": "categorical",
    }
    assert parse_feature_specs("tags:multi:;") == {"tags": "multi:;"}
    for bad, pattern in [
        ("genre", "must be COLUMN:KIND"),
        ("a:numeric,a:text", "twice"),
        ("x:nope", "unknown kind"),
        ("x:numeric:|", "only 'multi' takes a separator"),
    ]:
        with pytest.raises(DataError, match=pattern):
            parse_feature_specs(bad)


def test_features_survive_filters_and_splits(files, events):
    from zenrec.data import kcore
    from zenrec.splits import user_stratified_split

    ds = events.with_item_features(files / "items.csv", key="sku", features=SPEC)
    core = kcore(ds, min_user=2, min_item=2)
    assert core.item_titles().tolist() == [
        dict(zip([10, 11, 12], ["Ten", "Eleven", "Twelve"]))[i]
        for i in core.item_vocab.ids.tolist()
    ]
    split = user_stratified_split(ds, 0.5, seed=0)
    assert split.train.item_features["brand"] is not None


# ---------------------------------------------------------------- the [data] TOML and the CLI
def _toml(files, body: str):
    p = files / "shop.toml"
    p.write_text(body)
    return p


DATA_TOML = """
[data]
path = "events.csv"
user_col = "customer"
item_col = "sku"
rating_col = "qty"

[data.items]
path = "items.csv"
key = "sku"
features = { genres = "multi:|", year = "numeric", brand = "categorical", title = "text" }

[data.users]
path = "users.csv"
key = "customer"
features = { age = "numeric" }
"""


def test_data_config_loads_the_same_dataset_as_python(files, events):
    with pytest.warns(FeatureCoverageWarning):
        ds = load_dataset(_toml(files, DATA_TOML))
        want = events.with_item_features(files / "items.csv", key="sku", features=SPEC)
    assert ds.name == "shop"
    assert ds.fingerprint() == want.fingerprint()
    assert ds.item_titles().tolist() == want.item_titles().tolist()
    assert ds.user_features["age"].values.tolist() == [31.0, 45.0, 22.0]


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ("[data]\npath = 'events.csv'\nuser = 'x'\n", r"unknown key 'data.user'"),
        ("[data]\nuser_col = 'x'\n", "give exactly one of 'path'"),
        ("[other]\n", r"no \[data\] table"),
        (
            DATA_TOML.replace('key = "sku"', 'key = "SKU"'),
            r"shop.toml: .*items.csv: item key column 'SKU' not found",
        ),
        (
            DATA_TOML.replace('year = "numeric"', 'year = "number"'),
            r"shop.toml: feature 'year': unknown kind",
        ),
    ],
)
def test_bad_data_config(files, body, pattern):
    with pytest.raises((ConfigError, DataError), match=pattern):
        load_dataset(_toml(files, body))


def zenrec(*args: str):
    return subprocess.run([sys.executable, "-m", "zenrec", *args], capture_output=True, text=True)


def test_cli_item_and_user_features(files):
    r = zenrec(
        "data",
        "info",
        str(files / "events.csv"),
        "--user-col",
        "customer",
        "--item-col",
        "sku",
        "--rating-col",
        "qty",
        "--items",
        str(files / "items.csv"),
        "--item-key",
        "sku",
        "--item-features",
        "genres:multi:|,year:numeric,brand:categorical",
        "--users",
        str(files / "users.csv"),
        "--user-key",
        "customer",
        "--user-features",
        "age:numeric",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["item_features"] == {"genres": "multi", "year": "numeric", "brand": "categorical"}
    assert info["user_features"] == {"age": "numeric"}
    assert (
        "zenrec: warning: " in r.stderr
        and "1 rows have user ids the dataset does not have" in r.stderr
    )
    assert "Warning" not in r.stderr.replace("warning:", "")  # one line, not Python's warning dump


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (
            ["--items", "ITEMS", "--item-features", "year:numeric", "--item-key", "item"],
            "item key column 'item' not found; .* pass --item-key",
        ),
        (["--items", "ITEMS"], "--items .* needs --item-features"),
        (["--item-features", "year:numeric"], "need --items FILE"),
        (
            ["--items", "ITEMS", "--item-key", "sku", "--item-features", "year"],
            "--item-features entry 'year' must be",
        ),
        (
            ["--items", "ITEMS", "--item-key", "sku", "--item-features", "brand:numeric"],
            "line 2: column 'brand' is 'acme'",
        ),
    ],
)
def test_cli_feature_errors(files, extra, pattern):
    extra = [str(files / "items.csv") if e == "ITEMS" else e for e in extra]
    r = zenrec(
        "data",
        "info",
        str(files / "events.csv"),
        "--user-col",
        "customer",
        "--item-col",
        "sku",
        "--rating-col",
        "qty",
        *extra,
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zenrec: error: ")
    import re

    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.slow
def test_cli_evaluate_with_a_data_config_and_a_feature_model(files):
    """A feature model trains on the features of one's own data, from the TOML."""
    rng = np.random.default_rng(0)
    users = rng.integers(0, 60, 1500)
    items = rng.integers(0, 40, 1500)
    pd.DataFrame({"customer": users, "sku": items, "qty": 1}).drop_duplicates(
        ["customer", "sku"]
    ).to_csv(files / "events.csv", index=False)
    pd.DataFrame(
        {
            "sku": range(40),
            "brand": [f"b{i % 4}" for i in range(40)],
            "genres": ["A|B" if i % 2 else "C" for i in range(40)],
            "year": 1990 + np.arange(40),
            "title": [f"T{i}" for i in range(40)],
        }
    ).to_csv(files / "items.csv", index=False)
    pd.DataFrame({"customer": range(60), "age": 20 + np.arange(60)}).to_csv(
        files / "users.csv", index=False
    )
    cfg = _toml(files, DATA_TOML)
    r = zenrec(
        "evaluate",
        "--dataset",
        str(cfg),
        "--protocol",
        "recbole",
        "--model",
        "mlpranker",
        "--set",
        "epochs=1",
        "--set",
        "progress=false",
        "--output",
        str(files / "r.json"),
        "--save-bundle",
        str(files / "bundle"),
    )
    assert r.returncode == 0, r.stderr
    rec = json.loads((files / "r.json").read_text())
    assert rec["dataset"] == "shop"
    meta = json.loads((files / "bundle" / "bundle.json").read_text())
    fields = [f["name"] for f in meta["model_state"]["features"]["fields"]]
    assert {"brand", "genres", "year", "age"} <= set(fields)


def test_benchmark_accepts_a_data_config(files, tmp_path):
    """`datasets = ["shop.toml"]` in a benchmark: the same loader, features included."""
    import zenrec

    rng = np.random.default_rng(1)
    pd.DataFrame(
        {
            "customer": [f"u{u}" for u in rng.integers(0, 30, 400)],
            "sku": rng.choice([10, 11, 12], 400),
            "qty": 1,
        }
    ).drop_duplicates(["customer", "sku"]).to_csv(files / "events.csv", index=False)
    cfg = _toml(files, DATA_TOML)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FeatureCoverageWarning)
        out = zenrec.benchmark(
            {
                "name": "b",
                "datasets": [str(cfg)],
                "protocols": ["msrec"],
                "seeds": [0],
                "models": [{"name": "pop"}],
            },
            tmp_path / "run",
        )
    assert out["cells"] == 1 and out["ran"] == 1
    cell = json.loads(next((tmp_path / "run" / "cells").glob("*.json")).read_text())
    assert cell["dataset"] == "shop" and cell["metrics"]["ndcg@10"] > 0
