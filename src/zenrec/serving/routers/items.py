"""``/v1/similar-items`` and ``/v1/items`` (title search)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from zenrec._errors import ConfigError
from zenrec.serving.deps import Served, State
from zenrec.serving.engine import similar
from zenrec.serving.routers.recommend import ERRORS, invalid, items_out
from zenrec.serving.schemas import (
    ErrorResponse,
    ItemSearchResponse,
    SimilarRequest,
    SimilarResponse,
)

router = APIRouter(prefix="/v1", tags=["items"])


@router.post(
    "/similar-items",
    response_model=SimilarResponse,
    responses={**ERRORS, 404: {"model": ErrorResponse, "description": "Unknown item id"}},
    summary="Items most similar to an item under the model",
)
async def similar_items(
    body: SimilarRequest, request: Request, served: Served, state: State
) -> SimilarResponse:
    """EASE/ItemKNN item-item weights, or the cosine of a factor model's item embeddings."""
    request.state.log_k = body.k
    if body.k > state.settings.max_k:
        raise invalid(["k"], f"k must be <= {state.settings.max_k} on this server; got {body.k}")
    try:
        idx, scores, known = similar(served, body.item_id, body.k)
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from None
    if not known:
        raise HTTPException(
            404, f"item {body.item_id!r} is not in the catalog of model version {served.version}"
        )
    return SimilarResponse(
        item_id=body.item_id,
        items=items_out(served, idx, scores),
        model=served.name,
        model_version=served.version,
    )


@router.get("/items", response_model=ItemSearchResponse, summary="Find catalog items by title")
async def search_items(
    served: Served,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> ItemSearchResponse:
    """Items whose title (or id) contains ``q``, case-insensitive; for building a history."""
    import numpy as np

    hits = served.attributes.search_titles(q, limit)
    idx = np.asarray(hits, dtype=np.int64)
    return ItemSearchResponse(items=items_out(served, idx, np.zeros(idx.size, np.float32)))
