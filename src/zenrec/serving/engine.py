"""A loaded bundle ready to answer requests, and the request logic (no HTTP here).

:func:`load_served` reads a bundle (verifying its content hash), builds the item-attribute
table and the retrieval index, and runs a smoke query; :func:`recommend` answers one request.
A :class:`ServedModel` never changes after it is built: a reload builds a new one and swaps the
reference, so a request that started on the old model finishes on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from zenrec._errors import BundleError, ZenrecError
from zenrec.models.base import Recommender
from zenrec.serving.attributes import AttributeFilter, ItemAttributes
from zenrec.serving.pinning import check_expected_version
from zenrec.serving.retrieval import DotProductView, HNSWIndex, dot_product_view, exact_top_k
from zenrec.serving.settings import ServeSettings

__all__ = ["Query", "Result", "ServedModel", "load_served", "recommend", "similar"]


@dataclass(frozen=True)
class Query:
    """One recommendation request, in raw ids."""

    user_id: Any = None
    recent_items: tuple[Any, ...] = ()
    k: int = 10
    exclude_seen: bool = True
    include_items: tuple[Any, ...] | None = None
    exclude_items: tuple[Any, ...] = ()
    filters: dict[str, AttributeFilter] = field(default_factory=dict)
    session_items: tuple[Any, ...] = ()
    """Items of the user's events the bundle was not trained on, oldest first (event store)."""


@dataclass
class Result:
    """The answer to a :class:`Query`: catalog indices best first, with scores."""

    items: np.ndarray
    scores: np.ndarray
    fallback: str
    unknown_items: list[Any]
    reranked: bool
    known_user: bool
    history_source: str = "none"
    """bundle: the model's row of a known user; events: the user's bundle history + events
    (+ request items); request: ``recent_items`` alone; none: popularity."""


@dataclass
class ServedModel:
    """An immutable loaded bundle: model, version, item attributes and retrieval index."""

    model: Recommender
    path: Path
    version: str
    meta: dict[str, Any]
    attributes: ItemAttributes
    view: DotProductView | None
    index: HNSWIndex | None
    reranker: Recommender | None
    loaded_at: datetime
    load_seconds: float
    rerank_candidates: int = 200

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def n_items(self) -> int:
        return self.model.n_items

    @property
    def retrieval(self) -> str:
        return "hnsw" if self.index is not None else "exact"

    def item_ids(self, idx: np.ndarray) -> list[Any]:
        assert self.model.item_vocab is not None
        return [
            v.item() if isinstance(v, np.generic) else v for v in self.model.item_vocab.decode(idx)
        ]

    def describe(self) -> dict[str, Any]:
        m = self.meta
        return {
            "model": self.name,
            "version": self.version,
            "content_sha256": m.get("content_sha256"),
            "dataset_sha256": m.get("dataset_sha256"),
            "config": m.get("config", {}),
            "metrics": m.get("metrics", {}),
            "created": m.get("created"),
            "loaded_at": self.loaded_at.isoformat(),
            "n_users": len(self.model.user_vocab or ()),
            "n_items": self.n_items,
            "retrieval": self.retrieval,
            "reranker": None if self.reranker is None else self.reranker.name,
            "item_attributes": self.attributes.describe(),
            "zenrec_version": m.get("versions", {}).get("zenrec"),
            "sample_users": [
                v.item() if isinstance(v, np.generic) else v
                for v in (
                    self.model.user_vocab.ids[:20] if self.model.user_vocab is not None else []
                )
            ],
        }


def _encode(model: Recommender, ids: Any) -> np.ndarray:
    assert model.item_vocab is not None
    return (
        model.item_vocab.encode(np.asarray([str(x) for x in ids]))
        if len(ids)
        else np.zeros(0, np.int64)
    )


