"""A real uvicorn server over ``create_app`` on a free loopback port, for the serving tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _net import free_port

__all__ = ["LiveServer", "free_port", "live_server"]


class LiveServer:
    """A uvicorn server running ``create_app(bundle, settings)`` in a thread, on 127.0.0.1."""

    def __init__(self, bundle: Path, **settings: Any) -> None:
        import uvicorn

        from zenrec.serving import ServeSettings, create_app

        # The in-process server shares the GIL with the test's client threads, so its event-loop
        # lag measures the clients as much as the server: lag shedding is off unless a test asks.
        settings.setdefault("shed_lag_ms", 0.0)
        self.settings = ServeSettings.model_validate(settings)
        self.app = create_app(bundle, self.settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            loop="asyncio",
            http="httptools",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
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
