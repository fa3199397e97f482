"""The Python API a data scientist reaches for (issue 14): each trap found on a new user's
trial, and the shapes around it. Every test here failed on the code before the fix."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import zenrec
from zenrec import (
    BundleError,
    DataError,
    UnknownIdsWarning,
    UnusedColumnWarning,
)
from zenrec.data import Dataset, Feature, read_interactions
from zenrec.evaluation import evaluate_ranking, get_protocol, run_protocol
from zenrec.splits import Split, user_stratified_split


@pytest.fixture(scope="module")
def msrec_ease(ml100k):
    """EASE on ML-100K under msrec (split seed 42): the trial's numbers."""
    split = user_stratified_split(ml100k, 0.75, seed=42)
    model = zenrec.create_model("ease", l2=250.0).fit(split.train)  # the l2 the trial ran with
    return split, model


# ---------------------------------------------------------------- safe evaluation defaults
def test_evaluate_ranking_masks_training_items_by_default(msrec_ease):
    split, model = msrec_ease
    protocol = get_protocol("msrec").evaluate(model, split).metrics["ndcg@10"]
    default = evaluate_ranking(model, split.test).metrics["ndcg@10"]
    assert default == pytest.approx(protocol, abs=1e-12)
    assert default == pytest.approx(0.4712, abs=5e-4)  # the trial saw 0.0836 here


def test_evaluate_ranking_accepts_a_split_and_masks_train_and_valid(msrec_ease, ml100k):
    split, model = msrec_ease
    res = evaluate_ranking(model, split)  # trial: TypeError: object of type 'Split' has no len()
    assert res.metrics["ndcg@10"] == pytest.approx(
        get_protocol("msrec").evaluate(model, split).metrics["ndcg@10"], abs=1e-12
    )
    # with a validation part, both train and valid are masked, exactly as the protocols do
    from zenrec.splits import user_random_split

    s3 = user_random_split(ml100k, (0.8, 0.1, 0.1), seed=2020)
    m3 = zenrec.create_model("pop").fit(s3.train)
    want = get_protocol("recbole").evaluate(m3, s3, "test").metrics
    got = zenrec.evaluate(m3, s3, protocol="recbole").metrics
    assert got == pytest.approx(want, abs=1e-12)
    only_train = evaluate_ranking(
        m3, s3.test, ks=(5, 10, 20), metrics=("recall", "mrr", "ndcg", "hit", "precision", "map")
    )
    assert only_train.metrics["ndcg@10"] != pytest.approx(want["ndcg@10"], abs=1e-9)


def test_unmasked_evaluation_needs_explicit_empty_exclude(msrec_ease):
    split, model = msrec_ease
    raw = evaluate_ranking(model, split.test, exclude=()).metrics["ndcg@10"]
    assert raw == pytest.approx(0.0836, abs=5e-4)  # seen items crowd the top-10
    assert zenrec.evaluate(model, split, exclude=()).metrics["ndcg@10"] == pytest.approx(raw)


def test_zenrec_evaluate_matches_run_protocol(ml100k):
    run = run_protocol(lambda: zenrec.create_model("pop"), ml100k, get_protocol("msrec"))
    res = zenrec.evaluate(run.models[0], run.splits[0], protocol="msrec")
    assert res.metrics == pytest.approx(run.metrics, abs=1e-12)


def test_per_user_metrics_as_dataframe(msrec_ease):
    split, model = msrec_ease
    res = zenrec.evaluate(model, split)
    df = res.to_frame()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns[:1]) == ["user"] and "ndcg@10" in df.columns
    assert len(df) == res.n_users == 943
    assert df["ndcg@10"].mean() == pytest.approx(res.metrics["ndcg@10"], abs=1e-12)
    assert isinstance(res.to_frame(backend="polars"), pl.DataFrame)


