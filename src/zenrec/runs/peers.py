"""Peer libraries (RecBole, Surprise, or any command) run on exactly zenrec's split.

A peer runs as a subprocess with its own Python interpreter (its own virtual environment), on
zenrec's split exported as tab-separated files (:func:`export_split`), and reports a JSON record
with its metrics; the result is a :class:`~zenrec.runs.record.RunRecord` of kind ``peer``. A
peer that is not configured or not installed is recorded as skipped with the reason; a crash or
a timeout as failed. Neither raises.

Where a built-in peer's interpreter is found (:func:`peer_python`), first to last: the
``python`` (or ``venv``) key of its ``[[peers]]`` entry, then the environment variable
``ZENREC_PEER_PYTHON_<LIBRARY>`` (``ZENREC_PEER_PYTHON_RECBOLE``). The runner scripts ship with
zenrec (``zenrec/runs/peer_scripts/``) and are run by path with that interpreter, so an
installed zenrec needs no checkout of its repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from zenrec._errors import ConfigError
from zenrec._io import atomic_write_json
from zenrec._io import versions as zenrec_versions
from zenrec.data.dataset import Dataset
from zenrec.runs.record import RunRecord
from zenrec.splits import Split

__all__ = [
    "PEER_LIBRARIES",
    "PEER_SCRIPTS",
    "SETUP_HINT",
    "PeerEntry",
    "PeerLibrary",
    "PeerSplit",
    "export_peer_split",
    "export_split",
    "peer_command",
    "peer_python",
    "run_peer",
    "run_peer_script",
]

PEER_SCRIPTS = Path(__file__).resolve().with_name("peer_scripts")
"""The runner scripts shipped with zenrec (package data; run by path, never imported)."""


@dataclass(frozen=True)
class PeerLibrary:
    """A library zenrec has a built-in runner for."""

    name: str
    """Display name (``RecBole``)."""
    env_var: str
    """Environment variable naming its interpreter (``ZENREC_PEER_PYTHON_RECBOLE``)."""
    runner: str
    """The runner script's file name in :data:`PEER_SCRIPTS`."""
    dist: str
    """Distribution name whose ``*.dist-info`` gives the version."""
    modes: tuple[Literal["full", "sampled", "rating"], ...]
    """Evaluation modes the runner supports."""

    @property
    def runner_path(self) -> Path:
        """The runner script's path in the installed package."""
        return PEER_SCRIPTS / self.runner


PEER_LIBRARIES: dict[str, PeerLibrary] = {
    "recbole": PeerLibrary(
        "RecBole", "ZENREC_PEER_PYTHON_RECBOLE", "recbole_run.py", "recbole", ("full",)
    ),
    "surprise": PeerLibrary(
        "Surprise", "ZENREC_PEER_PYTHON_SURPRISE", "surprise_run.py", "scikit_surprise", ("rating",)
    ),
}
SETUP_HINT = (
    "the repository's setup_peers.sh (in its benchmarks folder) creates the environments and "
    "prints the line to set"
)


class PeerEntry(BaseModel):
    """Another library run on exactly zenrec's split of each cell (its own venv, a subprocess)."""

    model_config = ConfigDict(extra="forbid")

    library: str
    """``recbole`` or ``surprise`` (built-in runners), or any name together with ``command``."""
    model: str
    """The library's model name (RecBole ``EASE``, ``ItemKNN``, ``Pop``...; Surprise ``SVD``)."""
    label: str | None = None
    """Row label (default ``LIBRARY-model`` in lower case)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """RecBole config keys (``--set key=json``), Surprise algorithm keyword arguments, or
    ``--set key=json`` options of a custom command."""
    python: str | None = None
    """The library's Python interpreter (default: ``$ZENREC_PEER_PYTHON_<LIBRARY>``); a
    relative path is relative to the config file's folder."""
    venv: str | None = None
    """The library's virtual environment (its ``bin/python`` is used), instead of ``python``;
    relative to the config file's folder."""
    command: list[str] | None = None
    """Run this instead of the library's runner, e.g. ``["python", "my_peer.py"]``; it gets
    ``--split-dir DIR --model MODEL --out FILE --seed N [--set key=json ...]`` and prints or
    writes a JSON record with ``metrics`` (see docs/tuning.md). Relative paths are relative to
    the config file's folder."""
    protocols: list[str] | None = None
    """Only under these protocols (default: all of the config's)."""
    timeout: float | None = Field(None, gt=0)
    """Seconds after which a peer cell is stopped and recorded as failed."""

    @property
    def key(self) -> str:
        """Row label."""
        return self.label or f"{self.library}-{self.model}".lower()

    @model_validator(mode="after")
    def _runner(self) -> PeerEntry:
        if self.library not in PEER_LIBRARIES and self.command is None:
            raise ValueError(
                f"no built-in runner for library {self.library!r} (built-in: "
                f"{', '.join(PEER_LIBRARIES)}); give a 'command'"
            )
        if self.command is not None and not self.command:
            raise ValueError("'command' is empty; give the program and its arguments")
        if self.python is not None and self.venv is not None:
            raise ValueError("give 'python' or 'venv', not both")
        return self


