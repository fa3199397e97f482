"""The event store on SQLite and on a real PostgreSQL server: idempotency, one transaction per
batch, reads, schema version and migration, concurrent writers in two processes."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from zenrec._errors import ConfigError
from zenrec.events import SCHEMA_VERSION, Event, EventStore, EventStoreError


def ev(i: int, user: str = "u1", item: str | None = None, ts: float | None = None) -> Event:
    return Event(f"e{i}", user, item or f"i{i}", "click", 1.0, 1_000_000.0 + (ts if ts else i))


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(url):
    s = EventStore(url)
    # PostgreSQL's server lives for the session: start each test from an empty table.
    with s.engine.begin() as conn:
        conn.execute(s.events.delete())
    yield s
    s.close()


def test_insert_is_idempotent_by_event_id(store):
    r = store.insert([ev(1), ev(2), ev(1)])
    assert (r.accepted, r.duplicates) == (2, 1)
    r = store.insert([ev(2), ev(3)])
    assert (r.accepted, r.duplicates) == (1, 1)
    assert store.count() == 3
    # The first copy wins: a re-sent id with other fields does not overwrite it.
    store.insert([Event("e1", "u1", "other", "view", 5.0, 0.0)])
    assert [e.item_id for e in store.events_between() if e.event_id == "e1"] == ["i1"]


def test_reads_order_and_bounds(store):
    store.insert([ev(i, user="u1" if i % 2 else "u2") for i in range(1, 11)])
    mine = store.user_events("u1", limit=3)
    assert [e.event_id for e in mine] == ["e9", "e7", "e5"]  # most recent first, bounded
    assert all(e.received > 0 for e in mine)
    assert store.user_events("u1", received_after=mine[0].received + 1) == []
    window = store.events_between(1_000_003.0, 1_000_006.0)
    assert [e.event_id for e in window] == ["e3", "e4", "e5"]
    lo, hi, rec = store.time_range()
    assert (lo, hi) == (1_000_001.0, 1_000_010.0) and rec >= mine[0].received


def test_per_minute_series_is_read_by_traffic(store, tmp_path):
    base = 1_700_000_000.0 - 1_700_000_000.0 % 60
    store.insert([ev(i, ts=base - 1_000_000.0 + s) for i, s in enumerate([0, 10, 59, 60, 185])])
    assert store.per_minute() == [(int(base), 3), (int(base) + 60, 1), (int(base) + 180, 1)]
    path = store.write_series(tmp_path / "events.csv")
    from zenrec.traffic.readers import load_series

    series = load_series(path)
    assert list(series.values) == [3, 1, 0, 1]


def test_failed_batch_stores_nothing(store):
    bad = Event("e2", "u1", "i2", "x" * 100, 1.0, 1.0)  # type longer than its column
    if store.dialect == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    with pytest.raises(EventStoreError, match="insert failed"):
        store.insert([ev(1), bad])
    assert store.count() == 0


def test_schema_version_recorded_and_newer_refused(url, store):
    assert store.schema_version() == SCHEMA_VERSION
    with store.engine.begin() as conn:
        conn.execute(store.version_table.update().values(version=SCHEMA_VERSION + 1))
    try:
        with pytest.raises(EventStoreError, match="newer than this zenrec"):
            EventStore(url)
    finally:
        with store.engine.begin() as conn:
            conn.execute(store.version_table.update().values(version=SCHEMA_VERSION))


def test_migrates_a_store_without_version_table(tmp_path):
    db = tmp_path / "old.db"
    EventStore(f"sqlite:///{db}").close()
    con = sqlite3.connect(db)
    con.execute("DROP TABLE zenrec_schema")
    con.commit()
    con.close()
    s = EventStore(f"sqlite:///{db}")
    assert s.schema_version() == SCHEMA_VERSION
    s.close()


def test_sqlite_uses_wal(tmp_path):
    s = EventStore(f"sqlite:///{tmp_path}/e.db")
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    s.close()


def test_bad_urls():
    with pytest.raises(ConfigError, match="expected sqlite"):
        EventStore("mysql://x/y")
    with pytest.raises(ConfigError, match="in-memory"):
        EventStore("sqlite:///:memory:")


def _writer(url: str, worker: int, n: int) -> None:
    s = EventStore(url)
    for b in range(0, n, 50):
        # Both processes send ids 0..n-1 (overlapping) plus their own ids.
        s.insert(
            [ev(i) for i in range(b, b + 50)]
            + [ev(10_000 * (worker + 1) + i) for i in range(b, b + 50)]
        )
    s.close()


def test_two_processes_write_concurrently(url, store):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, w, 500)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    ids = [e.event_id for e in store.events_between()]
    assert len(ids) == len(set(ids)) == 500 + 2 * 500
