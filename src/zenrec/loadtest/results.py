"""Summaries of a run: latency percentiles from the scheduled send time, errors by kind."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zenrec.loadtest.config import ENDPOINTS, LoadTestConfig

__all__ = ["ERROR_KINDS", "RampResult", "StepResult", "summarize"]

#: Error kinds, in report order (``errors_by_kind`` always carries every key).
ERROR_KINDS: tuple[str, ...] = ("timeout", "connection", "http_5xx", "http_4xx", "protocol")

_OK, _TIMEOUT, _CONN, _H5, _H4, _PROTO = 0, 1, 2, 3, 4, 5
_NOT_DONE = -1


def _ms(x: float) -> float | None:
    return None if not math.isfinite(x) else round(x * 1e3, 3)


@dataclass
class StepResult:
    """Outcome of one constant-rate run (one ramp step).

    Latency percentiles are over the successful responses (status < 400), measured from each
    request's scheduled send time; errors are counted by kind. ``service_p99_ms`` is the p99
    measured from the actual send instead (what a closed-loop client would report), and
    ``lag_p99_ms`` how late requests went onto the wire: with ``connections_used`` below the
    ``connections`` limit a large lag means the generator itself fell behind (CPU-starved);
    at the limit, that every connection was waiting on the server.
    """

    offered_rps: float
    achieved_rps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    errors: int
    errors_by_kind: dict[str, int]
    target_url: str
    endpoint: str
    requests: int
    duration_s: float
    service_p99_ms: float | None
    lag_p99_ms: float | None
    connections_used: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the load-test contract's keys plus the diagnostics)."""
        return {
            "offered_rps": self.offered_rps,
            "achieved_rps": self.achieved_rps,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "p999_ms": self.p999_ms,
            "max_ms": self.max_ms,
            "errors": self.errors,
            "errors_by_kind": dict(self.errors_by_kind),
            "target_url": self.target_url,
            "endpoint": self.endpoint,
            "requests": self.requests,
            "duration_s": self.duration_s,
            "service_p99_ms": self.service_p99_ms,
            "lag_p99_ms": self.lag_p99_ms,
            "connections_used": self.connections_used,
        }

    def passes(self, p99_target_ms: float) -> bool:
        """True when there were no errors and p99 is within ``p99_target_ms``."""
        return self.errors == 0 and self.p99_ms is not None and self.p99_ms <= p99_target_ms


@dataclass
class RampResult:
    """Outcome of a ramp: every step run, and the capacity at the p99 target.

    ``capacity_rps`` is the highest step rate with p99 <= ``p99_target_ms`` and no errors
    (``None``, JSON null, when no step met it: the planner then refuses the file). The
    top-level per-step fields of :meth:`as_dict` are those of the step at capacity (of the
    first step when none passed).
    """

    steps: list[StepResult]
    capacity_rps: float | None
    p99_target_ms: float
    stopped_early: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def capacity_step(self) -> StepResult:
        passing = [s for s in self.steps if s.passes(self.p99_target_ms)]
        return passing[-1] if passing else self.steps[0]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary: capacity step fields, ``steps``, ``capacity_rps``, target."""
        return self.capacity_step.as_dict() | {
            "steps": [s.as_dict() for s in self.steps],
            "capacity_rps": self.capacity_rps,
            "p99_target_ms": self.p99_target_ms,
        }


def summarize(
    cfg: LoadTestConfig,
    sched: np.ndarray,
    sent: np.ndarray,
    done: np.ndarray,
    kind: np.ndarray,
    t_end: float,
    connections_used: int = 0,
) -> StepResult:
    n = cfg.n_requests
    ok = kind == _OK
    lat = (done - sched)[ok]
    svc = (done - sent)[ok]
    lag = (sent - sched)[np.isfinite(sent)]
    counts = {name: int((kind == code).sum()) for name, code in zip(ERROR_KINDS, range(1, 6))}
    counts["timeout"] += int((kind == _NOT_DONE).sum())

    def pct(a: np.ndarray, q: float) -> float:
        return float(np.percentile(a, q)) if a.size else math.nan

    window = max(n / cfg.rate, t_end - float(sched[0]))
    return StepResult(
        offered_rps=float(cfg.rate),
        achieved_rps=round(int(ok.sum()) / window, 3) if window > 0 else 0.0,
        p50_ms=_ms(pct(lat, 50)),
        p90_ms=_ms(pct(lat, 90)),
        p99_ms=_ms(pct(lat, 99)),
        p999_ms=_ms(pct(lat, 99.9)),
        max_ms=_ms(float(lat.max()) if lat.size else math.nan),
        errors=int(n - ok.sum()),
        errors_by_kind=counts,
        target_url=cfg.url,
        endpoint=ENDPOINTS[cfg.endpoint][1],
        requests=n,
        duration_s=round(window, 3),
        service_p99_ms=_ms(pct(svc, 99)),
        lag_p99_ms=_ms(pct(lag, 99)),
        connections_used=connections_used,
    )
