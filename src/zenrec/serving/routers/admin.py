"""``/admin/reload``: swap in a new bundle without dropping requests (API key required).

Mounted only when an API key is configured.
"""

from __future__ import annotations

import gc
import logging

from fastapi import APIRouter, Depends, HTTPException
from starlette.concurrency import run_in_threadpool

from zenrec._errors import BundleError
from zenrec.serving.deps import State, require_api_key
from zenrec.serving.engine import load_served
from zenrec.serving.schemas import ErrorResponse, ReloadRequest, ReloadResponse

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_api_key)])
log = logging.getLogger("zenrec.serving")


@router.post(
    "/reload",
    response_model=ReloadResponse,
    summary="Load a new bundle and swap it in",
    responses={
        401: {"model": ErrorResponse},
        409: {"model": ErrorResponse},
        422: {"model": ErrorResponse, "description": "Bundle refused; the old one keeps serving"},
    },
)
async def reload(state: State, body: ReloadRequest | None = None) -> ReloadResponse:
    """Loads the bundle (verifying its content hash), builds its index, runs a smoke query and
    only then swaps it in. Requests already running finish on the previous model. A corrupt,
    incompatible or unreadable bundle is refused with the reason and the current one keeps
    serving."""
    old = state.served
    if old is None:
        raise HTTPException(503, "the model is not loaded yet", headers={"Retry-After": "1"})
    if not state.reload_lock.acquire(blocking=False):
        raise HTTPException(409, "a reload is already in progress")
    try:
        path = body.bundle_dir if body is not None and body.bundle_dir else str(old.path)
        try:
            new = await run_in_threadpool(
                load_served, path, state.settings, reranker=state.reranker
            )
        except BundleError as exc:
            state.metrics.reloads.labels("refused").inc()
            log.warning(
                "reload refused", extra={"bundle": path, "reason": str(exc), "version": old.version}
            )
            raise HTTPException(
                422, f"bundle refused ({exc}); still serving version {old.version}"
            ) from None
        state.served = new  # one reference assignment: atomic for every later request
        if state.settings.gc_freeze:
            # The new model joins the frozen heap; the old one is freed by reference counting
            # once its last request ends (without a full collection's pause here).
            gc.freeze()
        state.metrics.set_model(new.name, new.version, new.load_seconds)
        state.metrics.reloads.labels("ok").inc()
        log.info(
            "reloaded",
            extra={
                "bundle": path,
                "previous_version": old.version,
                "version": new.version,
                "load_seconds": round(new.load_seconds, 3),
            },
        )
        return ReloadResponse(
            previous_version=old.version,
            version=new.version,
            model=new.name,
            load_seconds=new.load_seconds,
        )
    finally:
        state.reload_lock.release()
