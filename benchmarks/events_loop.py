"""The events loop, measured: event intake rate and latency, time to a reflected event, refresh
seconds, and the replay that shows what events and refreshes are worth.

Sections (``--only``):

* ``ingest``: ``zenrec serve BUNDLE --events URL`` (one worker) under ``--clients`` closed-loop
  clients posting batches of 1 and of 100 events for ``--duration`` seconds, on SQLite and, with
  ``--pg-url``, PostgreSQL: accepted events/s and p50/p99 of ``POST /v1/events``; then the time
  from an event's 202 to the first ``/v1/recommend`` that reflects it (``history_source``
  events, the item excluded). Targets: >= 2,000 events/s (SQLite), >= 5,000 (PostgreSQL),
  batches of 100; reflected within 1 s.
* ``replay``: ML-100K in time order; train on the first 80 %; the next 10 % become events (the
  store, or ``--via http`` through ``POST /v1/events``); NDCG@10 on the last 10 % for the stale
  bundle, the session-aware stale bundle (history + events, as ``/v1/recommend`` does) and the
  refreshed bundle (``zenrec.runs.refresh``), per model (``--models ease,ials,bprmf``), with
  ``zenrec refresh`` seconds (10 % of ML-100K is 10,000 events); iALS and neural models are
  refreshed twice, warm (from the bundle's factors or weights) and full (from scratch), each row
  with its phase seconds, challenger and champion metrics and (neural) the warm-start record.

Usage (quiet machine, from the repository root):
    .venv/bin/python benchmarks/events_loop.py --output runs/events_loop.json
    .venv/bin/python benchmarks/events_loop.py --only ingest --pg-url postgresql://u@/db?host=/s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from zenrec.data import Dataset, load_builtin
from zenrec.evaluation.metrics import ndcg
from zenrec.events import Event, EventStore
from zenrec.models import create_model
from zenrec.models.registry import load_model
from zenrec.runs.refresh import RefreshConfig, refresh_bundle


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(bundle: Path, url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "zenrec", "serve", str(bundle), "--port", str(port), "--events",
         url, "--max-concurrency", "256"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


async def _clients(base: str, batch: int, clients: int, duration: float) -> dict[str, Any]:
    import httpx

    lat: list[float] = []
    accepted = 0
    stop = time.perf_counter() + duration

    async def one(w: int) -> None:
        nonlocal accepted
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            n = 0
            while time.perf_counter() < stop:
                body = {"events": [{"event_id": f"{batch}-{w}-{n}-{j}", "user_id": n % 943 + 1,
                                    "item_id": j % 1682 + 1, "type": "click",
                                    "timestamp": time.time()} for j in range(batch)]}  # fmt: skip
                t = time.perf_counter()
                r = await c.post("/v1/events", json=body)
                lat.append(time.perf_counter() - t)
                if r.status_code == 202:
                    accepted += r.json()["accepted"]
                n += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one(w) for w in range(clients)))
    wall = time.perf_counter() - t0
    ms = np.asarray(lat) * 1000
    return {
        "batch": batch,
        "clients": clients,
        "events_per_s": accepted / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "requests": len(lat),
    }


def _reflect(base: str, user: int, item: int) -> float:
    import httpx

    with httpx.Client(base_url=base, timeout=30) as c:
        t = time.perf_counter()
        ev = {"event_id": f"reflect-{time.time()}", "user_id": user, "item_id": item,
              "type": "click", "timestamp": time.time()}  # fmt: skip
        assert c.post("/v1/events", json={"events": [ev]}).status_code == 202
        while True:
            r = c.post("/v1/recommend", json={"user_id": user, "k": 10}).json()
            if r["history_source"] == "events" and item not in [x["item_id"] for x in r["items"]]:
                return time.perf_counter() - t


def ingest(args: argparse.Namespace, bundle: Path, tmp: Path) -> list[dict[str, Any]]:
    stores = [("sqlite", f"sqlite:///{tmp}/ingest.db")]
    if args.pg_url:
        stores.append(("postgresql", args.pg_url))
    out = []
    for name, url in stores:
        proc, base = _serve(bundle, url)
        try:
            for batch in (1, 100):
                row = asyncio.run(_clients(base, batch, args.clients, args.duration))
                row["store"] = name
                out.append(row)
                print(json.dumps(row))
            reflect = [_reflect(base, 196, 1000 + j) for j in range(20)]
            row = {"store": name, "reflect_p50_ms": 1000 * float(np.median(reflect)),
                   "reflect_max_ms": 1000 * float(np.max(reflect))}  # fmt: skip
            out.append(row)
            print(json.dumps(row))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return out


def _post_all(bundle: Path, url: str, events: list[Event]) -> None:
    """Replay ``events`` through ``POST /v1/events`` of a served stale bundle, 100 a batch."""
    import httpx

    proc, base = _serve(bundle, url)
    try:
        with httpx.Client(base_url=base, timeout=60) as c:
            for i in range(0, len(events), 100):
                body = {"events": [{"event_id": e.event_id, "user_id": e.user_id,
                                    "item_id": e.item_id, "type": e.type, "value": e.value,
                                    "timestamp": e.ts} for e in events[i : i + 100]]}  # fmt: skip
                r = c.post("/v1/events", json=body)
                r.raise_for_status()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _ndcg_at(scores: np.ndarray, truth: list[np.ndarray], excl: list[np.ndarray]) -> float:
    s = np.where(np.isfinite(scores), scores, -np.inf)
    for row, ex in enumerate(excl):
        s[row, ex] = -np.inf
    top = np.argsort(-s, axis=1, kind="stable")[:, :10]
    hits = np.stack([np.isin(top[r], t) for r, t in enumerate(truth)])
    return float(ndcg(hits, np.asarray([t.size for t in truth]), 10).mean())


def replay(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    ds = load_builtin("ml-100k")
    assert ds.timestamps is not None
    order = np.argsort(ds.timestamps, kind="stable")
    a, b = int(0.8 * order.size), int(0.9 * order.size)
    users, items = ds.user_vocab.decode(ds.users), ds.item_vocab.decode(ds.items)
    train = Dataset.from_raw(users[order[:a]], items[order[:a]])
    mid, last = order[a:b], order[b:]
    out = []
    for name in args.models.split(","):
        model = create_model(name).fit(train)
        bundle = model.save(tmp / f"stale-{name}")
        url = f"sqlite:///{tmp}/replay-{name}.db"
        replayed = [
            Event(f"r{j}", str(users[j]), str(items[j]), "rating",
                  float(ds.ratings[j]) if ds.ratings is not None else 1.0,
                  float(ds.timestamps[j]))
            for j in mid
        ]  # fmt: skip
        if args.via == "http":
            _post_all(bundle, url, replayed)
        else:
            store = EventStore(url)
            store.insert(replayed)
            store.close()
        # iALS and neural bundles: the warm update (the default) and the full refit, both timed
        modes = (
            ["warm", "full"] if name == "ials" or hasattr(model, "warm_start_from") else ["full"]
        )
        for mode in modes:
            row = _refresh_row(name, mode, model, bundle, url, tmp, users, items, last)
            out.append(row)
            print(json.dumps(row))
    return out


def _refresh_row(
    name: str,
    mode: str,
    model: Any,
    bundle: Path,
    url: str,
    tmp: Path,
    users: np.ndarray,
    items: np.ndarray,
    last: np.ndarray,
) -> dict[str, Any]:
    """One ``zenrec refresh`` of the stale bundle (``mode``: warm update or full refit), timed,
    and NDCG@10 of the stale, session-aware and refreshed bundle on the last window."""
    t = time.perf_counter()
    cfg = RefreshConfig(warm=mode == "warm")
    res = refresh_bundle(bundle, url, tmp / f"fresh-{name}-{mode}", cfg)
    refresh_s = time.perf_counter() - t
    fresh = load_model(tmp / f"fresh-{name}-{mode}")
    assert fresh.item_vocab is not None and fresh.seen_ is not None
    cat = fresh.item_vocab.ids
    # history of each last-window user: training + replayed events (fresh's seen rows)
    lu = users[last].astype(str)
    li = fresh.item_vocab.encode(items[last])
    eval_users, truth, excl = [], [], []
    for u in np.unique(lu):
        ui = int(fresh.user_vocab.encode(np.asarray([u]))[0]) if fresh.user_vocab else -1
        seen = fresh.seen_.indices[fresh.seen_.indptr[ui] : fresh.seen_.indptr[ui + 1]] \
            if ui >= 0 else np.zeros(0, np.int64)  # fmt: skip
        tr = np.setdiff1d(np.unique(li[(lu == u) & (li >= 0)]), seen)
        if tr.size:
            eval_users.append(users[last][lu == u][0])
            truth.append(tr)
            excl.append(seen)
    stale = model.score(eval_users, cat)
    session = np.vstack([_session(model, cat[ex], cat) for ex in excl])
    return {
        "model": name,
        "refresh": mode,
        "method": res.method,
        "users": len(eval_users),
        "stale_ndcg@10": _ndcg_at(stale, truth, excl),
        "session_ndcg@10": _ndcg_at(session, truth, excl),
        "refreshed_ndcg@10": _ndcg_at(fresh.score(eval_users), truth, excl),
        "refresh_seconds": refresh_s,
        "refresh_phase_seconds": res.seconds,
        "refresh_events": res.events["feedback"],
        "refresh_metrics": res.metrics,
        "refresh_decision": res.decision,
        "warm_start": res.warm_start,
    }


def _session(model: Any, history: np.ndarray, cat: np.ndarray) -> np.ndarray:
    h = model.score_from_items(history)
    pos = model.item_vocab.encode(cat)
    s = np.full(cat.size, np.nan, dtype=np.float32)
    s[pos >= 0] = h.scores[pos[pos >= 0]]
    return s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="ingest,replay")
    p.add_argument("--pg-url", help="PostgreSQL event store for the ingest section")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--models", default="ease,ials,bprmf")
    p.add_argument(
        "--via",
        choices=["store", "http"],
        default="store",
        help="replay: write the events to the store, or post them to a server",
    )
    p.add_argument("--output", default="runs/events_loop.json")
    args = p.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    tmp = Path(tempfile.mkdtemp(prefix="zenrec-events-loop-"))
    result: dict[str, Any] = {}
    sections = args.only.split(",")
    if "ingest" in sections:
        ds = load_builtin("ml-100k")
        bundle = create_model("ease").fit(ds).save(tmp / "ingest-bundle")
        result["ingest"] = ingest(args, bundle, tmp)
    if "replay" in sections:
        result["replay"] = replay(args, tmp)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
