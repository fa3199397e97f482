"""Prometheus metrics of the service (``GET /metrics``).

One :class:`ServiceMetrics` per app, in its own registry. With several worker processes the
CLI sets ``PROMETHEUS_MULTIPROC_DIR`` before ``prometheus_client`` is imported; every process
then writes its samples to files there and ``/metrics`` aggregates them.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["CONTENT_TYPE", "USERS_SERVED", "ServiceMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


#: Counter of users given a list (one per ``/v1/recommend``, one per sub-request of a batch),
#: successful answers only: the served request rate that autoscaling divides by capacity.
USERS_SERVED = "zenrec_users_served_total"


class ServiceMetrics:
    """Request counts and latencies by endpoint and status (latency also by model version),
    users served, fallbacks by kind, in-flight and rejected requests, the served model as an
    info gauge with its load time, and reloads by outcome."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "zenrec_requests_total",
            "Requests answered, by endpoint and status.",
            ["endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "zenrec_request_duration_seconds",
            "Request latency, by endpoint, status and model version (empty: no model involved).",
            ["endpoint", "status", "model_version"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.users_served = Counter(
            USERS_SERVED.removesuffix("_total"),
            "Users given a recommendation list in a successful answer (a batch counts each of "
            "its users), by endpoint.",
            ["endpoint"],
            registry=r,
        )
        self.fallbacks = Counter(
            "zenrec_fallbacks_total",
            "Recommendation lists by how they were made (none/history/popularity).",
            ["kind"],
            registry=r,
        )
        self.in_flight = Gauge(
            "zenrec_requests_in_flight",
            "Requests being processed.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.rejected = Counter(
            "zenrec_requests_rejected_total",
            "Requests refused before processing (overload, body too large).",
            ["reason"],
            registry=r,
        )
        self.model_info = Gauge(
            "zenrec_model_info",
            "The served model (value 1 for the current one).",
            ["model", "version"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.model_load_seconds = Gauge(
            "zenrec_model_load_seconds",
            "Seconds the served bundle took to load, verify, index and smoke-test.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.reloads = Counter(
            "zenrec_reloads_total",
            "Bundle reloads, by outcome (ok/refused).",
            ["outcome"],
            registry=r,
        )
        self.log_dropped = Counter(
            "zenrec_request_log_dropped_total",
            "Request-log records dropped because the writer fell behind.",
            registry=r,
        )
        if not self.multiprocess:  # process_* (CPU seconds, resident memory, open files)
            ProcessCollector(registry=r)
        self._current: tuple[str, str] | None = None
        # Label children looked up once (``labels()`` costs a lock and a dict per call).
        self.fallback = {k: self.fallbacks.labels(k) for k in ("none", "history", "popularity")}
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def fallback_child(self, kind: str) -> Any:
        """The ``zenrec_fallbacks_total`` child of ``kind``."""
        child = self.fallback.get(kind)
        return child if child is not None else self.fallbacks.labels(kind)

    def request_children(self, endpoint: str, status: str, version: str) -> tuple[Any, Any]:
        """The (requests counter, latency histogram) children of one label set, cached."""
        key = (endpoint, status, version)
        got = self._children.get(key)
        if got is None:
            got = self._children[key] = (
                self.requests.labels(endpoint, status),
                self.latency.labels(endpoint, status, version),
            )
        return got

    def set_model(self, model: str, version: str, load_seconds: float | None = None) -> None:
        """Mark ``(model, version)`` as the served model (the previous one goes to 0) and
        record how long it took to load."""
        if self._current is not None:
            self.model_info.labels(*self._current).set(0)
        self.model_info.labels(model, version).set(1)
        self._current = (model, version)
        if load_seconds is not None:
            self.model_load_seconds.set(load_seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition (aggregated over processes in multiprocess mode)."""
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
