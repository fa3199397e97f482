"""Candidate retrieval: exact scoring (default) or a FAISS HNSW index for large catalogs.

Exact retrieval scores the whole catalog with the model's own scorer and takes the top k with
:func:`zenrec.evaluation.topk.top_k_indices` (one matrix product plus a partial sort), so
online answers equal ``Recommender.recommend`` bit for bit. A model whose score is a dot
product of a user vector and an item vector (:func:`dot_product_view`) can instead be served
from an HNSW graph (Malkov & Yashunin, TPAMI 2018) over its item vectors; exclusions and
filters are applied by over-fetching and re-checking, or by exact scoring of the allowed
items when a filter leaves few of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zenrec._errors import ConfigError
from zenrec.evaluation.topk import top_k_indices

__all__ = [
    "DotProductView",
    "HNSWIndex",
    "bench_retrieval",
    "dot_product_view",
    "exact_top_k",
]

_NEG = np.float32(-3.0e38)


def exact_top_k(
    scores: np.ndarray,
    k: int,
    allowed: np.ndarray | None,
    order: np.ndarray | None = None,
    *,
    rank: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item indices and scores of one score vector among the ``allowed`` items.

    Non-finite scores rank below every finite one; disallowed items never appear. Equal
    scores go to the item earlier in ``order`` (the model's ``popularity_order()``), or of
    lower ``rank`` (its ``popularity_rank()``, the cheaper form); default: the lower index.
    This is the same arithmetic as :meth:`zenrec.models.base.Recommender.recommend`.
    """
    s = np.where(np.isfinite(scores), scores, _NEG).astype(np.float32, copy=False)[
        None, :
    ]  # a new array
    if allowed is not None:
        s[0, ~allowed] = -np.inf
    if rank is None and order is not None:
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
    top = top_k_indices(s, k, rank=rank)[0]
    top_scores = s[0, top]
    valid = np.isfinite(top_scores)
    return top[valid], top_scores[valid]


@dataclass
class DotProductView:
    """A model's score written as ``<user_vector(u), item_vectors[i]>``.

    Attributes:
        item_vectors: (n_items, d) float32.
        user_vector: Known user index -> (d,) float32.
    """

    item_vectors: np.ndarray
    user_vector: Callable[[int], np.ndarray]


def dot_product_view(model: Any) -> DotProductView | None:
    """The dot-product form of ``model``'s scores, or ``None`` when it has none.

    iALS: ``<p_u, q_i>``; BiasedMF: ``<[p_u, 1, mu + b_u], [q_i, b_i, 1]>``; BPR-MF and the
    two-tower model: their user and item embeddings.
    """
    name = getattr(model, "name", "")
    if name == "ials":
        users = model.user_factors_
        return DotProductView(
            np.ascontiguousarray(model.item_factors_, np.float32),
            lambda u: users[u].astype(np.float32),
        )
    if name == "biasedmf":
        n = model.Q_.shape[0]
        items = np.hstack([model.Q_, model.bi_[:, None], np.ones((n, 1), np.float32)])
        P, bu, mu = model.P_, model.bu_, model.mu_

        def biased_user(u: int) -> np.ndarray:
            return np.concatenate([P[u], [1.0, mu + bu[u]]]).astype(np.float32)

        return DotProductView(np.ascontiguousarray(items, np.float32), biased_user)
    if name == "bprmf":
        weights = model.module_.user.weight.detach().float().cpu().numpy()
        return DotProductView(
            np.ascontiguousarray(model.item_embeddings(), np.float32), lambda u: weights[u + 1]
        )
    if name == "twotower":
        ids = model.user_vocab.ids
        return DotProductView(
            np.ascontiguousarray(model.item_embeddings(), np.float32),
            lambda u: model.user_embeddings(ids[u : u + 1])[0],
        )
    return None


