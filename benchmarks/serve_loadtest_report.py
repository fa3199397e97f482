"""Render docs/results/serving-loadtest.md from the JSON that serve_loadtest.sh and
loadgen_ceiling.py wrote.

Usage: python benchmarks/serve_loadtest_report.py runs/serve-loadtest
       docs/results/serving-loadtest.md [--ceiling runs/loadgen_ceiling.json]
       [--machine "2 cores, shared with 8 other agents"]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from zenrec._io import atomic_write_text

DUR = os.environ.get("DURATION", "20")
STEP = os.environ.get("STEP_DURATION", "5")
MODELS = {"bprmf": "ML-1M BPR-MF (64 factors)", "ease": "ML-1M EASE (3.7k x 3.7k weights)"}


def _load(p: Path) -> dict[str, Any] | None:
    return json.loads(p.read_text()) if p.exists() else None


def _f(x: Any, nd: int = 1) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _errors(d: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in d["errors_by_kind"].items() if v)
    return str(d["errors"]) + (f" ({kinds})" if kinds else "")


def render(out: Path, ceilings: list[Path], machine: str) -> str:
    lines = [
        "# How many requests per second does one `zenrec serve` worker answer, and at what p99?",
        "",
        "Command: `make bench-serve` (`benchmarks/loadgen_ceiling.py`, then "
        "`bash benchmarks/serve_loadtest.sh`, which renders this page)  ",
        f"Measured: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine}; load "
        f"average at render {os.getloadavg()[0]:.1f}.",
        "",
        "Server and generator share the machine "
        f"({os.environ.get('PIN_NOTE', 'server on core 0, generator on core 1 with `taskset`')}); "
        "latency is measured from each request's *scheduled* send time (open loop, "
        "coordinated-omission corrected), percentiles over successful responses, one worker.",
        "",
    ]
    have = [m for m in MODELS if (out / f"{m}-rate500.json").exists()]
    if have:
        lines += [
            "## Fixed rates, POST /v1/recommend",
            "",
            "| bundle | offered/s | achieved/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms "
            "| errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for m in have:
            for rate in (200, 500, 1000):
                d = _load(out / f"{m}-rate{rate}.json")
                if d is None:
                    continue
                lines.append(
                    f"| {MODELS[m]} | {d['offered_rps']:g} | {_f(d['achieved_rps'])} "
                    f"| {_f(d['p50_ms'], 2)} "
                    f"| {_f(d['p90_ms'], 2)} | {_f(d['p99_ms'], 2)} | {_f(d['p999_ms'], 2)} "
                    f"| {_f(d['max_ms'], 1)} | {_errors(d)} |"
                )
        lines += [
            "",
            f"Command: `zenrec loadtest http://127.0.0.1:PORT --rate R --duration {DUR} "
            "--users-from BUNDLE --output F.json`.",
            "",
            "## Capacity at p99 <= 50 ms (`--ramp`)",
            "",
            "| bundle | /v1/recommend req/s | /healthz req/s | recommend / healthz "
            "| serving RSS MiB |",
            "|---|---:|---:|---:|---:|",
        ]
        for m in have:
            rec = _load(out / f"{m}-ramp-recommend.json")
            hz = _load(out / f"{m}-ramp-healthz.json")
            rss = _load(out / f"{m}-rss.json") or {}
            if rec is None or hz is None:
                continue
            rc, hc = rec["capacity_rps"], hz["capacity_rps"]
            ratio = rc / hc if rc is not None and hc else None
            lines.append(
                f"| {MODELS[m]} | {'none' if rc is None else f'{rc:g}'} | "
                f"{'none' if hc is None else f'{hc:g}'} | "
                f"{'-' if ratio is None else f'{ratio:.0%}'} | {rss.get('rss_mb', '-')} |"
            )
        lines += [
            "",
            "Commands: `zenrec loadtest URL --ramp 100:3000:100 "
            f"--duration {STEP} --users-from BUNDLE "
            f"--p99-target-ms 50` and `zenrec loadtest URL --endpoint healthz --ramp 250:6000:250 "
            f"--duration {STEP}`. Capacity = the highest step rate with p99 <= 50 ms and no errors "
            "(step size is the resolution); the ramp stops at the first step that misses.",
            "",
            "## Request-log cost at 500 req/s",
            "",
            "| bundle | p99 ms without log (runs) | p99 ms with `--request-log` (runs) "
            "| median change |",
            "|---|---|---|---:|",
        ]
        for m in have:
            off = [
                d["p99_ms"]
                for d in (_load(p) for p in sorted(out.glob(f"{m}-log-off-*.json")))
                if d
            ]
            on = [
                d["p99_ms"] for d in (_load(p) for p in sorted(out.glob(f"{m}-log-on-*.json"))) if d
            ]
            if not off or not on:
                continue
            mo, mn = statistics.median(off), statistics.median(on)
            lines.append(
                f"| {MODELS[m]} | {mo:.2f} ({', '.join(f'{x:.2f}' for x in off)}) | "
                f"{mn:.2f} ({', '.join(f'{x:.2f}' for x in on)}) | {(mn - mo) / mo:+.0%} |"
            )
        lines += [
            "",
            "Each pair starts a fresh server without, then with, `--request-log DIR "
            f"--request-log-salt-env VAR`; `--rate 500 --duration {DUR}`; medians of the pairs.",
            "",
        ]
    loaded = [d for d in (_load(c) for c in ceilings) if d]
    cdata = (
        {"duration_s": loaded[0]["duration_s"], "rows": [r for d in loaded for r in d["rows"]]}
        if loaded
        else None
    )
    if cdata:
        lines += [
            "## The generator's own ceiling",
            "",
            "Each client runs open loop against a trivial HTTP/1.1 server (a raw asyncio protocol",
            "answering from a fixed buffer, much cheaper per request than any client), so the",
            "client sets the pace; 1-3 s per rate (see the JSON). *CPU us/request* is the",
            "generator's own CPU time per request (1e6 / it = its ceiling on one idle core).",
            "",
            "| client | offered/s | achieved/s | p99 ms | errors | CPU us/request |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in cdata["rows"]:
            lines.append(
                f"| {r['candidate']} | {r['offered_rps']:g} | {_f(r['achieved_rps'])} | "
                f"{_f(r['p99_ms'], 2)} | {r['errors']} | {_f(r['cpu_us_per_request'])} |"
            )
        lines += [
            "",
            "httpx / aiohttp: one task per request (`client.get`), keep-alive pools of 256;",
            "zenrec-*: `zenrec.loadtest` (pre-encoded requests, one worker coroutine per",
            "keep-alive connection) on asyncio's loop, on uvloop, "
            "and on uvloop over two processes.",
            "CPU per request includes each run's fixed start-up (for two processes: spawning two",
            "interpreters), so compare at the highest rate. "
            "A generator that keeps up shows achieved",
            "= offered; its p99 here includes the CPU it lost to other jobs.",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("page", type=Path)
    ap.add_argument(
        "--ceiling",
        type=Path,
        nargs="*",
        default=[Path("runs/loadgen_ceiling.json"), Path("runs/loadgen_ceiling_httpx.json")],
    )
    ap.add_argument(
        "--machine",
        default=os.environ.get("MACHINE", f"{os.cpu_count()} cores"),
    )
    args = ap.parse_args()
    atomic_write_text(args.page, render(args.out, args.ceiling, args.machine))
    print(f"wrote {args.page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
