"""benchmarks/peers/recbole_sasrec.py: a run stopped and resumed in another process reproduces
an uninterrupted one (losses, validation, the early-stopping counter, the test result), with a
real RecBole interpreter (skipped without ``ZENREC_PEER_PYTHON_RECBOLE``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "benchmarks" / "peers" / "recbole_sasrec.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("ZENREC_PEER_PYTHON_RECBOLE"),
        reason="set ZENREC_PEER_PYTHON_RECBOLE to RecBole's interpreter",
    ),
]


def run(csv: Path, state: Path, epochs: int, session: int = 0) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, str(HARNESS), "--dataset", str(csv), "--state", str(state)]
    cmd += ["--epochs", str(epochs), "--session-epochs", str(session), "--threads", "1"]
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, capture_output=True, timeout=600)


def log(state: Path) -> list[dict]:
    keep = ("epoch", "train_loss", "valid", "improved", "stopping_counter")
    lines = (state / "epochs.jsonl").read_text().splitlines()
    return [{k: json.loads(ln)[k] for k in keep} for ln in lines]


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    rng = np.random.default_rng(3)
    rows = ["user,item,timestamp"]
    for u in range(40):  # no structure to learn: validation wanders, the counter runs
        for t, i in enumerate(rng.choice(30, size=8, replace=False)):
            rows.append(f"u{u},i{i},{1000 * u + t}")
    csv = tmp_path / "tiny.csv"
    csv.write_text("\n".join(rows) + "\n")

    n = 6
    run(csv, tmp_path / "straight", epochs=n)
    straight = log(tmp_path / "straight")
    assert [r["epoch"] for r in straight] == list(range(n))
    # stop the first session after an epoch that left the stopping counter running, so the
    # comparison sees the counter carried over (not only the best score)
    cut = next(r["epoch"] + 1 for r in straight[:-1] if r["stopping_counter"] > 0)
    run(csv, tmp_path / "resumed", epochs=n, session=cut)
    assert [r["epoch"] for r in log(tmp_path / "resumed")] == list(range(cut))
    assert not (tmp_path / "resumed" / "result.json").exists()
    assert not (tmp_path / "resumed" / "running.pid").exists()  # released for the next process
    run(csv, tmp_path / "resumed", epochs=n, session=n)

    assert log(tmp_path / "resumed") == straight
    a = json.loads((tmp_path / "straight" / "result.json").read_text())
    b = json.loads((tmp_path / "resumed" / "result.json").read_text())
    assert a["metrics"] == b["metrics"] and a["best_epoch"] == b["best_epoch"]
    assert b["epochs_run"] == n
    assert json.loads((tmp_path / "resumed" / "rows.json").read_text())["rows"]["valid"] == 40
    line = json.loads((tmp_path / "resumed" / "epochs.jsonl").read_text().splitlines()[0])
    assert line["cpu_s"] > 0 and line["wall_s"] > 0 and set(line["valid"]) >= {"ndcg@10"}
