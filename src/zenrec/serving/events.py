"""Events in (``POST /v1/events``) and session-aware lists: the service side of the event loop.

:class:`EventIntake` validates a batch, bounds the batches waiting (back-pressure: a batch
beyond ``events_max_in_flight`` is answered 503 + ``Retry-After`` at once instead of queueing
behind a store that fell behind), commits it to the :class:`~zenrec.events.EventStore` off the
event loop, and counts what happened. Group commit: batches that arrive while a transaction is
running are committed together in the next one (one fsync for all of them), so small batches
from many clients do not each pay a commit. A batch's 202 is sent only after the transaction
holding it committed, so an event answered 202 is in the store even if the process is killed
next.

:meth:`EventIntake.session_items` gives ``/v1/recommend`` the user's events the served bundle
was not trained on (most recent first, at most ``events_history``), which the engine merges
with the bundle's history of the user (see :func:`zenrec.serving.engine.recommend`).
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from zenrec.events import Event, EventStore, EventStoreError
from zenrec.serving.settings import ServeSettings

__all__ = [
    "MAX_EVENTS",
    "EventIn",
    "EventIntake",
    "EventMetrics",
    "EventsRequest",
    "EventsResponse",
    "received_until",
]

#: Hard cap of events in one batch (the service's ``max_events_per_batch`` may be lower).
MAX_EVENTS = 10_000

Id = int | str

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class EventIn(BaseModel):
    """One event: who did what to which item, when."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(
        min_length=1,
        max_length=256,
        description="The client's unique id of the event; a re-sent id is stored once.",
    )
    user_id: Id = Field(description="Raw user id (the bundle's, or a new user).")
    item_id: Id = Field(description="Raw item id (the bundle's, or a new item).")
    type: str = Field(
        min_length=1, max_length=32, description="view, click, add, purchase, rating..."
    )
    value: float = Field(1.0, description="A rating, quantity or dwell time (default 1).")
    timestamp: datetime = Field(
        description="When it happened: ISO-8601 (UTC when no offset is given) or unix seconds."
    )

    @field_validator("user_id", "item_id")
    @classmethod
    def _id_length(cls, v: Id) -> Id:
        if isinstance(v, str) and not 1 <= len(v) <= 256:
            raise ValueError("ids must be 1 to 256 characters")
        return v

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("value must be a finite number")
        return v

    def to_event(self) -> Event:
        ts = self.timestamp
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        return Event(
            self.event_id, str(self.user_id), str(self.item_id), self.type, self.value,
            ts.timestamp(),
        )  # fmt: skip


class EventsRequest(BaseModel):
    """A batch of events, committed together."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "event_id": "3f1c-0001",
                            "user_id": 196,
                            "item_id": 50,
                            "type": "click",
                            "timestamp": "2026-12-07T18:00:00Z",
                        }
                    ]
                }
            ]
        },
    )

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS)


class EventsResponse(BaseModel):
    """What the store committed (sent with 202 once the batch is durable)."""

    accepted: int = Field(description="Events stored by this request.")
    duplicates: int = Field(description="Events whose event_id was already stored (not again).")


class EventMetrics:
    """Prometheus counters of the event intake, in the service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.accepted = Counter(
            "zenrec_events_accepted_total", "Events newly stored.", registry=registry
        )
        self.duplicates = Counter(
            "zenrec_events_duplicates_total",
            "Events whose event_id was already stored (answered 202, not stored again).",
            registry=registry,
        )
        self.rejected = Counter(
            "zenrec_events_rejected_total",
            "Events refused, by reason (invalid: 422; backpressure and store_error: 503).",
            ["reason"],
            registry=registry,
        )
        self.store_seconds = Histogram(
            "zenrec_events_store_seconds",
            "Time of one batch's transaction in the event store.",
            buckets=_BUCKETS,
            registry=registry,
        )


