"""Probes: ``/healthz`` (the process answers) and ``/readyz`` (model loaded, index built)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from zenrec.serving.deps import State
from zenrec.serving.schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness")
async def healthz() -> HealthResponse:
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "Not ready"}},
    summary="Readiness",
)
async def readyz(state: State) -> HealthResponse | JSONResponse:
    served = state.served
    if not state.ready or served is None:
        return JSONResponse({"status": "not ready"}, status_code=503, headers={"Retry-After": "1"})
    return HealthResponse(status="ready", model_version=served.version)
