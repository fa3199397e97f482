"""The CLI's temporal split options, the warm/cold line, and ``zenrec tune --split-dir``."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from datahelp import DATA


def zenrec(*args, cwd=None):
    env = {**os.environ, "ZENREC_DATA": str(DATA), "COLUMNS": "160", "ZENREC_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "zenrec", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def one_line_error(r, needle):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zenrec: error:"), r.stderr
    assert needle in lines[0], lines[0]


@pytest.fixture
def log_csv(tmp_path, synthetic):
    p = tmp_path / "events.csv"
    users = synthetic.user_vocab.decode(synthetic.users)
    items = synthetic.item_vocab.decode(synthetic.items)
    rows = [
        f"{u},{i},{r:g},{t}"
        for u, i, r, t in zip(users, items, synthetic.ratings, synthetic.timestamps)
    ]
    p.write_text("user,item,rating,timestamp\n" + "\n".join(rows) + "\n")
    return p


def test_evaluate_temporal_with_a_date_cutoff(tmp_path, log_csv, synthetic):
    t = np.sort(synthetic.timestamps)
    test_start = int(t[int(0.8 * t.size)])
    out = tmp_path / "r.json"
    r = zenrec(
        "evaluate",
        "--dataset",
        str(log_csv),
        "--protocol",
        "temporal",
        "--test-start",
        str(test_start),
        "--valid-start",
        str(int(t[int(0.7 * t.size)])),
        "--model",
        "pop",
        "--output",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())
    assert rec["protocol"]["split_params"]["test_start"] == test_start
    assert rec["split"]["sizes"][0][2] == int((synthetic.timestamps >= test_start).sum())
    assert f"--test-start {test_start}" in rec["command"]
    cov = rec["test_coverage"]
    assert "ndcg@10: warm users" in r.stdout and f"cold users {cov['cold_users']:,} of" in r.stdout
    # this log's users arrive over time: most test users are new, and the CLI says so
    assert cov["cold_users"] > 0.05 * cov["test_users"]
    assert "zenrec: warning: evaluate_ranking:" in r.stderr and "metrics_warm" in r.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--protocol", "msrec", "--test-fraction", "0.2"], "has no split option --test-fraction"),
        (
            ["--protocol", "temporal", "--test-fraction", "0.2", "--test-start", "1998-01-01"],
            "not both",
        ),
        (["--protocol", "temporal", "--test-start", "soon"], "--test-start must be unix seconds"),
        (["--protocol", "temporal-user", "--split-ratios", "a,b"], "--split-ratios expects"),
    ],
)
def test_bad_split_options_are_one_line(args, needle, log_csv):
    r = zenrec("evaluate", "--dataset", str(log_csv), "--model", "pop", *args)
    one_line_error(r, needle)


def test_temporal_on_a_log_without_time_names_the_flag(tmp_path):
    p = tmp_path / "shop.csv"
    p.write_text("user,item\n" + "\n".join(f"u{j % 7},i{j % 5}" for j in range(40)) + "\n")
    r = zenrec("evaluate", "--dataset", str(p), "--protocol", "temporal", "--model", "pop")
    one_line_error(r, "has no timestamp column; read it with --time-col COLUMN")


def _write_split(d, split):
    d.mkdir()
    for name in ("train", "valid", "test"):
        part = getattr(split, name)
        u = part.user_vocab.decode(part.users)
        i = part.item_vocab.decode(part.items)
        rows = "\n".join(f"{a}\t{b}" for a, b in zip(u, i))
        (d / f"{name}.tsv").write_text("user_id\titem_id\n" + rows + "\n")


def test_tune_on_a_fixed_split_dir(tmp_path, log_csv, synthetic):
    from zenrec.splits import user_random_split

    split_dir = tmp_path / "split"
    fixed = user_random_split(synthetic, (0.7, 0.15, 0.15), seed=5)
    _write_split(split_dir, fixed)
    run_dir = tmp_path / "tune"
    common = ["--dataset", str(log_csv), "--protocol", "recbole", "--split-dir", str(split_dir)]
    r = zenrec(
        "tune", *common, "--model", "ease", "--trials", "2", "--quiet", "--output-dir", str(run_dir)
    )
    assert r.returncode == 0, r.stderr
    info = json.loads((run_dir / "tune.json").read_text())
    assert info["validation"].startswith("the protocol's validation part (fixed split from")
    assert info["test"]["split"]["description"].startswith("fixed split from")
    assert info["test"]["split"]["sizes"][0] == list(fixed.sizes())
    assert "--split-dir" in info["reproduce"]
    # the refit's test numbers are what `zenrec evaluate --split-dir` gives for those params
    out = tmp_path / "e.json"
    sets = [f"--set={k}={v}" for k, v in info["best_params"].items()]
    r = zenrec("evaluate", *common, "--model", "ease", *sets, "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["metrics"] == pytest.approx(info["test"]["metrics"])


def test_split_dir_and_split_options_conflict(tmp_path, log_csv):
    r = zenrec(
        "evaluate",
        "--dataset",
        str(log_csv),
        "--protocol",
        "temporal",
        "--test-fraction",
        "0.2",
        "--split-dir",
        str(tmp_path),
        "--model",
        "pop",
    )
    one_line_error(r, "--split-dir replaces the protocol's split")
