"""Memory of `zenrec serve` with 1, 2, ... workers: RSS and PSS of every process of the server.

Starts `zenrec serve BUNDLE --workers N` for each N, sends requests on new connections (so
every worker answers some and has its request-path caches and arenas warm), then reads
`/proc/PID/smaps_rollup` of the server process and of each of its descendants, and stops it.
PSS splits each shared page between the processes that map it, so the PSS total is what the
server costs the machine; the question is how much a second worker adds to it.

Linux only (smaps_rollup). Memory does not depend on the machine's load.

Usage (repository root):
  PYTHONPATH=src OPENBLAS_NUM_THREADS=1 python benchmarks/serve_memory.py BUNDLE_DIR \
      --workers 1,2 --requests 400 --output runs/serve-memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").iterdir():
            f = task / "children"
            if f.exists():
                todo += [int(x) for x in f.read_text().split()]
    return out


def memory(pid: int) -> dict[str, Any]:
    got: dict[str, Any] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty", "Shared_Clean", "Shared_Dirty"):
            got[key.lower() + "_mib"] = round(int(value.split()[0]) / 1024, 1)
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    got["role"] = "tracker" if "resource_tracker" in cmd else ("spawned" if "spawn" in cmd else "")
    return got


def measure(bundle: str, workers: int, requests: int, timeout: float) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "zenrec", "serve", bundle, "--port", str(port)]
    argv += ["--workers", str(workers), "--log-level", "warning", "--max-concurrency", "256"]
    err = tempfile.TemporaryFile("w+")  # noqa: SIM115 - not a pipe: a full one blocks the server
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, text=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err.seek(0)
                raise SystemExit(f"zenrec serve did not start: {err.read()[-2000:]}")
            time.sleep(0.2)
        time.sleep(2.0)  # every worker finishes its startup
        vocab = json.loads((Path(bundle) / "vocab.json").read_text())
        users = vocab["users"]["ids"][:requests]

        def one(u: Any) -> int:
            body = json.dumps({"user_id": u, "k": 10}).encode()
            req = urllib.request.Request(
                url + "/v1/recommend", body, {"content-type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=10) as r:  # a new connection each
                return int(r.status)

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(one, users))
        procs = {str(p): memory(p) for p in descendants(proc.pid)}
        procs[str(proc.pid)]["role"] = "server" if workers == 1 else "parent"
        return {
            "workers": workers,
            "requests_ok": sum(s == 200 for s in statuses),
            "processes": procs,
            "pss_total_mib": round(sum(m["pss_mib"] for m in procs.values()), 1),
        }
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to become ready")
    ap.add_argument("--output", help="JSON file of the measurements")
    args = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    runs = [
        measure(args.bundle, int(n), args.requests, args.timeout) for n in args.workers.split(",")
    ]
    print("| workers | PSS total MiB | processes: RSS / PSS MiB (private MiB) |")
    print("|---|---|---|")
    for r in runs:
        parts = [
            f"{m['role'] or 'worker'} {m['rss_mib']:.0f} / {m['pss_mib']:.0f} "
            f"({m['private_clean_mib'] + m['private_dirty_mib']:.0f})"
            for m in r["processes"].values()
        ]
        print(f"| {r['workers']} | {r['pss_total_mib']:.0f} | {', '.join(parts)} |")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
