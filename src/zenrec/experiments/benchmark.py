"""Benchmark runs: models x datasets x protocols x seeds, optionally tuned first, resumable.

A run directory holds::

    benchmark.json          the config, the command, the machine, and when it ran
    tuning/STUDY/tune.json  tuning summaries (one per tuned model, dataset and protocol)
    tuning/optuna.db        their Optuna studies (SQLite)
    cells/ID.json           one finished cell (a RunRecord with label, tuning, history),
                            or one peer cell (another library run on the same cell's split)
    cells/ID.users.parquet  its per-user metric values (fold, user, one column per metric)
    results, summary, significance (.parquet/.csv)   see zenrec.experiments.summary

Every file is written through a temporary file renamed into place; a cell whose JSON exists
is skipped on rerun, so an interrupted benchmark continues where it stopped.

Peers (``[[peers]]``: RecBole, Surprise, or any command) run after the zenrec cells, one at a
time, each in its own virtual environment as a subprocess, on zenrec's split of the same
dataset, protocol and seed exported to a temporary directory (:mod:`zenrec.runs.peers`). A
peer whose environment is missing is recorded as skipped with the reason (and retried on the
next run); it never stops the benchmark. Peers report aggregate metrics only, so they are left
out of the significance tests.
"""

from __future__ import annotations

import json
import os
import platform
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zenrec._io import atomic_write_json, atomic_write_text, versions
from zenrec.data import load_dataset
from zenrec.data.dataset import Dataset
from zenrec.data.spec import DataSpec
from zenrec.evaluation.protocols import Protocol, ProtocolRun, get_protocol
from zenrec.experiments.config import BenchmarkConfig, ModelEntry, TuneBudget
from zenrec.experiments.summary import summarise, write_frame
from zenrec.models.registry import get_model_class
from zenrec.runs.evaluate import evaluate_model, protocol_splits
from zenrec.runs.peers import PeerEntry, export_peer_split, run_peer
from zenrec.runs.record import now_utc

__all__ = ["cell_id", "machine", "run_benchmark"]


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)


def cell_id(dataset: str, protocol: str, label: str, seed: int) -> str:
    """File-name id of one cell."""
    data = Path(dataset).stem if os.sep in dataset else dataset
    return f"{_safe(data)}__{_safe(protocol)}__{_safe(label)}__s{seed}"


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
        load: list[float] | None = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": load,
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def _per_user_frame(run: ProtocolRun) -> Any:
    import polars as pl

    frames = []
    for fold, res in enumerate(run.results):
        users = res.users if res.users is not None else np.zeros(0)
        cols: dict[str, Any] = {
            "fold": np.full(len(users), fold, dtype=np.int32),
            "user": [str(u) for u in users],
        }
        cols.update({k: np.asarray(v, dtype=np.float64) for k, v in res.per_user.items()})
        frames.append(pl.DataFrame(cols))
    return pl.concat(frames, how="diagonal")


@dataclass
class _Context:
    """State shared by the steps of one benchmark run."""

    config: BenchmarkConfig
    run_dir: Path
    console: Any
    loaded: dict[str, Dataset]
    tuned: dict[tuple[str, str, str], dict[str, Any]]

    def dataset(self, name: str) -> Dataset:
        if name not in self.loaded:
            with self.console.status(f"loading {name}"):
                self.loaded[name] = load_dataset(name)
        return self.loaded[name]

    def spec(self, name: str) -> DataSpec:
        """The data specification of a dataset: its source, the config's [data] filters and
        its fixed split directory, if any."""
        return DataSpec(source=name, split_dir=self.config.split_dir, **self.config.data.given())

    def cell_path(self, dname: str, pname: str, label: str, seed: int) -> Path:
        return self.run_dir / "cells" / f"{cell_id(dname, pname, label, seed)}.json"


def _start_run(ctx: _Context, invocation: str | None) -> Path:
    """Record the config, the command, the machine and the start time in ``benchmark.json``."""
    meta_path = ctx.run_dir / "benchmark.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"runs": []}
    meta.update(
        {
            "kind": "zenrec-benchmark",
            "config": ctx.config.model_dump(mode="json"),
            "config_source": ctx.config.source,
        }
    )
    meta["runs"].append(
        {"command": invocation, "started": now_utc(), "machine": machine(), "versions": versions()}
    )
    atomic_write_json(meta_path, meta)
    return meta_path


def _finish_run(meta_path: Path, seconds: float, ran: int, peers_ran: int) -> None:
    meta = json.loads(meta_path.read_text())
    meta["runs"][-1].update(
        {"finished": now_utc(), "seconds": seconds, "cells_run": ran, "peer_cells_run": peers_ran}
    )
    atomic_write_json(meta_path, meta)


