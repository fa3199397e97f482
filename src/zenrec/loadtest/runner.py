"""Run a load test: one constant-rate step or a ramp, in this process or split over several."""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zenrec._errors import ConfigError
from zenrec.loadtest.bodies import build_requests
from zenrec.loadtest.client import Engine
from zenrec.loadtest.config import LoadTestConfig, parse_target
from zenrec.loadtest.results import RampResult, StepResult, summarize

__all__ = ["run_load", "run_ramp"]


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

    async def main() -> tuple[Engine, float]:
        eng = Engine(cfg, requests, t0, offset, stride, connections)
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
    reqs = requests or build_requests(
        target, cfg.endpoint, ids=ids, k=cfg.k, seed=cfg.seed, extra=cfg.body_extra
    )
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
    return summarize(cfg, sched, sent, done, kind, t_end, used)


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
    reqs = build_requests(
        target, config.endpoint, ids=ids, k=config.k, seed=config.seed, extra=config.body_extra
    )
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
