"""Run records: the recorded command re-runs the same numbers from any directory."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zenrec.cli._common import data_spec
from zenrec.cli.main import build_parser
from zenrec.data import DataSpec, synthetic_dataset
from zenrec.runs import RunRecord, reproduce_command


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def _zenrec(cmd: str) -> list[str]:
    argv = shlex.split(cmd)
    assert argv[0] == "zenrec"
    return [sys.executable, "-m", "zenrec", *argv[1:]]


@pytest.fixture(scope="module")
def colon_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A header-less ``::``-separated file (user::item::rating) with some light users."""
    ds = synthetic_dataset(n_users=160, n_items=90, interactions_per_user=14, seed=11)
    users = ds.user_vocab.decode(ds.users)
    items = ds.item_vocab.decode(ds.items)
    rng = np.random.default_rng(0)
    ratings = rng.integers(1, 6, size=len(ds))
    lines = [f"{u}::{i}::{r}" for u, i, r in zip(users, items, ratings)]
    lines += [
        f"{9000 + j}::{items[j]}::4" for j in range(30)
    ]  # 30 one-interaction users: the k-core drops them
    path = tmp_path_factory.mktemp("data") / "ratings.dat"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_args_round_trip_through_the_parser(tmp_path: Path) -> None:
    spec = DataSpec(
        source=str(tmp_path / "r.dat"),
        sep="::",
        header=False,
        user_col="0",
        item_col="1",
        rating_col="2",
        encoding="latin-1",
        min_rating=3.0,
        min_user_count=5,
        min_item_count=2,
        duplicates="mean",
        split_dir=str(tmp_path / "split"),
    )
    args = build_parser().parse_args(
        ["evaluate", *spec.cli_args(), "--protocol", "recbole", "--model", "ease"]
    )
    assert data_spec(args) == spec


def test_reproduce_command_is_absolute_and_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my data.csv").write_text("u,i\n1,2\n")
    cmd = reproduce_command(
        DataSpec(source="my data.csv", min_user_count=5),
        "recbole",
        "ease",
        {"l2": 12.5, "flag": True},
        7,
    )
    argv = shlex.split(cmd)
    assert argv[argv.index("--dataset") + 1] == str(tmp_path / "my data.csv")
    assert argv[argv.index("--seed") + 1] == "7" and "--min-user-count" in argv
    assert "l2=12.5" in argv and "flag=true" in argv


def test_tuned_record_reruns_from_another_directory(colon_file: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "tune"
    tune = [
        sys.executable,
        "-m",
        "zenrec",
        "tune",
        "--dataset",
        colon_file.name,
        "--sep",
        "::",
        "--no-header",
        "--user-col",
        "0",
        "--item-col",
        "1",
        "--rating-col",
        "2",
        "--min-user-count",
        "5",
        "--protocol",
        "recbole",
        "--model",
        "ease",
        "--trials",
        "3",
        "--quiet",
        "--output-dir",
        str(run_dir),
    ]
    r = subprocess.run(
        tune, cwd=colon_file.parent, capture_output=True, text=True, env=_env(), timeout=300
    )
    assert r.returncode == 0, r.stderr
    info = json.loads((run_dir / "tune.json").read_text())
    test_metrics = info["test"]["metrics"]
    assert info["test"]["data"]["min_user_count"] == 5 and info["test"]["data"]["sep"] == "::"
    # the recorded command, run elsewhere, reads the same file with the same options and filters
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cmd in (info["reproduce"], info["test"]["command"]):
        out = elsewhere / "again.json"
        r = subprocess.run(
            [*_zenrec(cmd), "--output", str(out)],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            env=_env(),
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        again = RunRecord.read(out)
        assert again.metrics == pytest.approx(test_metrics, rel=1e-12, abs=1e-12)
        assert again.data_fingerprint == info["test"]["data_fingerprint"]
    # without the k-core filter the data (and so the split) differs: the filter really is in the
    # command
    assert "--min-user-count 5" in info["reproduce"]


def test_record_round_trips_and_refuses_unknown_fields(tmp_path: Path) -> None:
    rec = RunRecord(
        model="ease",
        dataset="x",
        protocol={"name": "msrec"},
        seed=1,
        metrics={"ndcg@10": 0.5},
        data=DataSpec(source="ml-100k"),
    )
    back = RunRecord.read(rec.write(tmp_path / "r.json"))
    assert back == rec
    payload = json.loads((tmp_path / "r.json").read_text())
    payload["ndgc@10"] = 1.0
    (tmp_path / "bad.json").write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="ndgc@10"):
        RunRecord.read(tmp_path / "bad.json")
