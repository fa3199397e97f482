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
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from zenrec._errors import BundleError
from zenrec._io import atomic_dir, versions

__all__ = [
    "BUNDLE_FORMAT",
    "mmap_safetensors",
    "read_bundle",
    "sparse_from_state",
    "sparse_state",
    "write_bundle",
]

BUNDLE_FORMAT = "zenrec-bundle"
BUNDLE_VERSION = 1


def _hash_files(d: Path, names: list[str]) -> str:
    h = hashlib.sha256()
    for n in names:
        h.update(n.encode())
        with open(d / n, "rb") as f:  # in blocks: a large file is never held whole
            while block := f.read(1 << 22):
                h.update(block)
    return h.hexdigest()


_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U64": np.uint64,
    "U32": np.uint32,
    "U16": np.uint16,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def mmap_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file as copy-on-write memory maps of the file.

    Processes that map the same file share its pages (one copy of the model in memory for
    any number of workers); a write to an array stays private to the process that made it.
    The layout is safetensors' own: an 8-byte little-endian header length, a JSON header of
    ``{name: {dtype, shape, data_offsets}}``, then the data, little-endian and C-ordered.

    Raises:
        BundleError: Not a safetensors file, or a dtype numpy has no equivalent of.
    """
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            raise BundleError(f"{p}: not a safetensors file (bad header length)")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BundleError(f"{p}: not a safetensors file ({exc})") from None
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise BundleError(f"{p}: array '{name}' has dtype {info['dtype']}, not memory-mappable")
        start, end = (int(x) for x in info["data_offsets"])
        shape = tuple(int(x) for x in info["shape"])
        if start == end:
            out[name] = np.zeros(shape, dtype=dtype)
            continue
        out[name] = np.memmap(
            p, dtype=np.dtype(dtype).newbyteorder("<"), mode="c", offset=8 + n + start, shape=shape
        )
    return out


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

    def not_a_bundle(existing: Path) -> str | None:
        if not (existing / "bundle.json").exists() and any(existing.iterdir()):
            return f"{existing}: exists and is not a zenrec bundle; choose another output directory"
        return None

    try:
        with atomic_dir(target, refuse=not_a_bundle) as tmp:
            save_file(
                {k: np.ascontiguousarray(v) for k, v in arrays.items()},
                str(tmp / "arrays.safetensors"),
            )
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
            (tmp / "bundle.json").write_text(
                json.dumps(body, indent=2, default=str), encoding="utf-8"
            )
    except FileExistsError as exc:
        raise BundleError(str(exc)) from None
    return target


def read_bundle(
    path: str | Path, *, mmap: bool = False
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any], dict[str, Any]]:
    """Read and verify a bundle: (meta, arrays, vocab, items).

    Args:
        mmap: Map the arrays from the file (copy-on-write, :func:`mmap_safetensors`) instead
            of reading them: worker processes serving one bundle then share one copy.
    """
    from safetensors.numpy import load_file

    d = Path(path)
    meta_path = d / "bundle.json"
    if not meta_path.exists():
        raise BundleError(
            f"{d}: not a zenrec bundle (no bundle.json); pass a directory written by "
            "model.save(path) in Python, or by 'zenrec train --output' / "
            "'zenrec evaluate --save-bundle'"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{meta_path}: invalid JSON ({exc}); the bundle is corrupt") from exc
    if meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(
            f"{meta_path}: format is {meta.get('format')!r}, expected {BUNDLE_FORMAT!r}"
        )
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
    arrays = (
        mmap_safetensors(d / "arrays.safetensors")
        if mmap
        else load_file(str(d / "arrays.safetensors"))
    )
    vocab = json.loads((d / "vocab.json").read_text(encoding="utf-8"))
    items = (
        json.loads((d / "items.json").read_text(encoding="utf-8")) if "items.json" in files else {}
    )
    return meta, arrays, vocab, items


def sparse_state(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A sparse matrix as bundle arrays ``PREFIX.indptr|indices|data|shape`` (CSR, float32)."""
    m = m.tocsr()
    return {
        f"{prefix}.indptr": m.indptr.astype(np.int64),
        f"{prefix}.indices": m.indices.astype(np.int64),
        f"{prefix}.data": m.data.astype(np.float32),
        f"{prefix}.shape": np.asarray(m.shape, dtype=np.int64),
    }


def sparse_from_state(prefix: str, arrays: dict[str, np.ndarray]) -> sp.csr_matrix:
    """The CSR matrix that :func:`sparse_state` stored under ``prefix`` in ``arrays``."""
    shape = tuple(int(x) for x in arrays[f"{prefix}.shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}.data"], arrays[f"{prefix}.indices"], arrays[f"{prefix}.indptr"]),
        shape=shape,
    )
