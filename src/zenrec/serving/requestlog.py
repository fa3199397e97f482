"""The request log: one JSON line per request, written by a background thread.

Format (shared with ``zenrec traffic --input DIR``): files ``DIR/requests-<pid>.jsonl``,
rotated by size to ``DIR/requests-<pid>.<n>.jsonl`` (``n = 1`` the newest rotated file), one
object per line::

    {"ts": "2026-12-01T12:00:00.123456+00:00", "endpoint": "/v1/recommend", "status": 200,
     "latency_ms": 1.234, "model_version": "<16 hex>", "user": "<HMAC-SHA256 hex or null>",
     "k": 10}

User ids are keyed hashes, HMAC-SHA256 with the per-deployment secret as key (not a salted
plain hash, which is open to length extension and mixes key and message). The files of one
process never hold more than ``max_total_bytes`` together, and by default at most half of the
filesystem the directory is on, so rotation cannot fill the volume it writes to.

The request path only puts a tuple on a bounded queue (no I/O, no formatting, no hashing);
the writer thread formats, hashes and writes. When the queue is full the record is dropped and
counted rather than slowing requests down.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import shutil
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = ["RequestLog", "hash_user", "rotation_bounds"]

_STOP = object()


def hash_user(user: Any, salt: bytes) -> str | None:
    """HMAC-SHA256 hex of a raw user id keyed with the deployment's secret ``salt``
    (``None`` stays ``None``)."""
    if user is None:
        return None
    return hmac.new(salt, str(user).encode("utf-8"), hashlib.sha256).hexdigest()


def rotation_bounds(
    max_bytes: int, backups: int, budget: int, processes: int = 1
) -> tuple[int, int]:
    """File size and rotated files kept so that one process's files (the current one plus
    ``backups``) stay within its share of ``budget`` bytes.

    Example:
        >>> rotation_bounds(64 * 2**20, 20, 256 * 2**20)  # a 256 MiB budget: 4 files of 64 MiB
        (67108864, 3)
        >>> rotation_bounds(64 * 2**20, 20, 64 * 2**20)  # smaller than two files: halve them
        (33554432, 1)
    """
    share = max(4096, budget // max(1, processes))
    files = share // max_bytes
    if files >= 2:
        return max_bytes, min(backups, files - 1)
    return max(2048, share // 2), 1


class RequestLog:
    """Size-rotated JSON-lines request log fed through a queue.

    Args:
        directory: Output directory (created).
        salt: Per-deployment secret mixed into the user-id hash.
        max_bytes: Size at which the current file is rotated.
        backups: Rotated files kept (older ones are deleted).
        queue_size: Records buffered for the writer; beyond, records are dropped.
        pid: Process id in the file names (default: this process).
        max_total_bytes: Bound of all the log files written into ``directory`` (default:
            half the size of the filesystem holding it); ``max_bytes`` and ``backups`` are
            lowered to fit it (:func:`rotation_bounds`).
        processes: Processes writing into ``directory``, each getting an equal share.
        batch_seconds: The writer wakes at most this often (it sleeps this long after the first
            record of a batch): one wake-up, one formatting pass and one write per interval
            instead of per request, so the writer thread takes the GIL from the event loop
            rarely. A flush or stop is handled at once.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        salt: bytes,
        max_bytes: int = 64 * 2**20,
        backups: int = 20,
        queue_size: int = 100_000,
        pid: int | None = None,
        max_total_bytes: int | None = None,
        processes: int = 1,
        batch_seconds: float = 0.1,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.salt = salt
        volume = shutil.disk_usage(self.directory).total // 2
        budget = volume if max_total_bytes is None else min(max_total_bytes, volume)
        self.max_bytes, self.backups = rotation_bounds(max_bytes, backups, budget, processes)
        self.pid = os.getpid() if pid is None else pid
        self.dropped = 0
        self.written = 0
        self.batch_seconds = batch_seconds
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._file: TextIO | None = None
        self._size = 0
        self._thread = threading.Thread(target=self._run, name="zenrec-request-log", daemon=True)
        self._thread.start()

    @property
    def path(self) -> Path:
        """The file being written."""
        return self.directory / f"requests-{self.pid}.jsonl"

    def log(
        self,
        ts: float,
        endpoint: str,
        status: int,
        latency_ms: float,
        model_version: str | None,
        user: Any,
        k: int | None,
    ) -> None:
        """Queue one record (never blocks; counts a drop when the queue is full)."""
        try:
            self._queue.put_nowait((ts, endpoint, status, latency_ms, model_version, user, k))
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued record is written (for tests and shutdown)."""
        done = threading.Event()
        self._queue.put(done, timeout=timeout)
        done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, close the file and stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP, timeout=timeout)
            self._thread.join(timeout)

    # ------------------------------------------------------------------ writer thread
    def _open(self) -> TextIO:
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across writes
            self._size = self._file.tell()
        return self._file

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        stem = f"requests-{self.pid}"
        oldest = self.directory / f"{stem}.{self.backups}.jsonl"
        if oldest.exists():
            oldest.unlink()
        for n in range(self.backups - 1, 0, -1):
            src = self.directory / f"{stem}.{n}.jsonl"
            if src.exists():
                src.rename(self.directory / f"{stem}.{n + 1}.jsonl")
        if self.path.exists():
            self.path.rename(self.directory / f"{stem}.1.jsonl")

    def _format(self, rec: tuple[Any, ...]) -> str:
        ts, endpoint, status, latency_ms, version, user, k = rec
        return (
            json.dumps(
                {
                    "ts": datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds"),
                    "endpoint": endpoint,
                    "status": int(status),
                    "latency_ms": round(float(latency_ms), 3),
                    "model_version": version,
                    "user": hash_user(user, self.salt),
                    "k": k,
                },
                separators=(", ", ": "),
            )
            + "\n"
        )

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if self.batch_seconds > 0 and not (item is _STOP or isinstance(item, threading.Event)):
                time.sleep(self.batch_seconds)  # let the batch gather; the loop keeps the GIL
            batch = [item]
            while len(batch) < 65536:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = False
            lines = []
            events = []
            for rec in batch:
                if rec is _STOP:
                    stop = True
                elif isinstance(rec, threading.Event):
                    events.append(rec)
                else:
                    lines.append(self._format(rec))
            for line in lines:
                f = self._open()
                if self._size and self._size + len(line) > self.max_bytes:
                    self._rotate()
                    f = self._open()
                f.write(line)
                self._size += len(line.encode("utf-8"))
                self.written += 1
            if self._file is not None:
                self._file.flush()
            for e in events:
                e.set()
            if stop:
                if self._file is not None:
                    self._file.close()
                    self._file = None
                return
