"""Tuning behaviour: beats the default on validation, pruning, shared storage, resume after kill."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import zenrec
from zenrec.data.dataset import Dataset
from zenrec.evaluation.protocols import get_protocol
from zenrec.models.base import ModelConfig, Recommender
from zenrec.tuning.space import parse_space
from zenrec.tuning.tuner import tune, tuning_split


@pytest.fixture(scope="module")
def small():
    from zenrec.data import synthetic_dataset

    return synthetic_dataset(n_users=400, n_items=150, interactions_per_user=20, seed=3)


def test_tuning_finds_better_than_default_and_tests_once(tmp_path, small):
    protocol = get_protocol("msrec")
    space = parse_space(
        {
            "model": "ease",
            "metric": "ndcg@10",
            "params": {"l2": {"type": "float", "low": 0.5, "high": 5000.0, "log": True}},
        }
    )
    res = tune(small, protocol, "ease", space=space, n_trials=12, run_dir=tmp_path, seed=5)
    assert res.n_finished == 12
    assert res.default_value is not None  # trial 0 is the default configuration
    assert res.best_value > res.default_value + 1e-4
    assert res.best_params["l2"] != 250.0
    # the test evaluation equals zenrec evaluate with the printed --set values
    from zenrec.runs import evaluate_model

    rec, _ = evaluate_model(small, protocol, "ease", res.best_params, seed=5)
    assert rec.metrics["ndcg@10"] == pytest.approx(res.test_record.metrics["ndcg@10"], abs=1e-12)
    # data given in Python (not a built-in as loaded): no command that would not reproduce
    assert res.summary["reproduce"] is None and res.test_record.command is None
    assert "given in Python" in res.summary["reproduce_note"]
    assert res.summary["data_fingerprint"] == small.fingerprint()  # msrec adds no filter here
    info = json.loads((tmp_path / "tune.json").read_text())
    assert info["n_finished"] == 12 and "stratified" in info["validation"]
    assert (tmp_path / "trials.csv").read_text().count("\n") == 13


def test_carved_validation_never_touches_test(small):
    protocol = get_protocol("msrec")
    split, how = tuning_split(small, protocol, 42)
    outer = protocol.splits(small, 42)[0]
    key = lambda d: set(zip(d.users.tolist(), d.items.tolist()))  # noqa: E731
    assert key(split.train) | key(split.valid) == key(outer.train)
    assert not (key(split.valid) & key(outer.test)) and "seed 43" in how
    cv = get_protocol("surprise-cv5")
    s2, _how2 = tuning_split(small, cv, 0)
    assert len(s2.valid) == pytest.approx(len(cv.splits(small, 0)[0].train) / 5, rel=0.01)


class FakeIterConfig(ModelConfig):
    lr: float = 0.1
    epochs: int = 8


class FakeIter(Recommender):
    """An iterative model whose validation metric after each epoch is known: ``lr`` decides it."""

    name = "fakeiter"
    Config = FakeIterConfig

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        self.scores_ = np.zeros(train.n_items, dtype=np.float32)
        for epoch in range(1, self.config.epochs + 1):
            metric = self.config.lr * epoch / self.config.epochs
            self.history_.append({"epoch": epoch, "ndcg@10": metric})
            if self.epoch_callback is not None:
                self.epoch_callback(epoch, {"ndcg@10": metric})
        self.scores_ = np.asarray(train.item_counts(), dtype=np.float32) * self.config.lr

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.scores_, (users.size, 1))

    def _state(self):
        return {"scores": self.scores_}

    def _load_state(self, arrays):
        self.scores_ = arrays["scores"]


def test_iterative_models_are_pruned_on_their_epoch_metric(tmp_path, small, monkeypatch):
    from zenrec.models import registry

    monkeypatch.setitem(registry.MODELS, "fakeiter", f"{__name__}:FakeIter")
    space = parse_space(
        {
            "model": "fakeiter",
            "metric": "ndcg@10",
            "fixed": {"epochs": 8},
            "params": {"lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
        }
    )
    res = tune(
        small,
        get_protocol("recbole"),
        "fakeiter",
        space=space,
        n_trials=25,
        run_dir=tmp_path,
        seed=1,
        refit=False,
        write=False,
    )
    import optuna

    study = optuna.load_study(study_name=res.study_name, storage=res.storage)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "no trial was pruned"
    # a pruned trial stopped early: fewer reported epochs than the full 8
    assert all(max(t.intermediate_values) < 8 for t in pruned)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert all(len(t.intermediate_values) == 8 for t in complete)
    assert res.n_finished == 25


# ---------------------------------------------------------------------------- real processes
@pytest.fixture(scope="module")
def log_csv(tmp_path_factory):
    from zenrec.data import synthetic_dataset

    ds = synthetic_dataset(n_users=1500, n_items=400, interactions_per_user=25, seed=11)
    p = tmp_path_factory.mktemp("data") / "events.csv"
    users = ds.user_vocab.decode(ds.users)
    items = ds.item_vocab.decode(ds.items)
    p.write_text(
        "user,item,rating,ts\n"
        + "\n".join(
            f"{u},{i},{r:g},{t}" for u, i, r, t in zip(users, items, ds.ratings, ds.timestamps)
        )
        + "\n"
    )
    return p


def _tune_cmd(csv_path, *extra):
    return [
        sys.executable,
        "-m",
        "zenrec",
        "tune",
        "--dataset",
        str(csv_path),
        "--user-col",
        "user",
        "--item-col",
        "item",
        "--rating-col",
        "rating",
        "--time-col",
        "ts",
        "--protocol",
        "msrec",
        "--model",
        "itemknn",
        "--quiet",
        "--no-refit",
        *extra,
    ]


def _env():
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "COLUMNS": "160"}


def _load(storage, study):
    import optuna

    from zenrec.tuning.tuner import make_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    st, _ = make_storage(storage, Path("."))
    return optuna.load_study(study_name=study, storage=st)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_processes_cooperate_on_one_study(tmp_path, log_csv, kind):
    storage = (
        f"sqlite:///{tmp_path / 'shared.db'}"
        if kind == "sqlite"
        else f"journal:{tmp_path / 'shared.log'}"
    )
    n = 24
    procs = [
        subprocess.Popen(
            _tune_cmd(
                log_csv,
                "--trials",
                str(n),
                "--storage",
                storage,
                "--study",
                "coop",
                "--output-dir",
                str(tmp_path / f"w{j}"),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for j in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    import optuna

    study = _load(storage, "coop")
    finished = [
        t
        for t in study.trials
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]
    # the study target is shared: together they stop at n (each may finish one trial in flight)
    assert n <= len(finished) <= n + 1
    pids = {t.user_attrs.get("pid") for t in finished}
    assert len(pids) == 2, f"only one process ran trials: {pids}"
    params = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(params)) >= len(params) - 2  # the workers do not repeat each other's proposals


@pytest.mark.parametrize(("sig", "kind"), [(signal.SIGINT, "sqlite"), (signal.SIGKILL, "journal")])
def test_resume_after_kill_keeps_trials_and_continues(tmp_path, log_csv, sig, kind):
    import optuna

    storage = (
        f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite" else f"journal:{tmp_path / 's.log'}"
    )
    cmd = _tune_cmd(
        log_csv, "--storage", storage, "--study", "resume", "--output-dir", str(tmp_path)
    )
    # a shell's background job ignores SIGINT and Python keeps that; give the child Ctrl-C back
    p = subprocess.Popen(
        cmd + ["--trials", "500"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    done_before: list = []
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            study = _load(storage, "resume")
        except KeyError:  # optuna: the child has not created the study yet
            continue
        done_before = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(done_before) >= 4:
            break
    assert len(done_before) >= 4, p.stderr.read() if p.poll() is not None else "too slow"
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert p.returncode == 130 and "interrupted" in err
    else:
        assert p.returncode == -signal.SIGKILL
    kept = {
        t.number: t.value
        for t in _load(storage, "resume").trials
        if t.state == optuna.trial.TrialState.COMPLETE
    }
    assert len(kept) >= len(done_before)
    target = len(kept) + 5
    r = subprocess.run(
        cmd + ["--trials", str(target)], capture_output=True, text=True, env=_env(), timeout=180
    )
    assert r.returncode == 0, r.stderr[-2000:]
    after = _load(storage, "resume").trials
    complete = {t.number: t.value for t in after if t.state == optuna.trial.TrialState.COMPLETE}
    assert len(complete) >= target > len(kept)
    for num, val in kept.items():  # earlier trials are kept unchanged
        assert complete[num] == val
    finished = sum(
        t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in after
    )
    assert f"{finished} finished trials" in r.stdout, r.stdout


def test_cli_errors_are_one_line(tmp_path, log_csv):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "itemknn"\n[params]\nk = { type = "int", low = 50, high = 10 }\n')
    r = subprocess.run(
        _tune_cmd(log_csv, "--trials", "2", "--space", str(bad)),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "params.k" in lines[0]
    r = subprocess.run(
        _tune_cmd(log_csv, "--trials", "2", "--storage", "nonsense"),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert r.returncode == 2 and "--storage" in r.stderr


class Peak(FakeIter):
    """Validation peaks at epoch 3 whatever ``lr`` is; records it as the neural models do
    (same config as FakeIter: lr, epochs)."""

    name = "peak"

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        for epoch in range(1, self.config.epochs + 1):
            self.history_.append(
                {"epoch": epoch, "valid_ndcg@10": self.config.lr / (1 + abs(epoch - 3))}
            )
        self.scores_ = np.asarray(train.item_counts(), dtype=np.float32) * self.config.lr


@pytest.mark.parametrize("protocol_name, epochs", [("msrec", 3), ("recbole", 8)])
def test_refit_without_validation_trains_for_the_best_epoch(
    tmp_path, small, monkeypatch, protocol_name, epochs
):
    from zenrec.models import registry

    monkeypatch.setitem(registry.MODELS, "peak", f"{__name__}:Peak")
    space = parse_space(
        {
            "model": "peak",
            "metric": "ndcg@10",
            "fixed": {"epochs": 8},
            "params": {"lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
        }
    )
    res = tune(
        small,
        get_protocol(protocol_name),
        "peak",
        space=space,
        n_trials=3,
        run_dir=tmp_path,
        seed=1,
        write=False,
    )
    assert res.best_params["epochs"] == epochs
    assert res.test_record.hyperparameters["epochs"] == epochs
    assert len(res.run.models[0].history_) == epochs


class ScheduledPeakConfig(FakeIterConfig):
    schedule_epochs: int = 0
    lr_schedule: str = "cosine"


class ScheduledPeak(Peak):
    """Peak with a learning-rate schedule length, as the neural models' TrainingConfig has."""

    name = "scheduledpeak"
    Config = ScheduledPeakConfig


