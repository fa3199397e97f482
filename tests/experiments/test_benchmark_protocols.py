"""Benchmarks under a temporal preset (warm figures in the tables) and on a fixed split_dir."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from zenrec import ColdStartWarning
from zenrec._errors import ConfigError
from zenrec.data import Dataset, synthetic_dataset
from zenrec.data.spec import DataSpec
from zenrec.evaluation import get_protocol
from zenrec.experiments import BenchmarkConfig, load_benchmark_config, run_benchmark
from zenrec.reports.tables import summary_markdown
from zenrec.runs import evaluate_model
from zenrec.splits import user_random_split


@pytest.fixture(scope="module")
def data():
    """Random times, except 15 users who all arrive after everyone else (cold at test time)."""
    ds = synthetic_dataset(n_users=200, n_items=80, interactions_per_user=10, seed=3)
    t = np.random.default_rng(0).integers(0, 10**6, len(ds))
    t[ds.users >= ds.n_users - 15] += 10**6
    users, items = ds.user_vocab.decode(ds.users), ds.item_vocab.decode(ds.items)
    return Dataset.from_raw(users, items, ds.ratings, t, name="late")


def _write_split(d, split):
    d.mkdir()
    for name in ("train", "valid", "test"):
        part = getattr(split, name)
        u = part.user_vocab.decode(part.users)
        i = part.item_vocab.decode(part.items)
        (d / f"{name}.tsv").write_text(
            "user_id\titem_id\n" + "\n".join(f"{a}\t{b}" for a, b in zip(u, i)) + "\n"
        )


def test_temporal_benchmark_shows_the_warm_figure(tmp_path, data):
    import polars as pl

    cfg = BenchmarkConfig(
        name="t",
        datasets=[data.name],
        protocols=["temporal", "msrec"],
        seeds=[1],
        models=[{"name": "pop"}, {"name": "ease", "params": {"l2": 10.0}}],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ColdStartWarning)
        out = run_benchmark(cfg, tmp_path, progress=False, datasets={data.name: data})
    res = pl.read_parquet(tmp_path / "results.parquet")
    t = res.filter(pl.col("protocol") == "temporal")
    cell = json.loads(next((tmp_path / "cells").glob("*temporal__ease__s1.json")).read_text())
    row = t.filter(pl.col("label") == "ease").row(0, named=True)
    assert row["ndcg@10 (warm)"] == pytest.approx(cell["metrics_warm"]["ndcg@10"])
    assert row["ndcg@10 (cold)"] == pytest.approx(cell["metrics_cold"]["ndcg@10"])
    assert row["cold_users"] == cell["test_coverage"]["cold_users"] > 0
    assert row["cold_share"] == pytest.approx(
        cell["test_coverage"]["cold_users"] / cell["test_coverage"]["test_users"]
    )
    summ = out["summary"]
    s = summ.filter((pl.col("protocol") == "temporal") & (pl.col("label") == "ease"))
    assert s["cold_share"][0] == pytest.approx(row["cold_share"])
    md = summary_markdown(summ)
    blocks = {b.split("**")[0]: b for b in md.split("**late, protocol ")[1:]}
    temporal_block, msrec_block = blocks["temporal"], blocks["msrec"]
    assert "ndcg@10 warm users" in temporal_block and f"{row['cold_share']:.1%}" in temporal_block
    # msrec splits each user's history: no cold users, no warm column
    assert "warm users" not in msrec_block
    from zenrec.reports.report import build_report

    report = build_report(tmp_path)[0].read_text()
    temporal_part = report.split("protocol temporal")[1].split("protocol msrec")[0]
    assert "ndcg@10 warm users" in temporal_part and f"{row['cold_share']:.1%}" in temporal_part


def test_benchmark_on_a_fixed_split_dir(tmp_path, data):
    split_dir = tmp_path / "split"
    fixed = user_random_split(data, (0.7, 0.15, 0.15), seed=9)
    _write_split(split_dir, fixed)
    cfg_file = tmp_path / "b.toml"
    cfg_file.write_text(
        f'name = "fixed"\ndatasets = ["{data.name}"]\nprotocols = ["recbole"]\nseeds = [1]\n'
        'split_dir = "split"\n[[models]]\nname = "ease"\nparams = { l2 = 10.0 }\n'
    )
    cfg = load_benchmark_config(cfg_file)
    assert cfg.split_dir == str(split_dir.resolve())  # relative to the config file
    out_dir = tmp_path / "run"
    run_benchmark(cfg, out_dir, progress=False, datasets={data.name: data})
    cell = json.loads(next((out_dir / "cells").glob("*.json")).read_text())
    assert cell["split"]["description"].startswith("fixed split from")
    assert cell["split"]["sizes"] == [list(fixed.sizes())]
    record, _ = evaluate_model(
        data,
        get_protocol("recbole"),
        "ease",
        {"l2": 10.0},
        seed=1,
        spec=DataSpec(source=data.name, split_dir=str(split_dir)),
    )
    assert cell["metrics"] == pytest.approx(record.metrics)
    assert cell["dataset_sha256"] == record.dataset_sha256


def test_split_dir_config_errors(tmp_path):
    base = 'name = "x"\nprotocols = ["recbole"]\nseeds = [1]\n[[models]]\nname = "pop"\n'
    p = tmp_path / "a.toml"
    p.write_text('datasets = ["ml-100k"]\nsplit_dir = "nowhere"\n' + base)
    with pytest.raises(ConfigError, match=r"key 'split_dir': .*nowhere is not a directory"):
        load_benchmark_config(p)
    p.write_text('datasets = ["ml-100k", "ml-1m"]\nsplit_dir = "."\n' + base)
    with pytest.raises(ConfigError, match="list exactly that one in 'datasets'"):
        load_benchmark_config(p)
