"""The whole loop on a live service: events in, zenrec refresh --promote, the service serves the
refreshed bundle and no longer treats the events it was trained on as new."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from live import live_server

from zenrec._errors import ConfigError
from zenrec.runs.refresh import promote


def test_events_refresh_promote_loop(tmp_path):
    from zenrec.data import synthetic_dataset
    from zenrec.models import create_model

    ds = synthetic_dataset(n_users=80, n_items=40, seed=2)
    model = create_model("ease", l2=5.0).fit(ds)
    bundle = model.save(tmp_path / "v1")
    url = f"sqlite:///{tmp_path}/ev.db"
    users = [int(u) for u in model.user_vocab.ids[:40]]
    events = []
    for j, u in enumerate(users):
        events.append(
            {
                "event_id": f"a{j}",
                "user_id": u,
                "item_id": "new-a",
                "type": "click",
                "timestamp": 100 + j,
            }
        )
        events.append({"event_id": f"b{j}", "user_id": u, "item_id": "new-b", "type": "click",
                       "timestamp": (9000 if j >= 20 else 200) + j})  # fmt: skip
    seen = set(model.item_vocab.ids[model.seen_[0].indices].tolist())
    known = next(int(i) for i in model.item_vocab.ids if int(i) not in seen)
    events.append({"event_id": "k0", "user_id": users[0], "item_id": known, "type": "click",
                   "timestamp": 50})  # fmt: skip
    with (
        live_server(bundle, events_url=url, api_key="k-123") as srv,
        httpx.Client(base_url=srv.url, timeout=30) as c,
    ):
        assert c.post("/v1/events", json={"events": events}).status_code == 202
        before = c.post("/v1/recommend", json={"user_id": users[0]}).json()
        assert before["history_source"] == "events"  # the known item it clicked is new
        with pytest.raises(ConfigError, match="401"):
            promote(srv.url, "wrong", tmp_path / "v1")
        r = subprocess.run(
            [sys.executable, "-m", "zenrec", "refresh", "--bundle", str(bundle), "--events", url,
             "--output", str(tmp_path / "v2"), "--promote", srv.url, "--api-key-env", "K"],
            capture_output=True, text=True, timeout=300, env={**os.environ, "K": "k-123"},
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "promoted" in r.stderr
        info = c.get("/v1/model").json()
        from zenrec.models.registry import load_model

        fresh = load_model(tmp_path / "v2")
        assert info["version"] == fresh.bundle_meta["content_sha256"][:16]
        assert info["n_items"] == 42
        after = c.post("/v1/recommend", json={"user_id": users[0], "k": 5}).json()
        assert after["history_source"] == "bundle"  # its events are in the bundle now
        # the catalog now mixes integer and string ids: the refreshed vocabulary is strings
        assert [x["item_id"] for x in after["items"]] == [
            str(i) for i in fresh.recommend([str(users[0])], k=5).item_lists[0].tolist()
        ]
