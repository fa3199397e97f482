"""Hot reload under concurrent load, refused bundles, the overload answer (503 + Retry-After)."""

from __future__ import annotations

import json
import shutil
import threading
import time

import httpx
import pytest
from live import live_server

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "test-key-123"}


def version_of(bundle) -> str:
    return json.loads((bundle / "bundle.json").read_text())["content_sha256"][:16]


class SteadyClient(threading.Thread):
    """Sends /v1/recommend at a fixed rate until stopped; records every answer."""

    def __init__(self, url: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.url, self.period = url, 1.0 / rate
        self.stop_event = threading.Event()
        # (sent, answered, status, model version) of each request
        self.results: list[tuple[float, float, int, str | None]] = []
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as c:
            t_next = time.perf_counter()
            j = 0
            while not self.stop_event.is_set():
                try:
                    sent = time.perf_counter()
                    r = c.post("/v1/recommend", json={"user_id": 1 + j % 900, "k": 10})
                    body = r.json()
                    self.results.append(
                        (sent, time.perf_counter(), r.status_code, body.get("model_version"))
                    )
                    if r.status_code != 200 or len(body["items"]) != 10:
                        self.failures.append(f"{r.status_code}: {r.text[:200]}")
                except Exception as exc:  # connection errors count as failures
                    self.failures.append(repr(exc))
                j += 1
                t_next += self.period
                time.sleep(max(0.0, t_next - time.perf_counter()))


def test_three_reloads_under_load_fail_no_request(bundles):
    versions = {name: version_of(b) for name, b in bundles.items()}
    with live_server(bundles["ease"], api_key="test-key-123") as srv:
        client = SteadyClient(srv.url, rate=100)
        client.start()
        swaps = []
        try:
            for target in ("itemknn", "ease", "itemknn"):
                time.sleep(0.4)
                t_start = time.perf_counter()
                r = httpx.post(
                    srv.url + "/admin/reload",
                    json={"bundle_dir": str(bundles[target])},
                    headers=KEY,
                    timeout=60,
                )
                assert r.status_code == 200, r.text
                assert r.json()["version"] == versions[target]
                swaps.append((t_start, time.perf_counter(), versions[target]))
            time.sleep(0.4)
        finally:
            client.stop_event.set()
            client.join(20)
        metrics = httpx.get(srv.url + "/metrics").text
    assert client.failures == []
    assert len(client.results) > 100
    tags = [v for _, _, _, v in client.results]
    assert set(tags) == {versions["ease"], versions["itemknn"]}
    # every request sent after a swap completed, and answered before the next one started, is
    # answered by the new version (send times, not answer times: independent of machine load)
    for (_, t_done, v), nxt in zip(swaps, [*swaps[1:], (float("inf"), None, None)]):
        after = [tag for sent, ans, _, tag in client.results if t_done < sent and ans < nxt[0]]
        assert after and set(after) == {v}
    assert 'zenrec_reloads_total{outcome="ok"} 3.0' in metrics


def test_bad_bundles_are_refused_and_the_old_one_keeps_serving(bundles, tmp_path, server):
    before = httpx.get(server.url + "/v1/model").json()["version"]
    corrupt = tmp_path / "corrupt"
    shutil.copytree(bundles["itemknn"], corrupt)
    raw = bytearray((corrupt / "arrays.safetensors").read_bytes())
    raw[-100] ^= 0xFF
    (corrupt / "arrays.safetensors").write_bytes(bytes(raw))
    newer = tmp_path / "newer"
    shutil.copytree(bundles["itemknn"], newer)
    meta = json.loads((newer / "bundle.json").read_text())
    meta["format_version"] = 99
    (newer / "bundle.json").write_text(json.dumps(meta))
    cases = {
        corrupt: "content hash mismatch",
        newer: "newer than this zenrec",
        tmp_path / "missing": "no such bundle directory",
    }
    for path, reason in cases.items():
        r = httpx.post(
            server.url + "/admin/reload", json={"bundle_dir": str(path)}, headers=KEY, timeout=60
        )
        assert r.status_code == 422, r.text
        assert (
            reason in r.json()["detail"] and f"still serving version {before}" in r.json()["detail"]
        )
        assert httpx.get(server.url + "/v1/model").json()["version"] == before
        ok = httpx.post(server.url + "/v1/recommend", json={"user_id": 1})
        assert ok.status_code == 200 and ok.json()["model_version"] == before
    assert 'zenrec_reloads_total{outcome="refused"} 3.0' in httpx.get(server.url + "/metrics").text


def test_overload_is_answered_503_with_retry_after(bundles):
    """Two slots; twelve concurrent heavy batch requests: the excess is refused at once, not
    queued."""
    heavy = {"requests": [{"user_id": u, "k": 200, "exclude_seen": False} for u in range(1, 129)]}
    with live_server(bundles["ease"], max_concurrency=2, retry_after_s=3) as srv:
        out: list[httpx.Response] = []
        lock = threading.Lock()

        def hit() -> None:
            r = httpx.post(srv.url + "/v1/recommend/batch", json=heavy, timeout=120)
            with lock:
                out.append(r)

        threads = [threading.Thread(target=hit) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        # probes still answer while the service is saturated
        assert httpx.get(srv.url + "/healthz").status_code == 200
        metrics = httpx.get(srv.url + "/metrics").text
    codes = sorted(r.status_code for r in out)
    assert set(codes) == {200, 503}, codes
    refused = [r for r in out if r.status_code == 503]
    assert all(r.headers["retry-after"] == "3" for r in refused)
    assert all("overloaded" in r.json()["detail"] for r in refused)
    assert f'zenrec_requests_rejected_total{{reason="overload"}} {float(len(refused))}' in metrics


def test_shutdown_drains_requests_in_flight(bundles):
    """A stop signal while a slow request runs: the request still completes with 200."""
    heavy = {"requests": [{"user_id": u, "k": 200, "exclude_seen": False} for u in range(1, 201)]}
    from live import LiveServer

    srv = LiveServer(bundles["ease"]).start()
    result: dict[str, httpx.Response] = {}

    def hit() -> None:
        result["r"] = httpx.post(srv.url + "/v1/recommend/batch", json=heavy, timeout=120)

    t = threading.Thread(target=hit)
    t.start()
    deadline = time.time() + 30
    while srv.state.metrics.in_flight._value.get() < 1:
        assert time.time() < deadline, "the request never started"
        time.sleep(0.005)
    srv.stop()  # uvicorn stops accepting and waits for the request in flight
    t.join(60)
    assert result["r"].status_code == 200 and len(result["r"].json()["results"]) == 200


def test_liveness_keeps_answering_past_capacity_with_the_derived_limit(bundles):
    """Offered load far past capacity, from 8 loopback clients for ~3 s: the limit derived from
    capacity x latency target (20 req/s x 100 ms = 2) sheds the excess, and every liveness
    probe answers 200 within the Deployment's liveness timeout."""
    from pathlib import Path

    import yaml

    dep = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "deploy/k8s/deployment.yaml").read_text()
    )
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    probe_timeout = float(c["livenessProbe"]["timeoutSeconds"])
    heavy = {"requests": [{"user_id": u, "k": 200, "exclude_seen": False} for u in range(1, 129)]}
    with live_server(bundles["ease"], capacity_rps=20, latency_target_ms=100) as srv:
        assert srv.settings.admission_limit == 2
        stop = threading.Event()
        codes: list[int] = []
        lock = threading.Lock()

        def load() -> None:
            with httpx.Client(base_url=srv.url, timeout=60) as cl:
                while not stop.is_set():
                    r = cl.post("/v1/recommend/batch", json=heavy)
                    with lock:
                        codes.append(r.status_code)

        threads = [threading.Thread(target=load, daemon=True) for _ in range(8)]
        for t in threads:
            t.start()
        probes: list[tuple[int, float]] = []
        with httpx.Client(base_url=srv.url, timeout=probe_timeout) as cl:
            t_end = time.perf_counter() + 3.0
            while time.perf_counter() < t_end:
                t0 = time.perf_counter()
                r = cl.get("/healthz")
                probes.append((r.status_code, time.perf_counter() - t0))
                time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(60)
    assert 503 in codes and 200 in codes, sorted(set(codes))  # past capacity, and serving
    assert len(probes) >= 10
    assert all(code == 200 for code, _ in probes)
    assert max(s for _, s in probes) < probe_timeout


