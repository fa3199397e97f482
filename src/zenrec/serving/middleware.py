"""The ASGI layer around every request: admission (concurrency limit, body size), timing,
metrics, the request id and the request log. Pure ASGI (no ``BaseHTTPMiddleware``), so it
costs little."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zenrec.serving.deps import ServiceState

__all__ = ["ServiceMiddleware"]

log = logging.getLogger("zenrec.serving.access")

# Endpoints reported in metrics and the request log (anything else is "other": bounded labels).
KNOWN_ENDPOINTS = frozenset(
    {
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/model",
        "/v1/recommend",
        "/v1/recommend/batch",
        "/v1/events",
        "/v1/similar-items",
        "/v1/items",
        "/admin/reload",
        "/docs",
        "/openapi.json",
    }
)
# Cheap endpoints that are always admitted (probes and scrapes must work under overload).
UNLIMITED = frozenset({"/healthz", "/readyz", "/metrics"})
# Endpoints whose successful answers count users served (the autoscaling signal).
RECOMMENDING = frozenset({"/v1/recommend", "/v1/recommend/batch"})
# A client's X-Request-ID is echoed when it is short and printable; otherwise one is made.
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,128}")


def request_id(scope: Scope) -> str:
    """The request's ``X-Request-ID`` when it is 1-128 safe characters, else a new uuid4 hex."""
    for k, v in scope.get("headers", ()):
        if k == b"x-request-id" and _REQUEST_ID.fullmatch(v):
            return str(v.decode("ascii"))
    return uuid.uuid4().hex


class _BodyTooLarge(HTTPException):
    """Raised while a streamed body is read past the limit; FastAPI re-raises HTTPExceptions
    from body parsing, so the client gets this 413 rather than a generic 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


class ServiceMiddleware:
    """Admission control, metrics and request logging.

    A request beyond the admission limit in flight (``ServeSettings.admission_limit``: the
    latency target times the capacity), or one that arrives while the event loop lags more than
    ``ServeSettings.shed_lag_s`` behind (the backlog of a worker past its capacity waits in the
    loop's queue, before any request counts as in flight), is answered at once with 503 and
    ``Retry-After`` (never queued past the SLO); a body larger than ``max_body_bytes``
    (by ``Content-Length``, or counted while streaming) gets 413. Every answer carries an
    ``X-Request-ID`` (the client's, or a new one), also found in the access and error logs.
    """

    def __init__(self, app: ASGIApp, *, state: ServiceState) -> None:
        self.app = app
        self.state = state
        s = state.settings
        self.metrics = state.metrics
        self.max_concurrency = s.admission_limit
        self.max_body_bytes = s.max_body_bytes
        self.retry_after = str(s.retry_after_s).encode()
        self.access_log = s.access_log
        self.in_flight = 0
        self.shed_lag_s = s.shed_lag_s
        self.lag_s = 0.0
        """The event loop's latest lag: how late the watcher's last timer fired."""
        self._due = 0.0  # loop time at which the watcher's pending timer is due
        self._watch_loop: asyncio.AbstractEventLoop | None = None
        self._watcher: asyncio.Task[None] | None = None  # referenced: the loop keeps weak refs

    async def _watch_lag(self, interval: float = 0.005) -> None:
        """Measure how late a timer of ``interval`` seconds fires, for as long as the loop runs:
        a loop with a backlog runs the timer's callback only after the requests ahead of it."""
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            self._due = t + interval
            await asyncio.sleep(interval)
            self.lag_s = max(0.0, loop.time() - t - interval)

    def _lagging(self) -> bool:
        """The loop has a backlog: its last timer fired more than ``shed_lag_s`` late and the
        pending one is overdue now. One slow request alone leaves a late reading, but the next
        timer is then not yet due, so the requests right after it are not shed."""
        if self.shed_lag_s <= 0 or self.lag_s <= self.shed_lag_s:
            return False
        return asyncio.get_running_loop().time() > self._due

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        wall = time.time()
        path = scope.get("path", "")
        endpoint = path if path in KNOWN_ENDPOINTS else "other"
        limited = endpoint not in UNLIMITED
        status = 500
        rid = request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        rid_header = (b"x-request-id", rid.encode("ascii"))
        if self.shed_lag_s > 0 and self._watch_loop is not asyncio.get_running_loop():
            # one watcher per event loop (a test client may run the app on several in turn)
            self._watch_loop = asyncio.get_running_loop()
            self.lag_s = 0.0
            self._due = self._watch_loop.time()
            self._watcher = self._watch_loop.create_task(self._watch_lag())
        if limited and (self.in_flight >= self.max_concurrency or self._lagging()):
            self.metrics.rejected.labels("overload").inc()
            status = 503
            await _send_json(
                send,
                503,
                {"detail": "server overloaded; retry later"},
                ((b"retry-after", self.retry_after), rid_header),
            )
            self._done(scope, endpoint, status, t0, wall)
            return
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            self.metrics.rejected.labels("body_too_large").inc()
            status = 413
            await _send_json(
                send,
                413,
                {"detail": f"request body larger than {self.max_body_bytes} bytes"},
                (rid_header,),
            )
            self._done(scope, endpoint, status, t0, wall)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge(self.max_body_bytes)
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal status, started
            if msg["type"] == "http.response.start":
                status = msg["status"]
                started = True
                msg = {**msg, "headers": [*msg.get("headers", ()), rid_header]}
            await send(msg)

        if limited:
            self.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge as exc:  # read outside FastAPI's body parsing
            status = 413
            if not started:
                await _send_json(send, 413, {"detail": exc.detail}, (rid_header,))
        finally:
            if received > self.max_body_bytes:
                self.metrics.rejected.labels("body_too_large").inc()
            if limited:
                self.in_flight -= 1
            self.metrics.in_flight.dec()
            self._done(scope, endpoint, status, t0, wall)

    def _done(self, scope: Scope, endpoint: str, status: int, t0: float, wall: float) -> None:
        elapsed = time.perf_counter() - t0
        code = str(status)
        state = scope.get("state") or {}
        version = state.get("model_version")
        count, latency = self.metrics.request_children(endpoint, code, version or "")
        count.inc()
        latency.observe(elapsed)
        if status == 200 and endpoint in RECOMMENDING:
            self.metrics.users_served.labels(endpoint).inc(state.get("n_users", 1))
        request_log = self.state.request_log
        if request_log is not None and endpoint not in UNLIMITED:
            before = request_log.dropped
            request_log.log(
                wall,
                endpoint,
                status,
                elapsed * 1000.0,
                state.get("model_version"),
                state.get("log_user"),
                state.get("log_k"),
            )
            if request_log.dropped != before:
                self.metrics.log_dropped.inc()
        if self.access_log:
            log.info(
                "request",
                extra={
                    "endpoint": endpoint,
                    "method": scope.get("method"),
                    "status": status,
                    "latency_ms": round(elapsed * 1000.0, 3),
                    "model_version": version,
                    "request_id": state.get("request_id"),
                },
            )
