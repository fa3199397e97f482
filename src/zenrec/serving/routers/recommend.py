"""``/v1/recommend`` and ``/v1/recommend/batch``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from zenrec.serving.attributes import AttributeFilter, FilterError
from zenrec.serving.deps import Served, ServiceState, State, get_served
from zenrec.serving.engine import Query, Result, ServedModel, dumps_json, recommend, recommend_many
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
    out = []
    for i, score in zip(idx.tolist(), scores.tolist()):
        item_id, title, genres, meta = served.item_display(i)
        out.append(ItemOut(item_id=item_id, score=score, title=title, genres=genres, metadata=meta))
    return out


def _result_json(served: ServedModel, req: RecommendRequest, res: Result) -> str:
    """A ``RecommendResponse`` as JSON text, written directly (no model built, no re-validation):
    the items' text comes from the served model's per-item table."""
    ignored = sorted(req.context) if req.context else []
    return (
        '{"user_id":'
        + dumps_json(req.user_id)
        + ',"items":'
        + served.items_json(res.items, res.scores)
        + served.json_tail
        + ',"fallback":"'
        + res.fallback
        + '","unknown_items":'
        + (dumps_json(res.unknown_items) if res.unknown_items else "[]")
        + ',"reranked":'
        + ("true" if res.reranked else "false")
        + ',"history_source":"'
        + res.history_source
        + '"'
        + ',"ignored_context":'
        + (dumps_json(ignored) if ignored else "[]")
        + "}"
    )


def _filter_error(exc: FilterError, loc: list[str | int]) -> HTTPException:
    return invalid([*loc, *exc.field.split(".")], str(exc))


def _with_session(
    q: Query,
    req: RecommendRequest,
    served: ServedModel,
    state: ServiceState,
    session: tuple[str, ...] | None = None,
) -> Query:
    """The query with the user's events newer than the bundle (session-aware lists);
    ``session``: those events' items when the caller has read them already."""
    if state.events is None or req.user_id is None:
        return q
    if session is None:
        session = state.events.session_items(req.user_id, served.meta)
    return replace(q, session_items=session)


def answer_json(
    served: ServedModel,
    state: ServiceState,
    req: RecommendRequest,
    loc: list[str | int],
    session: tuple[str, ...] | None = None,
) -> str:
    q = _with_session(to_query(req, state, loc), req, served, state, session)
    try:
        res: Result = recommend(served, q)
    except FilterError as exc:
        raise _filter_error(exc, loc) from None
    state.metrics.fallback_child(res.fallback).inc()
    return _result_json(served, req, res)


def _body_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors located under ``body``, as FastAPI reports request validation."""
    out: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False):
        e: dict[str, Any] = {**err, "loc": ("body", *err["loc"])}
        if isinstance(e.get("input"), bytes):  # an undecodable body is not echoed back
            del e["input"]
        out.append(e)
    return out


_RECOMMEND_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/RecommendRequest"}}
        },
    }
}


@router.post(
    "/recommend",
    response_model=RecommendResponse,
    responses=ERRORS,
    summary="Top-k items for a user id or a history of recent items",
    openapi_extra=_RECOMMEND_BODY,
)
async def recommend_one(request: Request) -> Response:
    """Scores a known user with the model; a user the model has not seen is scored from
    ``recent_items`` (``fallback: history``), else gets popular items (``fallback: popularity``).
    Exclusions, ``include_items`` and attribute filters apply to every case."""
    # The hot path, without FastAPI's dependency solving and response-model round trip: the
    # body is validated from bytes by the request schema (a 422 names the field as FastAPI
    # would) and the answer is written as JSON text once.
    state: ServiceState = request.app.state.zenrec
    served = await get_served(request, state)
    try:
        body = RecommendRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(_body_errors(exc)) from None
    request.state.log_user = body.user_id
    request.state.log_k = body.k
    # Single requests are a few hundred microseconds of numpy: computed inline on the event loop,
    # which costs less than a thread hop at high request rates. The event store's read is I/O (a
    # round trip to PostgreSQL): it runs in a worker thread so the loop keeps serving.
    session = None
    if state.events is not None and body.user_id is not None:
        session = await run_in_threadpool(state.events.session_items, body.user_id, served.meta)
    return Response(answer_json(served, state, body, [], session), media_type="application/json")


@router.post(
    "/recommend/batch",
    response_model=BatchResponse,
    responses=ERRORS,
    summary="Several recommendation requests in one call",
)
async def recommend_batch(
    body: BatchRequest, request: Request, served: Served, state: State
) -> Response:
    """Every sub-request is answered by the same model version; known users are scored
    together (one score matrix and one top-k)."""
    if len(body.requests) > state.settings.max_batch_users:
        raise invalid(
            ["requests"],
            f"at most {state.settings.max_batch_users} requests per batch; "
            f"got {len(body.requests)}",
        )
    request.state.log_k = max(r.k for r in body.requests)
    request.state.n_users = len(body.requests)

    def work() -> str:
        reqs = body.requests
        queries = [
            _with_session(to_query(r, state, ["requests", j]), r, served, state)
            for j, r in enumerate(reqs)
        ]
        results = recommend_many(served, queries)
        for j, res in enumerate(results):
            if isinstance(res, FilterError):
                raise _filter_error(res, ["requests", j])
            if isinstance(res, Exception):
                raise res
        parts = []
        for req, res in zip(reqs, results):
            assert isinstance(res, Result)
            state.metrics.fallback_child(res.fallback).inc()
            parts.append(_result_json(served, req, res))
        return '{"results":[' + ",".join(parts) + "]" + served.json_tail + "}"

    text = await run_in_threadpool(work)
    return Response(text, media_type="application/json")
