"""Request bodies of a run, encoded once from bundle or dataset ids (cycled during the run)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from zenrec._errors import DataError
from zenrec.loadtest.config import ENDPOINTS, Target

__all__ = ["build_requests", "ids_from"]

_POOL = 4096  # distinct pre-encoded request bodies, cycled


def ids_from(source: str | Path, kind: Literal["users", "items"]) -> list[Any]:
    """Raw user or item ids from a bundle directory or a built-in dataset name.

    Args:
        source: A bundle directory (its ``vocab.json`` is read) or a dataset name
            (``ml-100k``, ``ml-1m``, ...) or interaction file that ``load_dataset`` reads.
        kind: ``users`` for ``recommend``, ``items`` for ``similar``.

    Raises:
        DataError: Neither a bundle nor a readable dataset, or no ids.
    """
    p = Path(source)
    if p.is_dir():
        vocab_path = p / "vocab.json"
        if not (p / "bundle.json").exists() or not vocab_path.exists():
            raise DataError(
                f"{p}: not a zenrec bundle (no bundle.json/vocab.json); pass a bundle "
                "directory or a dataset name such as ml-1m"
            )
        try:
            payload = json.loads(vocab_path.read_text(encoding="utf-8"))[kind]
            ids = list(payload["ids"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(
                f"{vocab_path}: unreadable vocabulary ({exc}); the bundle is corrupt"
            ) from None
    else:
        from zenrec.data import load_dataset

        ds = load_dataset(str(source))
        vocab = ds.user_vocab if kind == "users" else ds.item_vocab
        ids = vocab.ids.tolist()
    if not ids:
        raise DataError(f"{source}: has no {kind[:-1]} ids to put in requests")
    return ids


def build_requests(
    target: Target,
    endpoint: str,
    *,
    ids: Sequence[Any] | None = None,
    k: int = 10,
    seed: int = 0,
    n: int = _POOL,
    extra: dict[str, Any] | None = None,
) -> list[bytes]:
    """Encode the HTTP/1.1 requests of a run once (cycled during the run).

    ``recommend`` bodies are ``{"user_id": ..., "k": k}`` and ``similar`` bodies
    ``{"item_id": ..., "k": k}``, with ids drawn uniformly (seeded) from ``ids``; without
    ``ids`` they use ids ``1..1000``; ``extra`` fields are merged into every body, last.
    ``healthz`` is one bodiless GET.
    """
    method, path = ENDPOINTS[endpoint]
    line = f"{method} {target.base_path}{path} HTTP/1.1\r\nHost: {target.host_header}\r\n"
    if method == "GET":
        return [(line + "Accept: */*\r\n\r\n").encode()]
    pool: Sequence[Any] = ids if ids else list(range(1, 1001))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(pool), size=min(n, max(1, len(pool) * 4)))
    key = "user_id" if endpoint == "recommend" else "item_id"
    out = []
    for j in picks:
        fields = {key: pool[int(j)], "k": k, **(extra or {})}
        body = json.dumps(fields, separators=(",", ":")).encode()
        head = (
            line + "Content-Type: application/json\r\nAccept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out
