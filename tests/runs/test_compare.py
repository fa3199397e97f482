"""``zenrec.compare``: a leaderboard equal to each model's own protocol run."""

import subprocess
import sys
import warnings

import pytest

import zenrec
from zenrec import ConfigError
from zenrec.evaluation import run_protocol
from zenrec.splits import user_stratified_split


def test_compare_under_a_protocol_equals_run_protocol(synthetic):
    board = zenrec.compare(
        ["pop", ("ease", {"l2": 10.0}), "itemknn"], "msrec", dataset=synthetic, backend="polars"
    )
    assert board.columns[:7] == ["model", "map@10", "ndcg@10", "precision@10", "recall@10"] + [
        "hit@10",
        "mrr@10",
    ]
    assert board.columns[7:] == [
        "ndcg@10 (warm)",
        "ndcg@10 (cold)",
        "cold_share",
        "fit_seconds",
        "eval_seconds",
    ]
    assert board["ndcg@10"].to_list() == sorted(board["ndcg@10"].to_list(), reverse=True)
    rows = {r["model"]: r for r in board.iter_rows(named=True)}
    assert set(rows) == {"pop", "ease {'l2': 10.0}", "itemknn"}
    for label, make in [
        ("pop", lambda: zenrec.create_model("pop")),
        ("ease {'l2': 10.0}", lambda: zenrec.create_model("ease", l2=10.0)),
    ]:
        run = run_protocol(make, synthetic, "msrec")
        for k in ("map@10", "ndcg@10", "recall@10"):
            assert rows[label][k] == pytest.approx(run.metrics[k], abs=1e-12)
        assert rows[label]["ndcg@10 (warm)"] == pytest.approx(run.metrics_warm["ndcg@10"])
        assert rows[label]["cold_share"] == 0.0  # msrec splits every user's own history
        assert rows[label]["fit_seconds"] > 0 and rows[label]["eval_seconds"] > 0


def test_compare_on_a_split_and_the_cold_share(synthetic):
    split = user_stratified_split(synthetic, 0.75, seed=1)
    board = zenrec.compare(["pop"], split, backend="polars")
    model = zenrec.create_model("pop").fit(split.train)
    assert board["ndcg@10"][0] == pytest.approx(zenrec.evaluate(model, split).metrics["ndcg@10"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", zenrec.ColdStartWarning)
        temporal = zenrec.compare(["pop"], "temporal", dataset=synthetic, backend="polars")
        run = run_protocol(lambda: zenrec.create_model("pop"), synthetic, "temporal")
    cov = run.test_coverage
    assert temporal["cold_share"][0] == pytest.approx(cov["cold_users"] / cov["test_users"])
    assert temporal["cold_share"][0] > 0
    assert temporal["ndcg@10 (cold)"][0] == pytest.approx(run.metrics_cold["ndcg@10"])


def test_compare_returns_pandas_by_default_like_to_frame(synthetic):
    pd = pytest.importorskip("pandas")
    board = zenrec.compare({"pop": {}}, "msrec", dataset=synthetic)
    assert isinstance(board, pd.DataFrame) and list(board["model"]) == ["pop"]


def test_compare_errors(synthetic):
    with pytest.raises(ConfigError, match="needs the data: pass dataset="):
        zenrec.compare(["pop"], "msrec")
    with pytest.raises(ConfigError, match="'pop' is listed twice"):
        zenrec.compare(["pop", "pop"], "msrec", dataset=synthetic)
    with pytest.raises(ConfigError, match="unknown protocol 'nope'"):
        zenrec.compare(["pop"], "nope", dataset=synthetic)
    with pytest.raises(ConfigError, match="each model is a name or"):
        zenrec.compare([3], "msrec", dataset=synthetic)


def test_zenrec_compare_is_lazy_and_light():
    code = (
        "import sys, zenrec; assert 'zenrec.runs' not in sys.modules; f = zenrec.compare; "
        "assert callable(f) and 'compare' in dir(zenrec); assert 'torch' not in sys.modules"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
