"""Typed settings of the serving process (``zenrec serve`` and :func:`create_app`)."""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServeSettings"]


class ServeSettings(BaseSettings):
    """Every knob of a serving process; also read from ``ZENREC_SERVE_<FIELD>`` variables.

    Only the CLI builds this from the environment; library callers pass values explicitly.

    Example:
        >>> s = ServeSettings(max_concurrency=32)
        >>> s.max_k, s.host
        (1000, '127.0.0.1')
    """

    model_config = SettingsConfigDict(env_prefix="ZENREC_SERVE_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    """Interface to bind (loopback unless told otherwise)."""
    port: int = Field(8000, ge=0, le=65535)
    """TCP port (0: any free port)."""
    workers: int = Field(1, ge=1, le=64)
    """Worker processes sharing the port."""
    api_key: SecretStr | None = None
    """Key of the ``/admin`` routes (sent as ``X-API-Key``); the routes do not exist without it."""

    max_concurrency: int | None = Field(None, ge=1)
    """Requests processed at once per worker; more are answered 503 with ``Retry-After``
    (``None``: derived from ``capacity_rps`` and ``latency_target_ms``, see
    :attr:`admission_limit`)."""
    capacity_rps: float = Field(500.0, gt=0)
    """Requests/s one worker serves within its p99 target (``zenrec loadtest --ramp``; the
    default is one worker's measured capacity at p99 <= 50 ms for the ML-1M BPR-MF and EASE
    bundles, docs/deployment.md)."""
    latency_target_ms: float = Field(50.0, gt=0)
    """Longest time an admitted request may wait for the ones ahead of it (the p99 target)."""
    shed_lag_ms: float | None = Field(None, ge=0)
    """Event-loop lag beyond which requests are answered 503 with ``Retry-After`` at once
    (``None``: half of ``latency_target_ms``; 0: off). A worker scores single requests inline on
    its event loop, so past capacity the backlog waits in the loop's queue, where no count of
    requests in flight sees it; the lag (how late a 5-ms timer fires) measures that wait."""
    retry_after_s: int = Field(1, ge=1)
    """Value of the ``Retry-After`` header of an overload answer."""
    max_body_bytes: int = Field(1_000_000, ge=1024)
    """Largest accepted request body (413 above)."""
    max_k: int = Field(1000, ge=1)
    """Largest list length a request may ask for."""
    max_list_items: int = Field(1000, ge=1)
    """Largest number of ids in ``recent_items``, ``include_items`` or ``exclude_items``."""
    max_batch_users: int = Field(256, ge=1)
    """Largest number of users in one ``/v1/recommend/batch`` request."""

    ann_threshold: int = Field(100_000, ge=0)
    """Catalogs with more items than this use an HNSW index (dot-product models only)."""
    hnsw_m: int = Field(32, ge=4)
    """HNSW graph degree (faiss ``M``)."""
    hnsw_ef_construction: int = Field(200, ge=8)
    """HNSW build beam width (``efConstruction``; 200: recall@10 0.97-0.996 at efSearch 128-256
    on 50k clustered vectors, where 40-80 gave 0.83-0.95; the index is built once per bundle)."""
    hnsw_ef_search: int = Field(256, ge=8)
    """HNSW query beam width (``efSearch``); see ``zenrec perf retrieval`` for recall."""
    overfetch: int = Field(4, ge=1)
    """HNSW fetches ``overfetch * (k + excluded)`` neighbours, then re-checks exclusions/filters."""

    expect_version: str | None = Field(None, pattern=r"^[0-9a-f]{16,64}$")
    """Content hash (16-64 hex digits of its sha256) the bundle must have, else startup fails:
    every replica of one Deployment serves the same bytes. ``/admin/reload`` is not bound by it."""

    rerank_bundle: Path | None = None
    """Second bundle that re-ranks the retrieved candidates with its ``score`` (two-stage)."""
    rerank_candidates: int = Field(200, ge=1)
    """Candidates retrieved by the first stage when re-ranking."""

    request_log: Path | None = None
    """Directory of the JSON-lines request log (off when unset)."""
    request_log_salt: SecretStr | None = None
    """Per-deployment secret: the HMAC key of the hashed user ids in the request log."""
    request_log_max_bytes: int = Field(64 * 2**20, ge=4096)
    """Size at which a request-log file is rotated."""
    request_log_backups: int = Field(20, ge=1)
    """Rotated request-log files kept per process (fewer when ``request_log_max_total_bytes``
    needs it)."""
    request_log_max_total_bytes: int | None = Field(None, ge=8192)
    """Bound of all request-log files of all workers together (default: half the size of the
    filesystem holding the directory; set it below an emptyDir's ``sizeLimit``, which the
    filesystem size does not show)."""
    request_log_queue: int = Field(100_000, ge=16)
    """Records buffered for the writer thread; beyond, records are dropped and counted."""

    events_url: str | None = None
    """Event store of ``POST /v1/events`` and session-aware lists (``sqlite:///path/events.db``
    or ``postgresql://...``); the route does not exist without it."""
    event_types: tuple[str, ...] = ("view", "click", "add", "purchase", "rating")
    """Event types ``POST /v1/events`` accepts (422 for others)."""
    max_events_per_batch: int = Field(1000, ge=1, le=10_000)
    """Largest number of events in one ``POST /v1/events`` (422 above)."""
    events_max_in_flight: int = Field(256, ge=1)
    """Batches waiting for or in a commit per worker (batches that arrive during a commit are
    committed together next); more are answered 503 + ``Retry-After``."""
    events_history: int = Field(50, ge=0)
    """Most recent events of a user merged into its history by ``/v1/recommend`` (0: none)."""

    graceful_shutdown_s: float = Field(10.0, ge=0)
    """Time in-flight requests get to finish on shutdown."""
    access_log: bool = False
    """Emit one JSON log line per request (the request log is the cheap alternative)."""
    gc_freeze: bool = True
    """Move the loaded, warmed-up heap out of the garbage collector's reach (``gc.freeze``):
    a full collection of it (about 230k objects, 0.2 s with torch loaded) would otherwise
    stall every request in flight now and then. Frozen after startup and after each reload."""

    @property
    def admission_limit(self) -> int:
        """Requests admitted at once per worker: ``max_concurrency`` when set, else Little's law,
        ``L = ceil(capacity_rps x latency_target_ms / 1000)``.

        One worker completes ``capacity_rps`` requests per second, so a request admitted behind
        ``L - 1`` others waits about ``(L - 1) / capacity_rps``: with ``L`` from the formula that
        stays within the latency target, and everything beyond ``L`` is shed at once (503 +
        ``Retry-After``) instead of queueing past the SLO. Defaults: 500 req/s x 50 ms = 25.

        Example:
            >>> ServeSettings(capacity_rps=400, latency_target_ms=100).admission_limit
            40
            >>> ServeSettings(max_concurrency=8).admission_limit
            8
        """
        if self.max_concurrency is not None:
            return self.max_concurrency
        return max(1, math.ceil(self.capacity_rps * self.latency_target_ms / 1000.0 - 1e-9))

    @property
    def shed_lag_s(self) -> float:
        """Event-loop lag (seconds) beyond which requests are shed; 0: never.

        Example:
            >>> ServeSettings().shed_lag_s
            0.025
        """
        ms = self.latency_target_ms / 2 if self.shed_lag_ms is None else self.shed_lag_ms
        return ms / 1000.0

    @model_validator(mode="after")
    def _salt_with_log(self) -> ServeSettings:
        if self.request_log is not None and self.request_log_salt is None:
            raise ValueError(
                "request_log needs request_log_salt (a per-deployment secret) to hash user ids"
            )
        return self
