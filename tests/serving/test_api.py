"""The HTTP API against a real uvicorn server on a loopback port, serving an ML-100K EASE bundle."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.integration


def post(server, path, body, **kw):
    return httpx.post(server.url + path, json=body, timeout=30, **kw)


def test_online_equals_offline_for_200_users(server, ease_model):
    """The service's top-k equals ``model.recommend`` exactly: same items, same float32 scores."""
    users = ease_model.user_vocab.ids[:200].tolist()
    offline = ease_model.recommend(users, k=10)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for j, u in enumerate(users):
            r = c.post("/v1/recommend", json={"user_id": u, "k": 10})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["fallback"] == "none" and body["model"] == "ease"
            assert [it["item_id"] for it in body["items"]] == offline.item_lists[j].tolist()
            got = np.asarray([it["score"] for it in body["items"]], dtype=np.float32)
            np.testing.assert_array_equal(got, offline.score_lists[j])


def test_batch_equals_single_requests(server):
    reqs = [
        {"user_id": 1, "k": 5},
        {"recent_items": [50, 181, 172], "k": 4},
        {"user_id": "nobody", "k": 3},
    ]
    batch = post(server, "/v1/recommend/batch", {"requests": reqs}).json()
    assert len(batch["results"]) == 3
    for req, res in zip(reqs, batch["results"]):
        single = post(server, "/v1/recommend", req).json()
        assert single["items"] == res["items"] and single["fallback"] == res["fallback"]


def test_unknown_user_served_from_history_then_popularity(server, ease_model):
    hist = [50, 181, 172, 999_999_999]
    body = post(
        server, "/v1/recommend", {"user_id": "visitor-1", "recent_items": hist, "k": 10}
    ).json()
    assert body["fallback"] == "history"
    assert body["unknown_items"] == [999_999_999]
    offline = ease_model.recommend_from_items(hist, k=10)
    assert [it["item_id"] for it in body["items"]] == offline.item_lists[0].tolist()
    assert not {50, 181, 172} & {it["item_id"] for it in body["items"]}
    pop = post(server, "/v1/recommend", {"user_id": "visitor-2", "k": 5}).json()
    assert pop["fallback"] == "popularity"
    order = np.argsort(-ease_model.item_popularity_, kind="stable")[:5]
    assert [it["item_id"] for it in pop["items"]] == ease_model.item_vocab.decode(order).tolist()
    # titles and genres come from the bundle
    first = body["items"][0]
    assert isinstance(first["title"], str) and first["title"]
    assert isinstance(first["genres"], list) and "year" in first["metadata"]


