"""Retrieval: exact top-k, the HNSW index (with exclusion/filter re-checking), the dot-product
views of factor models, two-stage re-ranking, and the retrieval micro-benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from zenrec.data import synthetic_dataset
from zenrec.models import create_model
from zenrec.serving.attributes import AttributeFilter
from zenrec.serving.engine import Query, load_served, recommend
from zenrec.serving.retrieval import (
    HNSWIndex,
    _clustered_vectors,
    bench_retrieval,
    dot_product_view,
    exact_top_k,
)
from zenrec.serving.settings import ServeSettings


def test_exact_top_k_respects_allowed_and_ranks_non_finite_last():
    s = np.array([0.5, np.nan, 2.0, 1.0, -np.inf], dtype=np.float32)
    idx, sc = exact_top_k(s, 5, None)
    assert idx[:3].tolist() == [2, 3, 0] and set(idx[3:].tolist()) == {1, 4}
    allowed = np.array([True, True, False, True, True])
    idx, sc = exact_top_k(s, 2, allowed)
    assert idx.tolist() == [3, 0] and sc.tolist() == [1.0, 0.5]
    assert exact_top_k(s, 3, np.zeros(5, bool))[0].size == 0


def test_hnsw_recall_and_rechecking(rng):
    items = _clustered_vectors(5000, 16, rng)
    index = HNSWIndex(items, m=16, ef_construction=80, ef_search=128)
    queries = _clustered_vectors(50, 16, rng)
    recalls = []
    allowed = rng.random(5000) > 0.3  # 30% excluded: over-fetch and re-check
    for q in queries:
        exact, _ = exact_top_k(items @ q, 10, allowed)
        got, scores = index.search(q, 10, allowed, n_excluded=int((~allowed).sum()))
        assert allowed[got].all() and got.size == 10
        np.testing.assert_allclose(scores, items[got] @ q, rtol=1e-5)
        assert scores.tolist() == sorted(scores.tolist(), reverse=True)
        recalls.append(np.intersect1d(exact, got).size / 10)
    assert np.mean(recalls) >= 0.9
    # a selective filter is answered exactly from the allowed items
    few = np.zeros(5000, bool)
    few[rng.choice(5000, 40, replace=False)] = True
    for q in queries[:5]:
        got, _ = index.search(q, 10, few)
        assert got.tolist() == exact_top_k(items @ q, 10, few)[0].tolist()


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ials", {"factors": 8, "iterations": 3, "num_threads": 1}),
        ("biasedmf", {"factors": 8, "iterations": 3}),
        (
            "bprmf",
            {"factors": 8, "epochs": 2, "batch_size": 256, "progress": False, "num_threads": 1},
        ),
    ],
)
def test_dot_product_views_reproduce_the_model_scores(name, params):
    ds = synthetic_dataset(n_users=60, n_items=40, seed=1)
    m = create_model(name, **params).fit(ds)
    view = dot_product_view(m)
    assert view is not None
    for u in (0, 7, 59):
        np.testing.assert_allclose(
            view.item_vectors @ view.user_vector(u), m.score_indices([u])[0], rtol=1e-4, atol=1e-4
        )
    assert dot_product_view(create_model("ease").fit(ds)) is None


@pytest.mark.integration
def test_hnsw_serving_of_an_ials_bundle(ml100k, tmp_path):
    model = create_model("ials", factors=32, iterations=6, num_threads=1).fit(ml100k)
    path = model.save(tmp_path / "ials")
    served = load_served(path, ServeSettings(ann_threshold=0, hnsw_ef_search=128))
    assert served.retrieval == "hnsw"
    users = model.user_vocab.ids[:60].tolist()
    offline = model.recommend(users, k=10)
    recalls = []
    for j, u in enumerate(users):
        r = recommend(served, Query(user_id=u, k=10))
        seen = set(model.seen_[j].indices.tolist())
        assert r.fallback == "none" and r.items.size == 10 and not seen & set(r.items.tolist())
        recalls.append(
            np.intersect1d(model.item_vocab.decode(r.items), offline.item_lists[j]).size / 10
        )
    assert np.mean(recalls) >= 0.95
    comedy = served.attributes.mask({"genres": AttributeFilter(any_of=("Comedy",))})
    r = recommend(
        served,
        Query(user_id=users[0], k=10, filters={"genres": AttributeFilter(any_of=("Comedy",))}),
    )
    assert r.items.size == 10 and comedy[r.items].all()


@pytest.mark.integration
def test_two_stage_reranking(bundles, ease_model):
    from zenrec.models.registry import load_model

    knn = load_model(bundles["itemknn"])
    served = load_served(bundles["ease"], ServeSettings(rerank_candidates=50), reranker=knn)
    r = recommend(served, Query(user_id=1, k=10))
    assert r.reranked and r.items.size == 10
    first_stage = ease_model.recommend([1], k=50).item_lists[0]
    ids = ease_model.item_vocab.decode(r.items)
    assert set(ids.tolist()) <= set(first_stage.tolist())
    np.testing.assert_array_equal(r.scores, knn.score([1], ids)[0])
    all_scores = knn.score([1], first_stage)[0]
    assert r.scores[0] == all_scores.max() and r.scores.tolist() == sorted(
        r.scores.tolist(), reverse=True
    )
    # a visitor is not known to the re-ranker: first-stage order, not re-ranked
    v = recommend(served, Query(recent_items=(50, 181), k=5))
    assert not v.reranked and v.fallback == "history"


def test_bench_retrieval_reports_recall_latency_memory(monkeypatch):
    # Timing through a scripted clock, so the figures are known whatever the machine's load:
    # query j of every stage takes j + 1 ms (1..40 ms), the index build 1 ms.
    import types

    import zenrec.serving.retrieval as retrieval

    n_queries, calls = 40, [0]
    now = [0.0]

    def perf_counter() -> float:
        c = calls[0]
        calls[0] += 1
        if c % 2:  # the second reading of a pair: the time the timed work took
            now[0] += ((c // 2) % n_queries + 1) / 1000
        return now[0]

    monkeypatch.setattr(retrieval, "time", types.SimpleNamespace(perf_counter=perf_counter))
    res = bench_retrieval(n_items=3000, dim=16, n_queries=n_queries, ef_values=(16, 256), m=16)
    assert res["exact"]["memory_bytes"] == 3000 * 16 * 4
    by_ef = {r["ef_search"]: r for r in res["hnsw"]["by_ef"]}
    assert by_ef[256]["recall"] >= 0.97 and by_ef[256]["recall"] >= by_ef[16]["recall"]
    assert res["hnsw"]["memory_bytes"] > res["exact"]["memory_bytes"]
    ms = np.arange(1, n_queries + 1, dtype=float)
    for stage in (res["exact"], *res["hnsw"]["by_ef"]):  # per query, in milliseconds
        assert stage["p50_ms"] == pytest.approx(np.percentile(ms, 50))  # 20.5
        assert stage["p99_ms"] == pytest.approx(np.percentile(ms, 99))  # 39.61
        assert stage["mean_ms"] == pytest.approx(ms.mean())
    assert res["hnsw"]["build_seconds"] == pytest.approx(0.001)
    assert calls[0] == 2 * n_queries * 3 + 2  # two readings per query and stage, two for the build


def test_bench_retrieval_builds_once_with_an_index_dir(tmp_path):
    """The first run builds and saves the index, the second reads it (same recall, the saved
    build's seconds); other build parameters build anew."""
    kw = {"n_items": 2000, "dim": 8, "n_queries": 30, "ef_values": (64,), "m": 8}
    first = bench_retrieval(**kw, ef_construction=40, index_dir=tmp_path / "ix")
    assert not first["hnsw"]["index_from_file"] and (tmp_path / "ix" / "hnsw.faiss").is_file()
    again = bench_retrieval(**kw, ef_construction=40, index_dir=tmp_path / "ix")
    assert again["hnsw"]["index_from_file"]
    assert again["hnsw"]["build_seconds"] == pytest.approx(first["hnsw"]["build_seconds"], abs=1e-3)
    assert again["hnsw"]["by_ef"][0]["recall"] == first["hnsw"]["by_ef"][0]["recall"]
    other = bench_retrieval(**kw, ef_construction=20, index_dir=tmp_path / "ix")
    assert not other["hnsw"]["index_from_file"]


def test_hnsw_index_is_saved_in_the_bundle_and_read_back(tmp_path):
    """Built once: the first load writes hnsw.faiss (faiss's format) with its description, later
    loads read it (same answers), other build parameters or other vectors rebuild it, and
    /v1/model's description carries the measured recall."""
    import json

    ds = synthetic_dataset(n_users=300, n_items=400, seed=3)
    path = create_model("ials", factors=8, iterations=3, num_threads=1).fit(ds).save(tmp_path / "m")
    settings = ServeSettings(ann_threshold=0, hnsw_m=16, hnsw_ef_construction=40)
    first = load_served(path, settings)
    assert (path / "hnsw.faiss").is_file() and not first.index.from_file
    info = first.describe()["retrieval_index"]
    assert info["m"] == 16 and 0.5 <= info["recall_at_10"] <= 1.0 and info["from_file"] is False
    again = load_served(path, settings)
    assert again.index.from_file and again.describe()["retrieval_index"]["from_file"] is True
    assert again.index.recall == first.index.recall
    for u in ds.user_vocab.ids[:20].tolist():
        a, b = recommend(first, Query(user_id=u, k=5)), recommend(again, Query(user_id=u, k=5))
        np.testing.assert_array_equal(a.items, b.items)
    other = load_served(path, ServeSettings(ann_threshold=0, hnsw_m=8, hnsw_ef_construction=40))
    assert not other.index.from_file  # other parameters: rebuilt (and saved in its place)
    s8 = ServeSettings(ann_threshold=0, hnsw_m=8, hnsw_ef_construction=40)
    assert load_served(path, s8).index.from_file  # the rebuilt one was saved
    meta = json.loads((path / "hnsw.json").read_text())
    meta["vectors_sha256"] = "0" * 64  # an index of other vectors is never used
    (path / "hnsw.json").write_text(json.dumps(meta))
    assert not load_served(path, s8).index.from_file
