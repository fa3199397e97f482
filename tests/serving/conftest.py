"""Fixtures of the serving tests: ML-100K bundles and a real uvicorn server on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from live import LiveServer, live_server


@pytest.fixture(scope="session")
def ease_model(ml100k):
    from zenrec.models import create_model

    return create_model("ease", l2=200.0).fit(ml100k)


@pytest.fixture(scope="session")
def bundles(tmp_path_factory, ml100k, ease_model) -> dict[str, Path]:
    """Two different bundles of the same catalog: EASE (served first) and ItemKNN."""
    from zenrec.models import create_model

    root = tmp_path_factory.mktemp("bundles")
    ease = ease_model.save(root / "ease", metrics={"ndcg@10": 0.4})
    knn = create_model("itemknn", k=50).fit(ml100k).save(root / "itemknn")
    return {"ease": ease, "itemknn": knn}


@pytest.fixture(scope="module")
def server(bundles) -> Iterator[LiveServer]:
    with live_server(bundles["ease"], api_key="test-key-123") as srv:
        yield srv
