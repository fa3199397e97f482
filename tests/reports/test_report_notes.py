"""Benchmark output that cannot mislead: learning curves plot the cells' histories, a split
that ignores the seed says so, zero-width intervals are marked, help text has no '%%'."""

from __future__ import annotations

import argparse

import pytest


def test_learning_curves_plot_one_line_per_model_from_the_cells_histories():
    from zenrec.reports.plots import learning_curves_figure

    # the trainer records each validation pass as {"epoch", "loss", "valid_<metric>"...}
    histories = {
        "bprmf": [
            {"epoch": 1, "loss": 0.69, "valid_ndcg@10": 0.10},
            {"epoch": 2, "loss": 0.50, "valid_ndcg@10": 0.15},
        ],
        "gmf": [
            {"epoch": 1, "loss": 0.70, "valid_ndcg@10": 0.08},
            {"epoch": 2, "loss": 0.60, "valid_ndcg@10": 0.12},
            {"epoch": 3, "loss": 0.55, "valid_ndcg@10": 0.13},
        ],
    }
    fig = learning_curves_figure(histories, "ndcg@10", "t")
    lines = fig.axes[0].lines
    assert [ln.get_label() for ln in lines] == ["bprmf", "gmf"]
    assert lines[0].get_ydata().tolist() == [0.10, 0.15]
    assert lines[1].get_xdata().tolist() == [1, 2, 3]
    lo, hi = fig.axes[0].get_ylim()
    assert lo > 0.0 and hi < 1.0  # scaled to the data, not an empty 0-1 panel
    assert len(fig.axes[1].lines) == 2  # training loss


@pytest.fixture(scope="module")
def loo_bench(tmp_path_factory):
    from zenrec.data import synthetic_dataset
    from zenrec.experiments import BenchmarkConfig, run_benchmark

    ds = synthetic_dataset(n_users=150, n_items=80, interactions_per_user=12, seed=4)
    cfg = BenchmarkConfig(
        name="loo-seeds",
        datasets=[ds.name],
        protocols=["loo-full", "recbole"],
        seeds=[1, 2],
        models=[{"name": "ease", "params": {"l2": 50.0}}, {"name": "pop"}],
    )
    run_dir = tmp_path_factory.mktemp("loo")
    out = run_benchmark(cfg, run_dir, progress=False, datasets={ds.name: ds})
    return cfg, run_dir, out


def test_seedless_split_says_seeds_vary_the_model_only_and_marks_zero_width(loo_bench):
    from zenrec.reports.tables import summary_markdown

    cfg, _, out = loo_bench
    summary = out["summary"]
    loo = summary.filter(summary["protocol"] == "loo-full")
    rec = summary.filter(summary["protocol"] == "recbole")
    assert set(loo["seed_note"].to_list()) == {
        "the loo-full split ignores the seed (leave-one-out by time): seeds vary the model only"
    }
    assert rec["seed_note"].to_list() == [None, None]
    m = "ndcg@10"
    row = loo.row(0, named=True)
    assert row[f"{m}_ci_low"] == pytest.approx(row[f"{m}_ci_high"], abs=1e-12)
    md = summary_markdown(summary, out.get("significance"), cfg.baseline_label)
    loo_block, rec_block = md.split("**synthetic, protocol recbole**")
    assert "seeds vary the model only" in loo_block and "(zero width)" in loo_block
    assert "seeds vary" not in rec_block and "(zero width)" not in rec_block


def test_report_states_the_seed_note(loo_bench):
    from zenrec.reports.report import build_report

    _, run_dir, _ = loo_bench
    md_path, html_path = build_report(run_dir)
    md = md_path.read_text()
    assert "seeds vary the model only" in md and "(zero width)" in md
    assert "seeds vary the model only" in html_path.read_text()


def test_no_help_text_shows_a_doubled_percent_sign():
    from zenrec.cli.main import build_parser

    def walk(p: argparse.ArgumentParser):
        yield p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sp in a.choices.values():
                    yield from walk(sp)

    texts = [p.format_help() for p in walk(build_parser())]
    assert len(texts) > 10
    bad = [t.splitlines()[0] for t in texts if "%%" in t]
    assert not bad, bad
    assert any("95% confidence" in t for t in texts)
