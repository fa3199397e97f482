"""``zenrec serve`` as a real process (two workers, multiprocess metrics, SIGTERM) and its errors;
``zenrec perf retrieval``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from _net import server_process

pytestmark = pytest.mark.integration

ZENREC = [sys.executable, "-m", "zenrec"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZENREC, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_serve_refuses_bad_input_with_one_line(bundles, tmp_path):
    r = run_cli("serve", str(tmp_path / "nope"))
    assert (
        r.returncode == 2 and "not a zenrec bundle" in r.stderr and len(r.stderr.splitlines()) == 1
    )
    corrupt = tmp_path / "corrupt"
    shutil.copytree(bundles["ease"], corrupt)
    (corrupt / "vocab.json").write_text("{}")
    r = run_cli("serve", str(corrupt))
    assert r.returncode == 2 and "content hash mismatch" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("serve", str(bundles["ease"]), "--api-key-env", "ZENREC_TEST_UNSET_KEY")
    assert r.returncode == 2 and "ZENREC_TEST_UNSET_KEY" in r.stderr
    r = run_cli("serve", str(bundles["ease"]), "--max-concurrency", "0")
    assert r.returncode == 2 and "--max-concurrency" in r.stderr
    # a pinned version the bundle does not have: refused with one line (workers check too)
    for workers in ("1", "2"):
        r = run_cli(
            "serve", str(bundles["ease"]), "--workers", workers, "--expect-version", "f" * 16
        )
        assert r.returncode == 2 and "is expected" in r.stderr and len(r.stderr.splitlines()) == 1
    r = run_cli("serve", str(bundles["ease"]), "--expect-version", "latest")
    assert r.returncode == 2 and "hex digits" in r.stderr
    r = run_cli("serve", str(tmp_path / "vol"), "--fetch", "s3://b/x.tar")
    assert r.returncode == 2 and "ZENREC_EXPECT_VERSION" in r.stderr


def test_two_workers_share_a_port_and_aggregate_metrics(bundles, tmp_path):
    logdir = tmp_path / "log"

    def argv(port: int) -> list[str]:
        return [
            *ZENREC,
            "serve",
            str(bundles["ease"]),
            "--port",
            str(port),
            "--workers",
            "2",
            "--request-log",
            str(logdir),
            "--request-log-salt-env",
            "ZENREC_TEST_SALT",
            "--api-key-env",
            "ZENREC_TEST_KEY",
        ]

    env = {
        "ZENREC_TEST_SALT": "salty",
        "ZENREC_TEST_KEY": "k3y",
        # the pinned version passes in the parent's check and in each worker's load
        "ZENREC_EXPECT_VERSION": json.loads((bundles["ease"] / "bundle.json").read_text())[
            "content_sha256"
        ][:16],
    }
    with server_process(argv, ready="/readyz", timeout=90, env=env) as srv:
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            for u in range(1, 41):
                assert c.post("/v1/recommend", json={"user_id": u, "k": 3}).status_code == 200
            assert (
                c.post("/admin/reload", json={}, headers={"X-API-Key": "wrong"}).status_code == 401
            )
            # the metrics of both workers are summed (an answer from either process sees all 40)
            text = c.get("/metrics").text
        assert 'zenrec_requests_total{endpoint="/v1/recommend",status="200"} 40.0' in text
    err = srv.stderr
    assert srv.returncode == 0, err[-2000:]
    logs = [
        json.loads(line)
        for f in sorted(Path(logdir).glob("requests-*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    assert sum(1 for r in logs if r["endpoint"] == "/v1/recommend" and r["status"] == 200) == 40
    # structured logs: every stderr line is a JSON object
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines and all(json.loads(x)["level"] for x in lines if x.startswith("{"))
    assert any('"message": "ready"' in x for x in lines)


def test_perf_retrieval_cli(tmp_path):
    out = tmp_path / "perf.json"
    r = run_cli(
        "perf",
        "retrieval",
        "--items",
        "2000",
        "--dim",
        "8",
        "--queries",
        "20",
        "--ef",
        "16,64",
        "--json",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "hnsw M=32 efSearch=64" in r.stdout and "recall" in r.stdout
    res = json.loads(out.read_text())
    assert [x["ef_search"] for x in res["hnsw"]["by_ef"]] == [16, 64]
    bad = run_cli("perf", "retrieval", "--items", "2000", "--dim", "8", "--ef", "a,b")
    assert bad.returncode == 2 and "--ef" in bad.stderr


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["serve", "BUNDLE"], None, 1),  # serve: one thread per worker by default
        (["serve", "BUNDLE", "--threads", "3"], None, 3),
        (["serve", "BUNDLE"], "4", 4),  # ZENREC_THREADS, as the image and manifests set it
        (["data", "info", "ml-100k"], None, 8),  # other commands: all cores
    ],
)
def test_serve_defaults_to_one_thread_per_worker(monkeypatch, argv, env, expected):
    import zenrec._threads as th
    from zenrec.cli.main import build_parser

    monkeypatch.setattr(th, "available_cores", lambda: 8)
    if env is None:
        monkeypatch.delenv("ZENREC_THREADS", raising=False)
    else:
        monkeypatch.setenv("ZENREC_THREADS", env)
    applied: list[int] = []

    def record(threads=None, default=None):  # what main() asks for, without applying it
        applied.append(th.resolve_threads(threads, default))
        raise SystemExit(0)

    monkeypatch.setattr(th, "set_threads", record)
    from zenrec.cli.main import main

    assert build_parser().parse_args(argv).func is not None
    with pytest.raises(SystemExit):
        main(argv)
    assert applied == [expected]


def test_serve_admission_limit_flags(tmp_path):
    from zenrec.cli.main import build_parser
    from zenrec.cli.serve import _settings

    def limit(*argv: str) -> int:
        return int(_settings(build_parser().parse_args(["serve", "B", *argv])).admission_limit)

    assert limit() == 25  # 500 req/s x 50 ms
    assert limit("--capacity", "400", "--latency-target-ms", "100") == 40
    assert limit("--capacity", "400", "--max-concurrency", "7") == 7  # the override wins
    lt = tmp_path / "lt.json"
    lt.write_text(json.dumps({"capacity_rps": 120, "p99_target_ms": 50, "steps": []}))
    assert limit("--capacity-from", str(lt)) == 6