@pytest.mark.parametrize("protocol_name", ["msrec", "recbole"])
def test_refit_at_the_best_epoch_keeps_the_searched_schedule(
    tmp_path, small, monkeypatch, protocol_name
):
    from zenrec.models import registry

    monkeypatch.setitem(registry.MODELS, "scheduledpeak", f"{__name__}:ScheduledPeak")
    space = parse_space(
        {
            "model": "scheduledpeak",
            "metric": "ndcg@10",
            "fixed": {"epochs": 8},
            "params": {"lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
        }
    )
    res = tune(
        small,
        get_protocol(protocol_name),
        "scheduledpeak",
        space=space,
        n_trials=2,
        run_dir=tmp_path,
        seed=1,
        write=False,
    )
    if protocol_name == "msrec":  # refit stops at epoch 3 of the 8-epoch schedule it was chosen on
        assert res.best_params["epochs"] == 3 and res.best_params["schedule_epochs"] == 8
        assert res.run.models[0].config.schedule_epochs == 8
    else:  # the protocol's own validation part: the refit is the searched run itself
        assert res.best_params["epochs"] == 8 and "schedule_epochs" not in res.best_params
    # a constant learning rate has no curve to keep
    flat_space = parse_space(
        {
            "model": "scheduledpeak",
            "metric": "ndcg@10",
            "fixed": {"epochs": 8, "lr_schedule": "constant"},
            "params": {"lr": {"type": "float", "low": 0.01, "high": 1.0, "log": True}},
        }
    )
    flat = tune(
        small,
        get_protocol(protocol_name),
        "scheduledpeak",
        space=flat_space,
        n_trials=2,
        run_dir=tmp_path / "flat",
        seed=1,
        write=False,
    )
    assert "schedule_epochs" not in flat.best_params


def test_default_trial_keeps_a_default_the_range_cannot_draw(tmp_path, small, monkeypatch):
    """Trial 0 is the model's default configuration even when a default lies outside the
    searched range (e.g. weight decay 0 under a log scale): it is used as it is, not sampled."""
    import optuna

    from zenrec.models import registry

    monkeypatch.setitem(registry.MODELS, "fakeiter", f"{__name__}:FakeIter")
    space = parse_space(
        {
            "model": "fakeiter",
            "metric": "ndcg@10",
            "fixed": {"epochs": 2},
            "params": {"lr": {"type": "float", "low": 0.2, "high": 1.0, "log": True}},
        }
    )
    res = tune(
        small,
        get_protocol("recbole"),
        "fakeiter",
        space=space,
        n_trials=3,
        run_dir=tmp_path,
        seed=1,
    )
    trials = optuna.load_study(study_name=res.study_name, storage=res.storage).trials
    assert "lr" not in trials[0].params and all(0.2 <= t.params["lr"] <= 1.0 for t in trials[1:])
    assert res.default_value == trials[0].value


def _ease_space():
    return parse_space(
        {
            "model": "ease",
            "metric": "ndcg@10",
            "params": {"l2": {"type": "float", "low": 0.5, "high": 5000.0, "log": True}},
        }
    )


def test_snapshot_makes_the_rerun_command_reproduce(tmp_path, small):
    """``snapshot=`` writes the data, and the recorded command re-runs the same test number."""
    import polars as pl

    frame = pl.DataFrame(
        {
            "customer": small.user_vocab.decode(small.users),
            "sku": small.item_vocab.decode(small.items),
        }
    )
    ds = zenrec.read_interactions(frame, user_col="customer", item_col="sku")
    snap = tmp_path / "data.parquet"
    res = tune(
        ds,
        get_protocol("msrec"),
        "ease",
        space=_ease_space(),
        n_trials=3,
        run_dir=tmp_path,
        seed=5,
        snapshot=snap,
    )
    cmd = res.summary["reproduce"]
    assert cmd is not None and res.summary["reproduce_note"] is None
    assert f"--dataset {snap.resolve()}" in cmd and "--user-col user" in cmd
    assert res.test_record.command == cmd
    out = tmp_path / "rerun.json"
    args = shlex.split(cmd)[1:] + ["--output", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run(
        [sys.executable, "-m", "zenrec", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    again = json.loads(out.read_text())["metrics"]["ndcg@10"]
    assert again == pytest.approx(res.test_record.metrics["ndcg@10"], abs=1e-12)


def test_progress_false_silences_optuna_and_restores_its_verbosity(tmp_path, small):
    import logging

    import optuna

    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("optuna")
    logger.addHandler(handler)
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        optuna.logging.get_logger("optuna.probe").info("probe")  # the handler does see INFO
        assert [r.getMessage() for r in seen] == ["probe"]
        tune(
            small,
            get_protocol("msrec"),
            "ease",
            space=_ease_space(),
            n_trials=2,
            run_dir=tmp_path,
            seed=5,
            refit=False,
            progress=False,
        )
        assert [r.getMessage() for r in seen if r.levelno < logging.WARNING] == ["probe"]
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        logger.removeHandler(handler)
        optuna.logging.set_verbosity(before)


def test_summary_remarks_when_tuned_is_worse_than_default_on_test(tmp_path, small, monkeypatch):
    """The default configuration (trial 0) is evaluated on test too; when it beats the tuned
    one there, the summary says so."""
    from zenrec.runs import evaluate as runs_evaluate

    real = runs_evaluate.evaluate_model

    def default_wins(dataset, protocol, model, params, **kw):
        record, run = real(dataset, protocol, model, params, **kw)
        if "l2" not in params:  # the default configuration (EASE's l2="auto")
            record.metrics["ndcg@10"] += 0.5
        return record, run

    monkeypatch.setattr(runs_evaluate, "evaluate_model", default_wins)
    res = tune(
        small,
        get_protocol("msrec"),
        "ease",
        space=_ease_space(),
        n_trials=12,
        run_dir=tmp_path,
        seed=5,
    )
    assert "l2" in res.best_params  # a searched value beat the default on validation
    s = res.summary
    assert s["default_test"]["ndcg@10"] > res.test_record.metrics["ndcg@10"]
    assert any("below the default on test" in r for r in s["remarks"])


_CLAIM = """
import sys, time, optuna
from pathlib import Path
from zenrec.tuning.tuner import make_storage
optuna.logging.set_verbosity(optuna.logging.WARNING)
st, _ = make_storage(sys.argv[1], Path("."))
study = optuna.load_study(study_name="claims", storage=st)
Path(sys.argv[2] + ".ready").touch()
while not Path(sys.argv[3]).exists():  # both start claiming at once
    time.sleep(0.005)
got = []
while (tid := study._pop_waiting_trial_id()) is not None:
    got.append(tid)
print(" ".join(map(str, got)))
"""


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_processes_never_claim_the_same_waiting_trial(tmp_path, kind):
    """Each enqueued trial (the default configuration is one) is run by one process only: on
    SQLite both once read a trial as WAITING and claimed it, and the slower failed the tune."""
    import optuna

    from zenrec.tuning.tuner import make_storage

    storage = (
        f"sqlite:///{tmp_path / 'claims.db'}"
        if kind == "sqlite"
        else f"journal:{tmp_path / 'c.log'}"
    )
    st, _ = make_storage(storage, tmp_path)
    study = optuna.create_study(study_name="claims", storage=st)
    n = 200
    for i in range(n):
        study.enqueue_trial({"x": i})
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIM, storage, str(tmp_path / f"p{j}"), str(tmp_path / "go")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for j in range(2)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"p{j}.ready").exists() for j in range(2)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    (tmp_path / "go").touch()
    outs = [p.communicate(timeout=120) for p in procs]
    claimed = []
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
        claimed.append([int(t) for t in out.split()])
    assert len(claimed[0]) + len(claimed[1]) == n, "every waiting trial is claimed"
    assert not set(claimed[0]) & set(claimed[1]), "a trial was claimed by both processes"
