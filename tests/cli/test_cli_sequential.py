"""The new models through the CLI: evaluate (--format sequences), train, tune, benchmark."""

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")


def zenrec(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "zenrec", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture
def seq_file(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for u in range(40):
        start = int(rng.integers(0, 12))
        lines.append(" ".join([f"u{u}"] + [f"i{(start + t) % 12}" for t in range(8)]))
    p = tmp_path / "seqs.txt"
    p.write_text("\n".join(lines) + "\n")
    return p


FAST = [
    "--set",
    "epochs=20",
    "--set",
    "dim=16",
    "--set",
    "max_len=8",
    "--set",
    "eval_every=20",
    "--set",
    "progress=false",
    "--set",
    "num_threads=1",
    "--set",
    "lr=0.01",
]


def test_evaluate_and_train_sasrec_on_a_sequence_file(seq_file, tmp_path):
    out = tmp_path / "r.json"
    r = zenrec(
        "evaluate",
        "--dataset",
        str(seq_file),
        "--format",
        "sequences",
        "--protocol",
        "loo-full",
        "--model",
        "sasrec",
        *FAST,
        "--output",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())
    assert rec["metrics"]["ndcg@10"] > 0.5  # walks of a fixed cycle: the next item is predictable
    t = zenrec(
        "train",
        "--dataset",
        str(seq_file),
        "--format",
        "sequences",
        "--protocol",
        "loo-full",
        "--model",
        "sasrec",
        *FAST,
        "--output",
        str(tmp_path / "run"),
    )
    assert t.returncode == 0, t.stderr
    assert (tmp_path / "run" / "bundle" / "bundle.json").exists()
    bad = zenrec(
        "evaluate",
        "--dataset",
        str(seq_file),
        "--format",
        "sequences",
        "--user-col",
        "x",
        "--protocol",
        "loo-full",
        "--model",
        "sasrec",
    )
    assert bad.returncode == 2 and "--format sequences" in bad.stderr


def test_tune_and_benchmark_new_models(seq_file, tmp_path):
    space = tmp_path / "s.toml"
    space.write_text(
        'model = "sasrec"\nmetric = "ndcg@10"\n[fixed]\nepochs = 3\nprogress = false\n'
        "max_len = 8\ndim = 16\nnum_threads = 1\n[params]\n"
        'lr = { type = "float", low = 1e-3, high = 1e-2, log = true }\n'
    )
    r = zenrec(
        "tune",
        "--dataset",
        str(seq_file),
        "--format",
        "sequences",
        "--protocol",
        "loo-full",
        "--model",
        "sasrec",
        "--trials",
        "2",
        "--space",
        str(space),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    cfg = tmp_path / "b.toml"
    template = (
        'name = "mt"\ndatasets = ["{}"]\nprotocols = ["ctr"]\nseeds = [0, 1]\n'
        'baseline = "mlpranker"\nmetrics = ["auc", "gauc"]\n'
        '[[models]]\nname = "din"\n'
        "params = {{ epochs = 2, dim = 8, history_len = 5, progress = false }}\n"
        '[[models]]\nname = "mlpranker"\n'
        "params = {{ epochs = 2, dim = 8, progress = false }}\n"
    )
    cfg.write_text(template.format(str(tmp_path / "inter.csv")))
    users = np.repeat(np.arange(30), 8)
    items = np.random.default_rng(1).integers(0, 25, users.size)
    (tmp_path / "inter.csv").write_text(
        "user,item\n" + "\n".join(f"{u},{i}" for u, i in zip(users, items)) + "\n"
    )
    b = zenrec(
        "benchmark", str(cfg), "--output-dir", str(tmp_path / "bench"), "--quiet", cwd=tmp_path
    )
    assert b.returncode == 0, b.stderr[-2000:]
    cells = list((tmp_path / "bench" / "cells").glob("*.json"))
    assert len(cells) == 4
    assert all("auc" in json.loads(c.read_text())["metrics"] for c in cells)