def _cell_params(
    ctx: _Context, entry: ModelEntry, ds: Dataset, protocol: Protocol, seed: int
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The cell's hyperparameters (tuned first when the config asks) and the tuning summary."""
    params = dict(entry.params)
    tune_info = None
    do_tune = entry.tune if entry.tune is not None else ctx.config.tune is not None
    if do_tune:
        key = (ds.name, protocol.name, entry.key)
        if key not in ctx.tuned:
            ctx.tuned[key] = _tune_cell(ctx, entry, ds, protocol)
        tune_info = ctx.tuned[key]
        params = {**params, **tune_info["best_params"]}
    if "seed" in get_model_class(entry.name).Config.model_fields:
        params["seed"] = seed  # model randomness follows the cell's seed
    return params, tune_info


def _run_cell(ctx: _Context, dname: str, pname: str, entry: ModelEntry, seed: int) -> float:
    """Fit and evaluate one cell, write its record and per-user values; its main metric."""
    ds = ctx.dataset(dname)
    protocol = get_protocol(pname)
    params, tune_info = _cell_params(ctx, entry, ds, protocol, seed)
    cid = cell_id(dname, pname, entry.key, seed)
    ctx.console.print(f"[bold]{cid}[/bold] fitting {entry.name} {params}", highlight=False)
    record, run = evaluate_model(ds, protocol, entry.name, params, seed=seed, spec=ctx.spec(dname))
    per_user_file = f"{cid}.users.parquet"
    write_frame(_per_user_frame(run), ctx.run_dir / "cells" / per_user_file)
    tuning = (
        None
        if tune_info is None
        else {
            k: tune_info.get(k)
            for k in (
                "study",
                "storage",
                "n_finished",
                "best_value_valid",
                "metric",
                "validation",
                "budget",
                "tune_seconds_this_process",
            )
        }
    )
    record = record.model_copy(
        update={"label": entry.key, "tuning": tuning, "per_user_file": per_user_file}
    )
    record.write(ctx.cell_path(dname, pname, entry.key, seed))
    return float(record.metrics.get(protocol.main_metric, float("nan")))


def run_benchmark(
    config: BenchmarkConfig,
    run_dir: str | Path,
    *,
    progress: bool = True,
    datasets: dict[str, Dataset] | None = None,
    invocation: str | None = None,
) -> dict[str, Any]:
    """Run (or continue) every cell of ``config`` in ``run_dir`` and write the tables.

    Args:
        config: A validated benchmark config.
        run_dir: Output directory (created; existing finished cells are kept and skipped).
        progress: Show a progress bar and one line per finished cell on stderr.
        datasets: Preloaded datasets by name (tests pass synthetic data here).
        invocation: The command line that started the run (recorded; the CLI passes it).

    Returns:
        ``{"cells": n, "ran": n_new, "skipped": n_kept, "seconds": s, ...peer counts, ...tables}``.
    """
    from rich.console import Console

    ctx = _Context(
        config, Path(run_dir), Console(stderr=True, quiet=not progress), dict(datasets or {}), {}
    )
    (ctx.run_dir / "cells").mkdir(parents=True, exist_ok=True)
    meta_path = _start_run(ctx, invocation)
    cells = [
        (d, pr, m, s)
        for d in config.datasets
        for pr in config.protocols
        for m in config.models
        if m.protocols is None or pr in m.protocols
        for s in config.seeds
    ]
    done = {j for j, c in enumerate(cells) if ctx.cell_path(c[0], c[1], c[2].key, c[3]).exists()}
    ctx.console.print(
        f"benchmark {config.name}: {len(cells)} cells, {len(done)} already finished in {run_dir}"
    )
    t_start = time.perf_counter()
    ran = 0
    for j, c in enumerate(cells):
        if j in done:
            continue
        value = _run_cell(ctx, *c)
        ran += 1
        ctx.console.print(
            f"  {get_protocol(c[1]).main_metric} = {value:.4f}  ({ran + len(done)}/{len(cells)})",
            highlight=False,
        )
    peers = _run_peers(ctx) if config.peers else {}
    tables = summarise(ctx.run_dir, config)
    secs = time.perf_counter() - t_start
    _finish_run(meta_path, secs, ran, peers.get("peers_ran", 0))
    return {
        "cells": len(cells),
        "ran": ran,
        "skipped": len(done),
        "seconds": secs,
        **peers,
        **tables,
    }


# ---------------------------------------------------------------------------- peers
def _pending_peers(
    ctx: _Context,
) -> tuple[list[tuple[tuple[str, str, int], list[PeerEntry]]], int, int]:
    """Peer cells still to run, grouped by (dataset, protocol, seed); (todo, n_cells, n_kept)."""
    config = ctx.config
    todo = []
    n_cells = kept = 0
    for g in [(d, pr, s) for d in config.datasets for pr in config.protocols for s in config.seeds]:
        peers = [p for p in config.peers if p.protocols is None or g[1] in p.protocols]
        n_cells += len(peers)
        pending = []
        for peer in peers:
            f = ctx.cell_path(g[0], g[1], peer.key, g[2])
            if f.exists() and json.loads(f.read_text()).get("status", "ok") == "ok":
                kept += 1
            else:
                pending.append(peer)
        if pending:
            todo.append((g, pending))
    return todo, n_cells, kept


def _peer_group(
    ctx: _Context, dname: str, pname: str, seed: int, peers: list[PeerEntry]
) -> tuple[int, int]:
    """Export one cell's split and run its peers on it; (ran, not run)."""
    from zenrec.tuning.tuner import tuning_split

    ds = ctx.dataset(dname)
    protocol = get_protocol(pname)
    # exactly the split evaluate_model uses for this cell
    splits, data, filters, split_sha = protocol_splits(ds, protocol, ctx.spec(dname), seed)
    valid = how = None
    if len(splits) == 1 and (splits[0].valid is None or not len(splits[0].valid)):
        carved, how = tuning_split(data, protocol, seed, first=splits[0])
        valid = carved.valid
    base = {
        "dataset": ds.name,
        "dataset_sha256": split_sha or ds.source_sha256,
        "data_fingerprint": None if split_sha else data.fingerprint(),
        "filters": list(filters),
        "protocol": protocol.summary(ds.name),
        "data": ctx.spec(dname),
    }
    ran = not_run = 0
    with tempfile.TemporaryDirectory(prefix="zenrec-peer-") as tmp:
        split = export_peer_split(
            splits,
            Path(tmp) / "split",
            valid=valid,
            valid_note=how,
            manifest={"dataset": ds.name, "protocol": protocol.summary(ds.name), "seed": seed},
        )
        for peer in peers:
            cid = cell_id(dname, pname, peer.key, seed)
            ctx.console.print(
                f"[bold]{cid}[/bold] {peer.library} {peer.model} on the exported split",
                highlight=False,
            )
            rec = run_peer(
                peer,
                split,
                root=ctx.config.root,
                seed=seed,
                out=Path(tmp) / f"{_safe(peer.key)}.json",
                base=base,
            )
            rec.write(ctx.cell_path(dname, pname, peer.key, seed))
            if rec.status == "ok":
                ran += 1
                ctx.console.print(
                    f"  {protocol.main_metric} = "
                    f"{rec.metrics.get(protocol.main_metric, float('nan')):.4f}"
                    f"  {rec.seconds or 0:.1f} s",
                    highlight=False,
                )
            else:
                not_run += 1
                ctx.console.print(f"  {cid}: {rec.status}: {rec.reason}", highlight=False)
    return ran, not_run


def _run_peers(ctx: _Context) -> dict[str, Any]:
    """Run every peer cell not finished yet, one after the other, on zenrec's exported splits."""
    todo, n_cells, kept = _pending_peers(ctx)
    ctx.console.print(f"peers: {n_cells} cells, {kept} already finished", highlight=False)
    ran = not_run = 0
    for (dname, pname, seed), peers in todo:
        r, n = _peer_group(ctx, dname, pname, seed, peers)
        ran += r
        not_run += n
    return {"peer_cells": n_cells, "peers_ran": ran, "peers_kept": kept, "peers_not_run": not_run}


# ---------------------------------------------------------------------------- tuning
def _tune_cell(ctx: _Context, entry: ModelEntry, ds: Dataset, protocol: Protocol) -> dict[str, Any]:
    """Tune once per (dataset, protocol, model) on the first seed; reuse a finished tuning."""
    import optuna

    from zenrec.tuning.space import load_space
    from zenrec.tuning.tuner import make_storage, trials_csv, tune

    config = ctx.config
    budget = config.tune or TuneBudget()
    trials = entry.trials or budget.trials
    study = _safe(f"{entry.key}-{ds.name}-{protocol.name}-s{config.seeds[0]}")
    tdir = ctx.run_dir / "tuning" / study
    done = tdir / "tune.json"
    if done.exists():
        info: dict[str, Any] = json.loads(done.read_text())
        if info.get("n_finished", 0) >= trials or info.get("budget", {}).get("timeout_reached"):
            ctx.console.print(f"  tuning {study}: reusing {done}", highlight=False)
            return info
    space = load_space(entry.space, model=entry.name)
    if entry.params:
        fixed = {**space.fixed, **{k: v for k, v in entry.params.items() if k not in space.params}}
        space = space.model_copy(update={"fixed": fixed})
    ctx.console.print(
        f"  tuning {study}: {trials} trials"
        + (f", timeout {budget.timeout:g} s" if budget.timeout else ""),
        highlight=False,
    )
    storage_url = f"sqlite:///{(ctx.run_dir / 'tuning' / 'optuna.db').resolve()}"
    res = tune(
        ds,
        protocol,
        entry.name,
        space=space,
        n_trials=trials,
        timeout=budget.timeout,
        storage=storage_url,
        study_name=study,
        run_dir=tdir,
        seed=config.seeds[0],
        pruner=budget.pruner,
        refit=False,
        progress=ctx.console.quiet is False,
        write=False,
        data=ctx.spec(ds.name),
    )
    info = dict(res.summary)
    info["budget"] = {
        "trials": trials,
        "timeout": budget.timeout,
        "pruner": budget.pruner,
        "timeout_reached": res.n_finished < trials,
    }
    storage, _ = make_storage(storage_url, tdir)
    atomic_write_text(
        tdir / "trials.csv", trials_csv(optuna.load_study(study_name=study, storage=storage))
    )
    atomic_write_json(done, info)
    return info
