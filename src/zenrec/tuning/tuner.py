"""Optuna studies over zenrec models: validation-only objective, pruning, shared storage, refit.

How a study runs (docs/tuning.md has the long form):

* **Objective on validation only.** Each trial fits the model on the tuning train part and
  scores the search space's metric on the validation part (train items masked). Protocols
  with a validation part (``recbole``, ``loo-*``) use it as is. Protocols without one carve
  it out of the protocol's train part with the same kind of split, seeded with
  ``seed + 1``: ``msrec`` a per-user stratified 75/25 split of train, ``surprise-cv5`` a
  random 1/5 of the first fold's train (the tuned configuration is then used on all folds).
* **Test used once.** The best trial's configuration is refit on the protocol's own train
  part, exactly as ``zenrec evaluate --set ...`` does, and evaluated once on test; the
  record carries that command so the number can be re-run. Where the protocol has no
  validation part, an iterative model's refit has nothing to stop early on, so its ``epochs``
  is set to the best trial's best validation epoch (see :func:`_refit_epochs`), and a
  decaying learning-rate schedule keeps the searched run's length (``schedule_epochs``).
* **Pruning.** Iterative models call ``model.epoch_callback(epoch, metrics)`` after each
  validation pass; the tuner reports the metric to the trial and raises ``TrialPruned``
  when the median (or Hyperband) pruner says so.
* **Pruning on time.** Once a trial has finished (trial 0 is the model's default
  configuration), a trial whose fit has run longer than
  ``TIME_PRUNE_FACTOR`` (5) times the median finished trial's fit seconds is pruned at its
  next validation pass (its last value is kept as the intermediate value), so one expensive
  corner of a search space cannot eat the budget. Each trial's seconds are in ``trials.csv``,
  the progress lines and the report.
* **Storage and cooperation.** A SQLite file in the run directory by default; any RDB URL
  or a journal file (``journal:PATH`` or a path ending in ``.log``/``.journal``) for many
  processes or machines. ``--trials N`` is the study's target of finished (complete or
  pruned) trials: every process sharing the study stops when the study has N, so two
  processes split the work and a rerun after Ctrl-C or a crash finishes what is missing.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
from optuna.trial import TrialState

from zenrec._errors import ConfigError, ZenrecError
from zenrec._io import atomic_write_text, versions
from zenrec.data.dataset import Dataset
from zenrec.data.spec import DataSpec
from zenrec.evaluation.evaluator import metric_keys
from zenrec.evaluation.metrics import metric_direction
from zenrec.evaluation.protocols import Protocol, ProtocolRun
from zenrec.models.registry import create_model, get_model_class
from zenrec.runs.record import RunRecord, now_utc, reproduce_command
from zenrec.splits import Split, kfold_splits, user_random_split, user_stratified_split
from zenrec.tuning.space import SearchSpace, load_space

__all__ = [
    "TuneResult",
    "TuningInterrupted",
    "make_storage",
    "protocol_metric_keys",
    "trials_csv",
    "tune",
    "tuning_split",
]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class TuneResult:
    """Outcome of :func:`tune`: the study, the best configuration and its one test evaluation."""

    study_name: str
    storage: str
    metric: str
    direction: str
    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    default_value: float | None
    n_finished: int
    test_record: RunRecord | None
    summary: dict[str, Any] = field(default_factory=dict)
    run: ProtocolRun | None = None


class TuningInterrupted(KeyboardInterrupt):
    """A study was asked to stop (its finished trials are kept; rerunning continues it)."""


# ---------------------------------------------------------------------------- data
OWN_VALIDATION = "the protocol's validation part"
"""How :func:`tuning_split` describes a protocol's own validation part (anything else is carved)."""


