"""Which bundle a pod serves: the expected content hash, and fetching a bundle by its hash.

A Deployment pins the bundle it serves by content hash (``zenrec serve --expect-version HASH``
or ``ZENREC_EXPECT_VERSION``): a pod whose bundle has other bytes refuses to start, so every
replica of one spec serves the same model. :func:`fetch_bundle` is the init-container half
(KServe's storage-initializer pattern): download a bundle archive into an empty volume, verify
its content hash against the expected one, and only then leave ``bundle.json`` in place.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from zenrec._errors import BundleError, ConfigError

__all__ = ["check_expected_version", "fetch_bundle", "peek_bundle", "validate_version"]

_HEX = re.compile(r"[0-9a-f]{16,64}")


def validate_version(expected: str) -> str:
    """An expected bundle version: 16 to 64 lowercase hex digits of the content sha256.

    Raises:
        ConfigError: Anything else (the message says where to find the hash).
    """
    v = expected.strip().lower()
    if not _HEX.fullmatch(v):
        raise ConfigError(
            f"--expect-version must be 16 to 64 hex digits of the bundle's content sha256 (the "
            f"'version' of GET /v1/model, or content_sha256 in bundle.json); got {expected!r}"
        )
    return v


def check_expected_version(where: str | Path, content_sha256: str, expected: str | None) -> None:
    """Raise :class:`BundleError` unless ``content_sha256`` starts with ``expected``."""
    if expected is None:
        return
    if not content_sha256.startswith(validate_version(expected)):
        raise BundleError(
            f"{where}: the bundle's content hash is {content_sha256[:16]}..., but version "
            f"{expected} is expected (--expect-version / ZENREC_EXPECT_VERSION); deploy the "
            "bundle with that hash, or change the expected version with the bundle"
        )


def peek_bundle(path: str | Path, expected: str | None = None) -> dict[str, Any]:
    """Read only ``bundle.json`` (no arrays, no hashing) and check the expected version.

    A cheap check for a parent process whose workers each load and verify the bundle.

    Raises:
        BundleError: Not a bundle, unreadable JSON, no content hash, or another version.
    """
    d = Path(path)
    meta_path = d / "bundle.json"
    if not meta_path.is_file():
        raise BundleError(
            f"{d}: not a zenrec bundle (no bundle.json); pass the directory that "
            "'zenrec train' or 'zenrec evaluate --save' wrote"
        )
    try:
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{meta_path}: invalid JSON ({exc}); the bundle is corrupt") from None
    content = str(meta.get("content_sha256") or "")
    if not content:
        raise BundleError(f"{meta_path}: no content_sha256; re-save the bundle with this zenrec")
    check_expected_version(d, content, expected)
    return meta


def _download(url: str, dest: Path, timeout: float) -> None:
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise ConfigError(
            f"--fetch {url}: only http://, https:// and file:// URLs of a .tar or .tar.gz "
            "archive of a bundle directory are supported"
        )
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(dest, "wb") as f:
            shutil.copyfileobj(r, f, length=1 << 20)
    except OSError as exc:
        raise BundleError(f"--fetch {url}: download failed ({exc})") from None


def fetch_bundle(url: str, dest: str | Path, expected: str, *, timeout: float = 60.0) -> Path:
    """Download a bundle archive into ``dest`` and verify it against ``expected``.

    ``url`` is an ``http(s)://`` or ``file://`` URL of a ``.tar``/``.tar.gz`` archive holding
    one bundle directory (``tar -C runs/ease -czf ease.tar.gz .``). The archive is unpacked
    under ``dest`` in a temporary directory (members outside it, links and devices are
    refused), the bundle is read and its content hash verified and compared with
    ``expected``, and only then are its files moved into ``dest`` (``bundle.json`` last), so
    ``dest`` never holds a bundle that was not verified. A ``dest`` already holding the
    expected bundle is left as it is (an init container that restarts does no work twice).

    Raises:
        ConfigError: A bad URL scheme or expected version.
        BundleError: The download failed, the archive holds no single bundle, the bundle is
            corrupt, or its content hash is not the expected one.
    """
    from zenrec.models.bundle import read_bundle

    expected = validate_version(expected)
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "bundle.json").is_file():
        meta = peek_bundle(out)
        if str(meta["content_sha256"]).startswith(expected):
            read_bundle(out)  # verify the bytes, not only the JSON
            return out
        raise BundleError(
            f"{out}: holds bundle {str(meta['content_sha256'])[:16]}, not {expected}; fetch "
            "into an empty volume"
        )
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=out) as tmp_s:
        tmp = Path(tmp_s)
        archive = tmp / "bundle.tar"
        _download(url, archive, timeout)
        unpacked = tmp / "unpacked"
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(unpacked, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise BundleError(f"--fetch {url}: not a readable tar archive ({exc})") from None
        found = [p.parent for p in unpacked.rglob("bundle.json")]
        if len(found) != 1:
            raise BundleError(
                f"--fetch {url}: the archive must hold exactly one bundle directory; found "
                f"{len(found)} bundle.json files"
            )
        (src,) = found
        meta, _arrays, _vocab, _items = read_bundle(src)  # the content hash is verified here
        check_expected_version(url, str(meta["content_sha256"]), expected)
        names = sorted(p.name for p in src.iterdir() if p.name != "bundle.json")
        for name in [*names, "bundle.json"]:
            (src / name).replace(out / name)
    return out
