"""Which bundle a pod serves: the expected content hash, fetching by hash, one read at start."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from zenrec._errors import BundleError, ConfigError
from zenrec.serving.pinning import fetch_bundle, peek_bundle

pytestmark = pytest.mark.integration


def content_hash(bundle: Path) -> str:
    return str(json.loads((bundle / "bundle.json").read_text())["content_sha256"])


@pytest.fixture
def archive(bundles, tmp_path) -> Path:
    out = tmp_path / "ease.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(bundles["ease"], arcname="ease")
    return out


def test_fetch_by_hash_leaves_only_a_verified_bundle(bundles, archive, tmp_path):
    full = content_hash(bundles["ease"])
    dest = tmp_path / "vol"
    with pytest.raises(BundleError, match="is expected"):
        fetch_bundle(archive.as_uri(), dest, content_hash(bundles["itemknn"])[:16])
    assert not (dest / "bundle.json").exists() and list(dest.iterdir()) == []
    assert fetch_bundle(archive.as_uri(), dest, full[:16]) == dest
    for f in bundles["ease"].iterdir():
        assert (dest / f.name).read_bytes() == f.read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        p.name for p in bundles["ease"].iterdir()
    )
    assert fetch_bundle("file:///nonexistent.tar", dest, full) == dest  # already there: no work
    with pytest.raises(BundleError, match="not 0123456789abcdef"):
        fetch_bundle(archive.as_uri(), dest, "0123456789abcdef")
    with pytest.raises(ConfigError, match="hex digits"):
        fetch_bundle(archive.as_uri(), tmp_path / "x", "latest")
    with pytest.raises(ConfigError, match="file://"):
        fetch_bundle("s3://bucket/ease.tar", tmp_path / "x", full)


def test_a_corrupt_archive_is_refused(bundles, tmp_path):
    bad = tmp_path / "bad"
    import shutil

    shutil.copytree(bundles["ease"], bad)
    (bad / "vocab.json").write_text("{}")
    out = tmp_path / "bad.tar"
    with tarfile.open(out, "w") as tar:
        tar.add(bad, arcname=".")
    with pytest.raises(BundleError, match="content hash mismatch"):
        fetch_bundle(out.as_uri(), tmp_path / "vol", content_hash(bundles["ease"]))
    assert not (tmp_path / "vol" / "bundle.json").exists()


def test_expected_version_fails_startup_and_the_bundle_is_read_once(bundles, monkeypatch):
    import asyncio

    import httpx
    import uvicorn

    import zenrec.models.bundle as bundle_mod
    from zenrec.cli.main import main

    reads: list[str] = []
    real = bundle_mod.read_bundle
    monkeypatch.setattr(
        bundle_mod, "read_bundle", lambda p, **kw: reads.append(str(p)) or real(p, **kw)
    )
    apps: list = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: apps.append(app))
    monkeypatch.delenv("ZENREC_EXPECT_VERSION", raising=False)
    ease, knn = bundles["ease"], bundles["itemknn"]

    assert main(["serve", str(ease), "--expect-version", content_hash(knn)[:16]]) == 2
    assert apps == []  # refused before the server started
    monkeypatch.setenv("ZENREC_EXPECT_VERSION", content_hash(knn)[:20])
    assert main(["serve", str(ease)]) == 2 and apps == []
    monkeypatch.setenv("ZENREC_EXPECT_VERSION", content_hash(ease))
    reads.clear()
    assert main(["serve", str(ease)]) == 0
    (app,) = apps

    async def start_and_ask() -> str:  # runs the lifespan: serves what the CLI loaded
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return str((await c.get("/v1/model")).json()["version"])

    assert asyncio.run(start_and_ask()) == content_hash(ease)[:16]
    assert reads == [str(ease)]  # one read of the bundle for the whole start


def test_peek_checks_the_version_without_reading_arrays(bundles, tmp_path):
    import shutil

    b = tmp_path / "b"
    shutil.copytree(bundles["ease"], b)
    (b / "arrays.safetensors").write_bytes(b"garbage")  # not read by peek
    assert peek_bundle(b, content_hash(bundles["ease"])[:16])["content_sha256"]
    with pytest.raises(BundleError, match="is expected"):
        peek_bundle(b, "ffffffffffffffff")