def tuning_split(
    data: Dataset, protocol: Protocol, seed: int, first: Split | None = None
) -> tuple[Split, str]:
    """The (train, valid) pair trials are scored on, and a sentence describing it.

    The protocol's validation part when it has one; otherwise one carved out of the
    protocol's (first fold's) train part with the same kind of split, seeded ``seed + 1``.
    ``first`` is a ready split to use instead of the protocol's (a fixed split directory).
    """
    first = protocol.splits(data, seed)[0] if first is None else first
    if first.valid is not None and len(first.valid):
        return first, f"{OWN_VALIDATION} ({first.description})"
    inner_seed = seed + 1
    if protocol.split == "user_stratified":
        ratio = protocol.split_params.get("ratio", 0.75)
        inner = user_stratified_split(first.train, ratio, inner_seed)
        how = (
            f"per-user stratified {ratio:g}/{1 - ratio:g} split of the protocol's train part, "
            f"seed {inner_seed}"
        )
    elif protocol.split == "kfold":
        k = protocol.split_params.get("k", 5)
        inner = next(iter(kfold_splits(first.train, k, inner_seed)))
        how = (
            f"random 1/{k} of fold 1's train part (same kind as the {k}-fold split), "
            f"seed {inner_seed}"
        )
    elif protocol.split == "user_random":
        ratios = protocol.split_params.get("ratios", (0.8, 0.2))
        inner = user_random_split(first.train, ratios[:1] + ratios[-1:], inner_seed)
        how = f"per-user random split of the protocol's train part, seed {inner_seed}"
    else:  # loo always has a validation part; temporal ones unless asked for none
        raise ConfigError(
            f"protocol '{protocol.name}' split has no validation part to tune on; give it one "
            "(valid_fraction > 0, valid_start, or a valid.tsv in the split directory)"
        )
    return Split(inner.train, inner.test, first.test, how), how


def protocol_metric_keys(protocol: Protocol) -> list[str]:
    """Metric keys a protocol's evaluation produces (what a space's metric may name)."""
    if protocol.mode == "rating":
        return ["rmse", "mae"]
    if protocol.mode in ("ctr", "multitask"):
        return list(protocol.metrics)
    keys = metric_keys(protocol.metrics, protocol.ks)
    return [f"{k}(sampled)" for k in keys] if protocol.mode == "sampled" else keys


def resolve_metric(
    space: SearchSpace, protocol: Protocol, override: str | None
) -> tuple[str, str | None]:
    """The metric to optimise and a note when the space's own metric had to be replaced."""
    keys = protocol_metric_keys(protocol)
    sampled = protocol.mode == "sampled"
    if override:
        m = f"{override}(sampled)" if sampled and not override.endswith("(sampled)") else override
        if m not in keys:
            raise ConfigError(
                f"metric={override!r} is not produced by protocol '{protocol.name}'; "
                f"choose one of {', '.join(keys)}"
            )
        return m, None
    m = f"{space.metric}(sampled)" if sampled else space.metric
    if m in keys:
        return m, None
    note = (
        f"the space's metric {space.metric!r} is not produced by protocol '{protocol.name}'; "
        f"optimising its main metric {protocol.main_metric!r} instead"
    )
    return protocol.main_metric, note


# ---------------------------------------------------------------------------- storage
def _is_journal(url: str) -> bool:
    return url.startswith("journal:") or (
        "://" not in url and url.endswith((".log", ".journal", ".jsonl"))
    )


