"""The event store: user events (view, click, purchase...) in SQLite or PostgreSQL.

One table of events keyed by the client's ``event_id`` (an insert of an id already stored is a
duplicate, not an error), and one table holding the schema version, so a newer zenrec migrates
an older store and an older zenrec refuses a newer one. SQLAlchemy Core builds the statements
for both databases; the URL picks one:

* ``sqlite:///path/events.db``: embedded, one machine (WAL journal, ``synchronous=FULL``: a
  committed batch survives a crash of the process and of the machine).
* ``postgresql://user@host/db`` (driver psycopg 3): several serving replicas write to one store.

Times are unix seconds (UTC, float): ``ts`` is when the event happened (the client's clock),
``received`` when the store committed it (the server's clock).

Example:
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> store = EventStore(f"sqlite:///{d}/events.db")
    >>> e = Event("e1", "u1", "i9", "click", 1.0, 1_700_000_000.0)
    >>> store.insert([e, e]).accepted, store.insert([e]).duplicates
    (1, 1)
    >>> [x.item_id for x in store.user_events("u1")] == ["i9"]
    True
    >>> store.close()
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zenrec._errors import ConfigError, ZenrecError

__all__ = [
    "DEFAULT_EVENT_TYPES",
    "SCHEMA_VERSION",
    "Event",
    "EventStore",
    "EventStoreError",
    "InsertResult",
]

#: Version of the tables this zenrec writes; :class:`EventStore` migrates older stores to it.
SCHEMA_VERSION = 1

#: Event types accepted unless the service is configured otherwise.
DEFAULT_EVENT_TYPES = ("view", "click", "add", "purchase", "rating")

EVENTS_TABLE = "zenrec_events"
VERSION_TABLE = "zenrec_schema"


class EventStoreError(ZenrecError):
    """The event store cannot be opened, migrated, read or written."""


@dataclass(frozen=True, slots=True)
class Event:
    """One user event, in raw ids.

    Attributes:
        event_id: The client's unique id of the event (idempotency key).
        user_id: Raw user id.
        item_id: Raw item id.
        type: Event type (``view``, ``click``, ``add``, ``purchase``, ``rating``...).
        value: A rating, a quantity, a dwell time... (1.0 when the type says it all).
        ts: When it happened, unix seconds (UTC).
        received: When the store committed it (unix seconds); 0.0 before that.
    """

    event_id: str
    user_id: str
    item_id: str
    type: str
    value: float
    ts: float
    received: float = 0.0


@dataclass(frozen=True, slots=True)
class InsertResult:
    """What one :meth:`EventStore.insert` committed."""

    accepted: int
    """Events newly stored."""
    duplicates: int
    """Events whose ``event_id`` was already stored (or repeated in the batch): not stored again."""
    seconds: float
    """Time of the transaction."""
    inserted_ids: frozenset[str] = frozenset()
    """The ``event_id`` of every event newly stored."""


def _tables(metadata: Any) -> tuple[Any, Any]:
    from sqlalchemy import Column, Float, Index, Integer, String, Table

    events = Table(
        EVENTS_TABLE,
        metadata,
        Column("event_id", String(256), primary_key=True),
        Column("user_id", String(256), nullable=False),
        Column("item_id", String(256), nullable=False),
        Column("type", String(32), nullable=False),
        Column("value", Float(53), nullable=False),
        Column("ts", Float(53), nullable=False),
        Column("received", Float(53), nullable=False),
        Index("zenrec_events_user_ts", "user_id", "ts"),
        Index("zenrec_events_ts", "ts"),
        Index("zenrec_events_received", "received"),
    )
    version = Table(VERSION_TABLE, metadata, Column("version", Integer, nullable=False))
    return events, version


def _check_url(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite"
    if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return "postgresql"
    raise ConfigError(
        f"event store URL {url!r}: expected sqlite:///path/events.db or "
        "postgresql://user@host:port/database"
    )


class EventStore:
    """User events in SQLite or PostgreSQL: idempotent batch inserts and time-ordered reads.

    Opening a store creates its tables, or migrates them to :data:`SCHEMA_VERSION`, in one
    transaction (under an advisory lock on PostgreSQL, so replicas starting together migrate
    once). Thread-safe: a connection pool serves concurrent callers.

    Args:
        url: ``sqlite:///path/events.db`` or ``postgresql://user@host:port/db``.
        pool_size: Connections kept open (PostgreSQL; SQLite uses one per thread).

    Raises:
        ConfigError: The URL is neither SQLite nor PostgreSQL.
        EventStoreError: The database cannot be reached, or holds a newer schema.
    """

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.dialect = _check_url(url)
        from sqlalchemy import MetaData, create_engine, event

        kwargs: dict[str, Any] = {}
        engine_url = url
        if self.dialect == "sqlite":
            db = Path(url[len("sqlite:///") :])
            if str(db) in ("", ":memory:"):
                raise ConfigError(
                    f"event store URL {url!r}: give a file (sqlite:///path/events.db); an "
                    "in-memory store would lose every event on restart"
                )
            db.parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30.0, "check_same_thread": False}
        else:
            engine_url = "postgresql+psycopg://" + url.split("://", 1)[1]
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        try:
            self.engine = create_engine(engine_url, **kwargs)
        except ImportError as exc:
            raise ConfigError(
                f"event store {self.dialect}: a driver is missing ({exc}); "
                "pip install 'zenrec[serve]'"
            ) from None
        if self.dialect == "sqlite":

            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                # Transactions are managed here (BEGIN IMMEDIATE), not by the driver.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            @event.listens_for(self.engine, "begin")
            def _begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        self.metadata = MetaData()
        self.events, self.version_table = _tables(self.metadata)
        self._migrate()

    # ------------------------------------------------------------------ schema
    def _migrate(self) -> None:
        from sqlalchemy import select, text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    # One migrator at a time across processes; released at commit.
                    conn.execute(text("SELECT pg_advisory_xact_lock(7260313)"))
                self.version_table.create(conn, checkfirst=True)
                row = conn.execute(select(self.version_table.c.version)).first()
                current = 0 if row is None else int(row[0])
                if current > SCHEMA_VERSION:
                    raise EventStoreError(
                        f"event store {self._safe_url()}: schema version {current} is newer than "
                        f"this zenrec's ({SCHEMA_VERSION}); upgrade zenrec"
                    )
                for v in range(current + 1, SCHEMA_VERSION + 1):
                    _MIGRATIONS[v](self, conn)
                if row is None:
                    conn.execute(self.version_table.insert().values(version=SCHEMA_VERSION))
                elif current != SCHEMA_VERSION:
                    conn.execute(self.version_table.update().values(version=SCHEMA_VERSION))
        except SQLAlchemyError as exc:
            raise EventStoreError(
                f"event store {self._safe_url()}: cannot open or migrate "
                f"({type(exc).__name__}: {str(exc).splitlines()[0]})"
            ) from None

    def schema_version(self) -> int:
        """The schema version recorded in the store."""
        from sqlalchemy import select

        with self.engine.connect() as conn:
            row = conn.execute(select(self.version_table.c.version)).first()
        return 0 if row is None else int(row[0])

    def _safe_url(self) -> str:
        """The URL without its password."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return self.dialect

    # ------------------------------------------------------------------ writes
    def insert(self, events: Iterable[Event]) -> InsertResult:
        """Store a batch in one transaction; events whose ``event_id`` is stored are skipped.

        Returns only after the transaction committed: every event of the batch is then in the
        store exactly once (this call's or an earlier one's copy).

        Raises:
            EventStoreError: The transaction failed (nothing of the batch was stored).
        """
        from sqlalchemy.exc import SQLAlchemyError

        t0 = time.perf_counter()
        now = time.time()
        rows: dict[str, dict[str, Any]] = {}
        n = 0
        for e in events:
            n += 1
            if e.event_id not in rows:
                rows[e.event_id] = {
                    "event_id": e.event_id,
                    "user_id": e.user_id,
                    "item_id": e.item_id,
                    "type": e.type,
                    "value": float(e.value),
                    "ts": float(e.ts),
                    "received": now,
                }
        if not rows:
            return InsertResult(0, 0, time.perf_counter() - t0)
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(self.events)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(self.events.c.event_id)
        )
        try:
            with self.engine.begin() as conn:
                result = conn.execute(stmt, list(rows.values()))
                ids = frozenset(str(r[0]) for r in result.fetchall())
        except SQLAlchemyError as exc:
            raise EventStoreError(
                f"event store {self._safe_url()}: insert failed "
                f"({type(exc).__name__}: {str(exc).splitlines()[0]})"
            ) from None
        return InsertResult(len(ids), n - len(ids), time.perf_counter() - t0, ids)

    # ------------------------------------------------------------------ reads
    def _rows(self, stmt: Any) -> list[Event]:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.connect() as conn:
                return [Event(*row) for row in conn.execute(stmt)]
        except SQLAlchemyError as exc:
            raise EventStoreError(
                f"event store {self._safe_url()}: read failed "
                f"({type(exc).__name__}: {str(exc).splitlines()[0]})"
            ) from None

    def _select(self) -> Any:
        from sqlalchemy import select

        c = self.events.c
        return select(c.event_id, c.user_id, c.item_id, c.type, c.value, c.ts, c.received)

    def user_events(
        self, user_id: str, *, received_after: float = 0.0, limit: int = 50
    ) -> list[Event]:
        """A user's events committed after ``received_after``, most recent (``ts``) first.

        Args:
            user_id: Raw user id.
            received_after: Keep events the store received after this time (unix seconds),
                e.g. the newest event a bundle was trained on.
            limit: At most this many events.
        """
        c = self.events.c
        stmt = (
            self._select()
            .where(c.user_id == str(user_id), c.received > received_after)
            .order_by(c.ts.desc(), c.received.desc())
            .limit(limit)
        )
        return self._rows(stmt)

    def events_between(
        self,
        start: float | None = None,
        end: float | None = None,
        *,
        by: str = "ts",
        limit: int | None = None,
    ) -> list[Event]:
        """Events with ``start <= ts < end`` (or by ``received`` with ``by="received"``),
        oldest first (ties by event id)."""
        if by not in ("ts", "received"):
            raise ConfigError(f"events_between: 'by' must be 'ts' or 'received'; got {by!r}")
        c = self.events.c
        col = c.ts if by == "ts" else c.received
        stmt = self._select()
        if start is not None:
            stmt = stmt.where(col >= start)
        if end is not None:
            stmt = stmt.where(col < end)
        stmt = stmt.order_by(col, c.event_id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._rows(stmt)

    def count(self) -> int:
        """Number of stored events."""
        from sqlalchemy import func, select

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(self.events)).scalar_one())

    def time_range(self) -> tuple[float, float, float] | None:
        """``(min ts, max ts, max received)`` of the stored events; ``None`` when empty."""
        from sqlalchemy import func, select

        c = self.events.c
        with self.engine.connect() as conn:
            row = conn.execute(select(func.min(c.ts), func.max(c.ts), func.max(c.received))).one()
        return None if row[0] is None else (float(row[0]), float(row[1]), float(row[2]))

    def per_minute(
        self, start: float | None = None, end: float | None = None
    ) -> list[tuple[int, int]]:
        """Events per minute of event time: ``(minute start in unix seconds, count)``, minutes
        without events left out (a traffic series: :meth:`write_series` writes it)."""
        from sqlalchemy import func, select

        c = self.events.c
        minute = (func.floor(c.ts / 60.0) * 60).label("minute")
        stmt = select(minute, func.count()).group_by(minute).order_by(minute)
        if start is not None:
            stmt = stmt.where(c.ts >= start)
        if end is not None:
            stmt = stmt.where(c.ts < end)
        with self.engine.connect() as conn:
            return [(int(m), int(n)) for m, n in conn.execute(stmt)]

    def write_series(self, path: str | Path, start: float | None = None) -> Path:
        """Write events per minute as a ``timestamp,count`` CSV (ISO UTC times), the table
        ``zenrec traffic forecast|detect`` reads; minutes without events are written as 0."""
        from datetime import UTC, datetime

        from zenrec._io import atomic_write_text

        counts = dict(self.per_minute(start))
        lines = ["timestamp,count"]
        if counts:
            first, last = min(counts), max(counts)
            for m in range(first, last + 60, 60):
                iso = datetime.fromtimestamp(m, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                lines.append(f"{iso},{counts.get(m, 0)}")
        atomic_write_text(path, "\n".join(lines) + "\n")
        return Path(path)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"EventStore({self._safe_url()!r})"


def _migrate_to_1(store: EventStore, conn: Any) -> None:
    """Version 1: the events table and its indexes."""
    store.events.create(conn, checkfirst=True)
    for index in store.events.indexes:
        index.create(conn, checkfirst=True)


_MIGRATIONS = {1: _migrate_to_1}


def batches(events: Sequence[Event], size: int) -> Iterable[Sequence[Event]]:
    """``events`` in slices of ``size``."""
    for i in range(0, len(events), size):
        yield events[i : i + size]