def test_filters_include_and_exclude(server):
    body = post(
        server,
        "/v1/recommend",
        {"user_id": 1, "k": 20, "genres": ["Comedy"], "year_min": 1990, "year_max": 1995},
    ).json()
    assert len(body["items"]) == 20
    for it in body["items"]:
        assert "Comedy" in it["genres"] and 1990 <= it["metadata"]["year"] <= 1995
    generic = post(
        server,
        "/v1/recommend",
        {
            "user_id": 1,
            "k": 20,
            "filters": {"genres": {"any_of": ["Comedy"]}, "year": {"min": 1990, "max": 1995}},
        },
    ).json()
    assert generic["items"] == body["items"]
    base = post(server, "/v1/recommend", {"user_id": 1, "k": 5}).json()["items"]
    top = base[0]["item_id"]
    excl = post(
        server, "/v1/recommend", {"user_id": 1, "k": 5, "exclude_items": [top, 424242]}
    ).json()
    assert top not in [it["item_id"] for it in excl["items"]] and excl["unknown_items"] == [424242]
    only = post(
        server,
        "/v1/recommend",
        {"user_id": 1, "k": 5, "include_items": [1, 2, 3], "exclude_seen": False},
    ).json()
    assert {it["item_id"] for it in only["items"]} <= {1, 2, 3}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": 1, "k": 0}, ["body", "k"]),
        ({"user_id": 1, "k": 1001}, ["body", "k"]),
        ({"user_id": 1, "k": "ten"}, ["body", "k"]),
        ({"user_id": 1, "colour": "red"}, ["body", "colour"]),
        ({"user_id": 1, "recent_items": list(range(1001))}, ["body", "recent_items"]),
        ({"user_id": 1, "exclude_seen": "maybe"}, ["body", "exclude_seen"]),
        ({"user_id": 1, "filters": {"colour": {"any_of": ["red"]}}}, ["body", "filters", "colour"]),
        ({"user_id": 1, "genres": ["Comedyy"]}, ["body", "filters", "genres"]),
        ({"user_id": 1, "filters": {"year": {"any_of": ["1990"]}}}, ["body", "filters", "year"]),
        ({"user_id": 1, "year_min": 2000, "year_max": 1990}, ["body", "year_min"]),
    ],
)
def test_validation_errors_name_the_field(server, body, field):
    r = post(server, "/v1/recommend", body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(d["loc"][: len(field)] == field for d in detail), detail
    assert "Traceback" not in r.text and "/work/" not in r.text and ".py" not in r.text


def test_body_limits_and_malformed_json(server):
    big = {"user_id": 1, "recent_items": ["x" * 1000] * 1000}
    r = post(server, "/v1/recommend", big)
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    # a streamed (chunked) body without Content-Length is counted while it is read
    chunks = (
        b'{"user_id": 1, "recent_items": [' + b'"xxxxxxxx", ' * 100_000 + b'"y"]}' for _ in range(1)
    )
    r = httpx.post(
        server.url + "/v1/recommend", content=chunks, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    r = httpx.post(
        server.url + "/v1/recommend",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    r = httpx.post(server.url + "/v1/recommend", content=b"%t\xf99\x0c")  # not even UTF-8
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][0] == "body"
    r = post(server, "/v1/recommend/batch", {"requests": [{"user_id": 1}] * 300})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "requests"]
    r = httpx.get(server.url + "/no/such/route")
    assert r.status_code == 404 and "Traceback" not in r.text


def test_similar_items(server, ease_model):
    body = post(server, "/v1/similar-items", {"item_id": 50, "k": 5}).json()
    expected = ease_model.similar_items(50, k=5)
    assert [it["item_id"] for it in body["items"]] == expected.item_lists[0].tolist()
    assert 50 not in [it["item_id"] for it in body["items"]]
    r = post(server, "/v1/similar-items", {"item_id": 987654, "k": 5})
    assert r.status_code == 404 and "987654" in r.json()["detail"]


def test_probes_and_model_info(server, bundles):
    meta = json.loads((bundles["ease"] / "bundle.json").read_text())
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok", "model_version": None}
    ready = httpx.get(server.url + "/readyz").json()
    assert ready == {"status": "ready", "model_version": meta["content_sha256"][:16]}
    info = httpx.get(server.url + "/v1/model").json()
    assert info["model"] == "ease" and info["version"] == meta["content_sha256"][:16]
    assert info["dataset_sha256"] == meta["dataset_sha256"] and info["metrics"] == {"ndcg@10": 0.4}
    assert info["created"] and info["retrieval"] == "exact"
    assert "Comedy" in info["item_attributes"]["genres"]["labels"]
    assert info["item_attributes"]["year"]["kind"] == "numeric"
    items = httpx.get(server.url + "/v1/items", params={"q": "star wars"}).json()["items"]
    assert items and all("star wars" in it["title"].lower() for it in items)


def test_readyz_is_503_before_the_lifespan_has_loaded(bundles):
    import asyncio

    from zenrec.serving import ServeSettings, create_app

    app = create_app(bundles["ease"], ServeSettings())

    async def probe():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            return (await c.get("/readyz")).status_code, (
                await c.post("/v1/recommend", json={"user_id": 1})
            ).status_code

    assert asyncio.run(probe()) == (503, 503)


def test_metrics_after_known_traffic(bundles):
    from live import live_server

    with live_server(bundles["ease"]) as srv, httpx.Client(base_url=srv.url) as c:
        for u in (1, 2, 3):
            assert c.post("/v1/recommend", json={"user_id": u}).status_code == 200
        assert c.post("/v1/recommend", json={"recent_items": [50]}).status_code == 200
        assert c.post("/v1/recommend", json={"user_id": "nobody"}).status_code == 200
        assert c.post("/v1/recommend", json={"k": 0}).status_code == 422
        text = c.get("/metrics").text
    version = json.loads((bundles["ease"] / "bundle.json").read_text())["content_sha256"][:16]
    assert 'zenrec_requests_total{endpoint="/v1/recommend",status="200"} 5.0' in text
    assert 'zenrec_requests_total{endpoint="/v1/recommend",status="422"} 1.0' in text
    assert (
        'zenrec_request_duration_seconds_count{endpoint="/v1/recommend",'
        f'model_version="{version}",status="200"}} 5.0' in text
    )
    assert 'zenrec_users_served_total{endpoint="/v1/recommend"} 5.0' in text
    (load,) = [x for x in text.splitlines() if x.startswith("zenrec_model_load_seconds ")]
    assert float(load.split()[1]) > 0
    if sys.platform == "linux":  # process metrics: resident memory for sizing the pod
        (rss,) = [x for x in text.splitlines() if x.startswith("process_resident_memory_bytes ")]
        assert float(rss.split()[1]) > 10 * 2**20
    assert 'zenrec_fallbacks_total{kind="none"} 3.0' in text
    assert 'zenrec_fallbacks_total{kind="history"} 1.0' in text
    assert 'zenrec_fallbacks_total{kind="popularity"} 1.0' in text
    assert f'zenrec_model_info{{model="ease",version="{version}"}} 1.0' in text
    assert "zenrec_requests_in_flight" in text and "zenrec_reloads_total" in text


def test_request_id_is_echoed_or_generated(server):
    with httpx.Client(base_url=server.url) as c:
        r = c.post("/v1/recommend", json={"user_id": 1}, headers={"X-Request-ID": "abc-123"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "abc-123"
        made = [c.get("/healthz").headers["x-request-id"] for _ in range(2)]
        assert all(len(m) == 32 for m in made) and made[0] != made[1]
        # a header that could forge log lines is replaced, not echoed
        r = c.get("/healthz", headers={"X-Request-ID": "a b\tc"})
        assert r.headers["x-request-id"] != "a b\tc" and len(r.headers["x-request-id"]) == 32
        r = c.post("/v1/recommend", json={"k": 0}, headers={"X-Request-ID": "bad-1"})
        assert r.status_code == 422 and r.headers["x-request-id"] == "bad-1"


def test_admin_routes_need_the_key_and_do_not_exist_without_one(server, bundles):
    r = httpx.post(server.url + "/admin/reload", json={})
    assert r.status_code == 401
    r = httpx.post(server.url + "/admin/reload", json={}, headers={"X-API-Key": "wrong"})
    assert r.status_code == 401
    from live import live_server

    with live_server(bundles["ease"]) as srv:
        assert (
            httpx.post(srv.url + "/admin/reload", json={}, headers={"X-API-Key": "x"}).status_code
            == 404
        )
        assert "/admin/reload" not in httpx.get(srv.url + "/openapi.json").json()["paths"]


def test_request_log_lines_match_requests(bundles, tmp_path):
    from live import live_server

    sent = [
        {"user_id": 1, "k": 5},
        {"user_id": 2, "k": 7},
        {"recent_items": [50], "k": 3},
        {"user_id": 1, "k": 0},
    ]
    logdir = tmp_path / "log"
    with live_server(bundles["ease"], request_log=logdir, request_log_salt="pepper") as srv:
        statuses = [httpx.post(srv.url + "/v1/recommend", json=b).status_code for b in sent]
        httpx.get(srv.url + "/healthz")
        version = srv.state.served.version
    files = sorted(logdir.glob("requests-*.jsonl"))
    assert len(files) == 1
    lines = [json.loads(x) for x in files[0].read_text().splitlines()]
    assert len(lines) == len(sent)  # probes are not logged
    for rec, body, status in zip(lines, sent, statuses):
        assert set(rec) == {"ts", "endpoint", "status", "latency_ms", "model_version", "user", "k"}
        assert rec["endpoint"] == "/v1/recommend" and rec["status"] == status
        assert rec["ts"].endswith("+00:00") and rec["latency_ms"] > 0
        user = body.get("user_id") if status == 200 else None  # a refused body is not parsed
        assert rec["user"] == (
            None
            if user is None
            else hmac.new(b"pepper", str(user).encode(), hashlib.sha256).hexdigest()
        )
        if status == 200:
            assert rec["model_version"] == version and rec["k"] == body["k"]
        else:
            assert rec["k"] is None


def test_user_without_training_rows_is_served_popularity_flagged(ml100k, tmp_path):
    """After a time cutoff most test users have no training row; the service answers them with
    the popularity list, ``fallback: popularity``, as it answers an unknown user (and as
    ``model.recommend`` does), never the model's all-zero row in item-index order."""
    from live import live_server

    from zenrec.models import create_model
    from zenrec.splits import time_cutoff_split

    split = time_cutoff_split(ml100k, test_fraction=0.1, valid_fraction=0.1)
    model = create_model("ease", l2=200.0).fit(split.train)
    cold = model.user_vocab.decode(np.flatnonzero(np.diff(model.seen_.indptr) == 0)).tolist()
    assert cold
    offline = model.recommend([cold[0], "nobody"], k=5)
    assert offline.fallback_kind == ["popularity", "popularity"]
    path = model.save(tmp_path / "ease-cutoff")
    with live_server(path) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        got = [c.post("/v1/recommend", json={"user_id": u, "k": 5}).json() for u in cold[:3]]
        unknown = c.post("/v1/recommend", json={"user_id": "nobody", "k": 5}).json()
    for body in got:
        assert body["fallback"] == "popularity"
        assert [it["item_id"] for it in body["items"]] == offline.item_lists[0].tolist()
    assert [it["item_id"] for it in unknown["items"]] == offline.item_lists[1].tolist()
    pop = model.item_popularity_[model.item_vocab.encode(offline.item_lists[0])]
    assert pop.tolist() == np.sort(model.item_popularity_)[::-1][:5].tolist()
