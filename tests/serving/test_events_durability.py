"""Durability of POST /v1/events: kill -9 the service while a client posts; every event
answered 202 is in the store afterwards, and none is stored twice."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import httpx
import pytest

from _net import server_process
from zenrec.events import EventStore


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from zenrec.data import synthetic_dataset
    from zenrec.models import create_model

    ds = synthetic_dataset(n_users=30, n_items=20, seed=1)
    return create_model("ease", l2=10.0).fit(ds).save(tmp_path_factory.mktemp("b") / "ease")


def test_kill_9_loses_no_acknowledged_event(bundle, tmp_path):
    url = f"sqlite:///{tmp_path}/events.db"
    acked: list[str] = []
    sent: list[str] = []
    stop = threading.Event()

    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "zenrec", "serve", str(bundle), "--port", str(port),
                "--events", url]  # fmt: skip

    def client(base: str, worker: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as c:
            b = 0
            while not stop.is_set():
                ids = [f"w{worker}-b{b}-{j}" for j in range(20)]
                body = {"events": [{"event_id": i, "user_id": 1000, "item_id": 1001,
                                    "type": "click", "timestamp": 1.0} for i in ids]}  # fmt: skip
                sent.extend(ids)
                try:
                    r = c.post("/v1/events", json=body)
                    if r.status_code == 202:
                        acked.extend(ids)
                    # Every few batches re-send the batch: duplicates must not double.
                    if b % 5 == 4:
                        c.post("/v1/events", json=body)
                except httpx.HTTPError:
                    return  # the server is gone
                b += 1

    with server_process(argv) as srv:
        threads = [threading.Thread(target=client, args=(srv.url, w)) for w in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 600 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(srv.proc.pid, signal.SIGKILL)  # mid-traffic: batches are in flight
        stop.set()
        for t in threads:
            t.join(30)
    assert srv.returncode == -signal.SIGKILL
    assert len(acked) >= 600
    store = EventStore(url)
    stored = [e.event_id for e in store.events_between()]
    store.close()
    assert len(stored) == len(set(stored))  # none twice
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} events answered 202 are not in the store"
    assert set(stored) <= set(sent)
