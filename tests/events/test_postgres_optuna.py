"""Optuna's shared study storage on a real PostgreSQL server: two ``zenrec tune`` processes
cooperate on one study (the DESIGN's "many machines, one storage")."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("optuna")


def test_two_tune_processes_share_a_postgresql_study(tmp_path, postgres_url):
    import optuna

    from zenrec.data import synthetic_dataset

    ds = synthetic_dataset(n_users=400, n_items=150, interactions_per_user=20, seed=11)
    csv = tmp_path / "log.csv"
    users, items = ds.user_vocab.decode(ds.users), ds.item_vocab.decode(ds.items)
    csv.write_text(
        "user,item,rating,ts\n"
        + "\n".join(
            f"{u},{i},{r:g},{t}" for u, i, r, t in zip(users, items, ds.ratings, ds.timestamps)
        )
        + "\n"
    )
    n = 12
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "zenrec", "tune", "--dataset", str(csv), "--user-col", "user",
             "--item-col", "item", "--rating-col", "rating", "--time-col", "ts", "--protocol",
             "msrec", "--model", "itemknn", "--quiet", "--no-refit", "--trials", str(n),
             "--storage", postgres_url, "--study", "pg-coop", "--output-dir",
             str(tmp_path / f"w{j}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        )
        for j in range(2)
    ]  # fmt: skip
    outs = [p.communicate(timeout=400) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    from zenrec.tuning.tuner import make_storage

    storage, shown = make_storage(postgres_url, tmp_path)
    assert shown.startswith("postgresql")
    study = optuna.load_study(study_name="pg-coop", storage=storage)
    done = [t for t in study.trials if t.state.is_finished() and t.value is not None]
    assert n <= len(done) <= n + 1  # the shared target stops both
    assert len({t.user_attrs.get("pid") for t in done}) == 2  # both processes ran trials