def make_storage(url: str | None, run_dir: Path) -> tuple[Any, str]:
    """An Optuna storage from a URL (default: ``sqlite:///RUN_DIR/optuna.db``) and its display URL.

    RDB storages get a heartbeat, so a trial whose process was killed is marked failed
    (and is not counted) once it misses its grace period.
    """
    if url is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{(run_dir / 'optuna.db').resolve()}"
    if _is_journal(url):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal:")).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path))), f"journal:{path.resolve()}"
    if "://" not in url:
        raise ConfigError(
            f"storage={url!r} is neither an RDB URL (sqlite:///file.db, "
            "postgresql://...) nor a journal file (journal:PATH or PATH.log)"
        )
    kwargs: dict[str, Any] = {}
    shown = url
    if url.startswith(("postgresql://", "postgres://")):  # the driver zenrec ships: psycopg 3
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        # many processes on one file: wait for the lock instead of failing
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
        Path(url.split(":///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
    import warnings

    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    url, heartbeat_interval=20, grace_period=60, **kwargs
                )
            break
        except Exception as exc:  # driver missing, bad URL, server down
            racing = ("already exists", "UNIQUE constraint", "database is locked")
            if any(r in str(exc) for r in racing) and attempt < 5:
                time.sleep(0.5 + attempt)  # another process is creating the tables right now
                continue
            raise ConfigError(
                f"storage={_hide_password(url)!r}: cannot open it ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0]}); check the URL and that its driver is installed"
            ) from None
    if url.startswith("sqlite"):
        _begin_immediate(storage.engine)
    return storage, _hide_password(shown)


def _begin_immediate(engine: Any) -> None:
    """Make every SQLite transaction take the write lock when it begins (``BEGIN IMMEDIATE``).

    pysqlite runs a SELECT outside any transaction and opens one only at the first write, and
    SQLite ignores ``SELECT ... FOR UPDATE``, so two processes could both read a trial as
    WAITING and both claim it: the enqueued default trial then ran twice and the slower
    process failed with "Cannot tell a COMPLETE trial" (two processes popping 200 enqueued
    trials claimed 14 of them twice). With the lock taken at BEGIN, read and claim are one
    step; the connect timeout makes a second process wait for it instead of failing.
    """
    from sqlalchemy import event

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy, not pysqlite, emits BEGIN

    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    engine.dispose()  # pooled connections opened before the listeners are dropped


def _hide_password(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]+@", r"://\1:***@", url)


# ---------------------------------------------------------------------------- progress
class _Progress:
    """Trials x epochs progress bars (rich) and one summary line per finished trial."""

    def __init__(self, enabled: bool, n_trials: int, metric: str, direction: str) -> None:
        self.enabled = enabled
        self.metric = metric
        self.direction = direction
        self.progress = None
        self.lines: list[str] = []
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self.trials = self.progress.add_task("trials (study)", total=n_trials)
            self.epochs = self.progress.add_task("epochs (trial)", total=None, visible=False)

    def __enter__(self) -> _Progress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()

    def trial_started(self, number: int) -> None:
        if self.progress is not None:
            self.progress.update(
                self.epochs,
                description=f"epochs (trial {number})",
                completed=0,
                total=None,
                visible=False,
            )

    def epoch(self, number: int, epoch: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress.update(self.epochs, completed=epoch, total=total, visible=True)

    def trial_finished(self, study: optuna.Study, t: optuna.trial.FrozenTrial, n_done: int) -> None:
        try:
            best = study.best_trial
            best_s = f"best {best.value:.4f} (#{best.number})"
        except ValueError:
            best_s = "best -"
        val = "-" if t.value is None else f"{t.value:.4f}"
        if t.state == TrialState.PRUNED:
            last = max(t.intermediate_values) if t.intermediate_values else None
            val = f"pruned at epoch {last}" + (
                " (time)" if t.user_attrs.get("pruned_for_time") else ""
            )
        params = " ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
        secs = t.user_attrs.get("fit_seconds")
        line = (
            f"trial {t.number} {t.state.name.lower()} {self.metric}={val} | {best_s} | {params}"
            + (f" | fit {secs:.1f} s" if secs is not None else "")
        )
        self.lines.append(line)
        if self.progress is not None:
            self.progress.update(self.trials, completed=n_done)
            self.progress.console.print(line, highlight=False, markup=False)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ---------------------------------------------------------------------------- the study
def _pruner(kind: str) -> optuna.pruners.BasePruner:
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"pruner= must be median, hyperband or none; got {kind!r}")


def _n_finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def _check_attrs(study: optuna.Study, attrs: dict[str, Any], storage_url: str) -> None:
    old = study.user_attrs
    if not old:
        for k, v in attrs.items():
            study.set_user_attr(k, v)
        return
    for k in ("model", "dataset", "protocol", "metric", "data_fingerprint", "space"):
        if k in old and old[k] != attrs[k]:
            raise ConfigError(
                f"study '{study.study_name}' in {storage_url} was run with a different {k} "
                f"({old[k]!r:.120} vs {attrs[k]!r:.120}); "
                "pass another study_name= to start a new study"
            )


@dataclass
class _Plan:
    """What a study optimises, decided before any data is loaded."""

    space: SearchSpace
    metric: str
    note: str | None
    direction: Literal["maximize", "minimize"]
    seed: int
    n_trials: int
    study_name: str


def _plan(
    dataset: Dataset,
    protocol: Protocol,
    model: str,
    space: SearchSpace | None,
    n_trials: int,
    timeout: float | None,
    study_name: str | None,
    seed: int | None,
    metric: str | None,
) -> _Plan:
    """Validate the arguments and resolve the space, the metric and its direction."""
    if n_trials < 1:
        raise ConfigError(f"n_trials= must be an int >= 1; got {n_trials}")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"timeout= must be > 0 seconds; got {timeout}")
    space = space or load_space(model=model)
    if space.model != model:
        raise ConfigError(
            f"{space.source}: key 'model' is {space.model!r} but the tuned model is {model!r}"
        )
    if not space.params:
        n_trials = 1  # nothing to search (e.g. pop): one trial records the validation value
    the_metric, note = resolve_metric(space, protocol, metric)
    seed = protocol.default_seed if seed is None else int(seed)
    create_model(model, **space.fixed)  # fail on bad parameters before loading data
    return _Plan(
        space,
        the_metric,
        note,
        metric_direction(the_metric),
        seed,
        n_trials,
        study_name or f"{model}-{dataset.name}-{protocol.name}-s{seed}",
    )


