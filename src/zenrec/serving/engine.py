"""A loaded bundle ready to answer requests, and the request logic (no HTTP here).

:func:`load_served` reads a bundle (verifying its content hash), builds the item-attribute
table and the retrieval index, and runs a smoke query; :func:`recommend` answers one request.
A :class:`ServedModel` never changes after it is built: a reload builds a new one and swaps the
reference, so a request that started on the old model finishes on it.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from zenrec._errors import BundleError, ZenrecError
from zenrec.evaluation.topk import top_k_indices
from zenrec.models.base import Recommender
from zenrec.serving.attributes import AttributeFilter, ItemAttributes
from zenrec.serving.pinning import check_expected_version
from zenrec.serving.retrieval import DotProductView, HNSWIndex, dot_product_view, exact_top_k
from zenrec.serving.settings import ServeSettings

__all__ = [
    "Query",
    "Result",
    "ServedModel",
    "dumps_json",
    "load_served",
    "recommend",
    "recommend_many",
    "similar",
]


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

    def item_display(self, i: int) -> tuple[Any, str | None, list[Any] | None, dict[str, Any]]:
        """Item ``i`` as the API shows it: (raw id, title, genres, other attributes)."""
        meta = self.attributes.item_metadata(i)
        title = meta.pop("title", None)
        genres = meta.pop("genres", None)
        return (
            self.item_ids(np.array([i]))[0],
            title if isinstance(title, str) else None,
            genres if isinstance(genres, list) else None,
            meta,
        )

    def items_json(self, idx: np.ndarray, scores: np.ndarray) -> str:
        """The JSON array of ``ItemOut`` objects of items ``idx`` with ``scores``.

        Each item's text around its score is made once, on its first use, and kept (a list
        slot per item, filled lazily so a large catalog costs nothing until served).
        """
        parts = self._item_parts
        out = []
        for i, score in zip(idx.tolist(), scores.tolist()):
            p = parts[i]
            if p is None:
                item_id, title, genres, meta = self.item_display(i)
                p = parts[i] = (
                    '{"item_id":' + dumps_json(item_id) + ',"score":',
                    ',"title":'
                    + dumps_json(title)
                    + ',"genres":'
                    + dumps_json(genres)
                    + ',"metadata":'
                    + dumps_json(meta)
                    + "}",
                )
            out.append(p[0] + repr(score) + p[1])
        return "[" + ",".join(out) + "]"

    @property
    def json_tail(self) -> str:
        """``,"model":...,"model_version":...`` of every answer of this model, as JSON text."""
        tail = self.__dict__.get("_tail")
        if tail is None:
            tail = self.__dict__["_tail"] = (
                ',"model":' + dumps_json(self.name) + ',"model_version":' + dumps_json(self.version)
            )
        return tail

    @property
    def _item_parts(self) -> list[tuple[str, str] | None]:
        parts = self.__dict__.get("_parts")
        if parts is None:
            parts = self.__dict__["_parts"] = [None] * self.n_items
        return parts

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
            "retrieval_index": None if self.index is None else self.index.info(),
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


def dumps_json(value: Any) -> str:
    """Compact JSON, UTF-8 text kept as is (what FastAPI's serialiser writes)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _encode(model: Recommender, ids: Any) -> np.ndarray:
    vocab = model.item_vocab
    assert vocab is not None
    if not len(ids):
        return np.zeros(0, np.int64)
    if vocab.is_integer and all(type(x) is int for x in ids):
        try:  # the common case, without the per-id string round trip
            return vocab.encode(np.asarray(ids, dtype=np.int64))
        except OverflowError:
            pass
    return vocab.encode(np.asarray([str(x) for x in ids]))


def _user_index(model: Recommender, user_id: Any) -> int:
    """Index of a raw user id (-1 when unknown), as ``user_vocab.encode([str(user_id)])``."""
    vocab = model.user_vocab
    assert vocab is not None
    ids = vocab.ids
    if (type(user_id) is int and vocab.is_integer and -(2**63) <= user_id < 2**63) or (
        type(user_id) is str and not vocab.is_integer
    ):
        pos = int(np.searchsorted(ids, user_id))
        return pos if pos < ids.size and ids[pos] == user_id else -1
    return int(vocab.encode(np.asarray([str(user_id)]))[0])


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
        model = load_model(p, mmap=True)  # workers share the arrays' pages
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
        index = hnsw_index(p, model, view, settings)
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


def hnsw_index(
    path: str | Path, model: Recommender, view: DotProductView, settings: ServeSettings
) -> HNSWIndex:
    """The bundle's HNSW index: read from ``hnsw.faiss`` in the bundle directory when one was
    saved there for this bundle and these build parameters, else built, its recall@10 measured
    on up to 1,000 of the bundle's users, and saved there (when the directory is writable) so
    that the next start, and every worker, reads it instead of building it again.

    The files are beside the bundle's content (not in its content hash): the index is derived
    from the hashed arrays, and its description records the bundle's hash and the vectors'.
    """
    p = Path(path)
    content = str(getattr(model, "bundle_meta", {}).get("content_sha256", ""))
    kw: dict[str, Any] = {
        "m": settings.hnsw_m,
        "ef_construction": settings.hnsw_ef_construction,
        "ef_search": settings.hnsw_ef_search,
        "overfetch": settings.overfetch,
    }
    index = HNSWIndex.load(p, view.item_vectors, **kw, bundle_sha256=content)
    if index is not None:
        index.from_file = True
        return index
    index = HNSWIndex(view.item_vectors, **kw)
    n_users = len(model.user_vocab or ())
    rng = np.random.default_rng(0)
    sample = rng.choice(n_users, size=min(1000, n_users), replace=False)
    warm = sample[~model.cold_users(sample)]
    if warm.size:
        index.recall = round(
            index.measure_recall(np.stack([view.user_vector(int(u)) for u in warm])), 4
        )
    with contextlib.suppress(OSError):  # read-only bundle: serve it, rebuild at next start
        index.save(p, bundle_sha256=content)
    return index


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


@dataclass
class _Plan:
    """What one query resolved to before scoring (shared by single and batched answers)."""

    uidx: int
    warm: bool
    hist: np.ndarray
    unknown: list[Any]
    allowed: np.ndarray | None
    n_excluded: int
    want: int
    rerank: bool
    source: str
    """bundle, events, request or none (see :attr:`Result.history_source`)."""


def _plan(served: ServedModel, q: Query) -> _Plan:
    model = served.model
    assert model.user_vocab is not None and model.seen_ is not None
    n = served.n_items
    uidx = -1
    if q.user_id is not None:
        uidx = _user_index(model, q.user_id)
    # A known user without a training interaction is answered as an unknown one (history or
    # popularity), never from the model's all-zero score row (``Recommender.cold_users``).
    indptr = model.seen_.indptr
    warm = uidx >= 0 and bool(indptr[uidx + 1] > indptr[uidx])
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
            excluded.append(model.seen_.indices[indptr[uidx] : indptr[uidx + 1]])
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
    return _Plan(uidx, warm, hist, unknown, allowed, n_excluded, want, rerank, source)


def recommend(served: ServedModel, q: Query) -> Result:
    """Answer one request: the user's scores (or the history's, or popularity), then exclusions,
    filters and top-k (exact, or HNSW for large dot-product catalogs), then optional re-ranking.

    Raises:
        FilterError: A filter names an unknown attribute or value.
    """
    return _answer(served, q, _plan(served, q))


def _answer(served: ServedModel, q: Query, plan: _Plan) -> Result:
    model = served.model
    rank = model.popularity_rank()
    if plan.warm:
        kind = "none"
        if served.index is not None and served.view is not None:
            items, scores = served.index.search(
                served.view.user_vector(plan.uidx), plan.want, plan.allowed, plan.n_excluded
            )
        else:
            items, scores = exact_top_k(
                model.score_indices(np.array([plan.uidx]))[0], plan.want, plan.allowed, rank=rank
            )
    else:
        if plan.hist.size:
            assert model.item_vocab is not None
            h = model.score_from_items(model.item_vocab.decode(plan.hist))
            kind, s = h.fallback_kind, h.scores
        else:
            assert model.item_popularity_ is not None
            kind, s = "popularity", model.item_popularity_
        items, scores = exact_top_k(s, plan.want, plan.allowed, rank=rank)
    return _finish(served, q, plan, items, scores, kind)


def _finish(
    served: ServedModel, q: Query, plan: _Plan, items: np.ndarray, scores: np.ndarray, kind: str
) -> Result:
    """Optional re-ranking, then the first ``k``."""
    model = served.model
    reranker = served.reranker
    reranked = False
    if plan.rerank and reranker is not None and items.size:
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
        unknown_items=plan.unknown,
        reranked=reranked,
        known_user=plan.uidx >= 0,
        history_source=plan.source,
    )


