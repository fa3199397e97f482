"""``POST /v1/events`` (present when the service has an event store: ``--events URL``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from zenrec.serving.deps import State
from zenrec.serving.events import EventsRequest, EventsResponse
from zenrec.serving.schemas import ErrorResponse

router = APIRouter(prefix="/v1", tags=["events"])

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "The service runs without an event store"},
    422: {"model": ErrorResponse, "description": "Invalid batch (the detail names the field)"},
    503: {"model": ErrorResponse, "description": "Store behind or failing (see Retry-After)"},
}


@router.post(
    "/events",
    status_code=202,
    response_model=EventsResponse,
    responses=ERRORS,
    summary="Record what users did (idempotent by event_id)",
)
async def post_events(body: EventsRequest, state: State) -> EventsResponse:
    """Stores the batch in one transaction and answers 202 once it is committed: an event
    answered 202 is stored exactly once, however often it is re-sent. The user's next
    ``/v1/recommend`` takes these events into account (``history_source: events``)."""
    intake = state.events
    if intake is None:
        raise HTTPException(404, "this server has no event store (start it with --events URL)")
    return await intake.submit(body)
