"""Where the real data is, for tests that need it (imported by tests as ``datahelp``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(
    os.environ.get("ZENREC_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)


def data_dir(name: str) -> Path:
    """``$ZENREC_DATA/name``, or skip the test when it is absent."""
    d = DATA / name
    if not d.exists():
        pytest.skip(
            f"{d} not found: set ZENREC_DATA to the folder holding {name}/ to run this test"
        )
    return d
