"""A small real FastAPI app whose latency the load-generator tests control.

Run as ``python loadgen_app.py PORT``. Every behaviour sits under a path prefix, so a test
points ``zenrec loadtest`` at ``http://127.0.0.1:PORT/<prefix>`` and the generator's
``/healthz`` (or ``/v1/recommend``) lands on it:

- ``/sleep/{ms}``: answers after ``ms`` milliseconds (asyncio sleep: requests overlap).
- ``/stall/{key}/{at}/{ms}``: the ``at``-th request under ``key`` blocks the whole event loop
  for ``ms`` milliseconds (a stop-the-world pause); the others answer at once.
- ``/limited/{c}/{ms}``: at most ``c`` requests are served at once, each takes ``ms``; the rest
  queue (a known concurrency limit: capacity ``c * 1000 / ms`` requests/s).
- ``/status/{code}``: answers with that status code.
- ``/v1/recommend``, ``/v1/similar-items``: record the JSON bodies; ``GET /bodies`` returns them.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import defaultdict
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

app = FastAPI()
_counts: dict[str, int] = defaultdict(int)
_sems: dict[str, asyncio.Semaphore] = {}
_bodies: list[dict[str, Any]] = []


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/sleep/{ms}/healthz")
async def sleep(ms: float) -> dict[str, str]:
    await asyncio.sleep(ms / 1000)
    return {"status": "ok"}


@app.get("/stall/{key}/{at}/{ms}/healthz")
async def stall(key: str, at: int, ms: float) -> dict[str, str]:
    _counts[key] += 1
    if _counts[key] == at:
        time.sleep(ms / 1000)  # blocking on purpose: the whole event loop stops
    return {"status": "ok"}


@app.get("/limited/{c}/{ms}/healthz")
async def limited(c: int, ms: float) -> dict[str, str]:
    sem = _sems.setdefault(f"{c}/{ms}", asyncio.Semaphore(c))
    async with sem:
        await asyncio.sleep(ms / 1000)
    return {"status": "ok"}


@app.get("/status/{code}/healthz")
async def status(code: int) -> Response:
    return Response(content=b'{"detail": "planted"}', status_code=code)


@app.post("/v1/recommend")
@app.post("/v1/similar-items")
async def record(request: Request) -> dict[str, Any]:
    _bodies.append({"path": request.url.path, **(await request.json())})
    return {"items": [], "scores": []}


@app.get("/bodies")
async def bodies() -> list[dict[str, Any]]:
    return _bodies


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