def received_until(meta: dict[str, Any]) -> float:
    """Newest ``received`` time of the events a bundle was trained on (0: none).

    ``zenrec refresh`` records it in ``bundle.json`` under ``lineage.events.received_until``.
    """
    lineage = meta.get("lineage") or {}
    events = lineage.get("events") or {}
    try:
        return float(events.get("received_until", 0.0) or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _invalid(loc: list[str | int], msg: str) -> HTTPException:
    return HTTPException(422, [{"loc": ["body", *loc], "msg": msg, "type": "value_error"}])


class EventIntake:
    """The event store of a running service, its limits and its metrics.

    Args:
        store: An open event store.
        settings: The service's settings (event types, batch limit, in-flight bound, history).
        registry: The service's Prometheus registry.
    """

    def __init__(
        self, store: EventStore, settings: ServeSettings, registry: CollectorRegistry
    ) -> None:
        self.store = store
        self.types = frozenset(settings.event_types)
        self.max_batch = settings.max_events_per_batch
        self.max_in_flight = settings.events_max_in_flight
        self.history = settings.events_history
        self.retry_after = str(settings.retry_after_s)
        self.metrics = EventMetrics(registry)
        self.in_flight = 0
        self._pending: list[tuple[list[Event], asyncio.Future[EventsResponse]]] = []
        self._committer: asyncio.Task[None] | None = None

    def validate(self, body: EventsRequest) -> list[Event]:
        """The batch as store events; 422 naming the first bad field."""
        n = len(body.events)
        if n > self.max_batch:
            self.metrics.rejected.labels("invalid").inc(n)
            raise _invalid(["events"], f"at most {self.max_batch} events per batch; got {n}")
        for j, e in enumerate(body.events):
            if e.type not in self.types:
                self.metrics.rejected.labels("invalid").inc(n)
                raise _invalid(
                    ["events", j, "type"],
                    f"unknown event type {e.type!r}; this server accepts "
                    f"{', '.join(sorted(self.types))}",
                )
        return [e.to_event() for e in body.events]

    async def submit(self, body: EventsRequest) -> EventsResponse:
        """Validate one batch, commit it (with the batches waiting beside it) and count it.

        Raises:
            HTTPException: 422 for an invalid batch; 503 + ``Retry-After`` when
                ``events_max_in_flight`` batches are already waiting or the store failed.
        """
        events = self.validate(body)
        if self.in_flight >= self.max_in_flight:
            self.metrics.rejected.labels("backpressure").inc(len(events))
            raise HTTPException(
                503,
                "the event store is behind; retry later",
                headers={"Retry-After": self.retry_after},
            )
        self.in_flight += 1  # the event loop is one thread: no lock needed
        try:
            fut: asyncio.Future[EventsResponse] = asyncio.get_running_loop().create_future()
            self._pending.append((events, fut))
            if self._committer is None or self._committer.done():
                self._committer = asyncio.create_task(self._commit_pending())
            # shield: a client that disconnects does not cancel the commit of its batch
            return await asyncio.shield(fut)
        finally:
            self.in_flight -= 1

    async def _commit_pending(self) -> None:
        """Commit every waiting batch in one transaction, until none is waiting."""
        while self._pending:
            group, self._pending = self._pending, []
            events = [e for batch, _ in group for e in batch]
            try:
                result = await run_in_threadpool(self.store.insert, events)
            except EventStoreError as exc:
                self.metrics.rejected.labels("store_error").inc(len(events))
                err = HTTPException(
                    503, f"events not stored: {exc}", headers={"Retry-After": self.retry_after}
                )
                for _, fut in group:
                    if not fut.done():
                        fut.set_exception(err)
                continue
            self.metrics.store_seconds.observe(result.seconds)
            self.metrics.accepted.inc(result.accepted)
            self.metrics.duplicates.inc(result.duplicates)
            credited: set[str] = set()  # an id sent by two batches of the group: the first's
            for batch, fut in group:
                accepted = 0
                for e in batch:
                    if e.event_id in result.inserted_ids and e.event_id not in credited:
                        credited.add(e.event_id)
                        accepted += 1
                if not fut.done():
                    fut.set_result(
                        EventsResponse(accepted=accepted, duplicates=len(batch) - accepted)
                    )

    def session_items(self, user_id: Any, meta: dict[str, Any]) -> tuple[str, ...]:
        """Raw item ids of the user's events the bundle (``meta``) was not trained on, oldest
        first (the most recent ``events_history`` of them); empty when there are none or the
        store cannot be read (the list is then made without them)."""
        try:
            events = self.store.user_events(
                str(user_id), received_after=received_until(meta), limit=self.history
            )
        except EventStoreError:
            return ()
        return tuple(e.item_id for e in reversed(events))

    def close(self) -> None:
        self.store.close()
