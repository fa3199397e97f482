"""The keep-alive HTTP/1.1 client that sends one process's share of the timetable."""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np

from zenrec.loadtest.config import LoadTestConfig, parse_target
from zenrec.loadtest.results import _CONN, _H4, _H5, _NOT_DONE, _OK, _PROTO, _TIMEOUT

__all__ = ["Engine"]


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


class Engine:
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
