"""Model bundles: a directory of arrays (safetensors) and JSON, written atomically.

Layout::

    bundle.json         model name, config, task, metadata, versions, content hash
    arrays.safetensors  every learned array (sparse matrices as indptr/indices/data)
    vocab.json          raw user and item ids
    items.json          display metadata of items (titles, genres), optional

Loading never executes code: arrays come from safetensors, the rest is JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from zenrec._errors import BundleError
from zenrec._version import __version__

__all__ = ["BUNDLE_FORMAT", "read_bundle", "versions", "write_bundle"]

BUNDLE_FORMAT = "zenrec-bundle"
BUNDLE_VERSION = 1


def versions() -> dict[str, str]:
    """Versions of zenrec, Python and the libraries loaded in this process."""
    out = {"zenrec": __version__, "python": platform.python_version()}
    for mod in ("numpy", "scipy", "polars", "implicit", "torch", "optuna", "statsforecast"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = str(getattr(m, "__version__", "unknown"))
    if "numpy" not in out:
        out["numpy"] = np.__version__
    return out


def _hash_files(d: Path, names: list[str]) -> str:
    h = hashlib.sha256()
    for n in names:
        h.update(n.encode())
        h.update((d / n).read_bytes())
    return h.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bundle(
    path: str | Path,
    *,
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    vocab: dict[str, Any],
    items: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle directory atomically (a crash leaves any previous bundle intact)."""
    from safetensors.numpy import save_file

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp / "arrays.safetensors"))
        (tmp / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        files = ["arrays.safetensors", "vocab.json"]
        if items:
            (tmp / "items.json").write_text(json.dumps(items), encoding="utf-8")
            files.append("items.json")
        body = {
            "format": BUNDLE_FORMAT,
            "format_version": BUNDLE_VERSION,
            **meta,
            "versions": versions(),
            "files": files,
        }
        body["content_sha256"] = _hash_files(tmp, files)
        (tmp / "bundle.json").write_text(json.dumps(body, indent=2, default=str), encoding="utf-8")
        old = None
        if target.exists():
            if not (target / "bundle.json").exists() and any(target.iterdir()):
                raise BundleError(
                    f"{target}: exists and is not a zenrec bundle; choose another --output"
                )
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_bundle(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
    """Read and verify a bundle: (meta, arrays, vocab, items)."""
    from safetensors.numpy import load_file

    d = Path(path)
    meta_path = d / "bundle.json"
    if not meta_path.exists():
        raise BundleError(f"{d}: not a zenrec bundle (no bundle.json); pass the directory 'zenrec train' or 'evaluate --save' wrote")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{meta_path}: invalid JSON ({exc}); the bundle is corrupt") from exc
    if meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{meta_path}: format is {meta.get('format')!r}, expected {BUNDLE_FORMAT!r}")
    if int(meta.get("format_version", 0)) > BUNDLE_VERSION:
        raise BundleError(
            f"{meta_path}: bundle format {meta['format_version']} is newer than this zenrec "
            f"({BUNDLE_VERSION}); upgrade zenrec"
        )
    files = meta.get("files", [])
    missing = [f for f in files if not (d / f).exists()]
    if missing:
        raise BundleError(f"{d}: bundle files missing: {missing}; the bundle is incomplete")
    if _hash_files(d, files) != meta.get("content_sha256"):
        raise BundleError(f"{d}: content hash mismatch; the bundle was modified or is corrupt")
    arrays = load_file(str(d / "arrays.safetensors"))
    vocab = json.loads((d / "vocab.json").read_text(encoding="utf-8"))
    items = json.loads((d / "items.json").read_text(encoding="utf-8")) if "items.json" in files else {}
    return meta, arrays, vocab, items
