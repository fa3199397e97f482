"""The FastAPI app factory: :func:`create_app`.

Nothing happens on import. The lifespan loads the bundle once (verifying its content hash),
builds the retrieval index and runs a smoke query before ``/readyz`` turns ready; on shutdown
(after uvicorn has drained in-flight requests) it flushes and closes the request log.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from zenrec._version import __version__
from zenrec.serving.deps import ServiceState
from zenrec.serving.engine import ServedModel, load_served
from zenrec.serving.events import EventIntake
from zenrec.serving.metrics import ServiceMetrics
from zenrec.serving.middleware import ServiceMiddleware
from zenrec.serving.requestlog import RequestLog
from zenrec.serving.routers import admin, demo, events, health, items, model, recommend
from zenrec.serving.settings import ServeSettings

__all__ = ["create_app"]

log = logging.getLogger("zenrec.serving")

DESCRIPTION = """\
Recommendations from a zenrec model bundle: the same bundle that was evaluated offline answers
online, with the same scores. Every answer names the model version (the bundle's content hash)
that produced it and how the list was made (`fallback`: none, history or popularity).
"""


def open_events(settings: ServeSettings, metrics: ServiceMetrics) -> EventIntake:
    """Open (create or migrate) the event store of ``settings.events_url``."""
    from zenrec.events import EventStore

    assert settings.events_url is not None
    return EventIntake(EventStore(settings.events_url), settings, metrics.registry)


def create_app(
    bundle_dir: str | Path,
    settings: ServeSettings | None = None,
    *,
    served: ServedModel | None = None,
) -> FastAPI:
    """Build the service for one bundle directory.

    Args:
        bundle_dir: A bundle written by ``zenrec train``/``Recommender.save``.
        settings: Limits, retrieval, request log, API key (default: :class:`ServeSettings()`
            with its defaults, not read from the environment by this function).
        served: The bundle already loaded by :func:`~zenrec.serving.engine.load_served` (with
            its re-ranker), e.g. by ``zenrec serve`` to fail before binding the port; the
            lifespan then serves it instead of reading the bundle a second time.

    Returns:
        A FastAPI app; run it with uvicorn (``zenrec serve`` does).

    Example:
        >>> from zenrec.serving import ServeSettings, create_app
        >>> app = create_app("runs/quickstart/best-model", ServeSettings(max_concurrency=32))
        >>> app.title  # nothing is loaded until the server starts the app's lifespan
        'zenrec'
    """
    settings = settings if settings is not None else ServeSettings.model_construct()
    metrics = ServiceMetrics()
    state = ServiceState(bundle_dir=str(bundle_dir), settings=settings, metrics=metrics)

    preloaded = served

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if preloaded is not None:
            served = preloaded
            state.reranker = preloaded.reranker
        else:
            if settings.rerank_bundle is not None:
                from zenrec.models.registry import load_model

                state.reranker = await run_in_threadpool(load_model, settings.rerank_bundle)
            served = await run_in_threadpool(
                load_served,
                bundle_dir,
                settings,
                reranker=state.reranker,
                expect_version=settings.expect_version,
            )
        if settings.request_log is not None:
            salt = (
                settings.request_log_salt.get_secret_value().encode()
                if settings.request_log_salt
                else b""
            )
            state.request_log = RequestLog(
                settings.request_log,
                salt=salt,
                max_bytes=settings.request_log_max_bytes,
                backups=settings.request_log_backups,
                queue_size=settings.request_log_queue,
                max_total_bytes=settings.request_log_max_total_bytes,
                processes=settings.workers,
            )
        if settings.events_url is not None:
            state.events = await run_in_threadpool(open_events, settings, metrics)
        state.served = served
        metrics.set_model(served.name, served.version, served.load_seconds)
        if settings.gc_freeze:
            gc.collect()
            gc.freeze()  # the loaded heap is never scanned again (no 0.2 s full collections)
        state.ready = True
        log.info(
            "ready",
            extra={
                "model": served.name,
                "version": served.version,
                "retrieval": served.retrieval,
                "n_items": served.n_items,
                "load_seconds": round(served.load_seconds, 3),
            },
        )
        try:
            yield
        finally:
            state.ready = False
            if state.request_log is not None:
                state.request_log.close()
            if state.events is not None:
                state.events.close()
            log.info("stopped", extra={"version": state.served.version if state.served else None})

    app = FastAPI(
        title="zenrec",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.zenrec = state
    for r in (health.router, recommend.router, items.router, model.router, demo.router):
        app.include_router(r)
    if settings.api_key is not None:
        app.include_router(admin.router)
    if settings.events_url is not None:
        app.include_router(events.router)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unhandled error",
            exc_info=exc,
            extra={
                "path": request.url.path,
                "request_id": getattr(request.state, "request_id", None),
            },
        )
        return JSONResponse({"detail": "internal error"}, status_code=500)

    app.add_middleware(ServiceMiddleware, state=state)
    return app
