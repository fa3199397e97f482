"""The load generator against a real FastAPI/uvicorn server on a loopback port.

The server (``loadgen_app.py``) runs in its own process, so the generator and the server do
not share an interpreter; its endpoints have latencies the tests set (sleep, stop-the-world
stall, a concurrency limit, planted status codes).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from _net import free_port, server_process

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from zenrec._errors import ConfigError
from zenrec.loadtest import (
    ERROR_KINDS,
    LoadTestConfig,
    StepResult,
    ids_from,
    parse_ramp,
    parse_target,
    run_load,
    run_ramp,
)

CONTRACT_KEYS = {
    "offered_rps",
    "achieved_rps",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
    "errors",
    "errors_by_kind",
    "target_url",
    "endpoint",
}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    app = Path(__file__).with_name("loadgen_app.py")
    with server_process(lambda port: [sys.executable, str(app), str(port)], timeout=30) as srv:
        yield srv.url


def test_achieved_rate_close_to_offered_and_latency_near_service_time(server: str) -> None:
    cfg = LoadTestConfig(url=f"{server}/sleep/5", rate=300, duration=2, endpoint="healthz")
    res = run_load(cfg)
    assert res.requests == 600
    assert res.errors == 0, res.errors_by_kind
    assert res.achieved_rps == pytest.approx(300, rel=0.06)
    # every request takes >= 5 ms on the server; on an idle loopback a few ms more
    assert 5.0 <= res.p50_ms < 40.0
    assert res.p50_ms <= res.p90_ms <= res.p99_ms <= res.p999_ms <= res.max_ms
    assert res.endpoint == "/healthz" and res.target_url == f"{server}/sleep/5"


def test_latency_from_scheduled_time_exposes_a_stall_closed_loop_hides(server: str) -> None:
    # One connection and a 500 ms stop-the-world pause of the server 1 s into a 2 s run at
    # 200 req/s: the ~100 requests due during the pause wait for it. Measured from the actual
    # send (what a closed-loop client like wrk reports) only the one request that hit the
    # pause is slow; measured from the schedule, every delayed request is.
    key = uuid.uuid4().hex
    cfg = LoadTestConfig(
        url=f"{server}/stall/{key}/200/500",
        rate=200,
        duration=2,
        endpoint="healthz",
        connections=1,
    )
    res = run_load(cfg)
    assert res.errors == 0, res.errors_by_kind
    assert res.max_ms >= 450  # the request scheduled at the start of the pause
    assert res.p90_ms >= 150  # ~25 % of the requests were due during the pause
    assert res.p99_ms >= 300
    assert res.service_p99_ms < 100  # the uncorrected figure hides it
    assert res.p99_ms > 3 * res.service_p99_ms
    # they waited in the generator for the one busy connection: that is what lag reports
    assert res.connections_used == 1 and res.lag_p99_ms >= 200


def test_error_kinds_are_counted(server: str) -> None:
    base = {"rate": 50, "duration": 0.4, "endpoint": "healthz"}
    r5 = run_load(LoadTestConfig(url=f"{server}/status/503", **base))
    r4 = run_load(LoadTestConfig(url=f"{server}/status/404", **base))
    refused = run_load(LoadTestConfig(url=f"http://127.0.0.1:{free_port()}", **base))
    slow = run_load(LoadTestConfig(url=f"{server}/sleep/3000", timeout=0.3, **base))
    assert r5.errors == 20 and r5.errors_by_kind["http_5xx"] == 20
    assert r4.errors == 20 and r4.errors_by_kind["http_4xx"] == 20
    assert refused.errors == 20 and refused.errors_by_kind["connection"] == 20
    assert slow.errors == 20 and slow.errors_by_kind["timeout"] == 20
    for r in (r5, r4, refused, slow):
        assert set(r.errors_by_kind) == set(ERROR_KINDS)
        assert sum(r.errors_by_kind.values()) == r.errors
        assert r.achieved_rps == 0.0 and r.p99_ms is None
    # the timeouts were abandoned near the deadline, not at the server's 3 s
    assert slow.duration_s < 1.5


def _queue_model_step(cfg: LoadTestConfig, **_: object) -> StepResult:
    """A step of a server that does 4 requests at a time, 50 ms each (80 req/s), as a queue
    model instead of a measurement: above 80 req/s the backlog grows for the whole step."""
    rate = cfg.rate
    wait_ms = max(0.0, rate - 80.0) * cfg.duration / 80.0 * 1000.0
    p99 = 50.0 + wait_ms
    return StepResult(
        offered_rps=rate,
        achieved_rps=min(rate, 80.0),
        p50_ms=50.0 + wait_ms / 2,
        p90_ms=p99,
        p99_ms=p99,
        p999_ms=p99,
        max_ms=p99,
        errors=0,
        errors_by_kind=dict.fromkeys(ERROR_KINDS, 0),
        target_url=cfg.url,
        endpoint="/healthz",
        requests=int(rate * cfg.duration),
        duration_s=cfg.duration,
        service_p99_ms=50.0,
        lag_p99_ms=wait_ms,
    )


def test_ramp_stops_at_the_first_step_past_the_p99_target(monkeypatch) -> None:
    # The ramp's own logic, independent of machine load: each step is a queue model's answer.
    import zenrec.loadtest.runner as loadgen

    offered: list[float] = []

    def fake_run_load(cfg: LoadTestConfig, **kw: object) -> StepResult:
        offered.append(cfg.rate)
        return _queue_model_step(cfg)

    monkeypatch.setattr(loadgen, "run_load", fake_run_load)
    cfg = LoadTestConfig(url="http://127.0.0.1:9/x", rate=30, duration=1.2, endpoint="healthz")
    seen: list[tuple[float, bool]] = []
    ramp = run_ramp(
        cfg,
        parse_ramp("30:150:30"),
        p99_target_ms=100,
        pause=0,
        on_step=lambda s, ok: seen.append((s.offered_rps, ok)),
    )
    # 90 req/s: 10 req/s of backlog over 1.2 s = 12 queued = 150 ms more: past the target
    assert seen == [(30.0, True), (60.0, True), (90.0, False)]
    assert offered == [30.0, 60.0, 90.0]  # 120 and 150 were never offered
    assert ramp.capacity_rps == 60.0 and ramp.stopped_early and ramp.notes == []
    assert [s.offered_rps for s in ramp.steps] == [30.0, 60.0, 90.0]
    assert ramp.capacity_step.offered_rps == 60.0
    # the last step passing says the capacity is a lower bound; no step passing says start lower
    top = run_ramp(cfg, [30, 60], p99_target_ms=100, pause=0)
    assert top.capacity_rps == 60.0 and not top.stopped_early and "ramp higher" in top.notes[0]
    low = run_ramp(cfg, [90, 120], p99_target_ms=100, pause=0)
    assert low.capacity_rps is None and low.stopped_early and "start lower" in low.notes[0]
    # without stop_on_fail every step runs; the capacity is still the highest passing one
    every = run_ramp(cfg, [30, 90, 60], p99_target_ms=100, pause=0, stop_on_fail=False)
    assert [s.offered_rps for s in every.steps] == [30.0, 90.0, 60.0]
    assert every.capacity_rps == 60.0 and not every.stopped_early


def test_ramp_against_a_real_concurrency_limited_endpoint_fails_past_capacity(
    server: str,
) -> None:
    # 4 at a time, 50 ms each: at most 80 req/s, less on a busy machine, never more. 160 req/s
    # is twice that: a backlog of >= 80 req/s for 1.2 s puts p99 far past 100 ms whatever the
    # load, so the ramp must stop there (or earlier, if the machine is slow) with no errors.
    cfg = LoadTestConfig(url=f"{server}/limited/4/50", rate=40, duration=1.2, endpoint="healthz")
    ramp = run_ramp(cfg, parse_ramp("40:280:120"), p99_target_ms=100, pause=0.2)
    assert [s.offered_rps for s in ramp.steps] in ([40.0], [40.0, 160.0])
    assert ramp.stopped_early
    last = ramp.steps[-1]
    assert last.errors == 0, last.errors_by_kind  # queued, not refused: the p99 target failed
    assert last.p99_ms is not None and last.p99_ms > 100
    assert ramp.capacity_rps in (None, 40.0)


def test_cli_ramp_json_has_the_contract_keys_and_feeds_the_planner(
    server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from zenrec.cli.main import main
    from zenrec.traffic.plan import load_capacity

    out = tmp_path / "lt.json"
    rc = main(
        [
            "loadtest",
            f"{server}/limited/4/50",
            "--endpoint",
            "healthz",
            "--ramp",
            "40:160:120",
            "--duration",
            "1",
            "--p99-target-ms",
            "100",
            "--output",
            str(out),
        ]
    )
    assert rc == 0
    data = json.loads(out.read_text())
    assert CONTRACT_KEYS | {"steps", "capacity_rps", "p99_target_ms"} <= set(data)
    assert data["capacity_rps"] == 40.0 and data["p99_target_ms"] == 100.0
    # 4 at a time x 50 ms = at most 80 req/s: 160 req/s queues far past the 100 ms target
    assert [s["offered_rps"] for s in data["steps"]] == [40.0, 160.0]
    for s in data["steps"]:
        assert set(s) >= CONTRACT_KEYS
    assert data["offered_rps"] == 40.0  # top level = the step at capacity
    assert load_capacity(out) == pytest.approx(40.0, rel=0.1)
    table = capsys.readouterr().out
    assert "capacity: 40 req/s at p99 <= 100 ms" in table


def test_single_run_json(server: str, tmp_path: Path) -> None:
    from zenrec.cli.main import main

    out = tmp_path / "one.json"
    assert (
        main(
            [
                "loadtest",
                server,
                "--endpoint",
                "healthz",
                "--rate",
                "100",
                "--duration",
                "0.5",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert set(data) >= CONTRACT_KEYS and "steps" not in data
    assert data["errors"] == 0 and data["offered_rps"] == 100.0


def test_bodies_use_ids_from_a_bundle(server: str, tmp_path: Path) -> None:
    import urllib.request

    from zenrec.data import synthetic_dataset
    from zenrec.models.registry import create_model

    ds = synthetic_dataset(n_users=40, n_items=30, interactions_per_user=5, seed=3)
    model = create_model("pop")
    model.fit(ds)
    bundle = model.save(tmp_path / "bundle")
    users = set(ids_from(bundle, "users"))
    items = set(ids_from(bundle, "items"))
    assert users == set(ds.user_vocab.ids.tolist())
    run_load(
        LoadTestConfig(url=server, rate=100, duration=0.5, endpoint="recommend", k=7),
        ids=sorted(users),
    )
    run_load(
        LoadTestConfig(url=server, rate=100, duration=0.3, endpoint="similar", k=5),
        ids=sorted(items),
    )
    with urllib.request.urlopen(server + "/bodies") as r:
        bodies = json.loads(r.read())
    rec = [b for b in bodies if b["path"] == "/v1/recommend"]
    sim = [b for b in bodies if b["path"] == "/v1/similar-items"]
    assert len(rec) == 50 and len(sim) == 30
    assert all(b["user_id"] in users and b["k"] == 7 for b in rec)
    assert all(b["item_id"] in items and b["k"] == 5 for b in sim)
    assert len({b["user_id"] for b in rec}) > 10  # drawn across the users, not one


@pytest.mark.slow  # spawning two interpreters takes seconds on a busy machine
def test_two_generator_processes_share_the_timetable(server: str) -> None:
    cfg = LoadTestConfig(url=server, rate=200, duration=1, endpoint="healthz", processes=2)
    res = run_load(cfg)
    assert res.requests == 200 and res.errors == 0
    assert res.achieved_rps == pytest.approx(200, rel=0.06)


def test_only_loopback_targets_unless_allowed() -> None:
    for url in ("http://10.0.0.5:8000", "http://example.com", "http://192.168.1.1"):
        with pytest.raises(ConfigError, match="not a loopback address"):
            parse_target(url)
        assert parse_target(url, allow_remote=True).host in url
    for url in (
        "http://127.0.0.1:8000",
        "http://localhost:9",
        "http://[::1]:8000",
        "http://127.3.4.5",
    ):
        parse_target(url)
    with pytest.raises(ConfigError, match="plain-HTTP"):
        parse_target("https://127.0.0.1:8000")


def test_cli_refuses_remote_and_unbounded_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from zenrec.cli.main import main

    assert main(["loadtest", "http://10.1.2.3:8000", "--rate", "10", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "--allow-remote" in err and len(err.strip().splitlines()) == 1
    assert main(["loadtest", "http://127.0.0.1:9", "--rate", "100000", "--duration", "600"]) == 2
    assert "lower rate or duration" in capsys.readouterr().err
    assert main(["loadtest", "http://127.0.0.1:9", "--ramp", "100:50:10"]) == 2
    assert "--ramp" in capsys.readouterr().err
    assert main(["loadtest", "http://127.0.0.1:9"]) == 2
    assert "--rate" in capsys.readouterr().err


def test_parse_ramp() -> None:
    assert parse_ramp("100:500:100") == [100.0, 200.0, 300.0, 400.0, 500.0]
    assert parse_ramp("50:120:50") == [50.0, 100.0]
    for bad in ("100:500", "a:b:c", "0:10:1", "10:5:1", "1:1000:1"):
        with pytest.raises(ConfigError):
            parse_ramp(bad)


def test_ids_from_refuses_what_is_neither_bundle_nor_dataset(tmp_path: Path) -> None:
    from zenrec._errors import DataError

    with pytest.raises(DataError, match="not a zenrec bundle"):
        ids_from(tmp_path, "users")
    with pytest.raises(DataError, match="neither a built-in dataset"):
        ids_from(tmp_path / "missing.csv", "users")


def test_ids_from_a_dataset_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    data = Path(
        os.environ.get("ZENREC_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
    )
    if not (data / "ml-100k").exists():
        pytest.skip(f"{data / 'ml-100k'} not found: set ZENREC_DATA to run this test")
    monkeypatch.setenv("ZENREC_DATA", str(data))
    users = ids_from("ml-100k", "users")
    items = ids_from("ml-100k", "items")
    assert len(users) == 943 and len(items) == 1682 and users[:2] == [1, 2]


def test_ramp_with_no_passing_step_has_no_capacity(server: str) -> None:
    cfg = LoadTestConfig(url=f"{server}/status/503", rate=20, duration=0.3, endpoint="healthz")
    ramp = run_ramp(cfg, [20.0, 40.0], p99_target_ms=50, pause=0)
    assert ramp.capacity_rps is None and len(ramp.steps) == 1 and ramp.stopped_early
    d = ramp.as_dict()
    assert d["capacity_rps"] is None and d["offered_rps"] == 20.0
    assert json.loads(json.dumps(d))["capacity_rps"] is None
