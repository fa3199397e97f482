"""``zenrec serve``: run the HTTP service over a model bundle (uvicorn, uvloop, httptools).

This module is the only place that reads the environment for serving: the API key from the
variable named by ``--api-key-env``, ``ZENREC_SERVE_*`` settings, and, in spawned worker
processes (``--workers N`` off Linux), the settings the parent handed down. On Linux the
workers are forked from this process after it has loaded the bundle
(:mod:`zenrec.serving.workers`).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["register", "worker_app"]

EPILOG = """Examples:
  zenrec serve runs/quickstart/best-model
  zenrec serve runs/ease --port 8080 --workers 2 --max-concurrency 32
  ZENREC_ADMIN_KEY=$(openssl rand -hex 16) zenrec serve runs/ease --api-key-env ZENREC_ADMIN_KEY
  zenrec serve runs/ease --request-log logs/ --request-log-salt-env ZENREC_SALT
  zenrec serve runs/ease --expect-version 5d2be2f288973b0f
  zenrec serve runs/ease --events sqlite:///data/events.db
  zenrec serve /bundle --fetch https://host/ease.tar.gz --fetch-only \\
      --expect-version 5d2be2f288973b0f

Every setting can also come from a ZENREC_SERVE_<NAME> environment variable (e.g.
ZENREC_SERVE_ANN_THRESHOLD=50000); command-line options win. See docs/serving.md.

