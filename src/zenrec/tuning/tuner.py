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
  record carries that command so the number can be re-run.
* **Pruning.** Iterative models call ``model.epoch_callback(epoch, metrics)`` after each
  validation pass; the tuner reports the metric to the trial and raises ``TrialPruned``
  when the median (or Hyperband) pruner says so.
* **Storage and cooperation.** A SQLite file in the run directory by default; any RDB URL
  or a journal file (``journal:PATH`` or a path ending in ``.log``/``.journal``) for many
  processes or machines. ``--trials N`` is the study's target of finished (complete or
  pruned) trials: every process sharing the study stops when the study has N, so two
  processes split the work and a rerun after Ctrl-C or a crash finishes what is missing.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
from optuna.trial import TrialState

from zenrec._errors import ConfigError, ZenrecError
from zenrec._io import atomic_write_text, versions
from zenrec.data.dataset import Dataset
from zenrec.evaluation.evaluator import metric_keys
from zenrec.evaluation.metrics import metric_direction
from zenrec.evaluation.protocols import Protocol, prepare_dataset
from zenrec.models.registry import create_model
from zenrec.splits import Split, kfold_splits, user_random_split, user_stratified_split
from zenrec.tuning.space import SearchSpace, load_space

__all__ = ["TuneResult", "make_storage", "protocol_metric_keys", "tune", "tuning_split"]

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
    test_record: dict[str, Any] | None
    summary: dict[str, Any] = field(default_factory=dict)
    run: Any = None


# ---------------------------------------------------------------------------- data
def tuning_split(data: Dataset, protocol: Protocol, seed: int) -> tuple[Split, str]:
    """The (train, valid) pair trials are scored on, and a sentence describing it.

    The protocol's validation part when it has one; otherwise one carved out of the
    protocol's (first fold's) train part with the same kind of split, seeded ``seed + 1``.
    """
    first = protocol.splits(data, seed)[0]
    if first.valid is not None and len(first.valid):
        return first, f"the protocol's validation part ({first.description})"
    inner_seed = seed + 1
    if protocol.split == "user_stratified":
        ratio = protocol.split_params.get("ratio", 0.75)
        inner = user_stratified_split(first.train, ratio, inner_seed)
        how = f"per-user stratified {ratio:g}/{1 - ratio:g} split of the protocol's train part, seed {inner_seed}"
    elif protocol.split == "kfold":
        k = protocol.split_params.get("k", 5)
        inner = next(iter(kfold_splits(first.train, k, inner_seed)))
        how = f"random 1/{k} of fold 1's train part (same kind as the {k}-fold split), seed {inner_seed}"
    elif protocol.split == "user_random":
        ratios = protocol.split_params.get("ratios", (0.8, 0.2))
        inner = user_random_split(first.train, ratios[:1] + ratios[-1:], inner_seed)
        how = f"per-user random split of the protocol's train part, seed {inner_seed}"
    else:  # pragma: no cover - loo always has a validation part
        raise ConfigError(f"protocol '{protocol.name}' has no validation part to tune on")
    return Split(inner.train, inner.test, first.test, how), how


def protocol_metric_keys(protocol: Protocol) -> list[str]:
    """Metric keys a protocol's evaluation produces (what a space's metric may name)."""
    if protocol.mode == "rating":
        return ["rmse", "mae"]
    if protocol.mode in ("ctr", "multitask"):
        return list(protocol.metrics)
    keys = metric_keys(protocol.metrics, protocol.ks)
    return [f"{k}(sampled)" for k in keys] if protocol.mode == "sampled" else keys


