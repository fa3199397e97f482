"""Shared fixtures: synthetic data, and the real MovieLens files when $ZENREC_DATA has them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# One thread for every pool in tests (zenrec's thread policy, docs/user-guide.md#threads):
# results and timings must not depend on the runner's core count.
os.environ["ZENREC_THREADS"] = "1"
from zenrec._threads import set_threads

set_threads(1)

DATA = Path(os.environ.get("ZENREC_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def data_dir(name: str) -> Path:
    d = DATA / name
    if not d.exists():
        pytest.skip(f"{d} not found: set ZENREC_DATA to the folder holding {name}/ to run this test")
    return d


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
