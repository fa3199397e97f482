"""POST /v1/events and session-aware /v1/recommend against a real uvicorn server."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from live import live_server

from zenrec.events import Event, EventStore


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from zenrec.data import synthetic_dataset
    from zenrec.models import create_model

    ds = synthetic_dataset(n_users=60, n_items=40, seed=3)
    model = create_model("ease", l2=10.0).fit(ds)
    path = model.save(tmp_path_factory.mktemp("b") / "ease")
    return model, path


def ev(i, user, item, type_="click", ts="2026-12-07T10:00:00Z"):
    return {"event_id": f"e{i}", "user_id": user, "item_id": item, "type": type_,
            "timestamp": ts}  # fmt: skip


def test_events_are_stored_once_and_counted(small, tmp_path):
    _, bundle = small
    url = f"sqlite:///{tmp_path}/ev.db"
    with live_server(bundle, events_url=url) as srv, httpx.Client(base_url=srv.url) as c:
        r = c.post("/v1/events", json={"events": [ev(1, 1000, 1001), ev(2, 1000, 1002)]})
        assert r.status_code == 202 and r.json() == {"accepted": 2, "duplicates": 0}
        r = c.post(
            "/v1/events",
            json={"events": [ev(2, 1000, 1002), ev(3, "new", "x", "view", 1_765_000_000)]},
        )
        assert r.status_code == 202 and r.json() == {"accepted": 1, "duplicates": 1}
        metrics = c.get("/metrics").text
        assert "zenrec_events_accepted_total 3.0" in metrics
        assert "zenrec_events_duplicates_total 1.0" in metrics
        assert 'zenrec_requests_total{endpoint="/v1/events",status="202"} 2.0' in metrics
    store = EventStore(url)
    got = {e.event_id: e for e in store.events_between()}
    assert sorted(got) == ["e1", "e2", "e3"]
    assert (
        got["e1"].ts == datetime(2026, 12, 7, 10, tzinfo=UTC).timestamp()
        and got["e3"].ts == 1_765_000_000.0
    )
    assert (got["e3"].user_id, got["e3"].item_id, got["e3"].type) == ("new", "x", "view")
    store.close()


@pytest.mark.parametrize(
    ("events", "loc"),
    [
        ([ev(1, 1, 2), ev(2, 1, 2, "like")], ["body", "events", 1, "type"]),
        ([{k: v for k, v in ev(1, 1, 2).items() if k != "timestamp"}],
         ["body", "events", 0, "timestamp"]),
        ([{**ev(1, 1, 2), "event_id": ""}], ["body", "events", 0, "event_id"]),
        ([{**ev(1, 1, 2), "value": "much"}], ["body", "events", 0, "value"]),
        ([], ["body", "events"]),
        ([ev(i, 1, 2) for i in range(6)], ["body", "events"]),
    ],
)  # fmt: skip
def test_invalid_batches_are_422_naming_the_field(small, tmp_path, events, loc):
    _, bundle = small
    url = f"sqlite:///{tmp_path}/ev.db"
    with live_server(bundle, events_url=url, max_events_per_batch=5) as srv:
        r = httpx.post(srv.url + "/v1/events", json={"events": events})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == loc
    store = EventStore(url)
    assert store.count() == 0  # nothing of a rejected batch is stored
    store.close()


def test_configured_event_types(small, tmp_path):
    _, bundle = small
    url = f"sqlite:///{tmp_path}/ev.db"
    with live_server(bundle, events_url=url, event_types=("like",)) as srv:
        assert httpx.post(srv.url + "/v1/events", json={"events": [ev(1, 1, 2, "like")]}
                          ).status_code == 202  # fmt: skip
        r = httpx.post(srv.url + "/v1/events", json={"events": [ev(2, 1, 2, "click")]})
        assert r.status_code == 422 and "accepts like" in r.text


def test_no_route_without_a_store(small):
    _, bundle = small
    with live_server(bundle) as srv:
        assert httpx.post(srv.url + "/v1/events", json={"events": [ev(1, 1, 2)]}
                          ).status_code == 404  # fmt: skip


def test_backpressure_and_store_errors_are_503_with_retry_after(small, tmp_path):
    _, bundle = small
    url = f"sqlite:///{tmp_path}/ev.db"
    with live_server(bundle, events_url=url, events_max_in_flight=1) as srv:
        intake = srv.state.events
        real = intake.store.insert
        gate = threading.Event()

        def slow(events):
            gate.wait(10)
            return real(events)

        intake.store.insert = slow

        async def two():
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
                first = asyncio.create_task(c.post("/v1/events", json={"events": [ev(1, 1, 2)]}))
                await asyncio.sleep(0.3)
                second = await c.post("/v1/events", json={"events": [ev(2, 1, 3)]})
                gate.set()
                return await first, second

        first, second = asyncio.run(two())
        assert first.status_code == 202
        assert second.status_code == 503 and second.headers["retry-after"] == "1"

        def broken(events):
            from zenrec.events import EventStoreError

            raise EventStoreError("disk full")

        intake.store.insert = broken
        r = httpx.post(srv.url + "/v1/events", json={"events": [ev(3, 1, 2)]})
        assert r.status_code == 503 and "disk full" in r.text and "retry-after" in r.headers
        metrics = httpx.get(srv.url + "/metrics").text
        assert 'zenrec_events_rejected_total{reason="backpressure"} 1.0' in metrics
        assert 'zenrec_events_rejected_total{reason="store_error"} 1.0' in metrics


def _rec(c, **body):
    r = c.post("/v1/recommend", json={"k": 8, **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_session_aware_lists_use_new_events(small, tmp_path):
    model, bundle = small
    url = f"sqlite:///{tmp_path}/ev.db"
    user = int(model.user_vocab.ids[0])
    seen = model.item_vocab.ids[model.seen_[0].indices].tolist()
    fresh = [int(i) for i in model.item_vocab.ids if int(i) not in seen][:2]
    with live_server(bundle, events_url=url) as srv, httpx.Client(base_url=srv.url) as c:
        before = _rec(c, user_id=user)
        assert before["history_source"] == "bundle" and before["fallback"] == "none"
        assert [x["item_id"] for x in before["items"]] == model.recommend([user], k=8).item_lists[
            0
        ].tolist()
        t0 = time.perf_counter()
        c.post(
            "/v1/events",
            json={
                "events": [
                    ev(1, user, fresh[0], ts=1000),
                    ev(2, user, fresh[1], ts=2000),
                    ev(3, user, "not-in-catalog", ts=3000),
                ]
            },
        )
        after = _rec(c, user_id=user)
        reflected = time.perf_counter() - t0
        assert after["history_source"] == "events" and after["fallback"] == "history"
        items = [x["item_id"] for x in after["items"]]
        assert not set(fresh) & set(items)  # just consumed: excluded
        expected = model.recommend_from_items(seen + fresh, k=8)
        assert items == expected.item_lists[0].tolist()
        np.testing.assert_allclose(
            [x["score"] for x in after["items"]], expected.score_lists[0], rtol=1e-6
        )
        assert reflected < 5.0

        # A visitor unknown to the bundle: its events are its history.
        c.post("/v1/events", json={"events": [ev(4, "visitor", fresh[0])]})
        v = _rec(c, user_id="visitor")
        assert v["history_source"] == "events"
        assert [x["item_id"] for x in v["items"]] == model.recommend_from_items(
            [fresh[0]], k=8).item_lists[0].tolist()  # fmt: skip
        # Only items outside the catalog: the bundle's row is used as before.
        c.post("/v1/events", json={"events": [ev(5, 1001, "nope")]})
        assert _rec(c, user_id=1001)["history_source"] == "bundle"
        assert _rec(c, recent_items=[fresh[0]])["history_source"] == "request"
        assert _rec(c, user_id="nobody")["history_source"] == "none"
        # The batch endpoint answers the same way.
        b = c.post("/v1/recommend/batch", json={"requests": [{"user_id": user, "k": 8}]}).json()
        assert b["results"][0]["items"] == after["items"]


def test_events_a_bundle_was_trained_on_are_not_reused(tmp_path):
    from prometheus_client import CollectorRegistry

    from zenrec.serving import ServeSettings
    from zenrec.serving.events import EventIntake

    store = EventStore(f"sqlite:///{tmp_path}/ev.db")
    store.insert([Event("a", "u", "i1", "click", 1.0, 1.0)])
    cut = time.time() + 0.01
    time.sleep(0.02)
    store.insert([Event("b", "u", "i2", "click", 1.0, 2.0)])
    intake = EventIntake(store, ServeSettings(), CollectorRegistry())
    assert intake.session_items("u", {}) == ("i1", "i2")  # oldest first
    lineage = {"lineage": {"events": {"received_until": cut}}}
    assert intake.session_items("u", lineage) == ("i2",)
    store.close()


def test_batches_arriving_during_a_commit_are_committed_together(small, tmp_path):
    _, bundle = small
    url = f"sqlite:///{tmp_path}/ev.db"
    with live_server(bundle, events_url=url) as srv:
        intake = srv.state.events
        real = intake.store.insert
        gate = threading.Event()
        calls: list[int] = []

        def gated(events):
            calls.append(len(events))
            gate.wait(10)
            return real(events)

        intake.store.insert = gated

        async def many():
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
                first = asyncio.create_task(c.post("/v1/events", json={"events": [ev(0, 1, 2)]}))
                await asyncio.sleep(0.3)  # the first commit is running (held by the gate)
                # ten batches of one while it runs; "e5" is sent twice
                rest = [
                    asyncio.create_task(
                        c.post("/v1/events", json={"events": [ev(min(i, 5), 1, 2 + i)]})
                    )
                    for i in range(1, 11)
                ]
                await asyncio.sleep(0.3)
                gate.set()
                return [await first] + [await t for t in rest]

        answers = asyncio.run(many())
        assert all(r.status_code == 202 for r in answers)
        assert calls == [1, 10]  # one transaction for the ten waiting batches
        bodies = [r.json() for r in answers]
        assert sum(b["accepted"] for b in bodies) == 6 and sum(b["duplicates"] for b in bodies) == 5
        assert all(b["accepted"] + b["duplicates"] == 1 for b in bodies)
    store = EventStore(url)
    assert sorted(e.event_id for e in store.events_between()) == [f"e{i}" for i in range(6)]
    store.close()


def test_the_event_read_of_a_recommend_request_runs_off_the_event_loop(
    small, tmp_path, monkeypatch
):
    """The store read behind a session-aware single request is I/O (a PostgreSQL round trip):
    it runs in a worker thread, where no event loop is running, so the loop keeps serving."""
    import asyncio

    from zenrec.serving.events import EventIntake

    model, bundle = small
    url = f"sqlite:///{tmp_path / 'ev.db'}"
    on_loop: list[bool] = []
    read = EventIntake.session_items

    def spy(self, user_id, meta):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return read(self, user_id, meta)

    monkeypatch.setattr(EventIntake, "session_items", spy)
    with live_server(bundle, events_url=url) as srv, httpx.Client(base_url=srv.url) as c:
        assert _rec(c, user_id=int(model.user_vocab.ids[0]))["history_source"] == "bundle"
    assert on_loop == [False]
