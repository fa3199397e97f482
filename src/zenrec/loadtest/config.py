"""Settings of a load-test run: the target URL check, the bounds and ramp specs."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zenrec._errors import ConfigError

__all__ = [
    "ENDPOINTS",
    "MAX_DURATION",
    "MAX_RAMP_STEPS",
    "MAX_RATE",
    "MAX_REQUESTS",
    "LoadTestConfig",
    "Target",
    "parse_ramp",
    "parse_target",
]

#: ``--endpoint`` choices: (HTTP method, path) of the serving API.
ENDPOINTS: dict[str, tuple[str, str]] = {
    "recommend": ("POST", "/v1/recommend"),
    "similar": ("POST", "/v1/similar-items"),
    "healthz": ("GET", "/healthz"),
}

MAX_RATE = 100_000.0
MAX_DURATION = 600.0
MAX_REQUESTS = 2_000_000
MAX_RAMP_STEPS = 40


class LoadTestConfig(BaseModel):
    """Settings of one constant-rate load-test run.

    Attributes:
        url: Base URL of the service, ``http://host:port`` (plain HTTP).
        rate: Offered requests per second.
        duration: Seconds over which requests are scheduled.
        endpoint: Which endpoint to load (see :data:`ENDPOINTS`).
        k: List length asked of ``recommend`` / ``similar``.
        timeout: A request still unanswered this many seconds after its scheduled time is
            abandoned and counted as a ``timeout``.
        connections: Most keep-alive connections open at once (opened on demand).
        processes: Generator processes sharing the timetable (1 = this process only).
        seed: Seed of the choice of user / item ids in request bodies.
        allow_remote: Allow a non-loopback target host.
        event_loop: ``auto`` (uvloop when installed), ``uvloop`` or ``asyncio``.
        body_extra: Fields merged into every request body, last (e.g. ``{"genres": ["Comedy"]}``,
            or ``{"user_id": null, "recent_items": [...]}`` for history scoring).
    """

    model_config = ConfigDict(extra="forbid")

    url: str
    rate: float = Field(gt=0, le=MAX_RATE)
    duration: float = Field(gt=0, le=MAX_DURATION)
    endpoint: Literal["recommend", "similar", "healthz"] = "recommend"
    k: int = Field(default=10, ge=1, le=1000)
    timeout: float = Field(default=5.0, gt=0, le=60)
    connections: int = Field(default=256, ge=1, le=4096)
    processes: int = Field(default=1, ge=1, le=64)
    seed: int = 0
    allow_remote: bool = False
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    body_extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parse_target(v, allow_remote=True)  # syntax only here; the host check is below
        return v

    @model_validator(mode="after")
    def _bounds(self) -> LoadTestConfig:
        parse_target(self.url, allow_remote=self.allow_remote)
        if self.n_requests > MAX_REQUESTS:
            raise ValueError(
                f"rate * duration = {self.n_requests} requests exceeds the bound of "
                f"{MAX_REQUESTS}; lower rate or duration"
            )
        return self

    @property
    def n_requests(self) -> int:
        """Requests on the timetable: ``ceil(rate * duration)`` (at least one)."""
        return max(1, math.ceil(self.rate * self.duration - 1e-9))


@dataclass(frozen=True)
class Target:
    """A parsed base URL: where to connect and what to put in the request line."""

    host: str
    port: int
    base_path: str
    url: str

    @property
    def host_header(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{h}:{self.port}"


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_target(url: str, *, allow_remote: bool = False) -> Target:
    """Parse and check a base URL.

    Raises:
        ConfigError: Not ``http://host[:port][/path]``, or a host that is not a loopback
            address while ``allow_remote`` is false.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(
            f"url {url!r}: expected a plain-HTTP base URL such as http://127.0.0.1:8000 "
            "(https is not supported: load the service's own port)"
        )
    try:
        port = parts.port or 80
    except ValueError:
        raise ConfigError(f"url {url!r}: the port is not a number in 1..65535") from None
    host = parts.hostname
    if not allow_remote and not _is_loopback(host):
        raise ConfigError(
            f"url {url!r}: host {host!r} is not a loopback address (127.0.0.0/8, ::1, "
            "localhost); load tests target this machine only unless allow_remote is set"
        )
    return Target(host=host, port=port, base_path=parts.path.rstrip("/"), url=url)


def parse_ramp(spec: str) -> list[float]:
    """Parse ``START:STOP:STEP`` into the list of step rates (inclusive of STOP).

    Raises:
        ConfigError: Malformed spec, non-positive numbers, STOP < START, or too many steps.
    """
    parts = spec.split(":")
    try:
        start, stop, step = (float(p) for p in parts)
        if len(parts) != 3:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"ramp {spec!r}: expected START:STOP:STEP in requests/s, e.g. 100:1000:100"
        ) from None
    if not (start > 0 and step > 0 and stop >= start):
        raise ConfigError(
            f"ramp {spec!r}: needs START > 0, STEP > 0 and STOP >= START, e.g. 100:1000:100"
        )
    n = math.floor((stop - start) / step + 1e-9) + 1
    if n > MAX_RAMP_STEPS:
        raise ConfigError(
            f"ramp {spec!r}: {n} steps, more than {MAX_RAMP_STEPS}; use a larger STEP"
        )
    return [round(start + j * step, 6) for j in range(n)]
