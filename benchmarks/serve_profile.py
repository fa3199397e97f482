"""Where does a /v1/recommend request spend its time? cProfile of the app, driven in-process.

The app (the same one ``zenrec serve`` runs, middleware included) is called through ASGI
directly, with no socket and no client in the process, so every frame in the table is server
work: body parsing, validation, the engine, serialisation, metrics, the request log.

Usage (from the repository root):
    python benchmarks/serve_profile.py --bundle runs/serve-capacity/bprmf-bundle
    python benchmarks/serve_profile.py --fit ease --requests 5000 --top 30
``--fit MODEL`` fits MODEL on ML-100K first (seconds) when no bundle is given.
Prints the top frames by own time and by cumulative time, and the mean wall and CPU
microseconds a request (CPU time is the steadier figure on a busy machine).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _bundle(args: argparse.Namespace) -> Path:
    if args.bundle:
        return Path(args.bundle)
    from zenrec.data import load_dataset
    from zenrec.models import create_model

    params = {"epochs": 3} if args.fit == "bprmf" else {}
    model = create_model(args.fit, **params).fit(load_dataset("ml-100k"))
    return model.save(Path(tempfile.mkdtemp(prefix="zenrec-profile-")) / args.fit)


async def _drive(app: Any, bodies: list[bytes], path: str) -> tuple[float, float]:
    """Run the app's lifespan, send every body to ``path``; (wall, CPU) seconds of the requests."""
    startup: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})

    async def ls_receive() -> dict[str, Any]:
        return await startup.get()

    async def ls_send(msg: dict[str, Any]) -> None:
        await sent.put(msg)

    life = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, ls_receive, ls_send)
    )
    msg = await sent.get()
    if msg["type"] != "lifespan.startup.complete":
        raise SystemExit(f"startup failed: {msg}")
    statuses: dict[int, int] = {}

    async def one(body: bytes) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST" if body else "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        done = False

        async def receive() -> dict[str, Any]:
            nonlocal done
            if done:
                await asyncio.sleep(3600)
            done = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(m: dict[str, Any]) -> None:
            if m["type"] == "http.response.start":
                statuses[m["status"]] = statuses.get(m["status"], 0) + 1

        await app(scope, receive, send)

    t0, c0 = time.perf_counter(), time.process_time()
    for b in bodies:
        await one(b)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    await startup.put({"type": "lifespan.shutdown"})
    await life
    print(f"statuses: {statuses}", file=sys.stderr)
    return seconds, cpu


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bundle", help="bundle directory (default: fit --fit on ML-100K)")
    p.add_argument("--fit", default="bprmf", help="model fitted when no --bundle (default bprmf)")
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--kind", choices=["user", "history", "filter", "healthz"], default="user")
    p.add_argument("--request-log", action="store_true", help="turn the request log on")
    p.add_argument("--no-profile", action="store_true", help="time only (no cProfile)")
    p.add_argument("--freeze", action="store_true", help="gc.freeze() the warmed-up heap first")
    args = p.parse_args()

    from zenrec.models.registry import load_model
    from zenrec.serving import ServeSettings, create_app
    from zenrec.serving.engine import load_served

    bundle = _bundle(args)
    extra: dict[str, Any] = {}
    if args.request_log:
        extra = {
            "request_log": Path(tempfile.mkdtemp(prefix="zenrec-profile-log-")),
            "request_log_salt": "profile",
        }
    settings = ServeSettings.model_validate({"max_concurrency": 1000, **extra})
    served = load_served(bundle, settings)
    model = load_model(bundle)
    users = [u.item() for u in model.user_vocab.ids[:500]]
    items = [i.item() for i in model.item_vocab.ids[:200]]
    path = "/v1/recommend"
    bodies = []
    for j in range(args.requests):
        if args.kind == "user":
            req: dict[str, Any] = {"user_id": users[j % len(users)], "k": 10}
        elif args.kind == "history":
            req = {"recent_items": items[j % 150 : j % 150 + 20], "k": 10}
        elif args.kind == "filter":
            req = {"user_id": users[j % len(users)], "k": 10, "genres": ["Comedy"]}
        else:
            req, path = {}, "/healthz"
        bodies.append(json.dumps(req).encode() if req else b"")
    app = create_app(bundle, settings, served=served)
    asyncio.run(_drive(app, bodies[:200], path))  # warm-up
    app = create_app(bundle, settings, served=served)
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - started[0])

    if args.freeze:
        gc.collect()
        gc.freeze()
    gc.callbacks.append(on_gc)
    prof = cProfile.Profile()
    if not args.no_profile:
        prof.enable()
    seconds, cpu = asyncio.run(_drive(app, bodies, path))
    prof.disable()
    gc.callbacks.remove(on_gc)
    for gen, p in pauses.items():
        if p:
            print(
                f"gc generation {gen}: {len(p)} collections, max {max(p) * 1e3:.2f} ms, "
                f"total {sum(p) * 1e3:.1f} ms"
            )
    print(
        f"{args.requests} {args.kind} requests to {path}: "
        f"{seconds / args.requests * 1e6:.0f} us each, {cpu / args.requests * 1e6:.0f} us CPU"
        + ("" if args.no_profile else " (under cProfile)")
    )
    if not args.no_profile:
        for key in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats(key).print_stats(args.top)
            text = out.getvalue()
            print(text[text.find("   ncalls") :])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
