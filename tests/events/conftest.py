from __future__ import annotations

from collections.abc import Iterator

import pytest

from pghelp import missing, postgres_server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for this test session (skipped, with the reason, when absent)."""
    why = missing()
    if why is not None:
        pytest.skip(why)
    with postgres_server() as url:
        yield url
