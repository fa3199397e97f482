"""The one thread policy of zenrec: how many CPU threads numeric work may use.

zenrec computes with several thread pools: BLAS/LAPACK and OpenMP (numpy, scipy, implicit's
ALS, through threadpoolctl), torch's intra-op pool, and polars' pool. The policy is:

* **All cores by default** (the CPUs this process may run on), for every pool.
* ``--threads N`` on every ``zenrec`` command that computes, or the environment variable
  ``ZENREC_THREADS``, sets one number for all pools. The command line wins over the variable.
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

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from zenrec._errors import ConfigError

__all__ = [
    "available_cores",
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


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(threads: int | None = None) -> int:
    """The thread count the policy gives: ``threads`` if > 0, else ``$ZENREC_THREADS``, else
    all available cores.

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


def set_threads(threads: int | None = None) -> int:
    """Apply the policy to the whole process and return the count applied.

    Sets the pools' environment variables (for libraries not imported yet: polars sizes its
    pool on import, OpenBLAS on load), limits the BLAS/OpenMP pools already loaded through
    threadpoolctl, and sets torch's intra-op threads when torch is imported (zenrec's trainer
    also reads :func:`configured_threads` when it imports torch later).

    Args:
        threads: Threads for every pool; ``None`` or 0 means the policy's default
            (``$ZENREC_THREADS``, else all cores).
    """
    global _configured
    n = resolve_threads(threads)
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
