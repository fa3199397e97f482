"""The CLI, run as a real subprocess: outputs, JSON records and one-line user errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datahelp import DATA, data_dir


def zenrec(*args, cwd=None, env_extra=None):
    env = {**os.environ, "ZENREC_DATA": str(DATA), "COLUMNS": "160", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "zenrec", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.fixture
def log_csv(tmp_path, synthetic):
    p = tmp_path / "events.csv"
    users = synthetic.user_vocab.decode(synthetic.users)
    items = synthetic.item_vocab.decode(synthetic.items)
    lines = ["uid;iid;stars;when"] + [
        f"{u};{i};{r:g};{t}"
        for u, i, r, t in zip(users, items, synthetic.ratings, synthetic.timestamps)
    ]
    p.write_text("\n".join(lines) + "\n")
    return p


def test_help_lists_commands_with_examples():
    r = zenrec("--help")
    assert r.returncode == 0
    for cmd in ("quickstart", "data", "evaluate", "recommend"):
        assert cmd in r.stdout
    r = zenrec("evaluate", "--help")
    assert "Example" in r.stdout and "--protocol" in r.stdout


def test_evaluate_own_csv_writes_record_and_bundle(tmp_path, log_csv):
    out = tmp_path / "r.json"
    r = zenrec(
        "evaluate",
        "--dataset",
        str(log_csv),
        "--sep",
        ";",
        "--user-col",
        "uid",
        "--item-col",
        "iid",
        "--rating-col",
        "stars",
        "--time-col",
        "when",
        "--protocol",
        "recbole",
        "--model",
        "ease",
        "--set",
        "l2=20",
        "--min-rating",
        "2",
        "--output",
        str(out),
        "--save-bundle",
        str(tmp_path / "b"),
    )
    assert r.returncode == 0, r.stderr
    rec = json.loads(out.read_text())
    assert rec["metrics"]["ndcg@10"] > 0.05
    assert rec["hyperparameters"] == {"l2": 20.0}
    assert rec["protocol"]["name"] == "recbole" and rec["seed"] == 2020
    assert any("rating >= 2" in f for f in rec["filters"])
    assert len(rec["dataset_sha256"]) == 64 and rec["fit_seconds"] >= 0 and rec["eval_seconds"] >= 0
    assert "numpy" in rec["versions"]
    user = "1000"
    r2 = zenrec("recommend", "--bundle", str(tmp_path / "b"), "--user", user, "-k", "3", "--json")
    assert r2.returncode == 0, r2.stderr
    recs = json.loads(r2.stdout)
    assert len(recs[0]["items"]) == 3 and recs[0]["fallback"] is False


def _assert_one_line_error(r, needle):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["evaluate", "--dataset", "ml-5m", "--protocol", "recbole", "--model", "ease"],
            "'ml-5m' is neither a built-in dataset",
        ),
        (
            ["evaluate", "--dataset", "ml-100k", "--protocol", "nope", "--model", "ease"],
            "unknown protocol 'nope'",
        ),
        (
            [
                "evaluate",
                "--dataset",
                "ml-100k",
                "--protocol",
                "msrec",
                "--model",
                "ease",
                "--set",
                "l2=-1",
            ],
            "the 'l2' parameter of ease",
        ),
        (
            ["evaluate", "--dataset", "ml-100k", "--protocol", "msrec", "--model", "eas"],
            "unknown model 'eas'",
        ),
        (
            [
                "evaluate",
                "--dataset",
                "ml-100k",
                "--protocol",
                "msrec",
                "--model",
                "ease",
                "--set",
                "oops",
            ],
            "--set expects key=value; got 'oops'",
        ),
        (["recommend", "--bundle", "/nonexistent", "--user", "1"], "not a zenrec bundle"),
        (["data", "info", "ml-100k", "--user-col", "x"], "--user-col applies to files"),
    ],
)
def test_user_errors_before_any_data_is_read_are_one_line(tmp_path, args, needle):
    # an empty data folder and cache: these errors must come before any data is needed
    r = zenrec(
        *args, env_extra={"ZENREC_DATA": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    )
    _assert_one_line_error(r, needle)


def test_user_errors_about_the_data_are_one_line(tmp_path, synthetic):
    p = tmp_path / "ratings.csv"  # no time column at all
    users = synthetic.user_vocab.decode(synthetic.users)
    items = synthetic.item_vocab.decode(synthetic.items)
    p.write_text(
        "\n".join(
            ["uid;iid;stars"]
            + [f"{u};{i};{r:g}" for u, i, r in zip(users, items, synthetic.ratings)]
        )
        + "\n"
    )
    no_time = [
        "--dataset",
        str(p),
        "--sep",
        ";",
        "--user-col",
        "uid",
        "--item-col",
        "iid",
        "--rating-col",
        "stars",
    ]
    r = zenrec("evaluate", *no_time, "--protocol", "loo-full", "--model", "pop")
    _assert_one_line_error(r, "leave-one-out needs timestamps, but dataset")
    r = zenrec("evaluate", *no_time, "--protocol", "surprise-cv5", "--model", "ease")
    _assert_one_line_error(r, "is a ranking model; use a rating model")


def test_bad_column_in_own_file(tmp_path, log_csv):
    r = zenrec("data", "info", str(log_csv), "--sep", ";", "--user-col", "user")
    # one line that names the file and the column, lists the real columns and gives the fix
    _assert_one_line_error(r, f"{log_csv}: user id column 'user' not found")
    assert "columns are ['uid', 'iid', 'stars', 'when']" in r.stderr
    assert "pass --user-col with one of them" in r.stderr
    assert r.stdout == ""
    # the same file with the right column is read: the error was about the name, not the file
    cols = ["--user-col", "uid", "--item-col", "iid", "--rating-col", "stars", "--time-col", "when"]
    ok = zenrec("data", "info", str(log_csv), "--sep", ";", *cols)
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr


def test_data_info_ml100k():
    data_dir("ml-100k")
    r = zenrec("data", "info", "ml-100k", "--json")
    info = json.loads(r.stdout)
    assert info["interactions"] == 100_000 and info["users"] == 943
    assert info["time_range"][0] < info["time_range"][1]
    r = zenrec("data", "info", "ml-100k", "--min-rating", "4")
    assert r.returncode == 0 and "rating >= 4" in r.stdout


def test_data_info_multichar_no_header(tmp_path):
    p = tmp_path / "r.dat"
    p.write_text("1::10::5::978300760\n1::11::3::978302109\n2::10::4::978301968\n")
    r = zenrec(
        "data",
        "info",
        str(p),
        "--sep",
        "::",
        "--no-header",
        "--user-col",
        "0",
        "--item-col",
        "1",
        "--rating-col",
        "2",
        "--time-col",
        "3",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["interactions"] == 3 and info["rating_distribution"] == {"3": 1, "4": 1, "5": 1}


def test_quickstart_end_to_end(tmp_path):
    data_dir("ml-100k")
    r = zenrec("quickstart", "--output", str(tmp_path / "qs"))
    assert r.returncode == 0, r.stderr
    assert "leaderboard" in r.stdout and "history" in r.stdout
    board = json.loads((tmp_path / "qs" / "leaderboard.json").read_text())
    assert board[0]["metrics"]["ndcg@10"] >= board[-1]["metrics"]["ndcg@10"]
    assert board[0]["metrics"]["ndcg@10"] > 0.40  # measured 0.471 (EASE)
    assert Path(tmp_path / "qs" / "best-model" / "bundle.json").exists()


def test_perf_and_benchmark_are_distinct_and_bench_is_a_deprecated_alias(tmp_path):
    top = zenrec("--help").stdout
    assert "perf" in top and "benchmark" in top and "deprecated alias of 'zenrec perf'" in top
    assert "'zenrec benchmark'" in zenrec("perf", "--help").stdout  # says where comparisons are
    args = ("retrieval", "--items", "500", "--dim", "4", "--queries", "5", "--ef", "16")
    new = zenrec("perf", *args, "--json", str(tmp_path / "new.json"))
    assert new.returncode == 0, new.stderr
    old = zenrec("bench", *args, "--json", str(tmp_path / "old.json"))
    assert old.returncode == 0, old.stderr
    notices = [ln for ln in old.stderr.splitlines() if "deprecated" in ln]
    assert notices == [
        "zenrec: deprecated: 'zenrec bench' is now 'zenrec perf'; "
        "the old name goes in the next release"
    ]
    assert "deprecated" not in new.stderr
    keys = json.loads((tmp_path / "old.json").read_text()).keys()
    assert keys == json.loads((tmp_path / "new.json").read_text()).keys()
