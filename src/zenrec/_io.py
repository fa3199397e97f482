"""Atomic file writing and the version record: one implementation each, used everywhere.

Every artifact zenrec writes (bundles, run records, benchmark tables, plots, checkpoints,
request logs' rotated files) goes through these helpers, so a crash or Ctrl-C leaves either
the old file or the new one, never a half-written one.

Examples:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_json(d / "x.json", {"a": 1})
    >>> (d / "x.json").read_text()
    '{\\n  "a": 1\\n}'
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from zenrec._version import __version__

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "versions",
]

_LIBRARIES = (
    "numpy",
    "scipy",
    "polars",
    "implicit",
    "torch",
    "optuna",
    "statsforecast",
    "fastapi",
    "faiss",
)


def versions() -> dict[str, str]:
    """Versions of zenrec, Python and the libraries loaded in this process."""
    import numpy as np

    out = {"zenrec": __version__, "python": platform.python_version()}
    for mod in _LIBRARIES:
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = str(getattr(m, "__version__", "unknown"))
    out.setdefault("numpy", np.__version__)
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (best effort: not every filesystem lets a directory be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place.

    For writers that want a file name rather than a handle (polars, matplotlib, safetensors).
    On any exception the temporary file is removed and ``path`` is left untouched.

    Args:
        path: the final file.
        suffix: suffix of the temporary name (some writers pick the format from it).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=target.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through an fsynced temporary file renamed into place."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (non-JSON values are written with ``str``)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, default=str))


@contextlib.contextmanager
def atomic_dir(
    path: str | os.PathLike[str], *, refuse: Callable[[Path], str | None] | None = None
) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success swap it into place.

    A previous directory at ``path`` is replaced only after the new one is complete, so a crash
    leaves the old one intact.

    Args:
        path: the final directory.
        refuse: called with ``path`` when it already exists; a returned message aborts the swap
            with ``FileExistsError`` (e.g. "exists and is not a bundle").
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb+") as fh:
                    os.fsync(fh.fileno())
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if target.exists():
            if refuse is not None and (msg := refuse(target)):
                raise FileExistsError(msg)
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