Threads: one BLAS/torch thread per worker process unless --threads N or ZENREC_THREADS=N
says otherwise (0: all cores, bounded by the container's CPU limit).
"""

_BUNDLE_ENV = "ZENREC_SERVE_WORKER_BUNDLE"
_SETTINGS_ENV = "ZENREC_SERVE_WORKER_SETTINGS"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model bundle over HTTP (recommend, similar items, metrics, demo page)",
        description=(
            "Serve a model bundle: POST /v1/recommend, /v1/recommend/batch, /v1/similar-items; "
            "GET /healthz, /readyz, /v1/model, /metrics, / (demo page), /docs."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "bundle",
        metavar="BUNDLE_DIR",
        help="bundle directory (from 'zenrec train' or 'evaluate --save')",
    )
    p.add_argument("--host", help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, help="TCP port (default 8000)")
    p.add_argument(
        "--workers",
        type=int,
        help="worker processes sharing the port, forked after the bundle is loaded once "
        "(Linux; default 1)",
    )
    p.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="environment variable holding the admin API key; enables POST /admin/reload",
    )
    p.add_argument("--request-log", metavar="DIR", help="write one JSON line per request under DIR")
    p.add_argument(
        "--request-log-salt-env",
        metavar="VAR",
        help="environment variable holding the secret (HMAC key) of hashed user ids "
        "(default: a random one)",
    )
    p.add_argument(
        "--request-log-max-total-mb",
        type=float,
        metavar="MB",
        help="bound of all request-log files together (default: half the log directory's "
        "filesystem; set it below an emptyDir's sizeLimit)",
    )
    p.add_argument(
        "--max-concurrency",
        type=int,
        metavar="N",
        help="requests processed at once per worker; more get 503 + Retry-After (default: "
        "capacity x latency target, Little's law: 500 req/s x 50 ms = 25)",
    )
    cap = p.add_mutually_exclusive_group()
    cap.add_argument(
        "--capacity",
        type=float,
        metavar="RPS",
        help="requests/s one worker serves within the latency target (default 500)",
    )
    cap.add_argument(
        "--capacity-from",
        metavar="FILE",
        help="take --capacity from a 'zenrec loadtest --output' JSON (capacity_rps of a --ramp)",
    )
    p.add_argument(
        "--latency-target-ms",
        type=float,
        metavar="MS",
        help="longest wait of an admitted request behind others (default 50: the p99 target)",
    )
    p.add_argument(
        "--ann-threshold",
        type=int,
        metavar="N",
        help="use an HNSW index above N catalog items, for dot-product models (default 100000)",
    )
    p.add_argument(
        "--rerank-bundle",
        metavar="DIR",
        help="second bundle that re-ranks the retrieved candidates",
    )
    p.add_argument(
        "--rerank-candidates",
        type=int,
        metavar="N",
        help="candidates retrieved for re-ranking (default 200)",
    )
    p.add_argument(
        "--expect-version",
        metavar="HASH",
        help="refuse to start unless the bundle's content sha256 starts with HASH (16-64 hex "
        "digits; default $ZENREC_EXPECT_VERSION)",
    )
    p.add_argument(
        "--fetch",
        metavar="URL",
        help="first download a .tar(.gz) of a bundle (http(s):// or file://) into BUNDLE_DIR "
        "and verify it against --expect-version (an init container's job)",
    )
    p.add_argument(
        "--fetch-only", action="store_true", help="with --fetch: exit after the verified fetch"
    )
    p.add_argument(
        "--events",
        metavar="URL",
        help="event store (sqlite:///path/events.db or postgresql://user@host/db): enables "
        "POST /v1/events and session-aware lists for users with new events",
    )
    p.add_argument(
        "--event-types",
        metavar="LIST",
        help="comma-separated event types POST /v1/events accepts "
        "(default view,click,add,purchase,rating)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--access-log", action="store_true", help="log every request as a JSON line on stderr"
    )
    # One BLAS/torch thread per worker unless --threads or ZENREC_THREADS say otherwise
    # (zenrec._threads): the event loop and the replicas give the concurrency.
    p.set_defaults(func=run, default_threads=1)


def _settings(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from zenrec._errors import ConfigError
    from zenrec._validation import dotted, to_config_error
    from zenrec.serving.settings import ServeSettings

    overrides: dict[str, Any] = {}
    for opt in (
        "host",
        "port",
        "workers",
        "max_concurrency",
        "latency_target_ms",
        "ann_threshold",
        "rerank_candidates",
    ):
        v = getattr(args, opt)
        if v is not None:
            overrides[opt] = v
    if args.capacity is not None:
        overrides["capacity_rps"] = args.capacity
    elif args.capacity_from:
        from zenrec.traffic.plan import load_capacity

        overrides["capacity_rps"] = load_capacity(args.capacity_from)
    if args.access_log:
        overrides["access_log"] = True
    if args.events:
        overrides["events_url"] = args.events
    if args.event_types:
        overrides["event_types"] = tuple(
            t.strip() for t in args.event_types.split(",") if t.strip()
        )
    expect = _expected_version(args)
    if expect is not None:
        overrides["expect_version"] = expect
    if args.rerank_bundle:
        overrides["rerank_bundle"] = Path(args.rerank_bundle)
    if args.api_key_env:
        key = os.environ.get(args.api_key_env, "")
        if not key.strip():
            raise ConfigError(
                f"--api-key-env {args.api_key_env}: the environment variable {args.api_key_env} "
                "is not set or empty; export the key in it, or drop --api-key-env"
            )
        overrides["api_key"] = key.strip()
    if args.request_log_max_total_mb is not None:
        overrides["request_log_max_total_bytes"] = int(args.request_log_max_total_mb * 2**20)
    if args.request_log:
        overrides["request_log"] = Path(args.request_log)
        if args.request_log_salt_env:
            salt = os.environ.get(args.request_log_salt_env, "")
            if not salt:
                raise ConfigError(
                    f"--request-log-salt-env {args.request_log_salt_env}: the environment variable "
                    "is not set or empty"
                )
            overrides["request_log_salt"] = salt
        elif not os.environ.get("ZENREC_SERVE_REQUEST_LOG_SALT"):
            overrides["request_log_salt"] = secrets.token_hex(16)
            sys.stderr.write(
                "zenrec serve: no --request-log-salt-env given: user ids in the request log are "
                "hashed with a random salt, not comparable across restarts\n"
            )
    try:
        return ServeSettings(**overrides)
    except ValidationError as exc:
        raise to_config_error(
            exc,
            key=lambda loc: "--" + dotted(loc).replace("_", "-"),
            messages={"*": "{key}: {msg}; got {got}", "root": "settings: {msg}"},
            first_only=False,
        ) from None


def _expected_version(args: argparse.Namespace) -> str | None:
    from zenrec.serving.pinning import validate_version

    raw = args.expect_version or os.environ.get("ZENREC_EXPECT_VERSION", "").strip()
    return validate_version(raw) if raw else None


def worker_app() -> Any:
    """App factory of each worker process (``--workers N``): settings from the parent."""
    from zenrec.serving.app import create_app
    from zenrec.serving.settings import ServeSettings

    settings = ServeSettings.model_validate_json(os.environ[_SETTINGS_ENV])
    return create_app(os.environ[_BUNDLE_ENV], settings)


def run(args: argparse.Namespace) -> int:
    from zenrec._errors import BundleError, ConfigError

    bundle = Path(args.bundle)
    if args.fetch_only and not args.fetch:
        raise ConfigError("--fetch-only needs --fetch URL; drop it to serve BUNDLE_DIR")
    if args.fetch:
        from zenrec.serving.pinning import fetch_bundle

        expect = _expected_version(args)
        if expect is None:
            raise ConfigError(
                f"--fetch {args.fetch}: the expected content hash is missing; pass "
                "--expect-version HASH or set ZENREC_EXPECT_VERSION (a bundle is fetched by hash)"
            )
        fetch_bundle(args.fetch, bundle, expect)
        sys.stderr.write(f"zenrec serve: fetched and verified bundle {expect} into {bundle}\n")
        if args.fetch_only:
            return 0
    if not (bundle / "bundle.json").is_file():
        raise BundleError(
            f"{bundle}: not a zenrec bundle (no bundle.json); pass the directory that "
            "'zenrec train' or 'zenrec evaluate --save' wrote"
        )
    settings = _settings(args)
    try:
        import uvicorn
    except ImportError:
        raise ConfigError(
            "zenrec serve needs the serve extra: pip install 'zenrec[serve]'"
        ) from None
    from zenrec.serving.logs import uvicorn_log_config

    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "log_config": uvicorn_log_config(args.log_level),
        "access_log": False,
        "timeout_graceful_shutdown": settings.graceful_shutdown_s,
        "server_header": False,
    }
    if settings.workers == 1:
        from zenrec.serving.app import create_app
        from zenrec.serving.engine import load_served

        # Read the bundle once, here: a corrupt, incompatible or unexpected bundle fails with
        # one line before the port is bound, and the app serves what was loaded.
        reranker = None
        if settings.rerank_bundle is not None:
            from zenrec.models.registry import load_model

            reranker = load_model(settings.rerank_bundle)
        served = load_served(
            bundle, settings, reranker=reranker, expect_version=settings.expect_version
        )
        uvicorn.run(create_app(bundle, settings, served=served), **common)
        return 0
    from zenrec.serving.workers import fork_supported

    if fork_supported():
        return _serve_forked(bundle, settings, common)
    # Not Linux: uvicorn spawns the workers, and each loads (and verifies) the bundle in its
    # lifespan; check here only what bundle.json says, so a wrong or missing bundle still fails
    # with one line.
    from zenrec.serving.pinning import peek_bundle

    peek_bundle(bundle, settings.expect_version)
    if settings.rerank_bundle is not None:
        peek_bundle(settings.rerank_bundle)
    metrics_dir = tempfile.mkdtemp(prefix="zenrec-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    os.environ[_BUNDLE_ENV] = str(bundle.resolve())
    dumped = settings.model_dump(mode="json")
    for secret in ("api_key", "request_log_salt"):
        value = getattr(settings, secret)
        dumped[secret] = None if value is None else value.get_secret_value()
    os.environ[_SETTINGS_ENV] = json.dumps(dumped)
    try:
        uvicorn.run("zenrec.cli.serve:worker_app", factory=True, workers=settings.workers, **common)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _serve_forked(bundle: Path, settings: Any, common: dict[str, Any]) -> int:
    """``--workers N`` on Linux: load the bundle once here, then fork N servers that share it
    (:mod:`zenrec.serving.workers`)."""
    import gc

    # Before prometheus_client is first imported (by the app below): every process writes its
    # samples under this directory and /metrics sums them.
    metrics_dir = tempfile.mkdtemp(prefix="zenrec-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    import uvicorn
    from prometheus_client.multiprocess import mark_process_dead

    from zenrec._threads import configured_threads, set_threads
    from zenrec.serving.app import create_app
    from zenrec.serving.engine import load_served
    from zenrec.serving.workers import serve_forked

    # One BLAS/OpenMP/torch thread in the parent: an OpenMP team started before fork() hangs
    # the children's first parallel region (libgomp), and torch, imported while loading, sizes
    # its pool from OMP_NUM_THREADS. Each worker applies the command's thread count itself.
    threads = configured_threads()
    set_threads(1)
    if settings.gc_freeze:
        # No collection while loading: objects freed by one would leave holes in the pages the
        # children share, and the loaded heap is frozen before the fork anyway.
        gc.disable()
    try:
        reranker = None
        if settings.rerank_bundle is not None:
            from zenrec.models.registry import load_model

            reranker = load_model(settings.rerank_bundle)
        served = load_served(
            bundle, settings, reranker=reranker, expect_version=settings.expect_version
        )
        config = uvicorn.Config(create_app(bundle, settings, served=served), **common)
        return serve_forked(
            config,
            settings.workers,
            stop_timeout_s=settings.graceful_shutdown_s + 5.0,
            on_child_exit=lambda pid: mark_process_dead(pid, metrics_dir),
            on_child_start=lambda: set_threads(threads),
            freeze=settings.gc_freeze,
        )
    finally:
        gc.enable()
        shutil.rmtree(metrics_dir, ignore_errors=True)
