"""Pre-forked workers: one process loads the app, then forks the processes that serve it.

``zenrec serve --workers N`` on Linux loads the bundle once in a parent process, builds the app,
binds the listening socket, moves the loaded heap out of the garbage collector's reach
(``gc.freeze``) and only then forks N children, each running a uvicorn server on the inherited
socket (gunicorn's ``--preload``). The children share the parent's memory pages (the imported
libraries, the app, the model and its memory-mapped arrays) copy-on-write: a page is copied
only when a child writes to it, and freezing the heap keeps the children's collections from
writing to the objects they inherited.

The parent supervises: a child that dies is replaced by a fresh fork of the same loaded app
(no reload), SIGTERM or SIGINT is forwarded to every child, which drains its requests and exits,
children that outlive the drain time are killed, and the parent exits once all are gone. Each
child asks the kernel for SIGTERM should the parent die first (``PR_SET_PDEATHSIG``), so a
killed parent leaves no orphans. A child whose app fails to start (uvicorn's exit code 3)
stops the whole server instead of being restarted in a loop.

Forking a process that has started thread pools is unsafe (an OpenMP team started in the
parent hangs the child's first parallel region), so the CLI loads the bundle with one
BLAS/OpenMP/torch thread and each child sets its own thread count after the fork; the request
log and the event store are opened in each child's lifespan. Only Linux takes this path
(:func:`fork_supported`); elsewhere ``zenrec serve`` falls back to uvicorn's spawned workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, NoReturn

__all__ = ["STARTUP_FAILURE", "fork_supported", "serve_forked"]

log = logging.getLogger("zenrec.serving")

#: Exit code of a child whose server could not start (uvicorn's ``STARTUP_FAILURE``).
STARTUP_FAILURE = 3

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_RESTART_BACKOFF_S = (0.0, 0.5, 1.0, 2.0, 5.0)  # delay before the n-th quick restart in a row
_QUICK_EXIT_S = 10.0  # a child that dies sooner than this counts as a quick failure


def fork_supported() -> bool:
    """Whether workers can be forked from a loaded parent: Linux only (``os.fork`` and
    ``prctl(PR_SET_PDEATHSIG)``); macOS forks unsafely once system frameworks are loaded and
    Windows has no fork."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


@dataclass
class _Slot:
    """One worker position: the process serving it now, and its recent quick failures."""

    index: int
    pid: int | None = None
    started: float = 0.0
    quick_failures: int = 0
    restart_at: float | None = None


