"""Shared fixtures: synthetic data, and the real MovieLens files when $ZENREC_DATA has them."""

from __future__ import annotations

import numpy as np
import pytest

from datahelp import DATA, data_dir


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
