"""The request-log writer: format, HMAC of user ids, size rotation bounded by the volume,
bounded queue."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from zenrec.serving.requestlog import RequestLog, hash_user


def test_rotation_keeps_the_newest_files_and_every_line_is_valid(tmp_path):
    log = RequestLog(tmp_path, salt=b"s", max_bytes=4096, backups=3, pid=4242)
    t0 = time.time()
    for j in range(400):
        log.log(t0 + j, "/v1/recommend", 200, 1.5, "0123456789abcdef", j, 10)
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [
        "requests-4242.1.jsonl",
        "requests-4242.2.jsonl",
        "requests-4242.3.jsonl",
        "requests-4242.jsonl",
    ]
    # newest last: the current file holds the last records, .1 the ones before, and so on
    chunks = [
        [json.loads(x) for x in (tmp_path / n).read_text().splitlines()]
        for n in (
            "requests-4242.3.jsonl",
            "requests-4242.2.jsonl",
            "requests-4242.1.jsonl",
            "requests-4242.jsonl",
        )
    ]
    users = [r["user"] for c in chunks for r in c]
    kept = len(users)
    assert users == [hash_user(j, b"s") for j in range(400 - kept, 400)]
    assert all((tmp_path / n).stat().st_size <= 4096 for n in files)
    first = chunks[-1][-1]
    assert first == {
        "ts": first["ts"],
        "endpoint": "/v1/recommend",
        "status": 200,
        "latency_ms": 1.5,
        "model_version": "0123456789abcdef",
        "user": hmac.new(b"s", b"399", hashlib.sha256).hexdigest(),
        "k": 10,
    }
    assert log.written == 400 and log.dropped == 0


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    log = RequestLog(tmp_path, salt=b"", queue_size=16)
    t0 = time.perf_counter()
    for _ in range(20_000):
        log.log(time.time(), "/v1/recommend", 200, 1.0, None, None, 10)
    elapsed = time.perf_counter() - t0
    log.close()
    assert log.written + log.dropped == 20_000 and log.dropped > 0
    assert elapsed < 2.0  # never waited on the writer
    lines = (tmp_path / f"requests-{log.pid}.jsonl").read_text().splitlines()
    assert len(lines) == log.written and json.loads(lines[0])["user"] is None


def test_user_ids_are_hmac_keyed_with_the_secret():
    h = hash_user(42, b"secret")
    assert h == hmac.new(b"secret", b"42", hashlib.sha256).hexdigest()
    assert h != hashlib.sha256(b"secret42").hexdigest()  # not the old salted plain hash
    assert hash_user(42, b"other") != h and hash_user(None, b"secret") is None


def _total(d):
    return sum(p.stat().st_size for p in d.iterdir())


def test_rotation_stays_within_the_budget_and_the_volume(tmp_path, monkeypatch):
    # explicit budget: 16 KiB for two processes -> 8 KiB each, below 20 x 4 KiB files
    log = RequestLog(
        tmp_path / "a", salt=b"s", max_bytes=4096, backups=20, max_total_bytes=16384, processes=2
    )
    assert (log.max_bytes, log.backups) == (4096, 1)
    for j in range(2000):
        log.log(1e9 + j, "/v1/recommend", 200, 1.5, "0123456789abcdef", j, 10)
    log.close()
    assert _total(tmp_path / "a") <= 8192
    # default: half the filesystem the directory is on (a small volume, as a 256 Mi emptyDir)
    import zenrec.serving.requestlog as rl

    usage = type("U", (), {"total": 64 * 1024, "used": 0, "free": 64 * 1024})
    monkeypatch.setattr(rl.shutil, "disk_usage", lambda _p: usage)
    log = RequestLog(tmp_path / "b", salt=b"s", max_bytes=64 * 2**20, backups=20)
    assert log.max_bytes * (log.backups + 1) <= 32 * 1024
    for j in range(3000):
        log.log(1e9 + j, "/v1/recommend", 200, 1.5, "0123456789abcdef", j, 10)
    log.close()
    assert 0 < _total(tmp_path / "b") <= 32 * 1024


def test_the_writer_wakes_once_per_batch_interval_and_a_flush_still_writes(tmp_path):
    """The writer sleeps ``batch_seconds`` after the first record of a batch (one wake-up and
    one write per interval, not per request); records logged meanwhile join that batch."""
    log = RequestLog(tmp_path, salt=b"s", batch_seconds=1.0)
    log.log(1.7e9, "/v1/recommend", 200, 1.0, "v", "u1", 10)
    time.sleep(0.2)
    log.log(1.7e9, "/v1/recommend", 200, 1.0, "v", "u2", 10)
    assert log.written == 0  # still gathering
    log.flush(timeout=10)
    assert log.written == 2
    assert len(log.path.read_text().splitlines()) == 2
    log.close()
