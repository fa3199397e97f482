"""The load generator's own ceiling, and the client candidates it was chosen from.

Every candidate runs open loop (requests due at ``t0 + i / rate``, latency from that time)
against a trivial HTTP/1.1 server (a raw asyncio protocol answering ``200 ok`` from a fixed
buffer, in its own process, uvloop when installed), so the server is far cheaper per request
than any client: what limits the achieved rate is the client. Reported per candidate and
offered rate: achieved rate, p99 from the schedule, and the generator's CPU time per
request (its own process(es); 1e6 / that is the ceiling on one idle core).

Candidates: httpx.AsyncClient and aiohttp.ClientSession (keep-alive connector), each
scheduling one task per request; zenrec's minimal keep-alive client on asyncio's loop, on
uvloop, and on uvloop split over two processes. aiohttp is not a zenrec dependency: it is
skipped when not installed.

Usage (on a quiet machine; ``make bench-serve`` runs it first):
    .venv/bin/python benchmarks/loadgen_ceiling.py \\
        --rates 1000,2000,5000,10000 --duration 3 --output runs/loadgen_ceiling.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SERVER = r"""
import asyncio, sys
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
RESP = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
class P(asyncio.Protocol):
    def connection_made(self, t):
        self.t = t
        self.buf = b""
    def data_received(self, d):
        self.buf += d
        n = self.buf.count(b"\r\n\r\n")
        if n:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4:]
            self.t.write(RESP * n)
async def main():
    s = await asyncio.get_running_loop().create_server(
        P, "127.0.0.1", int(sys.argv[1]), backlog=4096
    )
    await s.serve_forever()
asyncio.run(main())
"""


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _summary(
    rate: float, sched: np.ndarray, done: np.ndarray, ok: np.ndarray, cpu: float
) -> dict[str, Any]:
    n = sched.size
    lat = (done - sched)[ok]
    window = max(n / rate, float(np.nanmax(done)) - float(sched[0])) if ok.any() else math.nan
    return {
        "offered_rps": rate,
        "achieved_rps": round(int(ok.sum()) / window, 1) if ok.any() else 0.0,
        "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 2) if lat.size else None,
        "errors": int(n - ok.sum()),
        "cpu_us_per_request": round(cpu / n * 1e6, 1),
    }


async def _task_per_request(
    url: str, rate: float, duration: float, kind: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open loop with one task per request, the way a general-purpose client is driven."""
    n = math.ceil(rate * duration)
    done = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    if kind == "httpx":
        import httpx

        client: Any = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=256), timeout=5
        )

        async def one(i: int) -> None:
            try:
                r = await client.get(url)
                ok[i] = r.status_code == 200
            except Exception:
                pass
            done[i] = time.perf_counter()
    else:
        import aiohttp

        client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256), timeout=aiohttp.ClientTimeout(total=5)
        )

        async def one(i: int) -> None:
            try:
                async with client.get(url) as r:
                    await r.read()
                    ok[i] = r.status == 200
            except Exception:
                pass
            done[i] = time.perf_counter()

    t0 = time.perf_counter() + 0.05
    sched = t0 + np.arange(n) / rate
    tasks = []
    i = 0
    while i < n:
        now = time.perf_counter()
        while i < n and sched[i] <= now:
            tasks.append(asyncio.create_task(one(i)))
            i += 1
        if i < n:
            await asyncio.sleep(max(0.0, sched[i] - time.perf_counter()))
    await asyncio.gather(*tasks)
    if kind == "httpx":
        await client.aclose()
    else:
        await client.close()
    return sched, done, ok


def run_candidate(name: str, url: str, rate: float, duration: float) -> dict[str, Any]:
    if name in ("httpx", "aiohttp"):
        c0 = _cpu(resource.RUSAGE_SELF)
        sched, done, ok = asyncio.run(_task_per_request(url + "/healthz", rate, duration, name))
        return _summary(rate, sched, done, ok, _cpu(resource.RUSAGE_SELF) - c0)
    from zenrec.loadtest import LoadTestConfig, run_load

    loop = "asyncio" if name == "zenrec-asyncio" else "uvloop"
    procs = 2 if name == "zenrec-uvloop-2proc" else 1
    cfg = LoadTestConfig(
        url=url, rate=rate, duration=duration, endpoint="healthz", event_loop=loop, processes=procs
    )
    c0 = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    res = run_load(cfg)
    cpu = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - c0
    return {
        "offered_rps": rate,
        "achieved_rps": res.achieved_rps,
        "p99_ms": res.p99_ms,
        "errors": res.errors,
        "cpu_us_per_request": round(cpu / res.requests * 1e6, 1),
    }


def _write(path: str, duration: float, rows: list[dict[str, Any]]) -> None:
    from zenrec._io import atomic_write_text

    atomic_write_text(
        Path(path), json.dumps({"duration_s": duration, "rows": rows}, indent=2) + "\n"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rates", default="1000,2000,5000,10000")
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument(
        "--candidates", default="httpx,aiohttp,zenrec-asyncio,zenrec-uvloop,zenrec-uvloop-2proc"
    )
    ap.add_argument("--output", default="runs/loadgen_ceiling.json")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        rows = []
        for name in args.candidates.split(","):
            if name == "aiohttp":
                try:
                    import aiohttp  # noqa: F401
                except ImportError:
                    print("aiohttp not installed: skipped", file=sys.stderr)
                    continue
            for rate in rates:
                row = {"candidate": name, **run_candidate(name, url, rate, args.duration)}
                print(json.dumps(row), flush=True)
                rows.append(row)
                _write(args.output, args.duration, rows)  # partial results survive a timeout
                time.sleep(0.5)
                if row["achieved_rps"] < 0.8 * rate:  # saturated: higher rates only queue
                    break
    finally:
        server.terminate()
        server.wait()
    _write(args.output, args.duration, rows)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