def resolve_metric(space: SearchSpace, protocol: Protocol, override: str | None) -> tuple[str, str | None]:
    """The metric to optimise and a note when the space's own metric had to be replaced."""
    keys = protocol_metric_keys(protocol)
    sampled = protocol.mode == "sampled"
    if override:
        m = f"{override}(sampled)" if sampled and not override.endswith("(sampled)") else override
        if m not in keys:
            raise ConfigError(f"--metric {override!r} is not produced by protocol '{protocol.name}'; "
                              f"choose one of {', '.join(keys)}")
        return m, None
    m = f"{space.metric}(sampled)" if sampled else space.metric
    if m in keys:
        return m, None
    note = (f"the space's metric {space.metric!r} is not produced by protocol '{protocol.name}'; "
            f"optimising its main metric {protocol.main_metric!r} instead")
    return protocol.main_metric, note


# ---------------------------------------------------------------------------- storage
def _is_journal(url: str) -> bool:
    return url.startswith("journal:") or ("://" not in url and url.endswith((".log", ".journal", ".jsonl")))


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
        raise ConfigError(f"--storage {url!r} is neither an RDB URL (sqlite:///file.db, "
                          "postgresql://...) nor a journal file (journal:PATH or PATH.log)")
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # many processes on one file: wait for the lock instead of failing
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
        Path(url.split(":///", 1)[-1]).parent.mkdir(parents=True, exist_ok=True)
    import warnings

    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(url, heartbeat_interval=20, grace_period=60, **kwargs)
            break
        except Exception as exc:  # driver missing, bad URL, server down
            racing = ("already exists", "UNIQUE constraint", "database is locked")
            if any(r in str(exc) for r in racing) and attempt < 5:
                time.sleep(0.5 + attempt)  # another process is creating the tables right now
                continue
            raise ConfigError(f"--storage {_hide_password(url)}: cannot open it ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0]}); check the URL and that its driver is installed"
                              ) from None
    return storage, _hide_password(url)


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

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=Console(stderr=True), transient=False)
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
            self.progress.update(self.epochs, description=f"epochs (trial {number})", completed=0,
                                 total=None, visible=False)

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
            val = f"pruned at epoch {last}"
        params = " ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
        secs = t.user_attrs.get("fit_seconds")
        line = (f"trial {t.number} {t.state.name.lower()} {self.metric}={val} | {best_s} | {params}"
                + (f" | fit {secs:.1f} s" if secs is not None else ""))
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
    raise ConfigError(f"--pruner must be median, hyperband or none; got {kind!r}")


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
                f"({old[k]!r:.120} vs {attrs[k]!r:.120}); pass another --study name to start a new study"
            )


def _reproduce_command(dataset: str, protocol: Protocol, model: str, params: dict[str, Any],
                       seed: int, split_dir: str | None = None) -> str:
    sets = " ".join(f"--set {k}={_cli_value(v)}" for k, v in params.items())
    cmd = f"zenrec evaluate --dataset {dataset} --protocol {protocol.name} --model {model}"
    if seed != protocol.default_seed:
        cmd += f" --seed {seed}"
    if split_dir:
        cmd += f" --split-dir {split_dir}"
    return f"{cmd} {sets}".strip()


