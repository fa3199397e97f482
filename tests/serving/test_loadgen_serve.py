"""``zenrec loadtest`` against a real ``zenrec serve`` on a loopback port: the generator's
request bodies are what the service accepts (no 4xx), on every endpoint it loads."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("zenrec.serving.app")  # the service (zenrec serve) is in this build


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    from zenrec.data import synthetic_dataset
    from zenrec.models.registry import create_model

    ds = synthetic_dataset(n_users=60, n_items=40, interactions_per_user=6, seed=5)
    bundle = create_model("ease", l2=10.0).fit(ds).save(tmp_path_factory.mktemp("b") / "bundle")
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zenrec",
            "serve",
            str(bundle),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"zenrec serve did not become ready: {err[-2000:]}")
                time.sleep(0.2)
        yield url, Path(bundle)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize("endpoint", ["recommend", "similar", "healthz"])
def test_loadtest_bodies_are_accepted_by_zenrec_serve(
    served: tuple[str, Path], endpoint: str, tmp_path: Path
) -> None:
    from zenrec.cli.main import main

    url, bundle = served
    out = tmp_path / "lt.json"
    rc = main(
        [
            "loadtest",
            url,
            "--endpoint",
            endpoint,
            "--rate",
            "50",
            "--duration",
            "1",
            "--users-from",
            str(bundle),
            "--output",
            str(out),
        ]
    )
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["errors"] == 0, data["errors_by_kind"]
    assert data["achieved_rps"] == pytest.approx(50, rel=0.1)
