"""Open-loop, constant-arrival-rate HTTP load generator (the engine of ``zenrec loadtest``).

Requests are scheduled on a fixed timetable: request ``i`` is due at ``t0 + i / rate``,
whatever happened to the requests before it. Latency is measured from that *scheduled* time
to the end of the response, so a server that stalls is charged for every request that should
have been sent during the stall, including the time those requests spent waiting for a free
connection. This is the coordinated-omission correction of wrk2 and vegeta: a closed-loop
client (send, wait, send the next) stops sending while the server stalls and reports one slow
request where users would have seen hundreds. The uncorrected figure (from the moment a
request actually went onto the wire) is reported beside it as ``service_p99_ms``.

The client is a minimal HTTP/1.1 keep-alive client over asyncio streams: every request is
encoded once before the run, each connection is owned by one worker coroutine that pulls due
requests from a queue, and connections are opened on demand up to ``connections``. It
reaches several times the rate of a general-purpose async client on the same core (measured
in ``docs/results/serving-loadtest.md``); uvloop is used when it is installed. ``processes``
splits the timetable over several generator processes for rates one core cannot drive.

Safety: only loopback targets (``127.0.0.0/8``, ``::1``, ``localhost``) unless
``allow_remote=True``; the number of requests (``rate * duration``), the duration, the rate
and the wait for stragglers (``timeout``) are all bounded, so a run always stops by itself.

Example:
    >>> cfg = LoadTestConfig(url="http://127.0.0.1:8000", rate=200, duration=5,
    ...                      endpoint="healthz")
    >>> cfg.n_requests
    1000
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import json
import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zenrec._errors import ConfigError, DataError

__all__ = [
    "ENDPOINTS",
    "ERROR_KINDS",
    "LoadTestConfig",
    "RampResult",
    "StepResult",
    "Target",
    "build_requests",
    "ids_from",
    "parse_ramp",
    "parse_target",
    "run_load",
    "run_ramp",
]

#: ``--endpoint`` choices: (HTTP method, path) of the serving API.
ENDPOINTS: dict[str, tuple[str, str]] = {
    "recommend": ("POST", "/v1/recommend"),
    "similar": ("POST", "/v1/similar-items"),
    "healthz": ("GET", "/healthz"),
}

#: Error kinds, in report order (``errors_by_kind`` always carries every key).
ERROR_KINDS: tuple[str, ...] = ("timeout", "connection", "http_5xx", "http_4xx", "protocol")

_OK, _TIMEOUT, _CONN, _H5, _H4, _PROTO = 0, 1, 2, 3, 4, 5
_NOT_DONE = -1

MAX_RATE = 100_000.0
MAX_DURATION = 600.0
MAX_REQUESTS = 2_000_000
MAX_RAMP_STEPS = 40
_POOL = 4096  # distinct pre-encoded request bodies, cycled


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


# ------------------------------------------------------------------------------------------
# Request bodies


def ids_from(source: str | Path, kind: Literal["users", "items"]) -> list[Any]:
    """Raw user or item ids from a bundle directory or a built-in dataset name.

    Args:
        source: A bundle directory (its ``vocab.json`` is read) or a dataset name
            (``ml-100k``, ``ml-1m``, ...) or interaction file that ``load_dataset`` reads.
        kind: ``users`` for ``recommend``, ``items`` for ``similar``.

    Raises:
        DataError: Neither a bundle nor a readable dataset, or no ids.
    """
    p = Path(source)
    if p.is_dir():
        vocab_path = p / "vocab.json"
        if not (p / "bundle.json").exists() or not vocab_path.exists():
            raise DataError(
                f"{p}: not a zenrec bundle (no bundle.json/vocab.json); pass a bundle "
                "directory or a dataset name such as ml-1m"
            )
        try:
            payload = json.loads(vocab_path.read_text(encoding="utf-8"))[kind]
            ids = list(payload["ids"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(
                f"{vocab_path}: unreadable vocabulary ({exc}); the bundle is corrupt"
            ) from None
    else:
        from zenrec.data import load_dataset

        ds = load_dataset(str(source))
        vocab = ds.user_vocab if kind == "users" else ds.item_vocab
        ids = vocab.ids.tolist()
    if not ids:
        raise DataError(f"{source}: has no {kind[:-1]} ids to put in requests")
    return ids


def build_requests(
    target: Target,
    endpoint: str,
    *,
    ids: Sequence[Any] | None = None,
    k: int = 10,
    seed: int = 0,
    n: int = _POOL,
) -> list[bytes]:
    """Encode the HTTP/1.1 requests of a run once (cycled during the run).

    ``recommend`` bodies are ``{"user_id": ..., "k": k}`` and ``similar`` bodies
    ``{"item_id": ..., "k": k}``, with ids drawn uniformly (seeded) from ``ids``; without
    ``ids`` they use ids ``1..1000``. ``healthz`` is one bodiless GET.
    """
    method, path = ENDPOINTS[endpoint]
    line = f"{method} {target.base_path}{path} HTTP/1.1\r\nHost: {target.host_header}\r\n"
    if method == "GET":
        return [(line + "Accept: */*\r\n\r\n").encode()]
    pool: Sequence[Any] = ids if ids else list(range(1, 1001))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(pool), size=min(n, max(1, len(pool) * 4)))
    key = "user_id" if endpoint == "recommend" else "item_id"
    out = []
    for j in picks:
        body = json.dumps({key: pool[int(j)], "k": k}, separators=(",", ":")).encode()
        head = (
            line + "Content-Type: application/json\r\nAccept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


# ------------------------------------------------------------------------------------------
# Results


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
    (``None``, JSON null, when no step met it: the planner then refuses the file). The top-level per-step fields of :meth:`as_dict` are those of
    the step at capacity (of the first step when none passed).
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


def _summarize(
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


# ------------------------------------------------------------------------------------------
# The engine


class _ProtocolError(Exception):
    pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; return (status, keep_alive)."""
    head = await reader.readuntil(b"\r\n\r\n")
    try:
        status = int(head[9:12])
    except ValueError:
        raise _ProtocolError(head[:40]) from None
    if not head.startswith(b"HTTP/1."):
        raise _ProtocolError(head[:40])
    low = head.lower()
    keep = b"\r\nconnection: close" not in low and not head.startswith(b"HTTP/1.0")
    i = low.find(b"\r\ncontent-length:")
    if i >= 0:
        j = low.find(b"\r\n", i + 2)
        await reader.readexactly(int(low[i + 17 : j]))
    elif b"\r\ntransfer-encoding: chunked" in low:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif status in (204, 304) or 100 <= status < 200:
        pass
    else:  # body runs to the end of the connection
        await reader.read()
        keep = False
    return status, keep


