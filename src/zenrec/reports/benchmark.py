"""Benchmark runs: models x datasets x protocols x seeds, optionally tuned first, resumable.

A run directory holds::

    benchmark.json          the config, the command, the machine, and when it ran
    tuning/STUDY/tune.json  tuning summaries (one per tuned model, dataset and protocol)
    tuning/optuna.db        their Optuna studies (SQLite)
    cells/ID.json           one finished cell (record of zenrec evaluate + label, tuning, history),
                            or one peer cell (another library run on the same cell's split)
    cells/ID.users.parquet  its per-user metric values (fold, user, one column per metric)
    results.parquet/.csv    one row per cell: protocol, dataset hash, seed, hyperparameters,
                            versions, seconds, metrics
    summary.parquet/.csv    per model: mean and 95% CI over seeds of each metric
    significance.csv        every model vs the baseline: paired Wilcoxon and t-test over users
                            (each user's value averaged over seeds), Holm-adjusted

Every file is written through a temporary file renamed into place; a cell whose JSON exists
is skipped on rerun, so an interrupted benchmark continues where it stopped.

Peers (``[[peers]]``: RecBole, Surprise, or any command) run after the zenrec cells, one at a
time, each in its own virtual environment as a subprocess, on zenrec's split of the same
dataset, protocol and seed exported to a temporary directory. A peer whose environment is
missing is recorded as skipped with the reason (and retried on the next run); it never stops
the benchmark. Peers report aggregate metrics only, so they are left out of the tests.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zenrec._errors import ConfigError, ZenrecError
from zenrec._io import atomic_path, atomic_write_text, versions

__all__ = ["BenchmarkConfig", "ModelEntry", "PeerEntry", "export_split", "load_benchmark_config",
           "run_benchmark", "summarise"]


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


PEER_LIBRARIES: dict[str, dict[str, Any]] = {
    "recbole": {"venv": "benchmarks/.venv-recbole", "runner": "benchmarks/peers/recbole_run.py",
                "dist": "recbole", "modes": ("full",), "name": "RecBole"},
    "surprise": {"venv": "benchmarks/.venv-surprise", "runner": "benchmarks/peers/surprise_run.py",
                 "dist": "scikit_surprise", "modes": ("rating",), "name": "Surprise"},
}
SETUP_HINT = "run bash benchmarks/peers/setup_peers.sh"


class PeerEntry(_Strict):
    """Another library run on exactly zenrec's split of each cell (its own venv, a subprocess)."""

    library: str
    """``recbole`` or ``surprise`` (built-in runners), or any name together with ``command``."""
    model: str
    """The library's model name (RecBole ``EASE``, ``ItemKNN``, ``Pop``...; Surprise ``SVD``)."""
    label: str | None = None
    """Row label (default ``LIBRARY-model`` in lower case)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """RecBole config keys (``--set key=json``), Surprise algorithm keyword arguments, or
    ``--set key=json`` options of a custom command."""
    venv: str | None = None
    """Virtual environment of the library (default ``benchmarks/.venv-LIBRARY``), relative to the
    repository root (the config file's parent's parent, or the working directory)."""
    command: list[str] | None = None
    """Run this instead of the library's runner, e.g. ``["python", "my_peer.py"]``; it gets
    ``--split-dir DIR --model MODEL --out FILE --seed N [--set key=json ...]`` and prints or
    writes a JSON record with ``metrics`` (see docs/tuning.md). Relative paths are relative to
    the repository root."""
    protocols: list[str] | None = None
    """Only under these protocols (default: all of the config's)."""
    timeout: float | None = Field(None, gt=0)
    """Seconds after which a peer cell is stopped and recorded as failed."""

    @property
    def key(self) -> str:
        return self.label or f"{self.library}-{self.model}".lower()

    @model_validator(mode="after")
    def _runner(self) -> PeerEntry:
        if self.library not in PEER_LIBRARIES and self.command is None:
            raise ValueError(f"no built-in runner for library {self.library!r} (built-in: "
                             f"{', '.join(PEER_LIBRARIES)}); give a 'command'")
        if self.command is not None and not self.command:
            raise ValueError("'command' is empty; give the program and its arguments")
        return self


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
    peers: list[PeerEntry] = Field(default_factory=list)
    """Other libraries run on the same splits (after the zenrec cells)."""
    source: str = "<dict>"

    @model_validator(mode="after")
    def _labels(self) -> BenchmarkConfig:
        keys = [m.key for m in self.models] + [p.key for p in self.peers]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"model labels must be unique; {dup[0]!r} repeats: give one a 'label'")
        if self.baseline is not None and self.baseline not in keys[:len(self.models)]:
            raise ValueError(f"'baseline' {self.baseline!r} is not a model label; labels are "
                             f"{keys[:len(self.models)]}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("'seeds' has repeated values")
        return self

    @property
    def baseline_label(self) -> str:
        return self.baseline or self.models[0].key

    @property
    def root(self) -> Path:
        """Repository root that peer paths are relative to."""
        src = Path(self.source)
        return src.resolve().parent.parent if self.source != "<dict>" and src.suffix == ".toml" else Path.cwd()


def load_benchmark_config(path: str | Path) -> BenchmarkConfig:
    """Read and validate a benchmark TOML; errors name the file, the key and the fix."""
    from zenrec._toml import read_toml
    from zenrec.evaluation.protocols import get_protocol
    from zenrec.models.registry import create_model, model_names

    p, data = read_toml(path, "benchmark config")
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
    for j, peer in enumerate(cfg.peers):
        lib = PEER_LIBRARIES.get(peer.library)
        for pr in peer.protocols or []:
            if pr not in cfg.protocols:
                raise ConfigError(f"{p}: key 'peers[{j}].protocols': {pr!r} is not in 'protocols'")
        if lib is not None and peer.command is None:
            for pr in peer.protocols or cfg.protocols:
                if get_protocol(pr).mode not in lib["modes"]:
                    raise ConfigError(f"{p}: key 'peers[{j}]': the {peer.library} runner does not evaluate "
                                      f"protocol {pr!r} ({get_protocol(pr).mode} mode); restrict the peer "
                                      "with 'protocols'")
    return cfg


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)


