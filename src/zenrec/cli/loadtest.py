"""``zenrec loadtest``: open-loop constant-rate load test of a running ``zenrec serve``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]

EPILOG = """Examples:
  zenrec loadtest http://127.0.0.1:8000 --rate 500 --duration 30 --users-from ml-1m
  zenrec loadtest http://127.0.0.1:8000 --ramp 100:2000:100 --duration 10 \\
      --users-from runs/ml1m-bpr/bundle --p99-target-ms 50 --output loadtest.json
  zenrec traffic plan --input requests/ --capacity-from loadtest.json --output plan/

Requests are sent on a fixed timetable (open loop) and latency is measured from each request's
scheduled send time, so a stalled server is charged for every request it delayed. Only
loopback targets (127.0.0.0/8, ::1, localhost) unless --allow-remote. See docs/deployment.md.
"""


def register(sub: Any) -> None:
    """Add the ``loadtest`` command."""
    p = sub.add_parser(
        "loadtest",
        help="open-loop constant-rate load test of a zenrec service",
        description="Send requests at a constant rate (open loop), report offered vs achieved "
        "rate, latency percentiles from the scheduled send time, and errors by kind; with "
        "--ramp, step the rate up and report the capacity at a p99 target.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", metavar="URL", help="base URL of the service, e.g. http://127.0.0.1:8000")
    p.add_argument("--rate", type=float, default=None, help="offered requests/s (or use --ramp)")
    p.add_argument(
        "--duration", type=float, default=10.0, help="seconds per run or per ramp step (default 10)"
    )
    p.add_argument(
        "--endpoint",
        choices=("recommend", "similar", "healthz"),
        default="recommend",
        help="POST /v1/recommend, POST /v1/similar-items or GET /healthz (default recommend)",
    )
    p.add_argument(
        "--users-from",
        metavar="DATASET|BUNDLE",
        default=None,
        help="draw user (or, for similar, item) ids from a bundle directory or a dataset name",
    )
    p.add_argument("-k", type=int, default=10, help="list length asked for (default 10)")
    p.add_argument(
        "--ramp",
        metavar="START:STOP:STEP",
        default=None,
        help="step the rate from START to STOP; report the highest rate meeting the p99 target",
    )
    p.add_argument(
        "--p99-target-ms",
        type=float,
        default=50.0,
        help="p99 latency target of --ramp in ms (default 50)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        help="seconds after its scheduled time a request is abandoned as a timeout (default 5)",
    )
    p.add_argument(
        "--connections", type=int, default=256, help="most keep-alive connections (default 256)"
    )
    p.add_argument(
        "--processes", type=int, default=1, help="generator processes sharing the timetable"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the id choice (default 0)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback target (without it only 127.0.0.0/8, ::1 and localhost)",
    )
    p.add_argument(
        "--body-extra",
        metavar="JSON",
        default=None,
        help='JSON object merged into every request body, e.g. \'{"genres": ["Comedy"]}\' '
        '(filters) or \'{"user_id": null, "recent_items": [1, 50]}\' (history scoring)',
    )
    p.add_argument("--output", metavar="FILE.json", default=None, help="write the result as JSON")
    p.set_defaults(func=run)


def _body_extra(raw: str | None) -> dict[str, Any]:

    from zenrec._errors import ConfigError

    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--body-extra: not JSON ({exc}); got {raw!r}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"--body-extra must be a JSON object; got {raw!r}")
    return value


def _config(args: argparse.Namespace, rate: float) -> Any:
    from pydantic import ValidationError

    from zenrec._errors import ConfigError
    from zenrec._validation import to_config_error
    from zenrec.loadtest import LoadTestConfig

    flags = {
        "url": "URL",
        "rate": "--rate",
        "duration": "--duration",
        "k": "-k",
        "timeout": "--timeout",
        "connections": "--connections",
        "processes": "--processes",
    }
    try:
        return LoadTestConfig(
            url=args.url,
            rate=rate,
            duration=args.duration,
            endpoint=args.endpoint,
            k=args.k,
            timeout=args.timeout,
            connections=args.connections,
            processes=args.processes,
            seed=args.seed,
            allow_remote=args.allow_remote,
            body_extra=_body_extra(args.body_extra),
        )
    except ValidationError as exc:
        err = to_config_error(
            exc,
            key=lambda loc: flags.get(str(loc[0]), str(loc[0])),
            messages={"*": "{key}: {msg} (got {got})", "root": "loadtest: {msg}"},
        )
        msg = str(err).replace("unless allow_remote is set", "unless --allow-remote is given")
        raise ConfigError(msg) from None


def _row(res: Any, mark: str = "") -> list[str]:
    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    kinds = ", ".join(f"{k} {v}" for k, v in res.errors_by_kind.items() if v) or "-"
    return [
        f"{res.offered_rps:g}",
        f"{res.achieved_rps:.1f}",
        f(res.p50_ms),
        f(res.p90_ms),
        f(res.p99_ms),
        f(res.p999_ms),
        f(res.max_ms),
        str(res.errors),
        kinds,
        mark,
    ]


def _table(title: str, rows: list[list[str]]) -> Any:
    from rich.table import Table

    t = Table(title=title)
    for c in ("offered/s", "achieved/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"):
        t.add_column(c, justify="right")
    t.add_column("errors", justify="right")
    t.add_column("by kind")
    t.add_column("")
    for r in rows:
        t.add_row(*r)
    return t


def _warn_lag(con: Any, res: Any, connections: int) -> None:
    if res.lag_p99_ms is None or res.lag_p99_ms <= 10:
        return
    if res.connections_used >= connections:
        con.print(
            f"note: requests waited up to {res.lag_p99_ms:.0f} ms (p99) for one of the "
            f"{connections} connections: the server did not keep up (counted in the latency)"
        )
    else:
        con.print(
            f"warning: the generator fell behind by up to {res.lag_p99_ms:.0f} ms (p99) with "
            "connections to spare: it was short of CPU; use --processes or a quieter machine"
        )


def run(args: argparse.Namespace) -> int:
    """Run ``zenrec loadtest``."""
    from rich.console import Console

    from zenrec._errors import ConfigError
    from zenrec._io import atomic_write_text
    from zenrec.loadtest import ENDPOINTS, ids_from, parse_ramp, run_load, run_ramp

    if args.rate is None and args.ramp is None:
        raise ConfigError("give --rate R for one run, or --ramp START:STOP:STEP to find capacity")
    if args.rate is not None and args.ramp is not None:
        raise ConfigError("--rate and --ramp exclude each other; give one")
    try:
        rates = parse_ramp(args.ramp) if args.ramp else [args.rate]
    except ConfigError as exc:
        raise ConfigError(f"--ramp: {str(exc).removeprefix('ramp ')}") from None
    if not args.p99_target_ms > 0:
        raise ConfigError(f"--p99-target-ms must be > 0; got {args.p99_target_ms}")
    cfg = _config(args, max(rates))  # validates every bound at the highest rate up front
    cfg = cfg.model_copy(update={"rate": rates[0]})
    con = Console(stderr=True)
    ids = None
    if args.users_from and args.endpoint != "healthz":
        ids = ids_from(args.users_from, "users" if args.endpoint == "recommend" else "items")
        con.print(
            f"{len(ids)} {'user' if args.endpoint == 'recommend' else 'item'} ids "
            f"from {args.users_from}"
        )
    elif args.endpoint != "healthz":
        con.print("note: no --users-from; requests use ids 1..1000 (unknown ids get the fallback)")
    method, path = ENDPOINTS[args.endpoint]
    out = Console()
    if args.ramp is None:
        con.print(f"{method} {path}: {args.rate:g} req/s for {args.duration:g} s ...")
        res = run_load(cfg, ids=ids)
        out.print(_table(f"{method} {args.url.rstrip('/')}{path} (open loop)", [_row(res)]))
        payload = res.as_dict()
        _warn_lag(con, res, args.connections)
    else:

        def progress(step: Any, ok: bool) -> None:
            _warn_lag(con, step, args.connections)
            verdict = "ok" if ok else f"misses p99 <= {args.p99_target_ms:g} ms or has errors"
            con.print(
                f"  {step.offered_rps:g} req/s: achieved {step.achieved_rps:.1f}, p99 "
                f"{step.p99_ms} ms, errors {step.errors} -> {verdict}"
            )

        con.print(f"{method} {path}: ramp {args.ramp}, {args.duration:g} s per step ...")
        ramp = run_ramp(cfg, rates, p99_target_ms=args.p99_target_ms, ids=ids, on_step=progress)
        rows = [
            _row(s, "capacity" if s.offered_rps == ramp.capacity_rps else "") for s in ramp.steps
        ]
        out.print(
            _table(
                f"{method} {args.url.rstrip('/')}{path}: ramp, "
                f"p99 target {args.p99_target_ms:g} ms",
                rows,
            )
        )
        if ramp.capacity_rps is None:
            out.print(
                f"capacity: none of the steps met p99 <= {args.p99_target_ms:g} ms without errors"
            )
        else:
            out.print(f"capacity: {ramp.capacity_rps:g} req/s at p99 <= {args.p99_target_ms:g} ms")
        for note in ramp.notes:
            con.print(f"note: {note}")
        payload = ramp.as_dict()
    if args.output:
        path_out = Path(args.output)
        atomic_write_text(path_out, json.dumps(payload, indent=2) + "\n")
        con.print(f"wrote {path_out}")
    return 0
