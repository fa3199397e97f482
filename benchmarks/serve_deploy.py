"""The deployment figures of one `zenrec serve` worker: threads, admission past capacity, load time.

Answers, for ML-1M bundles (the ones ``serve_capacity.sh`` fits and caches):

1. capacity at p99 <= 10 ms of one worker with 1 and with 2 BLAS/torch threads (``--threads``);
2. capacity at p99 <= the default latency target (50 ms), the figure ``--capacity``'s default
   should carry;
3. offered twice that capacity, with the admission limit the defaults derive: p99 of the
   answered requests, the share shed (503), and whether the liveness probe (``/healthz``, polled
   every 0.5 s with the Deployment's 5-s timeout) kept answering;
4. ``zenrec_model_load_seconds`` of each bundle (the bundle read, index built, smoke query), and,
   with ``--hnsw-index DIR``, the time to read a saved HNSW index (``zenrec perf retrieval
   --index-dir DIR`` writes one; a million items there).

Usage (repository root, quiet machine; a few minutes):
    python benchmarks/serve_deploy.py --output runs/serve-deploy
    python benchmarks/serve_deploy.py --output runs/serve-deploy --step 2 --models ease  (smoke)
Writes ``summary.json`` under ``--output`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, now_utc, write_json

ZENREC = str(Path(sys.executable).parent / "zenrec")


class Server:
    """`zenrec serve BUNDLE --port PORT ARGS...`, ready on enter, stopped on exit."""

    def __init__(self, bundle: Path, port: int, *args: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.cmd = [ZENREC, "serve", str(bundle), "--port", str(port), "--log-level", "warning"]
        self.cmd += list(args)

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{' '.join(self.cmd)} exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{' '.join(self.cmd)} did not become ready")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def load_seconds(self) -> float | None:
        for line in httpx.get(self.url + "/metrics", timeout=5).text.splitlines():
            if line.startswith("zenrec_model_load_seconds"):
                return float(line.rsplit(" ", 1)[1])
        return None


def loadtest(url: str, out: Path, *args: str) -> dict[str, Any]:
    subprocess.run([ZENREC, "loadtest", url, "--output", str(out), *args], cwd=ROOT, check=True)
    return json.loads(out.read_text())


def ramp_capacity(srv: Server, bundle: Path, out: Path, target_ms: float, step: float) -> Any:
    res = loadtest(
        srv.url, out, "--ramp", "250:8000:250", "--duration", str(step),
        "--users-from", str(bundle), "--p99-target-ms", str(target_ms),
    )  # fmt: skip
    return res.get("capacity_rps")


def probe_liveness(url: str, stop: threading.Event, got: list[float | None]) -> None:
    """Poll /healthz every 0.5 s with a 5-s timeout: seconds per answer, None for a failure."""
    with httpx.Client(timeout=5) as http:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                ok = http.get(url + "/healthz").status_code == 200
            except httpx.HTTPError:
                ok = False
            got.append(time.perf_counter() - t0 if ok else None)
            stop.wait(0.5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--output", type=Path, default=ROOT / "runs" / "serve-deploy")
    ap.add_argument("--bundles", type=Path, default=ROOT / "runs" / "serve-capacity")
    ap.add_argument("--models", default="bprmf,ease")
    ap.add_argument("--step", type=float, default=3.0, help="seconds per ramp step")
    ap.add_argument("--overload-seconds", type=float, default=15.0)
    ap.add_argument("--hnsw-index", type=Path, help="a saved HNSW index directory to time")
    ap.add_argument("--port", type=int, default=18761)
    ap.add_argument(
        "--capacity",
        type=float,
        help="skip the ramps and run only the overload step at twice this capacity (req/s)",
    )
    args = ap.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"measured": now_utc(), "machine": machine(), "models": {}}
    for model in args.models.split(","):
        bundle = args.bundles / f"{model}-bundle"
        if not (bundle / "bundle.json").is_file():
            raise SystemExit(f"{bundle}: no bundle; run benchmarks/serve_capacity.sh first")
        row: dict[str, Any] = {}
        o = args.output / model
        for threads in () if args.capacity else (1, 2):
            with Server(
                bundle, args.port, "--threads", str(threads), "--max-concurrency", "256"
            ) as s:
                row.setdefault("load_seconds", s.load_seconds())
                loadtest(s.url, o.with_name(f"{model}-warm{threads}.json"), "--rate", "200",
                         "--duration", "3", "--users-from", str(bundle))  # fmt: skip
                row[f"capacity_p99_10ms_threads{threads}"] = ramp_capacity(
                    s, bundle, o.with_name(f"{model}-ramp10-t{threads}.json"), 10, args.step
                )
                if threads == 1:
                    row["capacity_p99_50ms"] = ramp_capacity(
                        s, bundle, o.with_name(f"{model}-ramp50.json"), 50, args.step
                    )
        cap = args.capacity or row["capacity_p99_50ms"]
        if cap:
            limit = max(1, math.ceil(cap * 50 / 1000 - 1e-9))
            with Server(bundle, args.port, "--capacity", str(cap)) as s:
                row.setdefault("load_seconds", s.load_seconds())
                stop, got = threading.Event(), []  # type: list[float | None]
                t = threading.Thread(target=probe_liveness, args=(s.url, stop, got))
                t.start()
                res = loadtest(s.url, o.with_name(f"{model}-overload.json"), "--rate",
                               str(2 * cap), "--duration", str(args.overload_seconds),
                               "--users-from", str(bundle))  # fmt: skip
                stop.set()
                t.join()
            answered = [g for g in got if g is not None]
            row["overload"] = {
                "capacity_rps": cap,
                "offered_rps": 2 * cap,
                "admission_limit": limit,
                "achieved_rps": res.get("achieved_rps"),
                "p99_ms": res.get("p99_ms"),
                "service_p99_ms": res.get("service_p99_ms"),
                "errors_by_kind": res.get("errors_by_kind"),
                "requests": res.get("requests"),
                "liveness_probes": len(got),
                "liveness_failed": len(got) - len(answered),
                "liveness_max_ms": round(1000 * max(answered), 1) if answered else None,
            }
        summary["models"][model] = row
        write_json(args.output / "summary.json", summary)
    if args.hnsw_index:
        from zenrec.serving.retrieval import HNSWIndex, _clustered_vectors

        info = json.loads((args.hnsw_index / HNSWIndex.INFO).read_text())
        import numpy as np

        vecs = _clustered_vectors(info["n_items"], info["dim"], np.random.default_rng(0))
        t0 = time.perf_counter()
        ix = HNSWIndex.load(
            args.hnsw_index, vecs, m=info["m"], ef_construction=info["ef_construction"]
        )
        summary["hnsw_load"] = {
            "n_items": info["n_items"],
            "read_seconds_with_hash_check": round(time.perf_counter() - t0, 3),
            "loaded": ix is not None,
        }
        write_json(args.output / "summary.json", summary)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.exit(main())
