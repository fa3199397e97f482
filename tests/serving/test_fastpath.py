"""The request path's cheap forms give the answers of the plain ones: ties ranked by popularity
without a permuted copy, batched scoring, and the response JSON written from per-item text."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zenrec.evaluation.topk import top_k_indices
from zenrec.serving.attributes import AttributeFilter, FilterError
from zenrec.serving.engine import Query, load_served, recommend, recommend_many
from zenrec.serving.schemas import ItemOut
from zenrec.serving.settings import ServeSettings


def test_top_k_with_rank_equals_the_permuted_form(rng):
    for _ in range(500):
        b, n = int(rng.integers(1, 6)), int(rng.integers(1, 50))
        k = int(rng.integers(1, 60))
        s = rng.integers(0, 4, (b, n)).astype(np.float32)  # many ties
        s[rng.random((b, n)) < 0.2] = -np.inf
        order = rng.permutation(n)
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)
        expected = order[top_k_indices(s[:, order], k)]
        np.testing.assert_array_equal(top_k_indices(s, k, rank=rank), expected)


@pytest.fixture(scope="module")
def served(bundles):
    return load_served(bundles["ease"], ServeSettings())


def test_batched_answers_equal_single_answers(served):
    model = served.model
    users = model.user_vocab.ids[:40].tolist()
    top = recommend(served, Query(user_id=users[0], k=1)).items
    queries = [Query(user_id=u, k=3 + j % 9) for j, u in enumerate(users)]
    queries += [
        Query(user_id=users[1], k=5, exclude_seen=False),
        Query(user_id=users[2], k=5, filters={"genres": AttributeFilter(any_of=("Comedy",))}),
        Query(user_id=users[3], k=4, include_items=(1, 2, 3, 50, 424242)),
        Query(user_id=users[0], k=5, exclude_items=tuple(model.item_vocab.decode(top).tolist())),
        Query(recent_items=(50, 181, 172), k=4),
        Query(user_id="nobody", k=3),
        Query(user_id=users[4], k=6, filters={"colour": AttributeFilter(any_of=("red",))}),
    ]
    batched = recommend_many(served, queries, block=16)
    assert len(batched) == len(queries)
    for q, got in zip(queries, batched):
        if "colour" in q.filters:
            assert isinstance(got, FilterError) and got.field == "filters.colour"
            continue
        want = recommend(served, q)
        assert not isinstance(got, Exception)
        np.testing.assert_array_equal(got.items, want.items)
        np.testing.assert_array_equal(got.scores, want.scores)
        assert (got.fallback, got.unknown_items) == (want.fallback, want.unknown_items)


def test_items_json_equals_the_response_model(served):
    idx = np.array([0, 49, 180, 5, 0])
    scores = np.array([0.5, 1e-5, -2.25, 3.0e38, 0.1], dtype=np.float32)
    expected = []
    for i, sc in zip(idx.tolist(), scores.tolist()):
        item_id, title, genres, meta = served.item_display(i)
        expected.append(
            ItemOut(item_id=item_id, score=sc, title=title, genres=genres, metadata=meta)
        )
    got = json.loads(served.items_json(idx, scores))
    assert got == [json.loads(e.model_dump_json()) for e in expected]
    assert got[1]["title"] and got[1]["genres"]  # the ML-100K bundle's metadata is there
    assert json.loads(served.items_json(idx, scores)) == got  # the cached text gives the same


def test_the_loaded_heap_is_frozen_unless_told_not_to(bundles, served):
    import gc

    from fastapi.testclient import TestClient

    from zenrec.serving.app import create_app

    try:
        for freeze in (False, True):
            gc.unfreeze()
            app = create_app(bundles["ease"], ServeSettings(gc_freeze=freeze), served=served)
            with TestClient(app) as c:
                assert c.get("/healthz").status_code == 200
                assert (gc.get_freeze_count() > 0) is freeze
    finally:
        gc.unfreeze()