def _open_study(
    plan: _Plan,
    storage_obj: Any,
    storage_url: str,
    pruner: str,
    attrs: dict[str, Any],
    sampler_seed: int | None,
) -> tuple[optuna.Study, int, int]:
    """Create or join the study; (study, trials it had before, TPE seed used)."""
    pruner_obj = _pruner(pruner)
    # Creating the study is atomic in the storage: of several processes started together,
    # exactly one creates it (and keeps the reproducible seed); the others join it.
    try:
        study = optuna.create_study(
            storage=storage_obj,
            study_name=plan.study_name,
            direction=plan.direction,
            load_if_exists=False,
            pruner=pruner_obj,
        )
        existed = False
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(
            study_name=plan.study_name, storage=storage_obj, pruner=pruner_obj
        )
        existed = True
    _check_attrs(study, attrs, storage_url)
    if study.direction.name.lower() != plan.direction:
        raise ConfigError(
            f"study '{plan.study_name}' {storage_url} maximises/minimises differently; "
            "pass another study_name="
        )
    n_before = len(study.trials)
    if sampler_seed is None:
        sampler_seed = (
            plan.seed if not existed else plan.seed + 7919 * n_before + os.getpid() % 100_003
        )
    study.sampler = optuna.samplers.TPESampler(
        seed=sampler_seed, constant_liar=True, n_startup_trials=min(10, max(2, plan.n_trials // 3))
    )
    if not existed and n_before == 0 and plan.space.params:
        study.enqueue_trial(
            plan.space.defaults_in_space(), skip_if_exists=True
        )  # the default config is trial 0
    return study, n_before, sampler_seed


def _objective(
    plan: _Plan, model: str, protocol: Protocol, split: Split, prog: _Progress
) -> Callable[[optuna.Trial], float]:
    """The trial function: fit on the tuning train part, score the metric on validation."""
    n_epochs_hint = plan.space.fixed.get("epochs")

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("pid", os.getpid())
        params = plan.space.suggest(trial)
        rec = create_model(model, **params)
        total = params.get("epochs", n_epochs_hint)
        prog.trial_started(trial.number)

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            prog.epoch(trial.number, epoch, total)
            v = metrics.get(plan.metric, metrics.get(plan.metric.removesuffix("(sampled)")))
            if v is None or not math.isfinite(float(v)):
                return
            trial.report(float(v), epoch)
            elapsed = time.perf_counter() - t0
            if trial.should_prune():
                trial.set_user_attr("fit_seconds", elapsed)
                raise optuna.TrialPruned(f"{plan.metric}={float(v):.4f} at epoch {epoch}")
            budget = time_budget(trial.study)
            if budget is not None and elapsed > budget:
                trial.set_user_attr("fit_seconds", elapsed)
                trial.set_user_attr("pruned_for_time", True)
                raise optuna.TrialPruned(
                    f"{elapsed:.0f} s > {TIME_PRUNE_FACTOR:g} x the median "
                    f"trial ({budget / TIME_PRUNE_FACTOR:.0f} s)"
                )

        rec.epoch_callback = on_epoch
        t0 = time.perf_counter()
        rec.fit(split.train, split.valid)
        fit_s = time.perf_counter() - t0
        res = protocol.evaluate(rec, split, "valid", seed=plan.seed)
        trial.set_user_attr("fit_seconds", fit_s)
        trial.set_user_attr("eval_seconds", res.seconds)
        trial.set_user_attr("valid_metrics", {k: float(v) for k, v in res.metrics.items()})
        if rec.history_:
            trial.set_user_attr("history", _jsonable(rec.history_))
        value = res.metrics.get(plan.metric)
        if value is None:
            raise ConfigError(
                f"metric {plan.metric!r} missing from validation results "
                f"({', '.join(res.metrics)}); pass metric="
            )
        return float(value)

    return objective


def _run_trials(
    study: optuna.Study,
    plan: _Plan,
    objective: Any,
    prog: _Progress,
    timeout: float | None,
    stop: threading.Event | None,
) -> float:
    """Run trials until the study has ``n_trials`` finished ones (or the timeout, or ``stop``)."""
    max_trials = optuna.study.MaxTrialsCallback(plan.n_trials, states=FINISHED)

    def after_trial(study_: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        prog.trial_finished(study_, t, _n_finished(study_))
        max_trials(study_, t)
        if stop is not None and stop.is_set():
            study_.stop()

    t_start = time.perf_counter()
    _optimize(study, prog, objective, after_trial, plan.n_trials, timeout, plan.note)
    if stop is not None and stop.is_set():
        raise TuningInterrupted(
            f"study '{plan.study_name}' stopped after {_n_finished(study)} finished "
            "trials; run the same command again to continue it"
        )
    return time.perf_counter() - t_start


def _summary(
    plan: _Plan,
    study: optuna.Study,
    dataset: Dataset,
    protocol: Protocol,
    model: str,
    **fields: Any,
) -> dict[str, Any]:
    """The ``tune.json`` document."""
    return {
        "kind": "zenrec-tune",
        "study": plan.study_name,
        "model": model,
        "dataset": dataset.name,
        "protocol": protocol.summary(dataset.name),
        "seed": plan.seed,
        "metric": plan.metric,
        "metric_note": plan.note,
        "direction": plan.direction,
        "refit": "best configuration refit on the protocol's train part (as zenrec evaluate does), "
        "evaluated once on test",
        "space": plan.space.to_json(),
        "space_source": plan.space.source,
        "n_trials_target": plan.n_trials,
        "n_finished": _n_finished(study),
        "states": {
            s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,))) for s in TrialState
        },
        **fields,
        "versions": versions(),
        "created": now_utc(),
    }


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's INFO lines ("Trial 3 finished with value...") off for the block; the previous
    verbosity is restored after it (zenrec prints its own progress lines when asked)."""
    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(old, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(old)


def _with_quiet_optuna(fn: Callable[..., TuneResult]) -> Callable[..., TuneResult]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> TuneResult:
        with quiet_optuna():
            return fn(*args, **kwargs)

    return wrapper


def _snapshot_spec(dataset: Dataset, path: str | Path, spec: DataSpec) -> tuple[DataSpec, str]:
    """Write ``dataset``'s interactions to a Parquet file and the spec that reads them back;
    (spec, note) where the note says why the snapshot cannot stand for the data, or ''."""
    import polars as pl

    p = Path(path).expanduser().resolve()
    if p.suffix.lower() != ".parquet":
        raise ConfigError(f"snapshot={str(path)!r}: give a .parquet file name")
    cols: dict[str, Any] = {
        "user": dataset.user_vocab.decode(dataset.users),
        "item": dataset.item_vocab.decode(dataset.items),
    }
    opts: dict[str, Any] = {"user_col": "user", "item_col": "item"}
    if dataset.ratings is not None:
        cols["rating"] = dataset.ratings
        opts["rating_col"] = "rating"
    if dataset.timestamps is not None:
        cols["timestamp"] = dataset.timestamps
        opts["time_col"] = "timestamp"
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    pl.DataFrame(cols).write_parquet(tmp)
    tmp.replace(p)
    snap = spec.model_copy(update={"source": str(p), **opts})
    if dataset.item_features or dataset.user_features or dataset.context:
        return snap, (
            f"the snapshot {p} holds the interactions only, not the dataset's features or "
            "context columns, so it cannot re-run this study's data"
        )
    back = snap.load()
    if back.fingerprint() != dataset.fingerprint():
        return snap, f"the snapshot {p} does not read back to the same interactions"
    return snap, ""


@_with_quiet_optuna
def tune(
    dataset: Dataset,
    protocol: Protocol,
    model: str,
    *,
    space: SearchSpace | None = None,
    n_trials: int = 20,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    run_dir: str | Path = "runs/tune",
    seed: int | None = None,
    sampler_seed: int | None = None,
    pruner: Literal["median", "hyperband", "none"] = "median",
    metric: str | None = None,
    user_filters: dict[str, Any] | None = None,
    data: DataSpec | None = None,
    refit: bool = True,
    progress: bool = False,
    write: bool = True,
    stop: threading.Event | None = None,
    invocation: str | None = None,
    snapshot: str | Path | None = None,
) -> TuneResult:
    """Tune ``model`` on the protocol's validation data, then evaluate the best config once on test.

    Optuna's own INFO log lines are silenced while the study runs (the previous verbosity is
    restored); ``progress=True`` prints zenrec's progress lines instead.

    Args:
        dataset: The loaded dataset (the protocol's filters are applied here).
        protocol: Protocol preset.
        model: Registry name.
        space: Search space (default: the one shipped for ``model``).
        n_trials: Target number of finished trials in the study (shared by all processes).
        timeout: Stop starting new trials after this many seconds (this process).
        storage: Optuna storage URL or journal file (default: SQLite in ``run_dir``).
        study_name: Default ``{model}-{dataset}-{protocol}-s{seed}``.
        run_dir: Where ``tune.json``, ``trials.csv`` and the default storage go.
        seed: Split seed (default: the protocol's published seed).
        sampler_seed: TPE seed (default ``seed``; a process joining an existing study adds the
            number of trials it found and its process id, so workers do not repeat each other).
        pruner: ``median``, ``hyperband`` or ``none``.
        metric: Override the space's metric.
        user_filters: Extra dataset filters, when no ``data`` specification is given.
        data: How ``dataset`` was loaded and filtered; the recorded re-run command uses it.
        refit: Refit the best configuration on train and evaluate it once on test.
        progress: Show rich progress bars and a line per finished trial on stderr.
        write: Write ``tune.json`` and ``trials.csv`` into ``run_dir``.
        stop: When set (e.g. by the CLI's Ctrl-C handler), no new trial starts and
            :class:`TuningInterrupted` is raised after the running one; the study stays resumable.
        invocation: The command line that started the study (recorded; the CLI passes it).
        snapshot: A ``.parquet`` path: write ``dataset``'s interactions there, so that the
            recorded re-run command reads them. Without it, data given in Python (a
            DataFrame, a filtered Dataset) has no re-run command; the summary says so and
            keeps ``data_fingerprint``.

    The summary (``tune.json``) also evaluates the default configuration (trial 0) on test
    when it is not the best one, and its ``remarks`` say when the tuned configuration scores
    below the default on test.

    Raises:
        ConfigError: Invalid arguments, space or storage.
        TuningInterrupted: ``stop`` was set.
    """
    from zenrec.runs.evaluate import (
        NOT_REPLAYABLE,
        evaluate_model,
        protocol_splits,
        replayable,
        spec_of,
    )

    plan = _plan(dataset, protocol, model, space, n_trials, timeout, study_name, seed, metric)
    rerunnable = replayable(dataset, data)
    spec = data or spec_of(dataset, user_filters)
    rerun_note = "" if rerunnable else NOT_REPLAYABLE
    if snapshot is not None:
        spec, rerun_note = _snapshot_spec(dataset, snapshot, spec)
        rerunnable = not rerun_note
    run_dir = Path(run_dir)
    splits, prepared, _, _ = protocol_splits(dataset, protocol, spec, plan.seed)
    split, split_how = tuning_split(prepared, protocol, plan.seed, first=splits[0])
    storage_obj, storage_url = make_storage(storage, run_dir)
    attrs = {
        "model": model,
        "dataset": dataset.name,
        "protocol": protocol.name,
        "metric": plan.metric,
        "direction": plan.direction,
        "seed": plan.seed,
        "data_fingerprint": prepared.fingerprint(),
        "space": plan.space.to_json(),
        "validation": split_how,
    }
    study, n_before, sampler_seed = _open_study(
        plan, storage_obj, storage_url, pruner, attrs, sampler_seed
    )
    prog = _Progress(progress, plan.n_trials, plan.metric, plan.direction)
    tune_seconds = _run_trials(
        study, plan, _objective(plan, model, protocol, split, prog), prog, timeout, stop
    )

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ZenrecError(
            f"study '{plan.study_name}' has no completed trial; see the failed trials in "
            f"{storage_url} (optuna-dashboard) or run with fewer pruned epochs"
        )
    best = study.best_trial
    best_params = {**plan.space.fixed, **best.params}
    refit_epochs = _refit_epochs(best, plan.metric, plan.direction, best_params, split_how)
    if refit_epochs is not None:
        fields = get_model_class(model).Config.model_fields
        decays = best_params.get(
            "lr_schedule", getattr(fields.get("lr_schedule"), "default", None)
        ) in ("cosine", "linear")
        if decays and "schedule_epochs" in fields and not best_params.get("schedule_epochs"):
            # keep the searched run's learning-rate curve, stopping at the chosen epoch
            best_params["schedule_epochs"] = best_params.get("epochs") or fields["epochs"].default
        best_params["epochs"] = refit_epochs
        if "holdout" in fields:
            best_params["holdout"] = 0  # the epoch count is chosen: no second holdout search
    defaults = plan.space.defaults_in_space()
    default_value = next((t.value for t in complete if t.params == defaults), None)
    record = run = default_record = None
    default_params = {**plan.space.fixed, **defaults}
    if refit:
        record, run = evaluate_model(
            dataset, protocol, model, best_params, seed=plan.seed, spec=spec, rerunnable=rerunnable
        )
        if default_value is not None and best.params != defaults:
            default_record, _ = evaluate_model(
                dataset,
                protocol,
                model,
                default_params,
                seed=plan.seed,
                spec=spec,
                rerunnable=rerunnable,
            )
    remarks = _remarks(plan, best, default_value, record, default_record)
    summary = _summary(
        plan,
        study,
        dataset,
        protocol,
        model,
        storage=storage_url,
        data=(spec.resolved() if rerunnable else spec).model_dump(),
        data_fingerprint=prepared.fingerprint(),
        sampler=f"TPE (seed {sampler_seed}, constant liar)",
        pruner=pruner,
        validation=split_how,
        n_trials_this_process=sum(
            1
            for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("pid") == os.getpid() and t.number >= n_before
        ),
        best_trial=best.number,
        best_value_valid=best.value,
        default_value_valid=default_value,
        best_params=best_params,
        tune_seconds_this_process=tune_seconds,
        test=None if record is None else record.to_json(),
        default_test=None if default_record is None else default_record.metrics,
        remarks=remarks,
        reproduce=reproduce_command(
            spec,
            protocol.name,
            model,
            best_params,
            plan.seed,
            protocol.split_options() if spec.split_dir is None else None,
        )
        if rerunnable
        else None,
        reproduce_note=rerun_note or None,
        tune_command=invocation,
    )
    if write:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            run_dir / "tune.json", json.dumps(summary, indent=2, default=_json_default)
        )
        atomic_write_text(run_dir / "trials.csv", trials_csv(study))
    if best.value is None:  # optuna's best trial is a completed one, which always has a value
        raise ZenrecError(f"study '{plan.study_name}': best trial #{best.number} has no value")
    return TuneResult(
        plan.study_name,
        storage_url,
        plan.metric,
        plan.direction,
        best_params,
        float(best.value),
        best.number,
        default_value,
        _n_finished(study),
        record,
        summary,
        run,
    )


def _remarks(
    plan: _Plan,
    best: optuna.trial.FrozenTrial,
    default_value: float | None,
    record: RunRecord | None,
    default_record: RunRecord | None,
) -> list[str]:
    """Plain sentences on what the numbers do not say by themselves."""
    out: list[str] = []
    m = plan.metric
    if default_value is not None and best.params == plan.space.defaults_in_space():
        out.append("the default configuration (trial 0) was the best on validation")
    if record is None or default_record is None or default_value is None or best.value is None:
        return out
    tuned, default = record.metrics.get(m), default_record.metrics.get(m)
    if tuned is None or default is None:
        return out
    worse = tuned < default if plan.direction == "maximize" else tuned > default
    if worse:
        out.append(
            f"the tuned configuration scores below the default on test: {m} {tuned:.4f} vs "
            f"{default:.4f} (validation: {best.value:.4f} vs {default_value:.4f}); the "
            "validation gain did not carry over to test, so prefer the default or tune with "
            "more validation data"
        )
    return out


def _refit_epochs(
    best: optuna.trial.FrozenTrial,
    metric: str,
    direction: str,
    params: dict[str, Any],
    split_how: str,
) -> int | None:
    """Epochs for the final refit when it has no validation data to stop on.

    A protocol without a validation part (``msrec``, ``surprise-cv5``) refits the best
    configuration on its whole train part with nothing to stop early on, so an iterative model
    would run its full epoch budget: on ML-100K (msrec) the best BPR-MF trial (best validation
    epoch 14 of 60) scored 0.3292 test NDCG@10 after 60 epochs and 0.4451 after 14. The refit
    then trains for the best trial's best validation epoch instead, the usual "retrain for the
    chosen number of epochs" rule. Returns None when the protocol has its own validation part or
    the trial has no epoch history.
    """
    if split_how.startswith(OWN_VALIDATION) or "epochs" not in params:
        return None
    key = f"valid_{metric}"
    hist = [h for h in best.user_attrs.get("history") or [] if isinstance(h.get(key), (int, float))]
    if not hist:
        return None
    pick = max if direction == "maximize" else min
    return int(pick(hist, key=lambda h: h[key])["epoch"])


def _optimize(
    study: optuna.Study,
    prog: _Progress,
    objective: Any,
    after_trial: Any,
    n_trials: int,
    timeout: float | None,
    note: str | None,
) -> None:
    with prog:
        if note and prog.progress is not None:
            prog.progress.console.print(f"note: {note}")
        if prog.progress is not None:
            prog.progress.update(prog.trials, completed=_n_finished(study))
        if _n_finished(study) < n_trials:
            study.optimize(
                objective,
                n_trials=None,
                timeout=timeout,
                callbacks=[after_trial],
                catch=(ZenrecError, np.linalg.LinAlgError, FloatingPointError, MemoryError),
                gc_after_trial=True,
            )


TIME_PRUNE_FACTOR = 5.0
"""A trial running longer than this many times the median finished trial is pruned."""


def time_budget(study: optuna.Study, factor: float = TIME_PRUNE_FACTOR) -> float | None:
    """Seconds after which a running trial is pruned for time: ``factor`` x the median fit
    seconds of the finished trials (complete or pruned), from the first one on; else None.

    Starting from the first finished trial (the default configuration, which every shipped
    space enqueues first) bounds the early trials too: on ML-100K a BPR-MF trial with a
    softmax over batches of 8192, 256 factors and a small learning rate ran 62 s, 8.6x the
    median, while the rule still waited for three finished trials."""
    secs = [
        t.user_attrs["fit_seconds"]
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if isinstance(t.user_attrs.get("fit_seconds"), (int, float))
    ]
    if not secs:
        return None
    return factor * float(np.median(secs))


def trials_csv(study: optuna.Study) -> str:
    """One row per trial: number, state, value, params, seconds (CSV text)."""
    import csv
    import io

    trials = study.get_trials(deepcopy=False)
    names = sorted({k for t in trials for k in t.params})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["number", "state", "value", *names, "fit_seconds", "duration_s", "last_epoch"])
    for t in trials:
        dur = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else ""
        )
        w.writerow(
            [
                t.number,
                t.state.name,
                "" if t.value is None else t.value,
                *[t.params.get(n, "") for n in names],
                t.user_attrs.get("fit_seconds", ""),
                dur,
                max(t.intermediate_values) if t.intermediate_values else "",
            ]
        )
    return buf.getvalue()


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