@pytest.mark.parametrize("shed_lag_ms", [2.0, 0.0])
def test_a_lagging_event_loop_sheds_requests_the_concurrency_limit_never_sees(bundles, shed_lag_ms):
    """Single requests are scored inline on the event loop, so past capacity they queue in the
    loop, not in flight: with the concurrency limit out of reach, requests are still answered
    503 + Retry-After once the loop lags more than ``shed_lag_ms`` (and never with 0: off)."""
    body = {"user_id": 1, "k": 200, "exclude_seen": False}
    with live_server(bundles["ease"], max_concurrency=10_000, shed_lag_ms=shed_lag_ms) as srv:
        stop = threading.Event()
        codes: list[int] = []
        retry_after: set[str | None] = set()
        lock = threading.Lock()

        def load() -> None:
            with httpx.Client(base_url=srv.url, timeout=60) as cl:
                while not stop.is_set():
                    r = cl.post("/v1/recommend", json=body)
                    with lock:
                        codes.append(r.status_code)
                        if r.status_code == 503:
                            retry_after.add(r.headers.get("retry-after"))

        threads = [threading.Thread(target=load, daemon=True) for _ in range(32)]
        for t in threads:
            t.start()
        time.sleep(3.0)
        stop.set()
        for t in threads:
            t.join(60)
        shed = srv.state.metrics.rejected.labels("overload")._value.get()
    assert 200 in codes
    if shed_lag_ms:
        assert 503 in codes and shed == codes.count(503) > 0
        assert retry_after == {str(srv.settings.retry_after_s)}
    else:
        assert 503 not in codes and shed == 0