def recommend_many(
    served: ServedModel, queries: list[Query], *, block: int = 256
) -> list[Result | Exception]:
    """Answer several requests; each answer equals :func:`recommend`'s for its query.

    Known users scored exactly (no HNSW index) are scored together: one score matrix (one
    matrix product for the factor models) and one top-k per ``block`` users. The others
    (histories, popularity, HNSW) are answered one by one. A query whose filters are invalid
    gets its :class:`~zenrec.serving.attributes.FilterError` in its place of the list.
    """
    model = served.model
    out: list[Result | Exception | None] = [None] * len(queries)
    plans: list[_Plan | None] = []
    for j, q in enumerate(queries):
        try:
            plans.append(_plan(served, q))
        except Exception as exc:  # a bad filter: reported for this query only
            plans.append(None)
            out[j] = exc
    together = [
        j
        for j, p in enumerate(plans)
        if p is not None and p.warm and (served.index is None or served.view is None)
    ]
    chosen = set(together)
    for j, p in enumerate(plans):
        if p is not None and j not in chosen:
            out[j] = _answer(served, queries[j], p)
    rank = model.popularity_rank()
    n = served.n_items
    for start in range(0, len(together), block):
        rows = together[start : start + block]
        ps = [plans[j] for j in rows]
        assert all(p is not None for p in ps)
        s = model.score_indices(np.array([p.uidx for p in ps if p is not None]))
        s = np.where(np.isfinite(s), s, np.float32(-3.0e38)).astype(np.float32, copy=False)
        for r, p in enumerate(ps):
            if p is not None and p.allowed is not None:
                s[r, ~p.allowed] = -np.inf
        want = max(p.want for p in ps if p is not None)
        top = top_k_indices(s, min(want, n), rank=rank)
        top_scores = np.take_along_axis(s, top, 1)
        for r, j in enumerate(rows):
            p = plans[j]
            assert p is not None
            t, v = top[r, : p.want], top_scores[r, : p.want]
            valid = np.isfinite(v)
            out[j] = _finish(served, queries[j], p, t[valid], v[valid], "none")
    assert all(o is not None for o in out)
    return [o for o in out if o is not None]


def similar(served: ServedModel, item_id: Any, k: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Indices and scores of the ``k`` items most similar to ``item_id``; False if unknown."""
    model = served.model
    recs = model.similar_items(item_id, k=k)
    if recs.unknown_items.size:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), False
    assert model.item_vocab is not None
    return model.item_vocab.encode(recs.item_lists[0]), recs.score_lists[0], True
