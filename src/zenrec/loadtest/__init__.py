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

Modules: :mod:`~zenrec.loadtest.config` (what to load and how hard: the run's settings, the
target check, ramp specs), :mod:`~zenrec.loadtest.bodies` (request bodies encoded once),
:mod:`~zenrec.loadtest.client` (the keep-alive HTTP/1.1 client that keeps the timetable),
:mod:`~zenrec.loadtest.runner` (one run or a ramp, over one or several processes) and
:mod:`~zenrec.loadtest.results` (per-step and ramp summaries). The load generator is a client
of the service: it imports nothing of :mod:`zenrec.serving`.

Example:
    >>> cfg = LoadTestConfig(url="http://127.0.0.1:8000", rate=200, duration=5,
    ...                      endpoint="healthz")
    >>> cfg.n_requests
    1000
"""

from __future__ import annotations

from zenrec.loadtest.bodies import build_requests, ids_from
from zenrec.loadtest.config import ENDPOINTS, LoadTestConfig, Target, parse_ramp, parse_target
from zenrec.loadtest.results import ERROR_KINDS, RampResult, StepResult
from zenrec.loadtest.runner import run_load, run_ramp

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