class HNSWIndex:
    """FAISS HNSW over item vectors for inner-product search, with allowed-item re-checking.

    Inner product is not a metric, and model embeddings have unequal norms, so the graph is
    built on the exact reduction of maximum inner product search to Euclidean search
    (Bachrach et al., RecSys 2014): each item vector gets one more coordinate,
    ``sqrt(max_norm^2 - |x|^2)``, so that all have the same norm, and a query gets a 0 there;
    the nearest item in L2 is then the one of largest inner product. (On unit vectors, as in
    :func:`bench_retrieval`, both graphs are the same; there recall depends on ``M`` and
    ``efConstruction``: 0.39 at 1M with 16/40, 0.97 at 50k with 32/200 and efSearch 128.)
    Scores returned are the exact inner products of the original vectors.

    Args:
        vectors: (n_items, d) float32 item vectors.
        m: Graph degree.
        ef_construction: Build beam width.
        ef_search: Default query beam width.
        overfetch: Neighbours fetched per wanted result (before re-checking).
        index: A built faiss index of these vectors (from :meth:`load`) instead of building one.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        *,
        m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        overfetch: int = 4,
        index: Any = None,
    ) -> None:
        try:
            import faiss
        except ImportError as exc:  # pragma: no cover - faiss is in the serve extra
            raise ConfigError(
                "the HNSW index needs faiss-cpu: pip install 'zenrec[serve]'"
            ) from exc
        self._faiss: Any = faiss
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.n, self.dim = self.vectors.shape
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.overfetch = overfetch
        self.recall: float | None = None
        """Measured recall@10 of the raw index lists (``None``: not measured)."""
        self.from_file = False
        """True when the index was read from a bundle directory rather than built."""
        t0 = time.perf_counter()
        if index is None:
            index = self._faiss.IndexHNSWFlat(self.dim + 1, m)  # L2 on the augmented vectors
            index.hnsw.efConstruction = ef_construction
            step = 100_000
            for s in range(0, self.n, step):  # augmented in blocks: no second full copy
                index.add(_augment_items(self.vectors[s : s + step], self._max_sq_norm()))
        self.index = index
        self.build_seconds = time.perf_counter() - t0

    def _max_sq_norm(self) -> float:
        sq = np.einsum("ij,ij->i", self.vectors, self.vectors)
        return float(sq.max()) if sq.size else 0.0

    FILE = "hnsw.faiss"
    """Name of the index file in a bundle directory (faiss's own format, never pickle)."""
    INFO = "hnsw.json"
    """Name of its description: build parameters, the vectors' hash, the measured recall."""

    def vectors_sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self.vectors.tobytes()).hexdigest()

    def info(self) -> dict[str, Any]:
        """What ``/v1/model`` reports and :meth:`save` records."""
        return {
            "kind": "hnsw",
            "m": self.m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "n_items": self.n,
            "dim": self.dim,
            "build_seconds": round(self.build_seconds, 3),
            "memory_bytes": self.memory_bytes,
            "recall_at_10": self.recall,
            "from_file": self.from_file,
        }

    def measure_recall(
        self, queries: np.ndarray, k: int = 10, ef_search: int | None = None
    ) -> float:
        """Mean recall@k of the raw HNSW lists against exact inner-product search."""
        got = self.search_batch(queries, k, ef_search)
        hits = 0
        for q, g in zip(queries, got):
            exact, _ = exact_top_k(self.vectors @ q, k, None)
            hits += np.intersect1d(exact, g[g >= 0]).size
        return hits / max(1, len(queries) * min(k, self.n))

    def save(self, directory: str | Path, **extra: Any) -> Path:
        """Write the index and its description into ``directory`` (each file atomically)."""
        import json
        import os

        d = Path(directory)
        tmp = d / f".{self.FILE}.tmp-{os.getpid()}"
        self._faiss.write_index(self.index, str(tmp))
        os.replace(tmp, d / self.FILE)
        info = {**self.info(), "vectors_sha256": self.vectors_sha256(), **extra}
        info.pop("from_file")
        tmp = d / f".{self.INFO}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(info, indent=2), encoding="utf-8")
        os.replace(tmp, d / self.INFO)
        return d / self.FILE

    @classmethod
    def load(
        cls,
        directory: str | Path,
        vectors: np.ndarray,
        *,
        m: int,
        ef_construction: int,
        ef_search: int = 128,
        overfetch: int = 4,
        **expect: Any,
    ) -> HNSWIndex | None:
        """The index saved in ``directory`` for exactly these ``vectors`` and build parameters
        (and the ``expect`` entries of its description), or ``None`` when there is none that fits.
        """
        import json

        d = Path(directory)
        try:
            info = json.loads((d / cls.INFO).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        want = {"m": m, "ef_construction": ef_construction, "n_items": len(vectors), **expect}
        if any(info.get(k) != v for k, v in want.items()) or not (d / cls.FILE).is_file():
            return None
        try:
            import faiss

            raw = faiss.read_index(str(d / cls.FILE), faiss.IO_FLAG_MMAP)
        except Exception:  # unreadable or truncated: rebuild instead
            return None
        out = cls(
            vectors,
            m=m,
            ef_construction=ef_construction,
            ef_search=ef_search,
            overfetch=overfetch,
            index=raw,
        )
        if (
            raw.ntotal != out.n
            or raw.d != out.dim + 1
            or info.get("vectors_sha256") != (out.vectors_sha256())
        ):
            return None
        out.build_seconds = float(info.get("build_seconds", 0.0))
        # the recall was measured at the efSearch of the build; another one is not measured
        out.recall = info.get("recall_at_10") if info.get("ef_search") == ef_search else None
        return out

    def search_batch(self, queries: np.ndarray, k: int, ef_search: int | None = None) -> np.ndarray:
        """Raw HNSW top-``k`` indices of each query row (no filtering), (B, k), -1 padded."""
        params = self._faiss.SearchParametersHNSW(efSearch=max(ef_search or self.ef_search, k))
        q = np.ascontiguousarray(queries, np.float32).reshape(-1, self.dim)
        q = np.hstack([q, np.zeros((q.shape[0], 1), np.float32)])  # the 0 of the reduction
        _, ids = self.index.search(q, k, params=params)
        return ids

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None, n_excluded: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (indices, exact inner products) among the ``allowed`` items.

        Fetches ``overfetch * (k + n_excluded)`` neighbours and keeps the allowed ones,
        fetching four times more (at most twice) when too few pass; when the allowed set is
        small, or re-checking still falls short, it scores the allowed items exactly.
        """
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        n_allowed = self.n if allowed is None else int(allowed.sum())
        if n_allowed == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if allowed is not None and n_allowed <= max(4096, self.n // 50):
            idx = np.flatnonzero(allowed)
            top, scores = exact_top_k(self.vectors[idx] @ q[0], k, None)
            return idx[top], scores
        fetch = min(self.n, self.overfetch * (k + n_excluded))
        for _ in range(3):
            ids = self.search_batch(q, fetch)[0]
            ids = ids[ids >= 0]
            if allowed is not None:
                ids = ids[allowed[ids]]
            if ids.size >= min(k, n_allowed) or fetch >= self.n:
                got = ids[:k]
                scores = self.vectors[got] @ q[0]
                order = np.argsort(-scores, kind="stable")
                return got[order].astype(np.int64), scores[order].astype(np.float32)
            fetch = min(self.n, fetch * 4)
        return exact_top_k(self.vectors @ q[0], k, allowed)

    @property
    def memory_bytes(self) -> int:
        """Memory of the index: its stored (augmented) vectors plus the graph's neighbour lists
        and levels (the model's own item vectors, which exact re-scoring reads, not counted)."""
        h: Any = self.index.hnsw
        return int(
            4 * self.index.ntotal * self.index.d
            + 4 * h.neighbors.size()
            + 8 * h.offsets.size()
            + 4 * h.levels.size()
        )


def _augment_items(x: np.ndarray, max_sq_norm: float) -> np.ndarray:
    """``[x, sqrt(max_sq_norm - |x|^2)]``: every row of the same norm (the MIPS-to-L2 reduction)."""
    extra = np.sqrt(np.maximum(max_sq_norm - np.einsum("ij,ij->i", x, x), 0.0))
    return np.ascontiguousarray(np.hstack([x, extra[:, None].astype(np.float32)]))


def _clustered_vectors(
    n: int, dim: int, rng: np.random.Generator, n_clusters: int = 1000
) -> np.ndarray:
    """Unit vectors around random centres: the shape of trained embeddings (clustered, not iid)."""
    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    step = 200_000
    for s in range(0, n, step):
        e = min(n, s + step)
        c = rng.integers(0, n_clusters, e - s)
        out[s:e] = centres[c] + 0.5 * rng.standard_normal((e - s, dim)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def bench_retrieval(
    *,
    n_items: int,
    dim: int,
    n_queries: int = 1000,
    k: int = 10,
    ef_values: tuple[int, ...] = (16, 32, 64, 128, 256),
    m: int = 32,
    ef_construction: int = 200,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    index_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Exact search vs HNSW on a synthetic clustered catalog: recall@k, build time, memory, latency.

    With ``index_dir``, an index saved there for the same vectors and build parameters is read
    (memory-mapped) instead of built, and a built one is saved there: the build (minutes at a
    million items) and the query sweep can then run at different times; the reported build
    seconds are those of the saved build, and ``"index_from_file"`` says which happened.

    Queries are scored one at a time (as a service does). Exact search is one (n_items, dim)
    matrix-vector product plus ``top_k_indices``. ``progress`` receives one line per finished
    stage (so a run cut short still reports what it measured).

    Returns:
        ``{"n_items", "dim", "k", "exact": {...}, "hnsw": {"build_seconds", "memory_bytes",
        "by_ef": [{"ef_search", "recall", "p50_ms", "p99_ms", "mean_ms"}, ...]}}``.
    """
    if n_items < k or dim < 1 or n_queries < 1:
        raise ConfigError(
            f"bench retrieval: need n_items >= k, dim >= 1, n_queries >= 1; got "
            f"n_items={n_items}, dim={dim}, n_queries={n_queries}"
        )
    rng = np.random.default_rng(seed)
    items = _clustered_vectors(n_items, dim, rng)
    queries = _clustered_vectors(n_queries, dim, rng)

    def timed(fn: Callable[[np.ndarray], np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        res, lat = [], np.empty(n_queries)
        for j in range(n_queries):
            t0 = time.perf_counter()
            res.append(fn(queries[j]))
            lat[j] = time.perf_counter() - t0
        return res, lat * 1000

    def stats(lat: np.ndarray) -> dict[str, float]:
        return {
            "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)),
            "mean_ms": float(lat.mean()),
        }

    say = progress or (lambda line: None)
    say(f"data: {n_items} x {dim} clustered unit vectors, {n_queries} queries")
    exact, lat = timed(lambda q: exact_top_k(items @ q, k, None)[0])
    say(f"exact: p50 {np.percentile(lat, 50):.3f} ms, p99 {np.percentile(lat, 99):.3f} ms")
    out: dict[str, Any] = {
        "n_items": n_items,
        "dim": dim,
        "k": k,
        "n_queries": n_queries,
        "data": "clustered unit vectors (1000 centres), inner product",
        "exact": {**stats(lat), "memory_bytes": int(items.nbytes)},
    }
    index = None
    if index_dir is not None:
        Path(index_dir).mkdir(parents=True, exist_ok=True)
        index = HNSWIndex.load(index_dir, items, m=m, ef_construction=ef_construction)
    from_file = index is not None
    if index is None:
        index = HNSWIndex(items, m=m, ef_construction=ef_construction)
        if index_dir is not None:
            index.save(index_dir)
    say(
        f"hnsw M={m} efConstruction={ef_construction}: "
        f"{'read from ' + str(index_dir) + ', ' if from_file else ''}"
        f"built in {index.build_seconds:.1f} s, {index.memory_bytes / 2**20:.0f} MiB"
    )
    by_ef = []
    for ef in ef_values:

        def hnsw_query(q: np.ndarray, ef: int = ef) -> np.ndarray:
            return index.search_batch(q[None], k, ef)[0]

        got, lat = timed(hnsw_query)
        recall = float(np.mean([np.intersect1d(a, b).size / k for a, b in zip(got, exact)]))
        by_ef.append({"ef_search": ef, "recall": recall, **stats(lat)})
        say(
            f"hnsw efSearch={ef}: recall@{k} {recall:.3f}, p50 {by_ef[-1]['p50_ms']:.3f} ms, "
            f"p99 {by_ef[-1]['p99_ms']:.3f} ms"
        )
    out["hnsw"] = {
        "m": m,
        "ef_construction": ef_construction,
        "build_seconds": index.build_seconds,
        "memory_bytes": index.memory_bytes,
        "index_from_file": from_file,
        "by_ef": by_ef,
    }
    return out
