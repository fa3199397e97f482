"""``/v1/model`` (the served bundle) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from zenrec.serving.deps import Served, State
from zenrec.serving.metrics import CONTENT_TYPE
from zenrec.serving.schemas import ModelInfo

router = APIRouter(tags=["model"])


@router.get("/v1/model", response_model=ModelInfo, summary="The served model")
async def model_info(served: Served) -> ModelInfo:
    """Model name, version (content hash), training-data hash, metrics recorded in the bundle,
    creation time and the filterable item attributes."""
    return ModelInfo(**served.describe())


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(state: State) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
