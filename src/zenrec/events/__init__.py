"""User events (what users did after a list was served) and their store.

Below the model layers, so the service (``POST /v1/events``, session-aware lists), training
(``zenrec refresh``) and ``zenrec traffic`` (events per minute) all read the same store.
"""

from zenrec.events.store import (
    DEFAULT_EVENT_TYPES,
    SCHEMA_VERSION,
    Event,
    EventStore,
    EventStoreError,
    InsertResult,
)

__all__ = [
    "DEFAULT_EVENT_TYPES",
    "SCHEMA_VERSION",
    "Event",
    "EventStore",
    "EventStoreError",
    "InsertResult",
]