def peer_python(
    library: str,
    python: str | Path | None = None,
    *,
    venv: str | Path | None = None,
    root: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The interpreter of a built-in peer library, from its setting or its environment variable.

    Args:
        library: A key of :data:`PEER_LIBRARIES` (``recbole``).
        python: The interpreter, when given explicitly (a ``[[peers]]`` entry's ``python``).
        venv: Its virtual environment instead (``bin/python`` inside it).
        root: Folder that relative paths are relative to (default: the working directory).
        environ: The environment read (default ``os.environ``).

    Raises:
        ConfigError: One line naming the setting and the fix, when the library is not
            configured or the interpreter does not exist.
    """
    lib = PEER_LIBRARIES[library]
    env = os.environ if environ is None else environ
    if python is not None:
        where, path = f"the peer's 'python' = {str(python)!r}", Path(python)
    elif venv is not None:
        where, path = f"the peer's 'venv' = {str(venv)!r}", Path(venv) / "bin" / "python"
    elif env.get(lib.env_var):
        where, path = f"{lib.env_var}={env[lib.env_var]}", Path(env[lib.env_var])
    else:
        raise ConfigError(
            f"{lib.name} is not configured: set {lib.env_var} to the Python interpreter of its "
            f"environment (or 'python' in its [[peers]] entry); {SETUP_HINT}"
        )
    if not path.is_absolute():
        path = (root or Path.cwd()) / path
    if not path.exists():
        raise ConfigError(
            f"{lib.name} is not installed: {path} does not exist (from {where}); point "
            f"{lib.env_var} at an interpreter with {lib.dist} installed; {SETUP_HINT}"
        )
    return path


# ---------------------------------------------------------------------------- exporting a split
def _rating_text(r: Any) -> str:
    return f"{float(r):g}"


def export_split(
    split: Split, directory: str | Path, *, fold: int | None = None, valid: Dataset | None = None
) -> list[Path]:
    """Write one split's parts as tab-separated files a peer library reads.

    With ``fold=None``: ``train.tsv``, ``valid.tsv`` (when there is a validation part, or
    ``valid`` is given), ``test.tsv`` with the header ``user_id item_id rating`` (RecBole's
    runner). With ``fold=j``: ``foldj.train.tsv`` and ``foldj.test.tsv`` without header
    (Surprise's ``PredefinedKFold``). Raw ids; rating 1 for implicit data.

    Returns:
        The files written.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    valid = split.valid if valid is None else valid
    parts = (
        [("train", split.train), ("test", split.test)]
        if fold is not None
        else [
            ("train", split.train),
            *([("valid", valid)] if valid is not None and len(valid) else []),
            ("test", split.test),
        ]
    )
    files = []
    for part, ds in parts:
        users = ds.user_vocab.decode(ds.users)
        items = ds.item_vocab.decode(ds.items)
        ratings = ds.ratings if ds.ratings is not None else np.ones(len(ds), dtype=np.float32)
        f = d / (f"fold{fold}.{part}.tsv" if fold is not None else f"{part}.tsv")
        with open(f, "w", encoding="utf-8") as fh:
            if fold is None:
                fh.write("user_id\titem_id\trating\n")
            fh.writelines(
                f"{u}\t{i}\t{_rating_text(r)}\n" for u, i, r in zip(users, items, ratings)
            )
        files.append(f)
    return files


@dataclass(frozen=True)
class PeerSplit:
    """One exported split that peers run on."""

    directory: Path
    """Where the files are."""
    files: list[Path]
    """The exported files (and ``split.json``)."""
    sha256: str
    """Hash over the files."""
    description: str
    """The split in words (with a note on any carved-out validation part)."""
    sizes: list[list[int]]
    """Part sizes per fold."""


def _files_sha256(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def export_peer_split(
    splits: list[Split],
    directory: str | Path,
    *,
    manifest: dict[str, Any],
    valid: Dataset | None = None,
    valid_note: str | None = None,
) -> PeerSplit:
    """Export a protocol's splits (one, or k folds) plus a ``split.json`` manifest.

    Args:
        splits: The protocol's splits of one cell.
        directory: Target directory.
        manifest: Extra manifest fields (dataset, protocol summary, seed).
        valid: A validation part to export for a single split without one (the part zenrec
            tunes on).
        valid_note: The sentence saying how ``valid`` was carved.
    """
    d = Path(directory)
    description = splits[0].description
    if len(splits) > 1:
        for j, sp in enumerate(splits):
            export_split(sp, d, fold=j)
    else:
        export_split(splits[0], d, valid=valid)
        if valid is not None and valid_note:
            description += (
                f"; valid.tsv = the validation part zenrec tunes on ({valid_note}), a subset of "
                "train.tsv: the peer trains on the whole train part as zenrec's refit does"
            )
    files = sorted(d.iterdir())
    sizes = [list(sp.sizes()) for sp in splits]
    atomic_write_json(
        d / "split.json",
        {
            **manifest,
            "folds": len(splits),
            "files": [f.name for f in files],
            "description": description,
            "sizes": sizes,
        },
    )
    return PeerSplit(d, files, _files_sha256(files), description, sizes)


# ---------------------------------------------------------------------------- running a peer
def _peer_version(python: Path, dist: str | None) -> str | None:
    """The library's version from its dist-info directory (no interpreter started)."""
    if not dist:
        return None
    venv = python.parent.parent  # VENV/bin/python
    for info in sorted(venv.glob(f"lib/python*/site-packages/{dist}-*.dist-info")):
        return info.name.removeprefix(f"{dist}-").removesuffix(".dist-info")
    return None


def _runner_argv(
    library: str,
    python: Path,
    model: str,
    split_dir: Path,
    out: Path,
    params: dict[str, Any],
) -> list[str]:
    """The command line of a built-in runner."""
    runner = str(PEER_LIBRARIES[library].runner_path)
    if library == "recbole":
        argv = [str(python), runner, "--split-dir", str(split_dir), "--model", model]
        argv += ["--out", str(out)]
        return argv + [f"--set={k}={json.dumps(v)}" for k, v in params.items()]
    argv = [str(python), runner, str(split_dir), str(out)]
    if model != "SVD" or params:
        argv += [model, json.dumps(params)]
    return argv


def peer_command(
    peer: PeerEntry,
    root: Path,
    split_dir: Path,
    out: Path,
    seed: int,
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[list[str] | None, str | None, str | None]:
    """(argv, library version, reason it cannot run) of one peer cell.

    ``root`` is the folder relative paths of the entry are relative to (the config's folder).
    """
    if peer.command is not None:
        # relative paths (with a slash) that exist under root are taken from there;
        # a bare program name ("python") is looked up on PATH
        argv = [
            str(root / a) if "/" in a and not Path(a).is_absolute() and (root / a).exists() else a
            for a in peer.command
        ]
        argv += [
            "--split-dir",
            str(split_dir),
            "--model",
            peer.model,
            "--out",
            str(out),
            "--seed",
            str(seed),
        ]
        argv += [f"--set={k}={json.dumps(v)}" for k, v in peer.params.items()]
        return argv, None, None
    try:
        py = peer_python(peer.library, peer.python, venv=peer.venv, root=root, environ=environ)
    except ConfigError as exc:
        return None, None, str(exc)
    lib = PEER_LIBRARIES[peer.library]
    params = {"seed": seed, **peer.params} if peer.library == "recbole" else dict(peer.params)
    argv = _runner_argv(peer.library, py, peer.model, split_dir, out, params)
    return argv, _peer_version(py, lib.dist), None


def _parse_peer_output(out: Path, stdout: str) -> dict[str, Any]:
    if out.exists() and out.stat().st_size:
        return dict(json.loads(out.read_text()))
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise ValueError("the peer wrote no JSON record (neither --out nor a JSON line on stdout)")


def _run_subprocess(
    argv: list[str],
    root: Path,
    out: Path,
    timeout: float | None,
    env: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], float]:
    """Run the peer; (its JSON record, seconds). Raises RuntimeError/ValueError/TimeoutExpired."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"exit code {proc.returncode}: {tail}")
    return _parse_peer_output(out, proc.stdout), secs


def _metrics_of(got: dict[str, Any]) -> dict[str, float]:
    metrics = dict(got.get("metrics") or {})
    metrics.update({k: got[k] for k in ("rmse", "mae") if k in got and k not in metrics})
    return {str(k).lower(): float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def run_peer(
    peer: PeerEntry, split: PeerSplit, *, root: Path, seed: int, out: Path, base: dict[str, Any]
) -> RunRecord:
    """Run one peer on an exported split and return its :class:`RunRecord` (never raises).

    Args:
        peer: The peer to run.
        split: The exported split.
        root: The config file's folder (peer paths are relative to it; the subprocess runs
            there).
        seed: The cell's seed.
        out: Where the peer writes its JSON record.
        base: Record fields shared by every peer of the cell (dataset, protocol, hashes...).
    """
    argv, version, reason = peer_command(peer, root, split.directory, out, seed)
    rec = RunRecord(
        kind="peer",
        library=peer.library,
        library_version=version,
        model=peer.model,
        label=peer.key,
        hyperparameters=dict(peer.params),
        split_sha256=split.sha256,
        seed=seed,
        split={
            "description": split.description,
            "folds": len(split.sizes),
            "sizes": split.sizes,
            "files": [f.name for f in split.files],
        },
        versions={**zenrec_versions(), **({peer.library: version} if version else {})},
        command=None
        if argv is None
        else shlex.join(
            [
                a.replace(str(split.directory), "SPLIT_DIR")
                .replace(str(out), "OUT.json")
                .replace(f"{root}/", "")
                .replace(str(PEER_SCRIPTS), "zenrec/runs/peer_scripts")
                for a in argv
            ]
        ),
        **base,
    )
    if argv is None:
        return rec.model_copy(update={"status": "skipped", "reason": reason})
    t0 = time.perf_counter()
    try:
        got, secs = _run_subprocess(argv, root, out, peer.timeout)
    except subprocess.TimeoutExpired:
        return rec.model_copy(
            update={
                "status": "failed",
                "seconds": time.perf_counter() - t0,
                "reason": f"stopped after the peer timeout of {peer.timeout:g} s",
            }
        )
    except (OSError, RuntimeError, ValueError) as exc:
        return rec.model_copy(
            update={
                "status": "failed",
                "reason": str(exc)[:2000],
                "seconds": time.perf_counter() - t0,
            }
        )
    fit = got.get("fit_seconds")
    evs = got.get("eval_seconds")
    if evs is None and got.get("total_seconds") is not None and fit is not None:
        evs = float(got["total_seconds"]) - float(fit)
    metrics = _metrics_of(got)
    upd: dict[str, Any] = {
        "metrics": metrics,
        "seconds": secs,
        "fit_seconds": fit,
        "eval_seconds": evs,
        "library_version": rec.library_version or got.get("version"),
        "peer_record": {k: v for k, v in got.items() if k != "metrics"},
    }
    if not metrics:
        upd.update(status="failed", reason="the peer's record has no metrics")
    return rec.model_copy(update=upd)


def run_peer_script(
    library: str,
    model: str,
    split_dir: str | Path,
    *,
    params: dict[str, Any] | None = None,
    python: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run a built-in peer's runner once on an exported split and return its JSON record.

    The one way zenrec runs RecBole or Surprise: benchmark grids (:func:`run_peer`) and the
    repository's side-by-side scripts both come here.

    Args:
        library: ``recbole`` or ``surprise``.
        model: The library's model name (``EASE``, ``SVD``).
        split_dir: A split as :func:`export_split` writes it (or RecBole's golden split folder).
        params: RecBole config keys, or the Surprise algorithm's keyword arguments.
        python: The library's interpreter (default: ``$ZENREC_PEER_PYTHON_<LIBRARY>``).
        env: Extra environment variables of the subprocess (thread counts).
        timeout: Seconds before the run is stopped.

    Returns:
        The runner's record (``metrics`` or ``rmse``/``mae``, ``fit_seconds``...).

    Raises:
        ConfigError: The library is not configured or not installed (one line with the fix).
        RuntimeError: The runner failed (its exit code and the last lines of its output).
    """
    if library not in PEER_LIBRARIES:
        raise ConfigError(
            f"no built-in runner for library {library!r}; use one of {', '.join(PEER_LIBRARIES)}"
        )
    py = peer_python(library, python)
    with tempfile.TemporaryDirectory(prefix="zenrec-peer-") as tmp:
        out = Path(tmp) / "record.json"
        argv = _runner_argv(library, py, model, Path(split_dir).resolve(), out, params or {})
        try:
            got, _secs = _run_subprocess(argv, Path(tmp), out, timeout, env)
        except (subprocess.TimeoutExpired, ValueError) as exc:
            raise RuntimeError(f"{PEER_LIBRARIES[library].name} {model}: {exc}") from exc
    return got
