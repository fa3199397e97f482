"""Benchmark runs: models x datasets x protocols x seeds, optionally tuned first, resumable.

A run directory holds::

    benchmark.json          the config, the command, the machine, and when it ran
    tuning/STUDY/tune.json  tuning summaries (one per tuned model, dataset and protocol)
    tuning/optuna.db        their Optuna studies (SQLite)
    cells/ID.json           one finished cell (record of zenrec evaluate + label, tuning, history)
    cells/ID.users.parquet  its per-user metric values (fold, user, one column per metric)
    results.parquet/.csv    one row per cell: protocol, dataset hash, seed, hyperparameters,
                            versions, seconds, metrics
    summary.parquet/.csv    per model: mean and 95% CI over seeds of each metric
    significance.csv        every model vs the baseline: paired Wilcoxon and t-test over users
                            (each user's value averaged over seeds), Holm-adjusted

Every file is written through a temporary file renamed into place; a cell whose JSON exists
is skipped on rerun, so an interrupted benchmark continues where it stopped.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zenrec._errors import ConfigError, ZenrecError
from zenrec.models.bundle import atomic_write_text, versions

__all__ = ["BenchmarkConfig", "ModelEntry", "load_benchmark_config", "run_benchmark", "summarise"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TuneBudget(_Strict):
    """The same tuning budget for every tuned model."""

    trials: int = Field(20, ge=1)
    """Finished trials per model (and dataset, protocol)."""
    timeout: float | None = Field(None, gt=0)
    """Seconds per model after which no new trial starts."""
    pruner: str = Field("median", pattern="^(median|hyperband|none)$")
    """Pruner of iterative models."""


class ModelEntry(_Strict):
    """One model of the benchmark."""

    name: str
    """Registry name."""
    label: str | None = None
    """Row label (default: the name); lets one model appear twice with different settings."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Hyperparameters (fixed; with tuning, the starting point is the space's)."""
    tune: bool | None = None
    """Tune first (default: when the config has a [tune] table)."""
    space: str | None = None
    """Search-space TOML (default: the one shipped for the model); relative to the config."""
    trials: int | None = Field(None, ge=1)
    """Override of the [tune] trial budget for this model."""
    protocols: list[str] | None = None
    """Only under these protocols (default: all of the config's)."""

    @property
    def key(self) -> str:
        return self.label or self.name


class BenchmarkConfig(_Strict):
    """A benchmark: the cross product of models, datasets, protocols and seeds."""

    name: str
    """Name of the benchmark (titles, file names)."""
    description: str = ""
    """What it reproduces."""
    datasets: list[str] = Field(min_length=1)
    """Built-in dataset names or files."""
    protocols: list[str] = Field(min_length=1)
    """Protocol presets."""
    seeds: list[int] = Field(min_length=1)
    """Split (and model) seeds; the first is also the tuning seed."""
    models: list[ModelEntry] = Field(min_length=1)
    """Models."""
    baseline: str | None = None
    """Label every model is tested against (default: the first model)."""
    metrics: list[str] = Field(default_factory=list)
    """Metrics shown and tested (default: the protocol's main metric)."""
    alpha: float = Field(0.05, gt=0, lt=1)
    """Family-wise significance level (Holm)."""
    tune: TuneBudget | None = None
    """Tuning budget; omit to run every model with its given params."""
    source: str = "<dict>"

    @model_validator(mode="after")
    def _labels(self) -> BenchmarkConfig:
        keys = [m.key for m in self.models]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"model labels must be unique; {dup[0]!r} repeats: give one a 'label'")
        if self.baseline is not None and self.baseline not in keys:
            raise ValueError(f"'baseline' {self.baseline!r} is not a model label; labels are {keys}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("'seeds' has repeated values")
        return self

    @property
    def baseline_label(self) -> str:
        return self.baseline or self.models[0].key


def load_benchmark_config(path: str | Path) -> BenchmarkConfig:
    """Read and validate a benchmark TOML; errors name the file, the key and the fix."""
    from zenrec.evaluation.protocols import get_protocol
    from zenrec.models.registry import create_model, model_names

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"benchmark config {p} not found; pass an existing .toml file")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc}); fix the syntax") from None
    try:
        cfg = BenchmarkConfig(**{**data, "source": str(p)})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ())) or "config"
        if err.get("type") == "extra_forbidden":
            raise ConfigError(f"{p}: unknown key '{loc}'; see docs/tuning.md for the benchmark schema") from None
        if err.get("type") == "missing":
            raise ConfigError(f"{p}: key '{loc}' is missing; add it") from None
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        raise ConfigError(f"{p}: key '{loc}': {msg}") from None
    for j, m in enumerate(cfg.models):
        if m.name not in model_names():
            raise ConfigError(f"{p}: key 'models[{j}].name': unknown model {m.name!r}; "
                              f"use one of {', '.join(model_names())}")
        try:
            create_model(m.name, **m.params)
        except ZenrecError as exc:
            raise ConfigError(f"{p}: key 'models[{j}].params': {exc}") from None
        if m.space is not None:
            m.space = str((p.parent / m.space).resolve()) if not Path(m.space).is_absolute() else m.space
        for pr in m.protocols or []:
            if pr not in cfg.protocols:
                raise ConfigError(f"{p}: key 'models[{j}].protocols': {pr!r} is not in 'protocols'")
    for j, pr in enumerate(cfg.protocols):
        try:
            get_protocol(pr)
        except ConfigError as exc:
            raise ConfigError(f"{p}: key 'protocols[{j}]': {exc}") from None
    return cfg


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)


