"""Users/s served by /v1/recommend/batch at B users per request (B = 1 uses /v1/recommend).

A closed loop of ``--clients`` threads, each with one keep-alive connection, sends requests of
B distinct known users (drawn from the bundle's vocabulary) for ``--duration`` seconds;
users/s = B x answered requests / seconds. Every answer is checked (200, B lists).

Usage (a server is already running):
    python benchmarks/serve_batch.py http://127.0.0.1:18731 --bundle BUNDLE --sizes 1,10,100
Prints one line per size and, with --output, writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import httpx


def measure(url: str, users: list, size: int, duration: float, clients: int) -> dict:
    done = [0] * clients
    errors = [0] * clients
    stop = time.perf_counter() + duration

    def client(c: int) -> None:
        j = c * 7919
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.perf_counter() < stop:
                batch = [users[(j + i) % len(users)] for i in range(size)]
                j += size
                if size == 1:
                    r = http.post("/v1/recommend", json={"user_id": batch[0], "k": 10})
                    ok = r.status_code == 200 and len(r.json()["items"]) == 10
                else:
                    body = {"requests": [{"user_id": u, "k": 10} for u in batch]}
                    r = http.post("/v1/recommend/batch", json=body)
                    ok = r.status_code == 200 and len(r.json()["results"]) == size
                if ok:
                    done[c] += 1
                else:
                    errors[c] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    n = sum(done)
    return {
        "users_per_request": size,
        "requests": n,
        "errors": sum(errors),
        "seconds": round(seconds, 2),
        "requests_per_s": round(n / seconds, 1),
        "users_per_s": round(n * size / seconds, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("url")
    p.add_argument("--bundle", required=True, help="bundle served (its user ids are sent)")
    p.add_argument("--sizes", default="1,10,100")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--output", help="write the rows as JSON")
    args = p.parse_args()
    users = json.loads((Path(args.bundle) / "vocab.json").read_text())["users"]["ids"]
    rows = []
    for size in (int(x) for x in args.sizes.split(",")):
        row = measure(args.url, users, size, args.duration, args.clients)
        rows.append(row)
        print(
            f"{size:>4} users/request: {row['users_per_s']:>9.0f} users/s "
            f"({row['requests_per_s']:.0f} requests/s, {row['errors']} errors)"
        )
        sys.stdout.flush()
    if rows and rows[0]["users_per_s"]:
        for r in rows:
            r["vs_single"] = round(r["users_per_s"] / rows[0]["users_per_s"], 2)
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
