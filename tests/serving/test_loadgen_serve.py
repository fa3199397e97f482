"""``zenrec loadtest`` against a real ``zenrec serve`` on a loopback port: the generator's
request bodies are what the service accepts (no 4xx), on every endpoint it loads."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from _net import server_process

pytest.importorskip("zenrec.serving.app")  # the service (zenrec serve) is in this build


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from zenrec.data import synthetic_dataset
    from zenrec.models.registry import create_model

    ds = synthetic_dataset(n_users=60, n_items=40, interactions_per_user=6, seed=5)
    bundle = create_model("ease", l2=10.0).fit(ds).save(tmp_path_factory.mktemp("b") / "bundle")

    def argv(port: int) -> list[str]:
        serve = ["serve", str(bundle), "--port", str(port), "--log-level", "warning"]
        return [sys.executable, "-m", "zenrec", *serve]

    with server_process(argv, ready="/readyz", timeout=60, stop_timeout=20) as srv:
        yield srv.url, Path(bundle)


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