class _Engine:
    """One process's share of a run: requests ``offset, offset + stride, ...``."""

    def __init__(
        self,
        cfg: LoadTestConfig,
        requests: list[bytes],
        t0: float,
        offset: int = 0,
        stride: int = 1,
        connections: int | None = None,
    ) -> None:
        self.cfg = cfg
        self.target = parse_target(cfg.url, allow_remote=cfg.allow_remote)
        self.requests = requests
        self.t0 = t0
        self.idx = np.arange(offset, cfg.n_requests, stride)
        self.sched = t0 + self.idx / cfg.rate
        m = self.idx.size
        self.sent = np.full(m, math.nan)
        self.done = np.full(m, math.nan)
        self.kind = np.full(m, _NOT_DONE, dtype=np.int8)
        self.max_conns = connections or cfg.connections
        self.queue: asyncio.Queue[int | None] = asyncio.Queue()
        self.idle = 0
        self.workers: list[asyncio.Task[None]] = []
        self.inflight: dict[int, tuple[float, asyncio.StreamWriter]] = {}  # worker -> (deadline, w)
        self.timed_out: set[int] = set()

    def _spawn(self) -> None:
        need = self.queue.qsize() - self.idle
        while need > 0 and len(self.workers) < self.max_conns:
            self.workers.append(asyncio.create_task(self._worker(len(self.workers))))
            need -= 1

    async def _dispatch(self) -> None:
        clock = time.perf_counter
        sched = self.sched
        m = sched.size
        j = 0
        while j < m:
            now = clock()
            while j < m and sched[j] <= now:
                self.queue.put_nowait(j)
                j += 1
            self._spawn()
            if j < m:
                delay = sched[j] - clock()
                await asyncio.sleep(delay if delay > 0 else 0)

    async def _watchdog(self) -> None:
        tick = min(0.05, self.cfg.timeout / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.perf_counter()
            for w, (deadline, writer) in list(self.inflight.items()):
                if now > deadline:
                    self.timed_out.add(w)
                    writer.transport.abort()

    async def _worker(self, w: int) -> None:
        t = self.target
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        clock = time.perf_counter
        timeout = self.cfg.timeout
        reqs, nreq = self.requests, len(self.requests)
        try:
            while True:
                self.idle += 1
                j = await self.queue.get()
                self.idle -= 1
                if j is None:
                    return
                deadline = float(self.sched[j]) + timeout
                if clock() > deadline:  # waited for a connection past its deadline
                    self.kind[j] = _TIMEOUT
                    self.done[j] = clock()
                    continue
                code = _OK
                try:
                    if conn is None:
                        conn = await asyncio.wait_for(
                            asyncio.open_connection(t.host, t.port),
                            max(0.0, deadline - clock()),
                        )
                    reader, writer = conn
                    self.inflight[w] = (deadline, writer)
                    self.sent[j] = clock()
                    writer.write(reqs[int(self.idx[j]) % nreq])
                    status, keep = await _read_response(reader)
                    if status >= 500:
                        code = _H5
                    elif status >= 400:
                        code = _H4
                    if not keep:
                        conn = self._drop(conn)
                except (_ProtocolError, ValueError):
                    code = _PROTO
                    conn = self._drop(conn)
                except TimeoutError:  # connecting took past the deadline
                    code = _TIMEOUT
                    conn = self._drop(conn)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    code = _TIMEOUT if w in self.timed_out else _CONN
                    conn = self._drop(conn)
                finally:
                    self.inflight.pop(w, None)
                    self.timed_out.discard(w)
                self.done[j] = clock()
                self.kind[j] = code
        finally:
            self._drop(conn)

    @staticmethod
    def _drop(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        if conn is not None:
            conn[1].transport.abort()
        return None

    async def run(self) -> float:
        """Run this share; return the time of the last completion."""
        dog = asyncio.create_task(self._watchdog())
        try:
            await self._dispatch()
            # Every queued request finishes or times out within `timeout` of its schedule.
            while self.queue.qsize() or self.inflight:
                await asyncio.sleep(0.005)
                self._spawn()
            for _ in self.workers:
                self.queue.put_nowait(None)
            await asyncio.gather(*self.workers, return_exceptions=True)
        finally:
            dog.cancel()
        done = self.done[np.isfinite(self.done)]
        return float(done.max()) if done.size else time.perf_counter()


def _loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's event loop when asked for or (``auto``) installed, else asyncio's default."""
    if kind == "asyncio":
        return asyncio.new_event_loop
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        if kind == "uvloop":
            raise ConfigError(
                "event_loop='uvloop' but uvloop is not installed; pip install uvloop, or use "
                "event_loop='auto'"
            ) from None
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _run_share(
    cfg: LoadTestConfig,
    requests: list[bytes],
    start_wall: float,
    offset: int,
    stride: int,
    connections: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, int]:
    """Run one process's share; times are returned on the wall clock (shared by processes)."""
    # perf_counter is per process; convert the common wall-clock start to it.
    shift = time.time() - time.perf_counter()
    t0 = start_wall - shift

    async def main() -> tuple[_Engine, float]:
        eng = _Engine(cfg, requests, t0, offset, stride, connections)
        return eng, await eng.run()

    with asyncio.Runner(loop_factory=_loop_factory(cfg.event_loop)) as runner:
        eng, t_end = runner.run(main())
    return (
        eng.idx,
        eng.sched + shift,
        eng.sent + shift,
        eng.done + shift,
        eng.kind,
        t_end + shift,
        len(eng.workers),
    )


def _share_process(
    conn: Any,
    cfg: LoadTestConfig,
    requests: list[bytes],
    offset: int,
    stride: int,
    connections: int,
) -> None:
    """Child process: say ready, wait for the common start time, run the share, send it back."""
    try:
        conn.send("ready")
        start = conn.recv()
        conn.send(_run_share(cfg, requests, start, offset, stride, connections))
    except Exception as exc:  # reported by the parent
        conn.send(f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def _run_processes(cfg: LoadTestConfig, requests: list[bytes]) -> list[Any]:
    """Split the timetable over ``cfg.processes`` fresh (spawned) processes.

    The start time is fixed only once every process has started and imported, so slow
    process start-up never shows up as late requests.
    """
    ctx = multiprocessing.get_context("spawn")
    per = max(1, cfg.connections // cfg.processes)
    pipes, procs = [], []
    try:
        for p in range(cfg.processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_share_process,
                args=(child, cfg, requests, p, cfg.processes, per),
                daemon=True,
            )
            proc.start()
            child.close()
            pipes.append(parent)
            procs.append(proc)
        for c in pipes:
            if not c.poll(120) or c.recv() != "ready":
                raise ConfigError("a generator process did not start within 120 s; use processes=1")
        start = time.time() + 0.1
        for c in pipes:
            c.send(start)
        shares = [c.recv() for c in pipes]
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    for sh in shares:
        if isinstance(sh, str):
            raise RuntimeError(f"a generator process failed: {sh}")
    return shares


def run_load(
    config: LoadTestConfig,
    *,
    ids: Sequence[Any] | None = None,
    requests: list[bytes] | None = None,
) -> StepResult:
    """Run one constant-rate load test and summarize it.

    Args:
        config: Rate, duration, target and client settings.
        ids: Raw user (``recommend``) or item (``similar``) ids for request bodies.
        requests: Pre-encoded requests to cycle instead (overrides ``ids``).

    Returns:
        The step's summary (see :class:`StepResult`).
    """
    cfg = config
    target = parse_target(cfg.url, allow_remote=cfg.allow_remote)
    reqs = requests or build_requests(target, cfg.endpoint, ids=ids, k=cfg.k, seed=cfg.seed)
    n = cfg.n_requests
    sched, sent, done = np.empty(n), np.empty(n), np.empty(n)
    kind = np.empty(n, dtype=np.int8)
    t_end = 0.0
    if cfg.processes == 1:
        shares = [_run_share(cfg, reqs, time.time() + 0.05, 0, 1, cfg.connections)]
    else:
        shares = _run_processes(cfg, reqs)
    used = 0
    for idx, s_, se, d, k_, te, nconn in shares:
        sched[idx], sent[idx], done[idx], kind[idx] = s_, se, d, k_
        t_end = max(t_end, te)
        used += nconn
    return _summarize(cfg, sched, sent, done, kind, t_end, used)


def run_ramp(
    config: LoadTestConfig,
    rates: Sequence[float],
    *,
    p99_target_ms: float = 50.0,
    ids: Sequence[Any] | None = None,
    pause: float = 1.0,
    stop_on_fail: bool = True,
    on_step: Callable[[StepResult, bool], None] | None = None,
) -> RampResult:
    """Step the offered rate up and find the capacity at a p99 target.

    Each rate in ``rates`` runs for ``config.duration`` seconds, with ``pause`` seconds
    between steps so the server drains. The capacity is the highest step rate whose p99 is
    within ``p99_target_ms`` with no errors; by default the ramp stops at the first step that
    misses (a higher rate would only overload the server further).

    Args:
        config: Settings of each step (its ``rate`` is replaced by each step rate).
        rates: Step rates in requests/s, ascending.
        p99_target_ms: The latency target.
        ids: Raw ids for request bodies (see :func:`run_load`).
        pause: Seconds between steps.
        stop_on_fail: Stop after the first failing step.
        on_step: Called with each step's result and whether it passed.

    Returns:
        Every step run and the capacity.
    """
    if not p99_target_ms > 0:
        raise ConfigError(f"p99_target_ms must be > 0; got {p99_target_ms}")
    if not rates:
        raise ConfigError("rates is empty; give at least one step rate")
    target = parse_target(config.url, allow_remote=config.allow_remote)
    reqs = build_requests(target, config.endpoint, ids=ids, k=config.k, seed=config.seed)
    steps: list[StepResult] = []
    capacity: float | None = None
    stopped = False
    for i, rate in enumerate(rates):
        cfg = config.model_copy(update={"rate": float(rate)})
        LoadTestConfig.model_validate(cfg.model_dump())  # bounds per step
        res = run_load(cfg, requests=reqs)
        ok = res.passes(p99_target_ms)
        steps.append(res)
        if ok:
            capacity = float(rate) if capacity is None else max(capacity, float(rate))
        if on_step is not None:
            on_step(res, ok)
        if not ok and stop_on_fail:
            stopped = i < len(rates) - 1
            break
        if i < len(rates) - 1 and pause > 0:
            time.sleep(pause)
    notes = []
    if capacity is None:
        notes.append(f"no step met p99 <= {p99_target_ms:g} ms without errors; start lower")
    elif capacity == float(rates[-1]):
        notes.append("the last step still passed: capacity is at least this; ramp higher")
    return RampResult(
        steps=steps,
        capacity_rps=capacity,
        p99_target_ms=float(p99_target_ms),
        stopped_early=stopped,
        notes=notes,
    )
