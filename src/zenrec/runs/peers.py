"""Peer libraries (RecBole, Surprise, or any command) run on exactly zenrec's split.

A peer runs as a subprocess in its own virtual environment, on zenrec's split exported as
tab-separated files (:func:`export_split`), and reports a JSON record with its metrics; the
result is a :class:`~zenrec.runs.record.RunRecord` of kind ``peer``. A peer whose environment is
missing is recorded as skipped with the reason; a crash or a timeout as failed. Neither raises.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from zenrec._io import atomic_write_json
from zenrec._io import versions as zenrec_versions
from zenrec.data.dataset import Dataset
from zenrec.runs.record import RunRecord
from zenrec.splits import Split

__all__ = [
    "PEER_LIBRARIES",
    "SETUP_HINT",
    "PeerEntry",
    "PeerLibrary",
    "PeerSplit",
    "export_peer_split",
    "export_split",
    "peer_command",
    "run_peer",
]


@dataclass(frozen=True)
class PeerLibrary:
    """A library zenrec has a built-in runner for."""

    name: str
    """Display name (``RecBole``)."""
    venv: str
    """Its virtual environment, relative to the repository root."""
    runner: str
    """The runner script, relative to the repository root."""
    dist: str
    """Distribution name whose ``*.dist-info`` gives the version."""
    modes: tuple[Literal["full", "sampled", "rating"], ...]
    """Evaluation modes the runner supports."""


PEER_LIBRARIES: dict[str, PeerLibrary] = {
    "recbole": PeerLibrary(
        "RecBole",
        "benchmarks/.venv-recbole",
        "benchmarks/peers/recbole_run.py",
        "recbole",
        ("full",),
    ),
    "surprise": PeerLibrary(
        "Surprise",
        "benchmarks/.venv-surprise",
        "benchmarks/peers/surprise_run.py",
        "scikit_surprise",
        ("rating",),
    ),
}
SETUP_HINT = "run bash benchmarks/peers/setup_peers.sh"


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
        return self


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


def peer_command(
    peer: PeerEntry, root: Path, split_dir: Path, out: Path, seed: int
) -> tuple[list[str] | None, str | None, str | None]:
    """(argv, library version, reason it cannot run) of one peer cell."""
    if peer.command is not None:
        # relative paths (with a slash) that exist under the repository root are taken from there;
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
    lib = PEER_LIBRARIES[peer.library]
    venv = Path(peer.venv or lib.venv)
    venv = venv if venv.is_absolute() else root / venv
    py = venv / "bin" / "python"
    if not py.exists():
        return None, None, f"not installed: {venv} has no bin/python; {SETUP_HINT}"
    runner = root / lib.runner
    if not runner.exists():
        return None, None, f"runner {runner} not found (the repository's benchmarks/peers/)"
    version = _peer_version(venv, lib.dist)
    if peer.library == "recbole":
        sets = {"seed": seed, **peer.params}
        argv = [
            str(py),
            str(runner),
            "--split-dir",
            str(split_dir),
            "--model",
            peer.model,
            "--out",
            str(out),
        ]
        argv += [f"--set={k}={json.dumps(v)}" for k, v in sets.items()]
        return argv, version, None
    if peer.model == "SVD" and not peer.params:
        return [str(py), str(runner), str(split_dir), str(out)], version, None
    return (
        [
            str(py),
            "-c",
            _SURPRISE_WRAPPER,
            str(runner.parent),
            peer.model,
            json.dumps(peer.params),
            str(split_dir),
            str(out),
        ],
        version,
        None,
    )


def _parse_peer_output(out: Path, stdout: str) -> dict[str, Any]:
    if out.exists() and out.stat().st_size:
        return dict(json.loads(out.read_text()))
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise ValueError("the peer wrote no JSON record (neither --out nor a JSON line on stdout)")


def _run_subprocess(
    argv: list[str], root: Path, out: Path, timeout: float | None
) -> tuple[dict[str, Any], float]:
    """Run the peer; (its JSON record, seconds). Raises RuntimeError/ValueError/TimeoutExpired."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv, cwd=root, capture_output=True, text=True, timeout=timeout, check=False
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
        root: Repository root (peer paths are relative to it; the subprocess runs there).
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