def cell_id(dataset: str, protocol: str, label: str, seed: int) -> str:
    return f"{_safe(Path(dataset).stem if os.sep in dataset else dataset)}__{_safe(protocol)}__{_safe(label)}__s{seed}"


def _atomic_parquet(df: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    df.write_parquet(tmp)
    os.replace(tmp, path)


def _atomic_csv(df: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    df.write_csv(tmp)
    os.replace(tmp, path)


def machine() -> dict[str, Any]:
    """The machine a run happened on (CPU model, cores, load) for results pages."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "load_average": load,
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")}


def _per_user_frame(run: Any) -> Any:
    import polars as pl

    frames = []
    for fold, res in enumerate(run.results):
        cols: dict[str, Any] = {"fold": np.full(len(res.users), fold, dtype=np.int32),
                                "user": [str(u) for u in res.users]}
        cols.update({k: np.asarray(v, dtype=np.float64) for k, v in res.per_user.items()})
        frames.append(pl.DataFrame(cols))
    return pl.concat(frames, how="diagonal")


def run_benchmark(
    config: BenchmarkConfig,
    run_dir: str | Path,
    *,
    progress: bool = True,
    datasets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or continue) every cell of ``config`` in ``run_dir`` and write the tables.

    Args:
        config: A validated benchmark config.
        run_dir: Output directory (created; existing finished cells are kept and skipped).
        progress: Show a progress bar and one line per finished cell on stderr.
        datasets: Preloaded datasets by name (tests pass synthetic data here).

    Returns:
        ``{"cells": n, "ran": n_new, "skipped": n_kept, "seconds": s}``.
    """
    from rich.console import Console

    from zenrec.data import load_dataset
    from zenrec.evaluation.protocols import get_protocol
    from zenrec.evaluation.runner import evaluate_model
    from zenrec.models.registry import get_model_class

    run_dir = Path(run_dir)
    (run_dir / "cells").mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True, quiet=not progress)
    meta_path = run_dir / "benchmark.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"runs": []}
    meta.update({"kind": "zenrec-benchmark", "config": config.model_dump(mode="json"),
                 "config_source": config.source})
    meta["runs"].append({"command": " ".join(["zenrec", *sys.argv[1:]]) if sys.argv and "zenrec" in sys.argv[0]
                         else None, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "machine": machine(), "versions": versions()})
    atomic_write_text(meta_path, json.dumps(meta, indent=2, default=str))

    cells = [(d, pr, m, s) for d in config.datasets for pr in config.protocols for m in config.models
             if m.protocols is None or pr in m.protocols for s in config.seeds]
    done = {cell_id(c[0], c[1], c[2].key, c[3]) for c in cells
            if (run_dir / "cells" / f"{cell_id(c[0], c[1], c[2].key, c[3])}.json").exists()}
    console.print(f"benchmark {config.name}: {len(cells)} cells, {len(done)} already finished in {run_dir}")
    t_start = time.perf_counter()
    ran = 0
    loaded: dict[str, Any] = dict(datasets or {})
    tuned: dict[tuple[str, str, str], dict[str, Any]] = {}
    for c in cells:
        dname, pname, entry, seed = c
        cid = cell_id(dname, pname, entry.key, seed)
        if cid in done:
            continue
        if dname not in loaded:
            with console.status(f"loading {dname}"):
                loaded[dname] = load_dataset(dname)
        ds = loaded[dname]
        protocol = get_protocol(pname)
        params = dict(entry.params)
        tune_info = None
        do_tune = entry.tune if entry.tune is not None else config.tune is not None
        if do_tune:
            key = (dname, pname, entry.key)
            if key not in tuned:
                tuned[key] = _tune_cell(config, entry, ds, protocol, run_dir, console)
            tune_info = tuned[key]
            params = {**params, **tune_info["best_params"]}
        klass = get_model_class(entry.name)
        if "seed" in klass.Config.model_fields:
            params["seed"] = seed  # model randomness follows the cell's seed
        console.print(f"[bold]{cid}[/bold] fitting {entry.name} {params}", highlight=False)
        record, run = evaluate_model(ds, protocol, entry.name, params, seed=seed)
        from zenrec.tuning.tuner import _reproduce_command  # light: tuner imports optuna

        record["command"] = _reproduce_command(dname, protocol, entry.name, params, seed)
        record["label"] = entry.key
        record["tuning"] = None if tune_info is None else {
            k: tune_info.get(k) for k in ("study", "storage", "n_finished", "best_value_valid", "metric",
                                          "validation", "budget", "tune_seconds_this_process")}
        record["history"] = [json.loads(json.dumps(h, default=float)) for h in run.models[0].history_]
        record["per_user_file"] = f"{cid}.users.parquet"
        _atomic_parquet(_per_user_frame(run), run_dir / "cells" / record["per_user_file"])
        atomic_write_text(run_dir / "cells" / f"{cid}.json", json.dumps(record, indent=2, default=str))
        ran += 1
        main = protocol.main_metric
        console.print(f"  {main} = {record['metrics'].get(main, float('nan')):.4f}  fit "
                      f"{record['fit_seconds']:.1f} s  ({ran + len(done)}/{len(cells)})", highlight=False)
    tables = summarise(run_dir, config)
    secs = time.perf_counter() - t_start
    meta = json.loads(meta_path.read_text())
    meta["runs"][-1].update({"finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                             "seconds": secs, "cells_run": ran})
    atomic_write_text(meta_path, json.dumps(meta, indent=2, default=str))
    return {"cells": len(cells), "ran": ran, "skipped": len(done), "seconds": secs, **tables}


def _tune_cell(config: BenchmarkConfig, entry: ModelEntry, ds: Any, protocol: Any, run_dir: Path,
               console: Any) -> dict[str, Any]:
    """Tune once per (dataset, protocol, model) on the first seed; reuse a finished tuning."""
    from zenrec.tuning.space import load_space

    budget = config.tune or TuneBudget()
    trials = entry.trials or budget.trials
    study = _safe(f"{entry.key}-{ds.name}-{protocol.name}-s{config.seeds[0]}")
    tdir = run_dir / "tuning" / study
    done = tdir / "tune.json"
    if done.exists():
        info = json.loads(done.read_text())
        if info.get("n_finished", 0) >= trials or info.get("budget", {}).get("timeout_reached"):
            console.print(f"  tuning {study}: reusing {done}", highlight=False)
            return info
    from zenrec.tuning.tuner import tune

    space = load_space(entry.space, model=entry.name)
    if entry.params:
        fixed = {**space.fixed, **{k: v for k, v in entry.params.items() if k not in space.params}}
        space = space.model_copy(update={"fixed": fixed})
    console.print(f"  tuning {study}: {trials} trials" + (f", timeout {budget.timeout:g} s" if budget.timeout else ""),
                  highlight=False)
    res = tune(ds, protocol, entry.name, space=space, n_trials=trials, timeout=budget.timeout,
               storage=f"sqlite:///{(run_dir / 'tuning' / 'optuna.db').resolve()}", study_name=study,
               run_dir=tdir, seed=config.seeds[0], pruner=budget.pruner, refit=False,
               progress=console.quiet is False, write=False)
    info = dict(res.summary)
    info["budget"] = {"trials": trials, "timeout": budget.timeout, "pruner": budget.pruner,
                      "timeout_reached": res.n_finished < trials}
    import optuna

    from zenrec.tuning.tuner import make_storage, trials_csv

    storage, _ = make_storage(info["storage"].replace("***", ""), tdir)
    atomic_write_text(tdir / "trials.csv", trials_csv(optuna.load_study(study_name=study, storage=storage)))
    atomic_write_text(done, json.dumps(info, indent=2, default=str))
    return info


def _load_cells(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((run_dir / "cells").glob("*.json"))]


def summarise(run_dir: str | Path, config: BenchmarkConfig | None = None) -> dict[str, Any]:
    """Build results, summary and significance tables from the finished cells of a run."""
    import polars as pl

    from zenrec.evaluation.significance import compare_to_baseline, mean_ci

    run_dir = Path(run_dir)
    if config is None:
        meta = json.loads((run_dir / "benchmark.json").read_text())
        config = BenchmarkConfig(**meta["config"])
    recs = _load_cells(run_dir)
    if not recs:
        return {"results": None}
    rows = []
    for r in recs:
        row = {
            "label": r["label"], "model": r["model"], "dataset": r["dataset"],
            "protocol": r["protocol"]["name"], "seed": r["seed"],
            "dataset_sha256": r.get("dataset_sha256"), "data_fingerprint": r.get("data_fingerprint"),
            "hyperparameters": json.dumps(r["hyperparameters"], sort_keys=True),
            "tuned": r.get("tuning") is not None,
            "fit_seconds": r["fit_seconds"], "eval_seconds": r["eval_seconds"],
            "versions": json.dumps(r["versions"], sort_keys=True), "command": r.get("command"),
            "created": r.get("created"),
        }
        row.update({k: float(v) for k, v in r["metrics"].items()})
        rows.append(row)
    results = pl.DataFrame(rows, infer_schema_length=None)
    _atomic_parquet(results, run_dir / "results.parquet")
    _atomic_csv(results, run_dir / "results.csv")

    from zenrec.evaluation.protocols import get_protocol

    order = {m.key: j for j, m in enumerate(config.models)}
    summary_rows, sig_rows = [], []
    for (dname, pname), grp in results.group_by(["dataset", "protocol"], maintain_order=True):
        protocol = get_protocol(str(pname))
        metrics = [m for m in (config.metrics or [protocol.main_metric]) if m in grp.columns]
        extra = [c for c in grp.columns if c.split("@")[0] in ("coverage", "avg_popularity", "gini", "novelty")
                 and c.endswith("@10")]
        for label in sorted(set(grp["label"].to_list()), key=lambda x: order.get(x, 99)):
            g = grp.filter(pl.col("label") == label)
            srow: dict[str, Any] = {"dataset": dname, "protocol": pname, "label": label,
                                    "model": g["model"][0], "n_seeds": g.height,
                                    "tuned": bool(g["tuned"][0]),
                                    "hyperparameters": g.sort("seed")["hyperparameters"][0],
                                    "fit_seconds": float(g["fit_seconds"].mean())}
            for m in metrics + extra:
                mean, lo, hi = mean_ci(g[m].to_numpy())
                srow[m] = mean
                srow[f"{m}_ci_low"], srow[f"{m}_ci_high"] = lo, hi
            summary_rows.append(srow)
        # significance: each user's value averaged over seeds (and folds), paired over users
        base = config.baseline_label
        if base not in set(grp["label"].to_list()):
            continue
        for m in metrics:
            per_user: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for label in sorted(set(grp["label"].to_list()), key=lambda x: order.get(x, 99)):
                frames = []
                for r in recs:
                    if r["label"] == label and r["dataset"] == dname and r["protocol"]["name"] == pname:
                        f = pl.read_parquet(run_dir / "cells" / r["per_user_file"])
                        if m in f.columns:
                            frames.append(f.select("user", pl.col(m)).with_columns(pl.lit(r["seed"]).alias("seed")))
                if not frames:
                    continue
                # a user appears once per seed (and per fold it is tested in): average them
                u = pl.concat(frames).group_by("user").agg(pl.col(m).mean()).sort("user")
                per_user[label] = (u["user"].to_numpy(), u[m].to_numpy())
            if base not in per_user or len(per_user) < 2:
                continue
            for s in compare_to_baseline(per_user, base, alpha=config.alpha,
                                         lower_is_better=m in ("rmse", "mae")):
                sig_rows.append({"dataset": dname, "protocol": pname, "metric": m, **s})
    summary = pl.DataFrame(summary_rows, infer_schema_length=None)
    _atomic_parquet(summary, run_dir / "summary.parquet")
    _atomic_csv(summary, run_dir / "summary.csv")
    sig = pl.DataFrame(sig_rows, infer_schema_length=None) if sig_rows else None
    if sig is not None:
        _atomic_csv(sig, run_dir / "significance.csv")
        _atomic_parquet(sig, run_dir / "significance.parquet")
    return {"results": results, "summary": summary, "significance": sig}
