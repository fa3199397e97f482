"""Benchmark peers: exported splits equal zenrec's, peer rows in tables and report, skips,
resume."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest

from zenrec.experiments import BenchmarkConfig, load_benchmark_config, run_benchmark
from zenrec.runs.peers import export_split

FAKE_PEER = textwrap.dedent('''
    """A fake peer: copies the split it is given and reports made-up metrics."""
    import argparse, json, shutil
    from pathlib import Path

    ap = argparse.ArgumentParser()
    ap.add_argument("--split-dir", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--set", action="append", default=[])
    a = ap.parse_args()
    here = Path(__file__).resolve().parent
    manifest = json.loads((Path(a.split_dir) / "split.json").read_text())
    seen = here / "seen" / f"{manifest['protocol']['name']}-s{a.seed}"
    shutil.copytree(a.split_dir, seen, dirs_exist_ok=True)
    with open(here / "calls.txt", "a") as fh:
        fh.write(f"{manifest['protocol']['name']} {a.seed} {a.set}\\n")
    rec = {"metrics": {"ndcg@10": 0.1 + a.seed / 100, "recall@10": 0.2},
           "fit_seconds": 0.5, "eval_seconds": 0.25}
    Path(a.out).write_text(json.dumps(rec))
''')


@pytest.fixture(scope="module")
def peer_bench(tmp_path_factory):
    from zenrec.data import synthetic_dataset

    ds = synthetic_dataset(n_users=120, n_items=60, interactions_per_user=12, seed=3)
    tmp = tmp_path_factory.mktemp("peers")
    script = tmp / "fake_peer.py"
    script.write_text(FAKE_PEER)
    cfg = BenchmarkConfig(
        name="peers",
        datasets=[ds.name],
        protocols=["recbole", "msrec"],
        seeds=[1, 2],
        baseline="ease",
        metrics=["ndcg@10", "recall@10"],
        models=[{"name": "ease", "tune": False}, {"name": "pop", "tune": False}],
        peers=[
            {
                "library": "fake",
                "model": "Fake",
                "label": "fake-peer",
                "params": {"k": 5},
                "command": [sys.executable, str(script)],
            },
            {"library": "recbole", "model": "EASE", "venv": str(tmp / "no-such-venv")},
        ],
    )
    run_dir = tmp / "run"
    out = run_benchmark(cfg, run_dir, progress=False, datasets={ds.name: ds})
    return cfg, run_dir, out, ds, tmp


def _rows(path, header=True):
    lines = path.read_text().splitlines()[1 if header else 0 :]
    return sorted((u, i, float(r)) for u, i, r in (ln.split("\t") for ln in lines))


def _ds_rows(ds):
    return sorted(
        zip(
            (str(u) for u in ds.user_vocab.decode(ds.users)),
            (str(i) for i in ds.item_vocab.decode(ds.items)),
            (float(r) for r in ds.ratings),
        )
    )


def test_exported_split_is_zenrecs_split(peer_bench):
    _cfg, _run_dir, _out, ds, tmp = peer_bench
    from zenrec.evaluation.protocols import get_protocol, prepare_dataset
    from zenrec.tuning.tuner import tuning_split

    for pname in ("recbole", "msrec"):
        protocol = get_protocol(pname)
        data = prepare_dataset(ds, protocol)
        for seed in (1, 2):
            split = protocol.splits(data, seed)[0]
            seen = tmp / "seen" / f"{pname}-s{seed}"
            assert _rows(seen / "train.tsv") == _ds_rows(split.train)
            assert _rows(seen / "test.tsv") == _ds_rows(split.test)
            if pname == "recbole":
                assert _rows(seen / "valid.tsv") == _ds_rows(split.valid)
            else:  # msrec: zenrec's carved tuning validation part, inside train
                carved = tuning_split(data, protocol, seed)[0]
                valid = _rows(seen / "valid.tsv")
                assert valid == _ds_rows(carved.valid) and set(valid) <= set(
                    _rows(seen / "train.tsv")
                )
            manifest = json.loads((seen / "split.json").read_text())
            assert manifest["seed"] == seed and manifest["protocol"]["name"] == pname


def test_peer_rows_in_results_summary_and_report(peer_bench):
    cfg, run_dir, out, _ds, tmp = peer_bench
    import polars as pl

    assert out["peer_cells"] == 8 and out["peers_ran"] == 4 and out["peers_not_run"] == 4
    res = pl.read_parquet(run_dir / "results.parquet")
    fake = res.filter(pl.col("label") == "fake-peer")
    assert fake.height == 4 and set(fake["library"].to_list()) == {"fake"}
    assert set(fake["status"].to_list()) == {"ok"}
    assert sorted(
        fake.filter(pl.col("protocol") == "recbole")["ndcg@10"].to_list()
    ) == pytest.approx([0.11, 0.12])
    assert set(res.filter(pl.col("label") == "ease")["library"].to_list()) == {"zenrec"}
    skipped = res.filter(pl.col("label") == "recbole-ease")
    assert skipped.height == 4 and set(skipped["status"].to_list()) == {"skipped"}
    assert all(
        "RecBole is not installed" in r
        and "no-such-venv" in r
        and "ZENREC_PEER_PYTHON_RECBOLE" in r
        for r in skipped["reason"].to_list()
    )
    rec = json.loads(next((run_dir / "cells").glob("*recbole__fake-peer__s1.json")).read_text())
    assert rec["kind"] == "peer" and rec["seed"] == 1 and rec["split_sha256"]
    zen = json.loads(next((run_dir / "cells").glob("*recbole__ease__s1.json")).read_text())
    assert (
        rec["data_fingerprint"] == zen["data_fingerprint"]
        and rec["dataset_sha256"] == zen["dataset_sha256"]
    )
    assert rec["fit_seconds"] == 0.5 and rec["seconds"] > 0 and "SPLIT_DIR" in rec["command"]
    assert "['k=5']" in (tmp / "calls.txt").read_text()

    summ = pl.read_csv(run_dir / "summary.csv")
    row = summ.filter((pl.col("label") == "fake-peer") & (pl.col("protocol") == "recbole")).row(
        0, named=True
    )
    assert (
        row["n_seeds"] == 2 and row["ndcg@10"] == pytest.approx(0.115) and row["library"] == "fake"
    )
    srow = summ.filter(pl.col("label") == "recbole-ease").row(0, named=True)
    assert srow["n_seeds"] == 0 and "not installed" in srow["note"]
    sig = pl.read_csv(run_dir / "significance.csv")
    assert set(sig["model"].to_list()) == {"pop"}  # peers are not tested

    from zenrec.reports.report import build_report
    from zenrec.reports.tables import summary_markdown

    md_path, html_path = build_report(run_dir)
    md = md_path.read_text()
    assert (
        "fake-peer" in md
        and "fake (peer)" in md
        and "recbole (not installed: set ZENREC_PEER_PYTHON_RECBOLE)" in md
        and "left out of the significance tests" in md
    )
    assert "recbole-ease" in md and "not installed" in md and "setup_peers.sh" in md
    assert "fake-peer" in html_path.read_text()
    table = summary_markdown(
        pl.read_parquet(run_dir / "summary.parquet"),
        pl.read_parquet(run_dir / "significance.parquet"),
        cfg.baseline_label,
    )
    assert "n/a (peer" in table


def test_rerun_skips_finished_peer_cells(peer_bench):
    cfg, run_dir, _out, ds, tmp = peer_bench
    calls = (tmp / "calls.txt").read_text().splitlines()
    assert len(calls) == 4
    cell = next((run_dir / "cells").glob("*msrec__fake-peer__s2.json"))
    cell.unlink()
    out = run_benchmark(cfg, run_dir, progress=False, datasets={ds.name: ds})
    assert out["ran"] == 0 and out["peers_kept"] == 3 and out["peers_ran"] == 1
    assert out["peers_not_run"] == 4  # the missing venv is retried (and skipped again)
    assert cell.exists() and len((tmp / "calls.txt").read_text().splitlines()) == 5


def test_export_folds_and_config_checks(tmp_path):
    from zenrec._errors import ConfigError
    from zenrec.data import synthetic_dataset
    from zenrec.evaluation.protocols import get_protocol

    ds = synthetic_dataset(n_users=40, n_items=30, interactions_per_user=6, seed=1)
    splits = get_protocol("surprise-cv5").splits(ds, 0)
    for j, sp in enumerate(splits):
        export_split(sp, tmp_path / "folds", fold=j)
    assert _rows(tmp_path / "folds" / "fold2.test.tsv", header=False) == _ds_rows(splits[2].test)
    n = sum(len(sp.test) for sp in splits)
    assert n == len(ds) and np.isclose(len(splits[0].train) + len(splits[0].test), len(ds))

    p = tmp_path / "b.toml"
    base = (
        'name = "x"\ndatasets = ["ml-100k"]\nprotocols = ["msrec"]\nseeds = [1]\n'
        '[[models]]\nname = "ease"\n'
    )
    p.write_text(base + '[[peers]]\nlibrary = "surprise"\nmodel = "SVD"\n')
    with pytest.raises(ConfigError, match=r"peers\[0\].*does not evaluate protocol 'msrec'"):
        load_benchmark_config(p)
    p.write_text(base + '[[peers]]\nlibrary = "lenskit"\nmodel = "ALS"\n')
    with pytest.raises(
        ConfigError, match=r"peers\.0.*no built-in runner for library 'lenskit'.*give a 'command'"
    ):
        load_benchmark_config(p)
    p.write_text(base + '[[peers]]\nlibrary = "recbole"\nmodel = "EASE"\nlabel = "ease"\n')
    with pytest.raises(ConfigError, match="labels must be unique"):
        load_benchmark_config(p)
