"""Fixtures of the serving tests: ML-100K bundles and a real uvicorn server on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A uvicorn server running ``create_app(bundle, settings)`` in a thread, on 127.0.0.1."""

    def __init__(self, bundle: Path, **settings: Any) -> None:
        import uvicorn

        from zenrec.serving import ServeSettings, create_app

        self.settings = ServeSettings.model_validate(settings)
        self.app = create_app(bundle, self.settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                loop="asyncio", http="httptools", access_log=False, timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.time() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    @property
    def state(self) -> Any:
        return self.app.state.zenrec


@contextmanager
def live_server(bundle: Path, **settings: Any) -> Iterator[LiveServer]:
    srv = LiveServer(bundle, **settings).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def ease_model(ml100k):
    from zenrec.models import create_model

    return create_model("ease", l2=200.0).fit(ml100k)


@pytest.fixture(scope="session")
def bundles(tmp_path_factory, ml100k, ease_model) -> dict[str, Path]:
    """Two different bundles of the same catalog: EASE (served first) and ItemKNN."""
    from zenrec.models import create_model

    root = tmp_path_factory.mktemp("bundles")
    ease = ease_model.save(root / "ease", metrics={"ndcg@10": 0.4})
    knn = create_model("itemknn", k=50).fit(ml100k).save(root / "itemknn")
    return {"ease": ease, "itemknn": knn}


@pytest.fixture(scope="module")
def server(bundles) -> Iterator[LiveServer]:
    with live_server(bundles["ease"], api_key="test-key-123") as srv:
        yield srv