def load_served(
    path: str | Path,
    settings: ServeSettings,
    *,
    reranker: Recommender | None = None,
    expect_version: str | None = None,
) -> ServedModel:
    """Load and verify a bundle, build its index, and run a smoke query.

    Args:
        expect_version: Refuse a bundle whose content sha256 does not start with this.

    Raises:
        BundleError: The bundle is unreadable, corrupt (content hash), incompatible, not the
            expected version, or its smoke query fails.
    """
    from zenrec.models.registry import load_model

    t0 = time.perf_counter()
    p = Path(path)
    if not p.is_dir():
        raise BundleError(f"{p}: no such bundle directory")
    try:
        model = load_model(p)
    except ZenrecError as exc:
        raise BundleError(str(exc)) from None
    except Exception as exc:  # unreadable arrays, truncated files: refuse with the reason
        raise BundleError(f"{p}: unreadable bundle ({type(exc).__name__}: {exc})") from None
    meta = dict(getattr(model, "bundle_meta", {}))
    if model.n_items == 0 or not len(model.user_vocab or ()):
        raise BundleError(f"{p}: the bundle's model has an empty catalog or no users")
    version = str(meta.get("content_sha256", ""))[:16]
    if len(version) != 16:
        raise BundleError(
            f"{p}: bundle.json has no content_sha256; re-save the bundle with this zenrec"
        )
    check_expected_version(p, str(meta["content_sha256"]), expect_version)
    attributes = ItemAttributes(model.item_meta, model.n_items)
    view = dot_product_view(model)
    index = None
    if view is not None and model.n_items > settings.ann_threshold:
        index = HNSWIndex(
            view.item_vectors,
            m=settings.hnsw_m,
            ef_construction=settings.hnsw_ef_construction,
            ef_search=settings.hnsw_ef_search,
            overfetch=settings.overfetch,
        )
    served = ServedModel(
        model=model,
        path=p.resolve(),
        version=version,
        meta=meta,
        attributes=attributes,
        view=view,
        index=index,
        reranker=reranker,
        loaded_at=datetime.now(UTC),
        load_seconds=0.0,
        rerank_candidates=settings.rerank_candidates,
    )
    _smoke(served)
    served.load_seconds = time.perf_counter() - t0
    return served


def _smoke(served: ServedModel) -> None:
    """One known-user, one history and one popularity query must give finite, full lists."""
    model = served.model
    assert model.user_vocab is not None and model.item_vocab is not None
    k = min(5, served.n_items)
    try:
        checks = [
            recommend(
                served, Query(user_id=model.user_vocab.ids[0].item(), k=k, exclude_seen=False)
            ),
            recommend(
                served,
                Query(recent_items=(model.item_vocab.ids[0].item(),), k=k, exclude_seen=False),
            ),
            recommend(served, Query(user_id="\x00no-such-user", k=k, exclude_seen=False)),
        ]
    except Exception as exc:
        raise BundleError(
            f"{served.path}: smoke query failed ({type(exc).__name__}: {exc})"
        ) from None
    for r in checks:
        if r.items.size != k or not np.all(np.isfinite(r.scores)):
            raise BundleError(
                f"{served.path}: smoke query returned {r.items.size} items (expected {k}) "
                "or non-finite scores; the bundle is broken"
            )


