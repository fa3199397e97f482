"""The table of benchmarks/serve_capacity.sh from the JSON files it wrote.

Usage: python benchmarks/serve_capacity_report.py runs/serve-capacity bprmf ease
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def _load(p: Path) -> Any:
    return json.loads(p.read_text()) if p.exists() else None


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def main(out: Path, models: list[str]) -> None:
    lines = []
    for m in models:
        lines.append(f"## {m} (one worker unless stated)\n")
        lines.append("| run | achieved/s | p50 ms | p99 ms | p99.9 ms | errors |")
        lines.append("|---|---|---|---|---|---|")
        for rate in (200, 500, 1000):
            r = _load(out / f"{m}-rate{rate}.json")
            if r:
                lines.append(
                    f"| /v1/recommend at {rate}/s | {r['achieved_rps']:.0f} | {_ms(r['p50_ms'])} "
                    f"| {_ms(r['p99_ms'])} | {_ms(r['p999_ms'])} | {r['errors']} |"
                )
        lines.append("")
        lines.append("| capacity at p99 <= 10 ms, zero errors | req/s |")
        lines.append("|---|---|")
        caps = {}
        for name, label in (
            ("recommend", "/v1/recommend, known users"),
            ("history", "/v1/recommend, unknown users with recent_items"),
            ("filter", "/v1/recommend, known users, genres filter"),
            ("healthz", "/healthz (same app)"),
            ("recommend-2w", "/v1/recommend, 2 workers"),
        ):
            r = _load(out / f"{m}-ramp-{name}.json")
            caps[name] = r.get("capacity_rps") if r else None
            lines.append(f"| {label} | {caps[name] if caps[name] is not None else '-'} |")
        if caps.get("recommend") and caps.get("healthz"):
            share = 100 * caps["recommend"] / caps["healthz"]
            lines.append(f"| recommend / healthz | {share:.0f}% |")
        lines.append("")
        batch = _load(out / f"{m}-batch.json")
        if batch:
            lines.append("| users per request | users/s | requests/s | x single | errors |")
            lines.append("|---|---|---|---|---|")
            for b in batch:
                lines.append(
                    f"| {b['users_per_request']} | {b['users_per_s']:.0f} | "
                    f"{b['requests_per_s']:.0f} | {b.get('vs_single', '-')} | {b['errors']} |"
                )
            lines.append("")
        off = [_load(p) for p in sorted(out.glob(f"{m}-log-off-*.json"))]
        on = [_load(p) for p in sorted(out.glob(f"{m}-log-on-*.json"))]
        if off and on:
            p_off = statistics.median(r["p99_ms"] for r in off)
            p_on = statistics.median(r["p99_ms"] for r in on)
            lines.append(
                f"Request log at {off[0]['offered_rps']:.0f} req/s, median p99 of {len(off)} "
                f"pairs: off {p_off:.2f} ms, "
                f"on {p_on:.2f} ms ({100 * (p_on - p_off) / p_off:+.0f}%).\n"
            )
        for w in (1, 2):
            mem = _load(out / f"{m}-memory-{w}.json")
            if mem:
                procs = ", ".join(
                    f"{pid}: RSS {v['rss_mib']:.0f} / PSS {v['pss_mib']:.0f}"
                    for pid, v in mem["processes"].items()
                )
                lines.append(
                    f"Memory, {w} worker(s): PSS total {mem['pss_total_mib']:.0f} MiB ({procs})."
                )
        lines.append("")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:] or ["bprmf", "ease"])
