"""Typed dependencies of the routers: the service state and the served model.

They are ``async def``: none blocks, so FastAPI runs them on the event loop instead of
handing each to the thread pool (a thread hop per dependency per request)."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from zenrec.models.base import Recommender
from zenrec.serving.engine import ServedModel
from zenrec.serving.events import EventIntake
from zenrec.serving.metrics import ServiceMetrics
from zenrec.serving.requestlog import RequestLog
from zenrec.serving.settings import ServeSettings

__all__ = ["Served", "ServiceState", "State", "get_served", "get_state", "require_api_key"]


@dataclass
class ServiceState:
    """Everything a running app holds. ``served`` is replaced (never mutated) by a reload."""

    bundle_dir: str
    settings: ServeSettings
    metrics: ServiceMetrics
    request_log: RequestLog | None = None
    reranker: Recommender | None = None
    served: ServedModel | None = None
    ready: bool = False
    reload_lock: threading.Lock = field(default_factory=threading.Lock)
    events: EventIntake | None = None


async def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.zenrec
    return state


State = Annotated[ServiceState, Depends(get_state)]


async def get_served(request: Request, state: State) -> ServedModel:
    """The model serving this request (taken once: a reload during the request leaves it as is)."""
    served = state.served
    if served is None or not state.ready:
        raise HTTPException(503, "the model is not loaded yet", headers={"Retry-After": "1"})
    request.state.model_version = served.version
    return served


Served = Annotated[ServedModel, Depends(get_served)]


async def require_api_key(state: State, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """Constant-time comparison of the ``X-API-Key`` header with the configured key."""
    key = state.settings.api_key
    given = (x_api_key or "").encode()
    if key is None or not secrets.compare_digest(given, key.get_secret_value().encode()):
        raise HTTPException(
            401, "missing or wrong X-API-Key header", headers={"WWW-Authenticate": "X-API-Key"}
        )
