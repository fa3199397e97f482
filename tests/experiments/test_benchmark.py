"""Benchmarks: CIs over seeds, paired tests with Holm, resumable cells; significance helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zenrec.evaluation.significance import compare_to_baseline, holm, mean_ci, paired_tests
from zenrec.experiments import BenchmarkConfig, load_benchmark_config, run_benchmark


def test_holm_matches_hand_computation():
    # p sorted: 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_mean_ci_and_paired_tests(rng):
    m, _lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and hi - m == pytest.approx(4.302652729911275 * 1 / np.sqrt(3))
    assert np.isnan(mean_ci([1.0])[1])
    a = rng.random(200)
    same = paired_tests(a, a.copy())
    assert same["wilcoxon_p"] == 1.0 and same["ttest_p"] == 1.0
    better = paired_tests(a + 0.05 + 0.01 * rng.standard_normal(200), a)
    assert better["wilcoxon_p"] < 1e-10 and better["ttest_p"] < 1e-10 and better["mean_diff"] > 0
    users = np.arange(200)
    rows = compare_to_baseline(
        {"base": (users, a), "copy": (users, a.copy()), "plus": (users[::-1], (a + 0.05)[::-1])},
        "base",
    )
    by = {r["model"]: r for r in rows}
    assert not by["copy"]["significant"] and by["plus"]["significant"] and by["plus"]["better"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from zenrec.data import synthetic_dataset

    ds = synthetic_dataset(n_users=300, n_items=120, interactions_per_user=15, seed=7)
    cfg = BenchmarkConfig(
        name="synthetic",
        datasets=[ds.name],
        protocols=["recbole"],
        seeds=[1, 2, 3],
        baseline="ease",
        metrics=["ndcg@10", "recall@10"],
        tune={"trials": 3},
        models=[
            {"name": "ease", "tune": False},
            {"name": "ease", "label": "ease-copy", "tune": False},
            {"name": "pop", "tune": False},
            {"name": "itemknn"},
        ],
    )
    run_dir = tmp_path_factory.mktemp("bench")
    out = run_benchmark(cfg, run_dir, progress=False, datasets={ds.name: ds})
    return cfg, run_dir, out, ds


def test_benchmark_tables_ci_and_significance(bench):
    _cfg, run_dir, out, _ = bench
    assert out["cells"] == 12 and out["ran"] == 12
    import polars as pl

    res = pl.read_parquet(run_dir / "results.parquet")
    assert res.height == 12
    for col in (
        "protocol",
        "dataset_sha256",
        "seed",
        "hyperparameters",
        "versions",
        "fit_seconds",
        "eval_seconds",
        "command",
        "ndcg@10",
    ):
        assert col in res.columns
    assert (run_dir / "results.csv").exists()
    summ = pl.read_csv(run_dir / "summary.csv")
    row = summ.filter(pl.col("label") == "ease").row(0, named=True)
    vals = res.filter(pl.col("label") == "ease")["ndcg@10"].to_numpy()
    m, lo, hi = mean_ci(vals)
    assert row["ndcg@10"] == pytest.approx(m) and row["ndcg@10_ci_low"] == pytest.approx(lo)
    assert lo < m < hi
    sig = pl.read_csv(run_dir / "significance.csv").filter(pl.col("metric") == "ndcg@10")
    by = {r["model"]: r for r in sig.iter_rows(named=True)}
    # EASE vs Pop: a known, large difference; EASE vs itself: none
    assert by["pop"]["significant"] and by["pop"]["mean_diff"] < 0
    assert by["pop"]["wilcoxon_p_holm"] < 1e-6 and by["pop"]["ttest_p_holm"] < 1e-6
    assert not by["ease-copy"]["significant"] and by["ease-copy"]["wilcoxon_p"] == 1.0
    # Holm over the comparisons, written out step by step: the i-th smallest of m raw p-values is
    # multiplied by (m - i), and the adjusted values are made non-decreasing in that order
    names = sorted(by, key=lambda n: by[n]["wilcoxon_p"])
    n_cmp = len(names)
    assert n_cmp == 3
    expected, running = {}, 0.0
    for i, n in enumerate(names):
        running = max(running, (n_cmp - i) * by[n]["wilcoxon_p"])
        expected[n] = min(1.0, running)
    for n in names:
        assert by[n]["wilcoxon_p_holm"] == pytest.approx(expected[n], rel=1e-9, abs=1e-300)
    # a correction that does nothing (or Bonferroni without the step-down) would differ here
    assert by[names[0]]["wilcoxon_p_holm"] == pytest.approx(
        min(1.0, 3 * by[names[0]]["wilcoxon_p"]), rel=1e-9
    )
    users = pl.read_parquet(next((run_dir / "cells").glob("*ease__s1.users.parquet")))
    rec = json.loads(next((run_dir / "cells").glob("*ease__s1.json")).read_text())
    assert users.height == rec["n_users_evaluated"]
    assert users["ndcg@10"].mean() == pytest.approx(rec["metrics"]["ndcg@10"])
    assert {"fold", "user", "ndcg@10"} <= set(users.columns)
    tuned = res.filter(pl.col("label") == "itemknn")
    assert tuned["tuned"].all() and (run_dir / "tuning").exists()


def test_benchmark_resumes_and_skips_finished_cells(bench):
    cfg, run_dir, _, ds = bench
    cell = next((run_dir / "cells").glob("*pop__s2.json"))
    before = json.loads(next((run_dir / "cells").glob("*ease__s1.json")).read_text())["created"]
    cell.unlink()
    out = run_benchmark(cfg, run_dir, progress=False, datasets={ds.name: ds})
    assert out["ran"] == 1 and out["skipped"] == 11 and cell.exists()
    assert (
        json.loads(next((run_dir / "cells").glob("*ease__s1.json")).read_text())["created"]
        == before
    )


def test_benchmark_config_errors_name_file_and_key(tmp_path):
    from zenrec._errors import ConfigError

    p = tmp_path / "b.toml"
    p.write_text(
        'name = "x"\ndatasets = ["ml-100k"]\nprotocols = ["msrec"]\nseeds = [1]\n'
        '[[models]]\nname = "eaze"\n'
    )
    with pytest.raises(ConfigError, match=r"models\[0\]\.name.*unknown model 'eaze'"):
        load_benchmark_config(p)
    p.write_text(
        'name = "x"\ndatasets = ["ml-100k"]\nprotocols = ["msrec"]\nseeds = [1]\nbaseline = "pop"\n'
        '[[models]]\nname = "ease"\n'
    )
    with pytest.raises(ConfigError, match="'baseline' 'pop' is not a model label"):
        load_benchmark_config(p)
    p.write_text(
        'name = "x"\ndatasets = ["ml-100k"]\nprotocols = ["msrec"]\nseeds = [1]\n'
        '[[models]]\nname = "ease"\nparams = { l2 = -1 }\n'
    )
    with pytest.raises(ConfigError, match=r"models\[0\]\.params.*l2"):
        load_benchmark_config(p)


def test_shipped_benchmark_configs_validate():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "benchmarks"
    for name in ("recbole-ml1m", "recbole-ml100k", "msrec-ml100k", "surprise-ml100k"):
        cfg = load_benchmark_config(root / f"{name}.toml")
        assert cfg.name == name and cfg.tune is not None
    configs = sorted(root.glob("*.toml"))  # every grid the suite runs (make bench-accuracy...)
    assert len(configs) >= 10
    for path in configs:
        assert load_benchmark_config(path).name == path.stem


def test_benchmark_data_table_filters_every_dataset(tmp_path):
    """``[data] min_user_count = 20`` in a benchmark config filters each dataset before the
    protocol, and each cell records the filter (its re-run command carries the flag)."""
    from zenrec._errors import ConfigError
    from zenrec.data import synthetic_dataset

    ds = synthetic_dataset(n_users=120, n_items=60, interactions_per_user=15, seed=3)
    p = tmp_path / "b.toml"
    p.write_text(
        f'name = "x"\ndatasets = ["{ds.name}"]\nprotocols = ["recbole"]\nseeds = [1]\n'
        '[data]\nmin_user_count = 20\n[[models]]\nname = "pop"\n'
    )
    cfg = load_benchmark_config(p)
    assert cfg.data.min_user_count == 20
    run_benchmark(cfg, tmp_path / "run", progress=False, datasets={ds.name: ds})
    cell = json.loads(next((tmp_path / "run" / "cells").glob("*pop__s1.json")).read_text())
    assert cell["data"]["min_user_count"] == 20
    assert any(f.startswith("k-core users >= 20") for f in cell["filters"])
    n_kept = int((ds.user_counts() >= 20).sum())
    assert 0 < n_kept < ds.n_users  # the filter did something
    p.write_text(p.read_text().replace("min_user_count = 20", "min_users = 20"))
    with pytest.raises(ConfigError, match=r"'data.min_users'.*docs/data-spec.md"):
        load_benchmark_config(p)