def _cli_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


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
    refit: bool = True,
    progress: bool = False,
    write: bool = True,
) -> TuneResult:
    """Tune ``model`` on the protocol's validation data, then evaluate the best config once on test.

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
        user_filters: Extra dataset filters (as ``zenrec evaluate`` takes them).
        refit: Refit the best configuration on train and evaluate it once on test.
        progress: Show rich progress bars and a line per finished trial on stderr.
        write: Write ``tune.json`` and ``trials.csv`` into ``run_dir``.
    """
    if n_trials < 1:
        raise ConfigError(f"--trials must be an int >= 1; got {n_trials}")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"--timeout must be > 0 seconds; got {timeout}")
    space = space or load_space(model=model)
    if space.model != model:
        raise ConfigError(f"{space.source}: key 'model' is {space.model!r} but the tuned model is {model!r}")
    if not space.params:
        n_trials = 1  # nothing to search (e.g. pop): one trial records the validation value
    the_metric, note = resolve_metric(space, protocol, metric)
    direction = metric_direction(the_metric)
    seed = protocol.default_seed if seed is None else int(seed)
    run_dir = Path(run_dir)
    study_name = study_name or f"{model}-{dataset.name}-{protocol.name}-s{seed}"
    pruner_obj = _pruner(pruner)
    create_model(model, **space.fixed)  # fail on bad parameters before loading data

    data = prepare_dataset(dataset, protocol, user_filters)
    split, split_how = tuning_split(data, protocol, seed)
    storage_obj, storage_url = make_storage(storage, run_dir)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Creating the study is atomic in the storage: of several processes started together,
    # exactly one creates it (and keeps the reproducible seed); the others join it.
    try:
        study = optuna.create_study(storage=storage_obj, study_name=study_name, direction=direction,
                                    load_if_exists=False, pruner=pruner_obj)
        existed = False
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=study_name, storage=storage_obj, pruner=pruner_obj)
        existed = True
    attrs = {"model": model, "dataset": dataset.name, "protocol": protocol.name, "metric": the_metric,
             "direction": direction, "seed": seed, "data_fingerprint": data.fingerprint(),
             "space": space.to_json(), "validation": split_how}
    _check_attrs(study, attrs, storage_url)
    if study.direction.name.lower() != direction:
        raise ConfigError(f"study '{study_name}' {storage_url} maximises/minimises differently; "
                          "pass another --study name")
    n_before = len(study.trials)
    if sampler_seed is None:
        sampler_seed = seed if not existed else seed + 7919 * n_before + os.getpid() % 100_003
    study.sampler = optuna.samplers.TPESampler(seed=sampler_seed, constant_liar=True,
                                               n_startup_trials=min(10, max(2, n_trials // 3)))
    defaults = space.defaults_in_space()
    if not existed and n_before == 0 and space.params:
        study.enqueue_trial(defaults, skip_if_exists=True)  # the default config is trial 0

    prog = _Progress(progress, n_trials, the_metric, direction)
    stop = optuna.study.MaxTrialsCallback(n_trials, states=FINISHED)
    n_epochs_hint = space.fixed.get("epochs")

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("pid", os.getpid())
        params = space.suggest(trial)
        rec = create_model(model, **params)
        total = params.get("epochs", n_epochs_hint)
        prog.trial_started(trial.number)

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            prog.epoch(trial.number, epoch, total)
            v = metrics.get(the_metric, metrics.get(the_metric.removesuffix("(sampled)")))
            if v is None or not math.isfinite(float(v)):
                return
            trial.report(float(v), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"{the_metric}={float(v):.4f} at epoch {epoch}")

        rec.epoch_callback = on_epoch
        t0 = time.perf_counter()
        rec.fit(split.train, split.valid)
        fit_s = time.perf_counter() - t0
        res = protocol.evaluate(rec, split, "valid", seed=seed)
        trial.set_user_attr("fit_seconds", fit_s)
        trial.set_user_attr("eval_seconds", res.seconds)
        trial.set_user_attr("valid_metrics", {k: float(v) for k, v in res.metrics.items()})
        if rec.history_:
            trial.set_user_attr("history", _jsonable(rec.history_))
        value = res.metrics.get(the_metric)
        if value is None:
            raise ConfigError(f"metric {the_metric!r} missing from validation results "
                              f"({', '.join(res.metrics)}); pass --metric")
        return float(value)

    interrupted: list[int] = []

    def after_trial(study_: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        prog.trial_finished(study_, t, _n_finished(study_))
        stop(study_, t)
        if interrupted:
            study_.stop()

    def on_sigint(signum: int, frame: Any) -> None:
        # first Ctrl-C: let the running trial finish and stop; second: abort it now
        interrupted.append(signum)
        if len(interrupted) > 1:
            raise KeyboardInterrupt
        sys.stderr.write("zenrec tune: stopping after the running trial (Ctrl-C again to abort it)\n")

    import signal
    import threading

    old_handler = None
    if threading.current_thread() is threading.main_thread():
        old_handler = signal.signal(signal.SIGINT, on_sigint)
    t_start = time.perf_counter()
    try:
        _optimize(study, prog, objective, after_trial, n_trials, timeout, note, progress)
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
    if interrupted:
        raise KeyboardInterrupt
    tune_seconds = time.perf_counter() - t_start


    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ZenrecError(f"study '{study_name}' has no completed trial; see the failed trials in "
                          f"{storage_url} (optuna-dashboard) or run with fewer pruned epochs")
    best = study.best_trial
    best_params = {**space.fixed, **best.params}
    default_value = next((t.value for t in complete if t.params == defaults), None)
    record = None
    run = None
    if refit:
        from zenrec.evaluation.runner import evaluate_model

        record, run = evaluate_model(dataset, protocol, model, best_params, seed=seed,
                                     user_filters=user_filters)
        record["command"] = _reproduce_command(dataset.name, protocol, model, best_params, seed)
        record["history"] = _jsonable(run.models[0].history_)
    summary = {
        "kind": "zenrec-tune",
        "study": study_name,
        "storage": storage_url,
        "model": model,
        "dataset": dataset.name,
        "protocol": protocol.summary(dataset.name),
        "seed": seed,
        "sampler": f"TPE (seed {sampler_seed}, constant liar)",
        "pruner": pruner,
        "metric": the_metric,
        "metric_note": note,
        "direction": direction,
        "validation": split_how,
        "refit": "best configuration refit on the protocol's train part (as zenrec evaluate does), "
                 "evaluated once on test",
        "space": space.to_json(),
        "space_source": space.source,
        "n_trials_target": n_trials,
        "n_finished": _n_finished(study),
        "n_trials_this_process": sum(1 for t in study.get_trials(deepcopy=False)
                                     if t.user_attrs.get("pid") == os.getpid() and t.number >= n_before),
        "states": {s.name.lower(): len(study.get_trials(deepcopy=False, states=(s,))) for s in TrialState},
        "best_trial": best.number,
        "best_value_valid": best.value,
        "default_value_valid": default_value,
        "best_params": best_params,
        "tune_seconds_this_process": tune_seconds,
        "test": record,
        "reproduce": _reproduce_command(dataset.name, protocol, model, best_params, seed),
        "tune_command": " ".join(["zenrec", *sys.argv[1:]]) if sys.argv and "zenrec" in sys.argv[0] else None,
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if write:
        import json

        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "tune.json", json.dumps(summary, indent=2, default=_json_default))
        atomic_write_text(run_dir / "trials.csv", trials_csv(study))
    return TuneResult(study_name, storage_url, the_metric, direction, best_params, float(best.value),
                      best.number, default_value, _n_finished(study), record, summary, run)


def _optimize(study: optuna.Study, prog: _Progress, objective: Any, after_trial: Any, n_trials: int,
              timeout: float | None, note: str | None, progress: bool) -> None:
    with prog:
        if note and prog.progress is not None:
            prog.progress.console.print(f"note: {note}")
        if prog.progress is not None:
            prog.progress.update(prog.trials, completed=_n_finished(study))
        if _n_finished(study) < n_trials:
            study.optimize(objective, n_trials=None, timeout=timeout, callbacks=[after_trial],
                           catch=(ZenrecError, np.linalg.LinAlgError, FloatingPointError, MemoryError),
                           gc_after_trial=True)


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
        dur = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else ""
        w.writerow([t.number, t.state.name, "" if t.value is None else t.value,
                    *[t.params.get(n, "") for n in names], t.user_attrs.get("fit_seconds", ""), dur,
                    max(t.intermediate_values) if t.intermediate_values else ""])
    return buf.getvalue()


def _jsonable(x: Any) -> Any:
    import json

    return json.loads(json.dumps(x, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
