"""The request-log writer: format, salted hashing, size rotation, bounded queue."""

from __future__ import annotations

import hashlib
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
        "user": hashlib.sha256(b"s399").hexdigest(),
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
