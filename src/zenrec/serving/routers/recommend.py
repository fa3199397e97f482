"""``/v1/recommend`` and ``/v1/recommend/batch``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from zenrec.serving.attributes import AttributeFilter, FilterError
from zenrec.serving.deps import Served, ServiceState, State
from zenrec.serving.engine import Query, Result, ServedModel, recommend
from zenrec.serving.schemas import (
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    ItemOut,
    RecommendRequest,
    RecommendResponse,
)

router = APIRouter(prefix="/v1", tags=["recommendations"])

ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "Invalid request (the detail names the field)"},
    503: {"model": ErrorResponse, "description": "Overloaded or not ready (see Retry-After)"},
}


def invalid(loc: list[str | int], msg: str) -> HTTPException:
    """A 422 in FastAPI's validation format, naming the field."""
    return HTTPException(422, [{"loc": ["body", *loc], "msg": msg, "type": "value_error"}])


def to_query(req: RecommendRequest, state: ServiceState, loc: list[str | int]) -> Query:
    s = state.settings
    if req.k > s.max_k:
        raise invalid([*loc, "k"], f"k must be <= {s.max_k} on this server; got {req.k}")
    for name in ("recent_items", "include_items", "exclude_items"):
        values = getattr(req, name)
        if values is not None and len(values) > s.max_list_items:
            raise invalid([*loc, name], f"at most {s.max_list_items} ids; got {len(values)}")
    filters: dict[str, AttributeFilter] = {}
    for name, f in (req.filters or {}).items():
        filters[name] = AttributeFilter(tuple(f.any_of) if f.any_of else None, f.min, f.max)
    if req.genres is not None:
        filters["genres"] = AttributeFilter(any_of=tuple(req.genres))
    if req.year_min is not None or req.year_max is not None:
        if req.year_min is not None and req.year_max is not None and req.year_min > req.year_max:
            raise invalid(
                [*loc, "year_min"],
                f"year_min ({req.year_min}) is greater than year_max ({req.year_max})",
            )
        filters["year"] = AttributeFilter(min=req.year_min, max=req.year_max)
    return Query(
        user_id=req.user_id,
        recent_items=tuple(req.recent_items or ()),
        k=req.k,
        exclude_seen=req.exclude_seen,
        include_items=None if req.include_items is None else tuple(req.include_items),
        exclude_items=tuple(req.exclude_items or ()),
        filters=filters,
    )


def items_out(served: ServedModel, idx: Any, scores: Any) -> list[ItemOut]:
    ids = served.item_ids(idx)
    out = []
    for i, item_id, score in zip(idx.tolist(), ids, scores.tolist()):
        meta = served.attributes.item_metadata(i)
        title = meta.pop("title", None)
        genres = meta.pop("genres", None)
        out.append(
            ItemOut(
                item_id=item_id,
                score=score,
                title=title if isinstance(title, str) else None,
                genres=genres if isinstance(genres, list) else None,
                metadata=meta,
            )
        )
    return out


def answer(
    served: ServedModel, state: ServiceState, req: RecommendRequest, loc: list[str | int]
) -> RecommendResponse:
    q = to_query(req, state, loc)
    if state.events is not None and req.user_id is not None:  # session-aware lists
        q = replace(q, session_items=state.events.session_items(req.user_id, served.meta))
    try:
        res: Result = recommend(served, q)
    except FilterError as exc:
        raise invalid([*loc, *exc.field.split(".")], str(exc)) from None
    state.metrics.fallbacks.labels(res.fallback).inc()
    return RecommendResponse(
        user_id=req.user_id,
        items=items_out(served, res.items, res.scores),
        model=served.name,
        model_version=served.version,
        fallback=res.fallback,
        unknown_items=res.unknown_items,
        reranked=res.reranked,
        history_source=res.history_source,
        ignored_context=sorted(req.context or {}),
    )


@router.post(
    "/recommend",
    response_model=RecommendResponse,
    responses=ERRORS,
    summary="Top-k items for a user id or a history of recent items",
)
async def recommend_one(
    body: RecommendRequest, request: Request, served: Served, state: State
) -> RecommendResponse:
    """Scores a known user with the model; a user the model has not seen is scored from
    ``recent_items`` (``fallback: history``), else gets popular items (``fallback: popularity``).
    Exclusions, ``include_items`` and attribute filters apply to every case."""
    request.state.log_user = body.user_id
    request.state.log_k = body.k
    # Single requests are a few hundred microseconds of numpy: computed inline on the event loop,
    # which costs less than a thread hop at high request rates.
    return answer(served, state, body, [])


@router.post(
    "/recommend/batch",
    response_model=BatchResponse,
    responses=ERRORS,
    summary="Several recommendation requests in one call",
)
async def recommend_batch(
    body: BatchRequest, request: Request, served: Served, state: State
) -> BatchResponse:
    """Every sub-request is answered by the same model version."""
    if len(body.requests) > state.settings.max_batch_users:
        raise invalid(
            ["requests"],
            f"at most {state.settings.max_batch_users} requests per batch; "
            f"got {len(body.requests)}",
        )
    request.state.log_k = max(r.k for r in body.requests)
    request.state.n_users = len(body.requests)

    def work() -> list[RecommendResponse]:
        return [answer(served, state, r, ["requests", j]) for j, r in enumerate(body.requests)]

    results = await run_in_threadpool(work)
    return BatchResponse(results=results, model=served.name, model_version=served.version)