def recommend(served: ServedModel, q: Query) -> Result:
    """Answer one request: the user's scores (or the history's, or popularity), then exclusions,
    filters and top-k (exact, or HNSW for large dot-product catalogs), then optional re-ranking.

    Raises:
        FilterError: A filter names an unknown attribute or value.
    """
    model = served.model
    assert model.user_vocab is not None and model.seen_ is not None
    n = served.n_items
    uidx = -1
    if q.user_id is not None:
        uidx = int(model.user_vocab.encode(np.asarray([str(q.user_id)]))[0])
    # A known user without a training interaction is answered as an unknown one (history or
    # popularity), never from the model's all-zero score row.
    warm = uidx >= 0 and not bool(model.cold_users(np.array([uidx]))[0])
    unknown: list[Any] = []
    hist = np.zeros(0, np.int64)
    if q.recent_items:
        codes = _encode(model, q.recent_items)
        hist = codes[codes >= 0]
        unknown += [x for x, c in zip(q.recent_items, codes) if c < 0]

    source = "request" if hist.size else "none"
    if q.session_items:
        # Session-aware: the bundle's history of the user, the request's items and the user's
        # new events (unknown ids, e.g. items newer than the bundle, are skipped) make one
        # history scored by score_from_items; everything in it is excluded below.
        codes = _encode(model, q.session_items)
        if (codes >= 0).any():
            base = model.seen_.indices[model.seen_.indptr[uidx] : model.seen_.indptr[uidx + 1]]
            hist = np.concatenate([base if uidx >= 0 else hist[:0], hist, codes[codes >= 0]])
            warm, source = False, "events"
    if warm:
        source = "bundle"
    allowed: np.ndarray | None = served.attributes.mask(q.filters)
    excluded: list[np.ndarray] = []
    if q.include_items is not None:
        codes = _encode(model, q.include_items)
        unknown += [x for x, c in zip(q.include_items, codes) if c < 0]
        inc = np.zeros(n, dtype=bool)
        inc[codes[codes >= 0]] = True
        allowed = inc if allowed is None else allowed & inc
    if q.exclude_items:
        codes = _encode(model, q.exclude_items)
        unknown += [x for x, c in zip(q.exclude_items, codes) if c < 0]
        excluded.append(codes[codes >= 0])
    if q.exclude_seen:
        if uidx >= 0:
            excluded.append(
                model.seen_.indices[model.seen_.indptr[uidx] : model.seen_.indptr[uidx + 1]]
            )
        excluded.append(hist)
    n_excluded = int(sum(e.size for e in excluded))
    if n_excluded:
        allowed = np.ones(n, dtype=bool) if allowed is None else allowed.copy()
        for e in excluded:
            allowed[e] = False

    want = q.k
    reranker = served.reranker
    rerank = (
        reranker is not None
        and warm
        and reranker.user_vocab is not None
        and reranker.user_vocab.encode(np.asarray([str(q.user_id)]))[0] >= 0
    )
    if rerank:
        want = max(q.k, served.rerank_candidates)
    order = model.popularity_order()
    if warm:
        kind = "none"
        if served.index is not None and served.view is not None:
            items, scores = served.index.search(
                served.view.user_vector(uidx), want, allowed, n_excluded
            )
        else:
            items, scores = exact_top_k(
                model.score_indices(np.array([uidx]))[0], want, allowed, order
            )
    else:
        if hist.size:
            assert model.item_vocab is not None
            h = model.score_from_items(model.item_vocab.decode(hist))
            kind, s = h.fallback_kind, h.scores
        else:
            assert model.item_popularity_ is not None
            kind, s = "popularity", model.item_popularity_
        items, scores = exact_top_k(s, want, allowed, order)
    reranked = False
    if rerank and reranker is not None and items.size:
        assert model.item_vocab is not None
        r = reranker.score([q.user_id], model.item_vocab.decode(items))[0]
        r = np.where(np.isfinite(r), r, -np.inf)
        order = np.argsort(-r, kind="stable")
        items, scores, reranked = items[order], r[order].astype(np.float32), True
    items, scores = items[: q.k], scores[: q.k]
    return Result(
        items=items,
        scores=scores,
        fallback=kind,
        unknown_items=unknown,
        reranked=reranked,
        known_user=uidx >= 0,
        history_source=source,
    )


def similar(served: ServedModel, item_id: Any, k: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Indices and scores of the ``k`` items most similar to ``item_id``; False if unknown."""
    model = served.model
    recs = model.similar_items(item_id, k=k)
    if recs.unknown_items.size:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), False
    assert model.item_vocab is not None
    return model.item_vocab.encode(recs.item_lists[0]), recs.score_lists[0], True