def test_unknown_ids_in_evaluation_data_are_counted_and_reported():
    train = Dataset.from_raw(users=["a", "a", "b", "b"], items=[1, 2, 2, 3])
    model = zenrec.create_model("pop").fit(train)
    test = Dataset.from_raw(users=["a", "b", "z", "z"], items=[3, 1, 1, 99])
    with pytest.warns(
        UnknownIdsWarning, match=r"2 of 4 interactions .* 1 users and 1 items are unknown"
    ) as rec:
        res = evaluate_ranking(model, test)
    assert rec[0].filename == __file__  # stacklevel points at the caller
    assert res.extra == {"dropped_interactions": 2, "unknown_users": 1, "unknown_items": 1}
    assert res.n_users == 2


# ---------------------------------------------------------------- unused rating / time columns
def test_unused_rating_like_column_warns_with_its_name(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("customer,sku,stars,ts\nu1,i1,5,100\nu2,i1,3,200\n")
    with pytest.warns(
        UnusedColumnWarning, match=r"column 'stars' looks like ratings .* rating_col='stars'"
    ) as rec:
        ds = read_interactions(p, user_col="customer", item_col="sku")
    assert not ds.has_ratings and ds.has_time  # 'ts' is detected as the time column
    assert len(rec) == 1 and rec[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = read_interactions(p, user_col="customer", item_col="sku", rating_col="stars")
    assert ds.ratings.tolist() == [5.0, 3.0]


def test_unused_time_like_column_warns(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("user,item,created_at\nu1,i1,2024-01-01\n")
    with pytest.warns(
        UnusedColumnWarning, match=r"'created_at' looks like timestamps .* time_col='created_at'"
    ):
        read_interactions(p)


# ---------------------------------------------------------------- DataFrames in
def _events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer": ["u1", "u2", "u1", "u3"],
            "sku": [10, 10, 11, 12],
            "qty": [1.0, 3.0, 2.0, 1.0],
            "ts": pd.to_datetime(
                ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"], utc=True
            ),
        }
    )


@pytest.mark.parametrize("kind", ["pandas", "polars", "lazy", "arrow"])
def test_dataframe_input_reads_like_the_file(tmp_path, kind):
    pdf = _events()
    frame = {
        "pandas": lambda: pdf,
        "polars": lambda: pl.from_pandas(pdf),
        "lazy": lambda: pl.from_pandas(pdf).lazy(),
        "arrow": lambda: pl.from_pandas(pdf).to_arrow(),
    }[kind]()
    got = read_interactions(
        frame, user_col="customer", item_col="sku", rating_col="qty", time_col="ts"
    )
    p = tmp_path / "events.csv"
    pdf.assign(ts=pdf["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(p, index=False)
    want = read_interactions(
        p, user_col="customer", item_col="sku", rating_col="qty", time_col="ts"
    )
    assert got.fingerprint() == want.fingerprint()
    assert got.item_vocab == want.item_vocab and got.user_vocab == want.user_vocab
    assert got.name == "DataFrame"
    same = Dataset.from_frame(
        frame, user_col="customer", item_col="sku", rating_col="qty", time_col="ts"
    )
    assert same.fingerprint() == want.fingerprint()


@pytest.mark.parametrize(
    ("frame", "kwargs", "pattern"),
    [
        (
            pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": ["5", "five"]}),
            {},
            r"^DataFrame row 1 \(0-based\): column 'rating' \(rating\) is 'five', "
            r"expected a number$",
        ),
        (
            pd.DataFrame({"user": [1, None], "item": [1, 2]}),
            {},
            r"DataFrame row 1 \(0-based\): column 'user'",
        ),
        (
            pd.DataFrame({"who": [1], "what": [2]}),
            {},
            r"cannot tell which column holds the user id; .* pass user_col=",
        ),
        (
            pd.DataFrame({"user": [1], "item": [2]}),
            {"rating_col": "stars"},
            r"rating column 'stars' not found; columns are \['user', 'item'\]; pass rating_col=",
        ),
        (pd.DataFrame({"user": [1], "item": [2]}), {"sep": ";"}, "apply to files"),
        (pd.DataFrame({"user": [], "item": []}), {}, "has no rows"),
    ],
)
def test_dataframe_errors_name_row_column_and_keyword(frame, kwargs, pattern):
    with pytest.raises(DataError, match=pattern):
        read_interactions(frame, **kwargs)


def test_pandas_without_pyarrow_reads_the_same(monkeypatch):
    pdf = _events().assign(qty=pd.array([1, 3, None, 1], dtype="Int64"))
    want = read_interactions(
        pdf.dropna(), user_col="customer", item_col="sku", rating_col="qty", time_col="ts"
    )

    def no_pyarrow(*args, **kwargs):
        raise ImportError("pyarrow is required for converting a pandas dataframe to Polars")

    monkeypatch.setattr(pl, "from_pandas", no_pyarrow)
    got = read_interactions(
        pdf.dropna(), user_col="customer", item_col="sku", rating_col="qty", time_col="ts"
    )
    assert got.fingerprint() == want.fingerprint()
    with pytest.raises(
        DataError, match=r"DataFrame row 2 \(0-based\): column 'qty' \(rating\) is empty"
    ):
        read_interactions(pdf, user_col="customer", item_col="sku", rating_col="qty", time_col="ts")


def test_pandas_index_holding_ids_is_a_column():
    df = pd.DataFrame({"user": [1, 1, 2], "item": [5, 6, 5], "n": [2, 1, 4]}).set_index(
        ["user", "item"]
    )
    ds = read_interactions(df, rating_col="n")
    assert ds.n_users == 2 and ds.ratings.tolist() == [2.0, 1.0, 4.0]


def test_load_dataset_accepts_a_dataframe_and_rejects_other_objects():
    ds = zenrec.load_dataset(_events(), user_col="customer", item_col="sku", rating_col="qty")
    assert (ds.n_users, ds.n_items, ds.has_ratings, ds.has_time) == (3, 3, True, True)
    with pytest.raises(
        DataError,
        match="load_dataset: pass a built-in name, a file path, a .toml data config "
        r"or a pandas/polars DataFrame; got builtins.list",
    ):
        zenrec.load_dataset([1, 2, 3])
    with pytest.raises(
        DataError,
        match=r"^'  customer .*\.\.\.' is neither a built-in dataset .*\(a DataFrame can be passed",
    ):
        zenrec.load_dataset(
            str(_events()) * 20
        )  # trial: OSError: File name too long, then the whole frame
    with pytest.raises(DataError, match="apply to files, not to a DataFrame"):
        zenrec.load_dataset(_events(), user_col="customer", item_col="sku", sep=";")


# ---------------------------------------------------------------- features
def test_feature_with_wrong_length_fails_when_attached(ml100k):
    bad = Feature("brand", "numeric", np.array([1.0, 2.0]))
    with pytest.raises(
        DataError,
        match=r"item feature 'brand' has 2 rows but the dataset has 1,682 items; "
        r".*with_item_features",
    ):
        ml100k.item_features["brand"] = bad
    assert "brand" not in ml100k.item_features
    with pytest.raises(DataError, match="1,682 items"):
        ml100k.item_features = {**ml100k.item_features, "brand": bad}
    with pytest.raises(
        DataError, match="user feature 'x' has 2 rows but the dataset has 943 users"
    ):
        Dataset(
            users=ml100k.users,
            items=ml100k.items,
            user_vocab=ml100k.user_vocab,
            item_vocab=ml100k.item_vocab,
            user_features={"x": bad},
        )


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (
            ("g", "multi", np.array([0, 1]), ["a", "b"], np.array([0, 1])),
            "offsets must .* end at len\\(values\\) = 2",
        ),
        (("g", "multi", np.array([0, 1]), ["a", "b"], None), "offsets are required"),
        (("g", "categorical", np.array([0, 5]), ["a", "b"]), r"codes must lie in \[-1, 1\]"),
        (("g", "categorical", np.array([0, 1]), None), "labels are required"),
        (("g", "numeric", np.array(["x"])), "values must be numbers"),
        (("g", "colour", np.array([1])), "kind must be"),
    ],
)
def test_feature_checks_itself_at_construction(args, pattern):
    with pytest.raises(DataError, match=pattern):
        Feature(*args)


# ---------------------------------------------------------------- recommendations out
def test_recommend_to_frame_has_titles(msrec_ease):
    _, model = msrec_ease
    recs = model.recommend([196, "nobody"], k=3)
    df = recs.to_frame(titles=True)
    assert list(df.columns) == [
        "user",
        "rank",
        "item",
        "score",
        "title",
        "fallback",
        "fallback_kind",
    ]
    assert df["fallback_kind"].tolist() == ["none"] * 3 + ["popularity"] * 3
    assert df["rank"].tolist() == [1, 2, 3, 1, 2, 3]
    titles = dict(zip(model.item_vocab.ids.tolist(), model.item_meta["title"]))
    assert df["title"].tolist() == [titles[i] for i in df["item"]]
    assert df["fallback"].tolist() == [False] * 3 + [True] * 3
    assert (
        "Star Wars (1977)" in df["title"].tolist()
    )  # the most popular film leads the fallback list
    assert isinstance(recs.to_frame(backend="polars"), pl.DataFrame)


def test_recommend_prints_well_in_a_notebook(msrec_ease):
    _, model = msrec_ease
    recs = model.recommend(196, k=3)
    text = repr(recs)
    first_title = model.item_titles()[recs.item_lists[0][0].item()]
    assert text.splitlines()[0] == "Recommendations(1 user)" and first_title in text
    html = recs._repr_html_()
    assert (
        html.startswith("<table>")
        and "<th>title</th>" in html
        and first_title.replace("&", "&amp;") in html
    )


def test_to_frame_titles_without_titles_says_why():
    ds = zenrec.synthetic_dataset(n_users=20, n_items=15, seed=0)
    ds.item_features = {k: v for k, v in ds.item_features.items() if k != "title"}
    recs = zenrec.create_model("pop").fit(ds).recommend(ds.user_vocab.ids[:1], k=2)
    with pytest.raises(
        zenrec.ConfigError,
        match=r"without a 'title' item feature; attach one with ds\.with_item_features",
    ):
        recs.to_frame(titles=True)
    assert "title" not in recs.to_frame().columns  # by default, titles only when known


# ---------------------------------------------------------------- errors and shapes
def test_bundle_error_names_save_bundle_and_model_save(tmp_path):
    with pytest.raises(BundleError) as exc:
        zenrec.load_model(tmp_path)
    msg = str(exc.value)
    assert "model.save(path)" in msg and "--save-bundle" in msg and "'evaluate --save'" not in msg


def test_top_level_names_are_where_a_user_looks_and_import_stays_light():
    code = (
        "import sys, zenrec; "
        "names = ['evaluate', 'splits', 'tune', 'benchmark', 'Split', 'EvalResult', "
        "'evaluate_ranking', 'run_protocol', 'get_protocol', 'Recommender', 'Recommendations'];"
        "missing = [n for n in names if not hasattr(zenrec, n)];"
        "heavy = [m for m in ('torch', 'optuna') if m in sys.modules];"
        "print(missing, heavy, zenrec.Split is zenrec.splits.Split)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] [] True"
    assert zenrec.Split is Split
    assert set(zenrec.__all__) <= set(dir(zenrec))


def test_create_model_and_load_model_are_typed():
    import typing

    from zenrec.models import Recommender, registry
    from zenrec.models.classic.ease import EASE

    names = {"Recommender": Recommender, "EASE": EASE}
    assert typing.get_type_hints(registry.load_model, localns=names)["return"] is Recommender
    assert typing.get_type_hints(registry.create_model, localns=names)["return"] is Recommender
    overloads = typing.get_overloads(registry.create_model)  # per-name return types for editors
    assert any(o.__annotations__["return"] == "EASE" for o in overloads)
    assert typing.get_type_hints(Recommender.fit)["return"] is typing.Self
    assert typing.get_type_hints(Recommender.load.__func__)["return"] is typing.Self


def test_python_errors_name_keywords_and_the_cli_names_flags(tmp_path):
    p = tmp_path / "events.csv"
    p.write_text("who,what\n1,2\n")
    with pytest.raises(DataError, match=r"pass user_col=$"):
        read_interactions(p)
    r = subprocess.run(
        [sys.executable, "-m", "zenrec", "data", "info", str(p)], capture_output=True, text=True
    )
    assert r.returncode == 2 and r.stderr.strip().endswith("pass --user-col")
    assert "user_col" not in r.stderr


def test_docs_page_exists_and_readme_points_to_it():
    import re

    root = Path(__file__).resolve().parents[1]
    # every relative link of the README resolves, and one of them is the Python API page
    links = re.findall(r"\]\(([^)#\s]+)\)", (root / "README.md").read_text())
    local = [x for x in links if not re.match(r"[a-z]+:", x)]
    assert "docs/python-api.md" in local
    missing = [x for x in local if not (root / x).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"
    # the page is in the site's navigation, and its code (run by tests/docs) walks the whole
    # workflow: each of these top-level functions is called in one of its python blocks
    assert re.search(r"^\s+- [^:\n]+: python-api\.md$", (root / "mkdocs.yml").read_text(), re.M)
    code = "\n".join(
        re.findall(r"^```python\n(.*?)^```", (root / "docs/python-api.md").read_text(), re.S | re.M)
    )
    workflow = ["read_interactions", "load_dataset", "get_protocol", "create_model", "evaluate"]
    workflow += ["run_protocol", "tune", "benchmark", "load_model"]
    assert set(workflow) <= set(zenrec.__all__)
    uncalled = [n for n in workflow if not re.search(rf"\b{n}\(", code)]
    assert not uncalled, f"docs/python-api.md never calls {uncalled}"


def test_evaluate_picks_rating_metrics_for_rating_models(synthetic):
    from zenrec.evaluation import evaluate_rating
    from zenrec.splits import user_random_split

    split = user_random_split(synthetic, (0.8, 0.1, 0.1), seed=0)
    model = zenrec.create_model("biasedmf", factors=4, iterations=3).fit(split.train)
    res = zenrec.evaluate(model, split)
    assert set(res.metrics) == {"rmse", "mae"}
    assert res.metrics == pytest.approx(evaluate_rating(model, split.test).metrics)
    with pytest.raises(zenrec.ConfigError, match="exclude and ks apply to ranking"):
        zenrec.evaluate(model, split, exclude=())


def test_evaluate_rejects_what_is_not_data(msrec_ease):
    _, model = msrec_ease
    with pytest.raises(zenrec.ConfigError, match="must be a Split or a Dataset"):
        zenrec.evaluate(model, [1, 2, 3])
    with pytest.raises(
        zenrec.ConfigError,
        match=r"exclude must be a list of Datasets, e\.g\. exclude=\[split\.train\]",
    ):
        evaluate_ranking(model, msrec_ease[0].test, exclude=msrec_ease[0].train)


def test_zenrec_tune_errors_name_keywords(synthetic, tmp_path):
    with pytest.raises(zenrec.ConfigError, match=r"^n_trials= must be an int >= 1; got 0$"):
        zenrec.tune(synthetic, "msrec", "pop", n_trials=0, run_dir=tmp_path)
    with pytest.raises(
        zenrec.ConfigError, match=r"^metric='rmse' is not produced by protocol 'msrec'"
    ):
        zenrec.tune(synthetic, "msrec", "ease", metric="rmse", run_dir=tmp_path)
