"""Shared fixtures: synthetic data, and the real MovieLens files when $ZENREC_DATA has them.

In CI (``CI=true``) torch is always installed, so a neural test that skips means the neural
code did not run at all: such skips fail the run instead of passing green.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

# One thread for every pool in tests (zenrec's thread policy, docs/user-guide.md#threads):
# results and timings must not depend on the runner's core count.
os.environ["ZENREC_THREADS"] = "1"
from zenrec._threads import set_threads

set_threads(1)

from datahelp import DATA, data_dir  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def ml100k():
    data_dir("ml-100k")
    from zenrec.data import load_builtin

    return load_builtin("ml-100k", DATA / "ml-100k", download=False)


@pytest.fixture(scope="session")
def synthetic():
    from zenrec.data import synthetic_dataset

    return synthetic_dataset(n_users=300, n_items=120, interactions_per_user=15, seed=7)


# ---------------------------------------------------------------- CI: neural skips fail the run
_IN_CI = os.environ.get("CI", "").lower() == "true"
_neural_skips: list[str] = []


def _is_neural_skip(report: pytest.CollectReport | pytest.TestReport) -> bool:
    """A skip caused by a missing torch, or any skip under tests/neural/ except a GPU-only one."""
    if not report.skipped:
        return False
    reason = str(report.longrepr)
    if "torch" in reason:
        return True
    gpu_only = "cuda" in reason.lower() or "gpu" in reason.lower()
    return report.nodeid.startswith("tests/neural/") and not gpu_only


def _note(report: pytest.CollectReport | pytest.TestReport) -> None:
    if _IN_CI and _is_neural_skip(report):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        _neural_skips.append(f"{report.nodeid}: {reason}")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note(report)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note(report)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _neural_skips:
        terminalreporter.section("neural tests skipped in CI (CI=true): failing the run", red=True)
        for line in _neural_skips:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _neural_skips and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