@dataclass
class _Supervisor:
    config: Any
    sock: socket.socket
    workers: int
    stop_timeout_s: float
    on_child_exit: Callable[[int], None] | None
    on_child_start: Callable[[], object] | None = None
    slots: list[_Slot] = field(default_factory=list)
    signals: list[int] = field(default_factory=list)
    stopping: bool = False
    deadline: float = 0.0
    exit_code: int = 0

    def run(self) -> int:
        parent = os.getpid()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
        old = {s: signal.signal(s, self._on_signal) for s in handled}
        try:
            self.slots = [_Slot(i) for i in range(self.workers)]
            log.info("parent started", extra={"pid": parent, "workers": self.workers})
            for slot in self.slots:
                self._fork(slot, parent, (wake_r, wake_w))
            while True:
                with contextlib.suppress(InterruptedError):
                    select.select([wake_r], [], [], 0.5)
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 512):
                        pass
                self._reap()
                if self.signals and not self.stopping:
                    self._stop(f"signal {signal.Signals(self.signals[0]).name}")
                if self.stopping:
                    if not any(s.pid for s in self.slots):
                        break
                    if time.monotonic() > self.deadline:
                        for s in self.slots:
                            if s.pid:
                                log.warning("killing worker", extra={"pid": s.pid})
                                _kill(s.pid, signal.SIGKILL)
                        self.deadline = time.monotonic() + 5.0  # SIGKILL again if needed
                    continue
                now = time.monotonic()
                for slot in self.slots:
                    if slot.pid is None and slot.restart_at is not None and now >= slot.restart_at:
                        self._fork(slot, parent, (wake_r, wake_w))
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(old_wakeup)
            os.close(wake_r)
            os.close(wake_w)
        log.info("parent stopped", extra={"pid": parent, "exit_code": self.exit_code})
        return self.exit_code

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGCHLD:
            self.signals.append(sig)

    def _stop(self, reason: str) -> None:
        """Forward SIGTERM to every child; kill those still alive after the drain time."""
        self.stopping = True
        self.deadline = time.monotonic() + self.stop_timeout_s
        log.info("stopping workers", extra={"reason": reason})
        for s in self.slots:
            if s.pid:
                _kill(s.pid, signal.SIGTERM)

    def _fork(self, slot: _Slot, parent: int, fds: tuple[int, int]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:  # EAGAIN/ENOMEM: try again in a while
            slot.restart_at = time.monotonic() + 1.0
            log.error("fork failed", extra={"worker": slot.index, "reason": str(exc)})
            return
        if pid == 0:  # the child never returns from here
            _child(self.config, self.sock, parent, fds, self.on_child_start)
        slot.pid, slot.started, slot.restart_at = pid, time.monotonic(), None
        log.info("worker started", extra={"pid": pid, "worker": slot.index})

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is None:
                continue
            slot.pid = None
            if self.on_child_exit is not None:
                self.on_child_exit(pid)
            code = os.waitstatus_to_exitcode(status)  # -N: killed by signal N
            if self.stopping:
                log.info("worker stopped", extra={"pid": pid, "exit_code": code})
                continue
            if code == STARTUP_FAILURE:
                log.error("worker failed to start; stopping", extra={"pid": pid})
                self.exit_code = 1
                self._stop("a worker failed to start")
                continue
            lived = time.monotonic() - slot.started
            slot.quick_failures = slot.quick_failures + 1 if lived < _QUICK_EXIT_S else 0
            delay = _RESTART_BACKOFF_S[min(slot.quick_failures, len(_RESTART_BACKOFF_S) - 1)]
            slot.restart_at = time.monotonic() + delay
            log.warning(
                "worker died; restarting it",
                extra={"pid": pid, "exit_code": code, "worker": slot.index, "in_s": delay},
            )


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _parent_death_signal(sig: int) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:  # pragma: no cover - Linux always has it
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def _child(
    config: Any,
    sock: socket.socket,
    parent: int,
    fds: tuple[int, int],
    on_start: Callable[[], object] | None,
) -> NoReturn:
    """A forked worker: serve ``config``'s app on ``sock`` until told to stop, then exit."""
    code = 0
    try:
        signal.set_wakeup_fd(-1)
        for fd in fds:
            os.close(fd)
        early: list[int] = []
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for s in (signal.SIGTERM, signal.SIGINT):  # until uvicorn installs its own handlers
            signal.signal(s, lambda sig, frame: early.append(sig))
        _parent_death_signal(signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(0)
        gc.enable()  # the parent may have disabled it while loading (its heap is frozen)
        if on_start is not None:
            on_start()
        if not early:
            import uvicorn

            server = uvicorn.Server(config)
            server.run(sockets=[sock])
            if not server.started:
                code = STARTUP_FAILURE
    except SystemExit as exc:  # uvicorn exits with 3 when the app's startup fails
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("worker crashed", extra={"pid": os.getpid()})
        code = 1
    finally:
        with contextlib.suppress(Exception):
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
    os._exit(code)


def serve_forked(
    config: Any,
    workers: int,
    *,
    stop_timeout_s: float = 30.0,
    on_child_exit: Callable[[int], None] | None = None,
    on_child_start: Callable[[], object] | None = None,
    freeze: bool = True,
) -> int:
    """Bind ``config``'s socket, freeze the heap and serve from ``workers`` forked children.

    Call it from the main thread of a process that has loaded everything the app needs and has
    started no other threads. It returns when the server has stopped (SIGTERM/SIGINT), with 0,
    or 1 when a worker failed to start.

    Args:
        config: A ``uvicorn.Config`` of an app object (not an import string); it is loaded here,
            in the parent, so that its imports are shared too.
        workers: Processes to fork.
        stop_timeout_s: Time the children get to drain after SIGTERM before they are killed.
        on_child_exit: Called in the parent with the pid of each child that exited (e.g.
            ``prometheus_client.multiprocess.mark_process_dead``).
        on_child_start: Called in each child right after the fork, before its server starts
            (e.g. to size its thread pools: the parent must not have started any).
        freeze: ``gc.collect(); gc.freeze()`` before forking (``ServeSettings.gc_freeze``).

    Raises:
        RuntimeError: Not on Linux, or the process runs other threads.
    """
    if not fork_supported():
        raise RuntimeError("forked workers need Linux; use uvicorn's workers elsewhere")
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if others:
        raise RuntimeError(f"cannot fork workers safely: threads {others} are running")
    if not config.loaded:
        config.load()
    config.get_loop_factory()  # imports uvloop in the parent, for the children to share
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn logged why (address in use, permission)
        return 1
    if freeze:
        gc.collect()
        gc.freeze()
    try:
        return _Supervisor(
            config, sock, workers, stop_timeout_s, on_child_exit, on_child_start
        ).run()
    finally:
        with contextlib.suppress(OSError):
            sock.close()
