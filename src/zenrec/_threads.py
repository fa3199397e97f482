"""The one thread policy of zenrec: how many CPU threads numeric work may use.

zenrec computes with several thread pools: BLAS/LAPACK and OpenMP (numpy, scipy, implicit's
ALS, through threadpoolctl), torch's intra-op pool, and polars' pool. The policy is:

* **All cores by default** (the CPUs this process may run on), for every pool. In a container
  "all cores" is bounded by the CPU limit of its cgroup (v2 ``cpu.max``, v1
  ``cpu.cfs_quota_us``/``cpu.cfs_period_us``), rounded up: a pod limited to 2 CPUs on a
  64-core node gets 2, not 64 (see :func:`cgroup_cpu_limit`).
* ``--threads N`` on every ``zenrec`` command that computes, or the environment variable
  ``ZENREC_THREADS``, sets one number for all pools. The command line wins over the variable.
* A command may carry its own default instead of "all cores": ``zenrec serve`` uses **one
  thread per worker process** (requests are served concurrently by the event loop and by
  replicas, not by BLAS threads, and the load-tested capacity was measured so); ``--threads``
  or ``ZENREC_THREADS`` still override it.
* **One thread in tests and CI**: ``tests/conftest.py`` calls :func:`set_threads` with 1 and
  ``.ci/run`` exports ``ZENREC_THREADS=1``, so timings and results do not depend on the
  runner's core count and parallel jobs do not oversubscribe the machine.

Library code never applies the policy on import and never changes thread pools by itself:
the CLI calls :func:`set_threads` once at start-up (before the heavy libraries are imported,
so polars, whose pool is sized on import, follows it too). A program using zenrec as a
library calls :func:`set_threads` itself, or :func:`thread_limit` for one block, when it
wants anything other than the libraries' own defaults. Models that run their own pools
(iALS, the neural trainer) use :func:`configured_threads` when their ``num_threads``
parameter is 0.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zenrec._errors import ConfigError

__all__ = [
    "available_cores",
    "cgroup_cpu_limit",
    "configured_threads",
    "resolve_threads",
    "set_threads",
    "thread_limit",
]

ENV_VAR = "ZENREC_THREADS"
# Variables read by the pools when their library is first imported.
_POOL_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "POLARS_MAX_THREADS",
    "NUMBA_NUM_THREADS",
)

_configured: int | None = None


_CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def cgroup_cpu_limit(root: str | os.PathLike[str] | None = None) -> float | None:
    """The CPU limit of this process's cgroup in CPUs (``None``: no limit, or no cgroup).

    Reads (``ROOT``: ``/sys/fs/cgroup`` by default) cgroup v2 ``ROOT/cpu.max``
    (``"<quota> <period>"`` or ``"max <period>"``), else v1 ``ROOT/cpu/cpu.cfs_quota_us`` and
    ``ROOT/cpu/cpu.cfs_period_us`` (or the same files directly under ``ROOT``; a quota of -1
    means no limit). A Kubernetes ``resources.limits.cpu: 1500m``
    reads as 1.5.

    Example:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "cpu.max").write_text("150000 100000\\n")
        >>> cgroup_cpu_limit(d)
        1.5
    """
    base = Path(root) if root is not None else _CGROUP_ROOT
    v2 = _read(base / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        if quota == "max":
            return None
        try:
            q, p = int(quota), int(period or "100000")
        except ValueError:
            return None
        return q / p if q > 0 and p > 0 else None
    for d in (base / "cpu", base / "cpu,cpuacct", base):
        quota_s, period_s = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
        if quota_s is None or period_s is None:
            continue
        try:
            q, p = int(quota_s), int(period_s)
        except ValueError:
            return None
        return q / p if q > 0 and p > 0 else None
    return None


def available_cores() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one, bounded by its
    cgroup's CPU limit rounded up (:func:`cgroup_cpu_limit`)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        cores = max(1, os.cpu_count() or 1)
    limit = cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit - 1e-9)))
    return cores


def resolve_threads(threads: int | None = None, default: int | None = None) -> int:
    """The thread count the policy gives: ``threads`` if > 0, else ``$ZENREC_THREADS``, else
    ``default`` (a command's own default, e.g. 1 for ``zenrec serve``), else all available
    cores.

    Raises:
        ConfigError: ``threads`` is negative or ``ZENREC_THREADS`` is not a positive integer.
    """
    if threads is not None:
        if threads < 0:
            raise ConfigError(f"the 'threads' parameter must be >= 0 (0: all cores); got {threads}")
        if threads > 0:
            return threads
    raw = os.environ.get(ENV_VAR, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 0:
            raise ConfigError(
                f"the environment variable {ENV_VAR} must be a whole number >= 0 "
                f"(0: all cores); got {raw!r}"
            )
        if int(raw) > 0:
            return int(raw)
        return available_cores()  # ZENREC_THREADS=0: all cores, whatever the command's default
    if default is not None and default > 0:
        return default
    return available_cores()


def configured_threads() -> int:
    """The count last applied by :func:`set_threads`, else what :func:`resolve_threads` gives."""
    return _configured if _configured is not None else resolve_threads()


def _apply(n: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)  # BLAS and OpenMP pools already loaded (numpy, scipy, implicit)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)


def set_threads(threads: int | None = None, default: int | None = None) -> int:
    """Apply the policy to the whole process and return the count applied.

    Sets the pools' environment variables (for libraries not imported yet: polars sizes its
    pool on import, OpenBLAS on load), limits the BLAS/OpenMP pools already loaded through
    threadpoolctl, and sets torch's intra-op threads when torch is imported (zenrec's trainer
    also reads :func:`configured_threads` when it imports torch later).

    Args:
        threads: Threads for every pool; ``None`` or 0 means the policy's default
            (``$ZENREC_THREADS``, else ``default``, else all cores).
        default: The calling command's own default when neither ``threads`` nor
            ``$ZENREC_THREADS`` says anything (``None``: all cores).
    """
    global _configured
    n = resolve_threads(threads, default)
    for var in _POOL_ENV:
        os.environ[var] = str(n)
    _apply(n)
    _configured = n
    return n


@contextmanager
def thread_limit(threads: int) -> Iterator[int]:
    """Limit the BLAS/OpenMP pools and torch to ``threads`` inside a ``with`` block, then restore.

    Example:
        >>> with thread_limit(1):
        ...     pass
    """
    global _configured
    from threadpoolctl import threadpool_limits

    n = resolve_threads(threads)
    before = _configured
    torch = sys.modules.get("torch")
    torch_before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=n):
        if torch is not None:
            torch.set_num_threads(n)
        _configured = n
        try:
            yield n
        finally:
            _configured = before
            if torch is not None and torch_before is not None:
                torch.set_num_threads(torch_before)