def cell_id(dataset: str, protocol: str, label: str, seed: int) -> str:
    return f"{_safe(Path(dataset).stem if os.sep in dataset else dataset)}__{_safe(protocol)}__{_safe(label)}__s{seed}"


def _atomic_parquet(df: Any, path: Path) -> None:
    with atomic_path(path, suffix=".parquet") as tmp:
        df.write_parquet(tmp)


def _atomic_csv(df: Any, path: Path) -> None:
    with atomic_path(path, suffix=".csv") as tmp:
        df.write_csv(tmp)


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
    peers = _run_peers(config, run_dir, loaded, console) if config.peers else {}
    tables = summarise(run_dir, config)
    secs = time.perf_counter() - t_start
    meta = json.loads(meta_path.read_text())
    meta["runs"][-1].update({"finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                             "seconds": secs, "cells_run": ran, "peer_cells_run": peers.get("peers_ran", 0)})
    atomic_write_text(meta_path, json.dumps(meta, indent=2, default=str))
    return {"cells": len(cells), "ran": ran, "skipped": len(done), "seconds": secs, **peers, **tables}


# ---------------------------------------------------------------------------- peers
def _rating_text(r: Any) -> str:
    return f"{float(r):g}"


def export_split(split: Any, directory: str | Path, *, fold: int | None = None,
                 valid: Any = None) -> list[Path]:
    """Write one split's parts as tab-separated files a peer library reads.

    With ``fold=None``: ``train.tsv``, ``valid.tsv`` (when there is a validation part, or
    ``valid`` is given), ``test.tsv`` with the header ``user_id item_id rating`` (RecBole's
    runner). With ``fold=j``: ``foldj.train.tsv`` and ``foldj.test.tsv`` without header
    (Surprise's ``PredefinedKFold``). Raw ids; rating 1 for implicit data. Returns the files.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    valid = split.valid if valid is None else valid
    parts = [("train", split.train), ("test", split.test)] if fold is not None else \
        [("train", split.train), *([("valid", valid)] if valid is not None and len(valid) else []),
         ("test", split.test)]
    files = []
    for part, ds in parts:
        users = ds.user_vocab.decode(ds.users)
        items = ds.item_vocab.decode(ds.items)
        ratings = ds.ratings if ds.ratings is not None else np.ones(len(ds), dtype=np.float32)
        f = d / (f"fold{fold}.{part}.tsv" if fold is not None else f"{part}.tsv")
        with open(f, "w", encoding="utf-8") as fh:
            if fold is None:
                fh.write("user_id\titem_id\trating\n")
            fh.writelines(f"{u}\t{i}\t{_rating_text(r)}\n" for u, i, r in zip(users, items, ratings))
        files.append(f)
    return files


def _peer_version(venv: Path, dist: str | None) -> str | None:
    """The library's version from its dist-info directory (no interpreter started)."""
    if not dist:
        return None
    for info in sorted(venv.glob(f"lib/python*/site-packages/{dist}-*.dist-info")):
        return info.name.removeprefix(f"{dist}-").removesuffix(".dist-info")
    return None


_SURPRISE_WRAPPER = (
    "import functools, json, sys; sys.path.insert(0, sys.argv[1]); import surprise, surprise_run; "
    "surprise_run.SVD = functools.partial(getattr(surprise, sys.argv[2]), **json.loads(sys.argv[3])); "
    "sys.argv = ['surprise_run.py', *sys.argv[4:]]; surprise_run.main()"
)


def _peer_command(config: BenchmarkConfig, peer: PeerEntry, split_dir: Path, out: Path,
                  seed: int) -> tuple[list[str] | None, str | None, str | None]:
    """(argv, version, reason it cannot run) of one peer cell."""
    root = config.root
    if peer.command is not None:
        # relative paths (with a slash) that exist under the repository root are taken from there;
        # a bare program name ("python") is looked up on PATH
        argv = [str(root / a) if "/" in a and not Path(a).is_absolute() and (root / a).exists() else a
                for a in peer.command]
        argv += ["--split-dir", str(split_dir), "--model", peer.model, "--out", str(out), "--seed", str(seed)]
        argv += [f"--set={k}={json.dumps(v)}" for k, v in peer.params.items()]
        return argv, None, None
    lib = PEER_LIBRARIES[peer.library]
    venv = Path(peer.venv or lib["venv"])
    venv = venv if venv.is_absolute() else root / venv
    py = venv / "bin" / "python"
    if not py.exists():
        return None, None, f"not installed: {venv} has no bin/python; {SETUP_HINT}"
    runner = root / lib["runner"]
    if not runner.exists():
        return None, None, f"runner {runner} not found (the repository's benchmarks/peers/)"
    version = _peer_version(venv, lib["dist"])
    if peer.library == "recbole":
        sets = {"seed": seed, **peer.params}
        argv = [str(py), str(runner), "--split-dir", str(split_dir), "--model", peer.model, "--out", str(out)]
        argv += [f"--set={k}={json.dumps(v)}" for k, v in sets.items()]
        return argv, version, None
    if peer.model == "SVD" and not peer.params:
        return [str(py), str(runner), str(split_dir), str(out)], version, None
    return [str(py), "-c", _SURPRISE_WRAPPER, str(runner.parent), peer.model, json.dumps(peer.params),
            str(split_dir), str(out)], version, None


def _parse_peer_output(out: Path, stdout: str) -> dict[str, Any]:
    if out.exists() and out.stat().st_size:
        return json.loads(out.read_text())
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("the peer wrote no JSON record (neither --out nor a JSON line on stdout)")


def _run_peers(config: BenchmarkConfig, run_dir: Path, loaded: dict[str, Any], console: Any) -> dict[str, Any]:
    """Run every peer cell not finished yet, one after the other, on zenrec's exported splits."""
    import shlex
    import subprocess
    import tempfile

    from zenrec._io import versions as zenrec_versions
    from zenrec.data import load_dataset
    from zenrec.evaluation.protocols import get_protocol, prepare_dataset

    groups = [(d, pr, s) for d in config.datasets for pr in config.protocols for s in config.seeds]
    todo: list[tuple[tuple[str, str, int], list[PeerEntry]]] = []
    n_cells = kept = 0
    for g in groups:
        peers = [p for p in config.peers if p.protocols is None or g[1] in p.protocols]
        n_cells += len(peers)
        pending = []
        for peer in peers:
            f = run_dir / "cells" / f"{cell_id(g[0], g[1], peer.key, g[2])}.json"
            if f.exists() and json.loads(f.read_text()).get("status", "ok") == "ok":
                kept += 1
            else:
                pending.append(peer)
        if pending:
            todo.append((g, pending))
    console.print(f"peers: {n_cells} cells, {kept} already finished", highlight=False)
    ran = not_run = 0
    for (dname, pname, seed), peers in todo:
        if dname not in loaded:
            with console.status(f"loading {dname}"):
                loaded[dname] = load_dataset(dname)
        ds = loaded[dname]
        protocol = get_protocol(pname)
        data = prepare_dataset(ds, protocol)
        splits = protocol.splits(data, seed)  # exactly the split evaluate_model uses for this cell
        split_note = splits[0].description
        with tempfile.TemporaryDirectory(prefix="zenrec-peer-") as tmp:
            split_dir = Path(tmp) / "split"
            if len(splits) > 1:
                for j, sp in enumerate(splits):
                    export_split(sp, split_dir, fold=j)
            else:
                valid = None
                if splits[0].valid is None or not len(splits[0].valid):
                    from zenrec.tuning.tuner import tuning_split

                    carved, how = tuning_split(data, protocol, seed)
                    valid = carved.valid
                    split_note += (f"; valid.tsv = the validation part zenrec tunes on ({how}), a subset of "
                                   "train.tsv: the peer trains on the whole train part as zenrec's refit does")
                export_split(splits[0], split_dir, valid=valid)
            files = sorted(split_dir.iterdir())
            manifest = {"dataset": ds.name, "protocol": protocol.summary(ds.name), "seed": seed,
                        "folds": len(splits), "files": [f.name for f in files], "description": split_note,
                        "sizes": [list(sp.sizes()) for sp in splits]}
            atomic_write_text(split_dir / "split.json", json.dumps(manifest, indent=2))
            split_sha = _files_sha256(files)
            for peer in peers:
                cid = cell_id(dname, pname, peer.key, seed)
                out = Path(tmp) / f"{_safe(peer.key)}.json"
                argv, version, reason = _peer_command(config, peer, split_dir, out, seed)
                rec: dict[str, Any] = {
                    "kind": "peer", "library": peer.library, "library_version": version, "model": peer.model,
                    "label": peer.key, "hyperparameters": dict(peer.params), "dataset": ds.name,
                    "dataset_sha256": ds.source_sha256, "data_fingerprint": data.fingerprint(),
                    "split_sha256": split_sha, "filters": data.filters, "protocol": protocol.summary(ds.name),
                    "split": {"description": split_note, "folds": len(splits),
                              "sizes": [list(sp.sizes()) for sp in splits], "files": [f.name for f in files]},
                    "seed": seed, "metrics": {}, "fit_seconds": None, "eval_seconds": None, "seconds": None,
                    "versions": {**zenrec_versions(), **({peer.library: version} if version else {})},
                    "command": None if argv is None else shlex.join(
                        [a.replace(str(split_dir), "SPLIT_DIR").replace(str(out), "OUT.json")
                         .replace(f"{config.root}/", "") for a in argv]),
                    "per_user_file": None, "tuning": None, "history": [], "status": "ok", "reason": None,
                }
                if argv is None:
                    rec.update(status="skipped", reason=reason)
                else:
                    console.print(f"[bold]{cid}[/bold] {peer.library} {peer.model} on the exported split",
                                  highlight=False)
                    t0 = time.perf_counter()
                    try:
                        proc = subprocess.run(argv, cwd=config.root, capture_output=True, text=True,
                                              timeout=peer.timeout, check=False)
                        rec["seconds"] = time.perf_counter() - t0
                        if proc.returncode != 0:
                            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
                            raise RuntimeError(f"exit code {proc.returncode}: {tail}")
                        got = _parse_peer_output(out, proc.stdout)
                    except subprocess.TimeoutExpired:
                        rec.update(status="failed", reason=f"stopped after the peer timeout of {peer.timeout:g} s",
                                   seconds=time.perf_counter() - t0)
                    except (OSError, RuntimeError, ValueError) as exc:
                        rec.update(status="failed", reason=str(exc)[:2000],
                                   seconds=rec["seconds"] or time.perf_counter() - t0)
                    else:
                        metrics = dict(got.get("metrics") or {})
                        metrics.update({k: got[k] for k in ("rmse", "mae") if k in got and k not in metrics})
                        rec["metrics"] = {str(k).lower(): float(v) for k, v in metrics.items()
                                          if isinstance(v, (int, float))}
                        rec["fit_seconds"] = got.get("fit_seconds")
                        rec["eval_seconds"] = got.get("eval_seconds")
                        if rec["eval_seconds"] is None and got.get("total_seconds") is not None \
                                and rec["fit_seconds"] is not None:
                            rec["eval_seconds"] = float(got["total_seconds"]) - float(rec["fit_seconds"])
                        rec["library_version"] = rec["library_version"] or got.get("version")
                        rec["peer_record"] = {k: v for k, v in got.items() if k != "metrics"}
                        if not rec["metrics"]:
                            rec.update(status="failed", reason="the peer's record has no metrics")
                rec["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                atomic_write_text(run_dir / "cells" / f"{cid}.json", json.dumps(rec, indent=2, default=str))
                if rec["status"] == "ok":
                    ran += 1
                    main = protocol.main_metric
                    console.print(f"  {main} = {rec['metrics'].get(main, float('nan')):.4f}  "
                                  f"{rec['seconds']:.1f} s", highlight=False)
                else:
                    not_run += 1
                    console.print(f"  {cid}: {rec['status']}: {rec['reason']}", highlight=False)
    return {"peer_cells": n_cells, "peers_ran": ran, "peers_kept": kept, "peers_not_run": not_run}


def _files_sha256(files: list[Path]) -> str:
    import hashlib

    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


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

    from zenrec.evaluation.metrics import higher_is_better
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
        peer = r.get("kind") == "peer"
        row = {
            "label": r["label"], "library": r.get("library", "zenrec"),
            "library_version": r.get("library_version") if peer else (r.get("versions") or {}).get("zenrec"),
            "model": r["model"],
            "dataset": r["dataset"], "protocol": r["protocol"]["name"], "seed": r["seed"],
            "status": r.get("status", "ok"), "reason": r.get("reason"),
            "dataset_sha256": r.get("dataset_sha256"), "data_fingerprint": r.get("data_fingerprint"),
            "hyperparameters": json.dumps(r["hyperparameters"], sort_keys=True),
            "tuned": r.get("tuning") is not None,
            "fit_seconds": None if r.get("fit_seconds") is None else float(r["fit_seconds"]),
            "eval_seconds": None if r.get("eval_seconds") is None else float(r["eval_seconds"]),
            "seconds": float(r["seconds"]) if peer and r.get("seconds") is not None
            else (None if peer else float(r["fit_seconds"]) + float(r["eval_seconds"])),
            "versions": json.dumps(r["versions"], sort_keys=True), "command": r.get("command"),
            "created": r.get("created"),
        }
        row.update({k: float(v) for k, v in r["metrics"].items()})
        rows.append(row)
    results = pl.DataFrame(rows, infer_schema_length=None)
    _atomic_parquet(results, run_dir / "results.parquet")
    _atomic_csv(results, run_dir / "results.csv")

    from zenrec.evaluation.protocols import get_protocol

    order = {m.key: j for j, m in enumerate([*config.models, *config.peers])}
    summary_rows, sig_rows = [], []
    for (dname, pname), grp in results.group_by(["dataset", "protocol"], maintain_order=True):
        protocol = get_protocol(str(pname))
        metrics = [m for m in (config.metrics or [protocol.main_metric]) if m in grp.columns]
        extra = [c for c in grp.columns if c.split("@")[0] in ("coverage", "avg_popularity", "gini", "novelty")
                 and c.endswith("@10")]
        for label in sorted(set(grp["label"].to_list()), key=lambda x: order.get(x, 99)):
            g_all = grp.filter(pl.col("label") == label)
            g = g_all.filter(pl.col("status") == "ok")
            first = (g if g.height else g_all).sort("seed").row(0, named=True)
            reasons = sorted({x for x in g_all.filter(pl.col("status") != "ok")["reason"].to_list() if x})
            fit = g["fit_seconds"].drop_nulls()
            srow: dict[str, Any] = {"dataset": dname, "protocol": pname, "label": label,
                                    "library": first["library"], "library_version": first["library_version"],
                                    "model": first["model"],
                                    "n_seeds": g.height, "tuned": bool(first["tuned"]),
                                    "hyperparameters": first["hyperparameters"],
                                    "fit_seconds": float(fit.mean()) if fit.len() else math.nan,
                                    "seconds": float(g["seconds"].drop_nulls().mean())
                                    if g["seconds"].drop_nulls().len() else math.nan,
                                    "note": "; ".join(reasons) or None}
            for m in metrics + extra:
                mean, lo, hi = mean_ci(g[m].cast(pl.Float64).fill_null(math.nan).to_numpy()) \
                    if g.height else (math.nan,) * 3
                srow[m] = mean
                srow[f"{m}_ci_low"], srow[f"{m}_ci_high"] = lo, hi
            summary_rows.append(srow)
        # significance: each user's value averaged over seeds (and folds), paired over users;
        # peers report aggregate metrics only and are left out
        base = config.baseline_label
        if base not in set(grp["label"].to_list()):
            continue
        for m in metrics:
            per_user: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            for label in sorted(set(grp["label"].to_list()), key=lambda x: order.get(x, 99)):
                frames = []
                for r in recs:
                    if r["label"] == label and r["dataset"] == dname and r["protocol"]["name"] == pname \
                            and r.get("per_user_file"):
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
                                         lower_is_better=not higher_is_better(m)):
                sig_rows.append({"dataset": dname, "protocol": pname, "metric": m, **s})
    summary = pl.DataFrame(summary_rows, infer_schema_length=None)
    _atomic_parquet(summary, run_dir / "summary.parquet")
    _atomic_csv(summary, run_dir / "summary.csv")
    sig = pl.DataFrame(sig_rows, infer_schema_length=None) if sig_rows else None
    if sig is not None:
        _atomic_csv(sig, run_dir / "significance.csv")
        _atomic_parquet(sig, run_dir / "significance.parquet")
    return {"results": results, "summary": summary, "significance": sig}
