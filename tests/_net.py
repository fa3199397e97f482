"""Loopback helpers shared by the tests that start servers: a free port, a readiness poll, and a
server process that is started, polled until it answers and stopped (imported as ``_net``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["ServerProcess", "free_port", "server_process", "wait_until_ready"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(
    url: str,
    *,
    timeout: float = 60.0,
    proc: subprocess.Popen[str] | None = None,
    interval: float = 0.1,
) -> None:
    """Poll ``url`` until it answers 200.

    Raises:
        RuntimeError: ``proc`` exited first (its stderr tail in the message), or ``timeout``
            seconds passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"the server exited with {proc.returncode}: {err[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {timeout:g} s")
        time.sleep(interval)


@dataclass
class ServerProcess:
    """A server started by :func:`server_process`; ``returncode`` and ``stderr`` are set once
    it has stopped."""

    url: str
    port: int
    proc: subprocess.Popen[str]
    returncode: int | None = None
    stderr: str = ""


@contextmanager
def server_process(
    argv: Callable[[int], Sequence[str]],
    *,
    ready: str = "/healthz",
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    stop_timeout: float = 60.0,
) -> Iterator[ServerProcess]:
    """Run ``argv(port)`` on a free loopback port, wait until ``ready`` answers 200, yield it,
    then stop it with SIGTERM (SIGKILL after ``stop_timeout`` seconds)."""
    port = free_port()
    proc = subprocess.Popen(
        list(argv(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )
    srv = ServerProcess(url=f"http://127.0.0.1:{port}", port=port, proc=proc)
    try:
        wait_until_ready(srv.url + ready, timeout=timeout, proc=proc)
        yield srv
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        srv.returncode, srv.stderr = proc.returncode, err or ""
