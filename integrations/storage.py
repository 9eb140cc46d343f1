"""Storage: the coach's history and state in SQLite (WAL, batched) or PostgreSQL, via SQLAlchemy 2.

How it works: the consumer collects what one pass over the inbox produced (accepted events, refused
messages, nudges sent or dropped, night summaries, the journal of its decisions or a snapshot of the
core state) in a `Batch` and writes it in one transaction with `Storage.write`; only after that
commit does it acknowledge the MQTT messages of the batch. A burst of thousands of messages a second
therefore costs one commit (one fsync) per batch, not per message.

SQLite runs in WAL mode with `synchronous=NORMAL` by default: a commit survives the process being
killed (SIGKILL, the OOM killer) at once, and the WAL is synced at each checkpoint; a power cut
may roll back the last moments, the same bound the shipped Mosquitto config accepts for its own
queue (autosave every 100 changes). `sqlite:///path.db?synchronous=full` syncs every commit: each
acknowledged message is then on disk before the ack, at ~3 ms per commit on this project's
machines against ~0.4 ms (batching keeps a burst at one commit per batch either way).
PostgreSQL is used when the URL says so (`postgresql://…`, through psycopg 3).

The schema carries a version in the `meta` table and is migrated forward on open; a database
written by a newer sleepcoach is refused rather than damaged. Times are stored as POSIX seconds
(UTC, float), which sort and compare the same way in both databases; the read methods hand back
aware datetimes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from coach.engine import SEEN_KEEP_S
from coach.state import SEEN_MAX
from integrations.data_dir import private_sqlite
from integrations.error import ProjectError

log = logging.getLogger(__name__)

#: The schema this code writes. Bump it and append a step to `MIGRATIONS` to change the schema.
SCHEMA_VERSION = 5

metadata = MetaData()

meta_table = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Every MQTT message the coach took in: accepted ones with their event, refused ones with the
# error. `fingerprint` (packet id + topic + payload digest) recognises a QoS 1 redelivery of a
# message that was stored but whose acknowledgement never reached the broker. `dedup_key` is the
# core's duplicate key of an event whose payload had its own `ts` (`Event.key`): the core's `seen`
# is rebuilt from these on start instead of being written with the state at every commit
# (schema 2).
events_table = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),  # when it happened (the payload's ts or arrival)
    Column("received_at", Float, nullable=False),
    Column("person", String(64), nullable=True),
    Column("kind", String(64), nullable=False),  # event class name, or "refused"
    Column("source", String(128), nullable=False),
    Column("topic", Text, nullable=False),
    Column("data", Text, nullable=False),  # the event's fields as JSON, or the refused payload
    Column("error", Text, nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("dedup_key", Text, nullable=True),
    Index("ix_events_ts", "ts"),
    Index("ix_events_person_kind_ts", "person", "kind", "ts"),
    Index("ix_events_fingerprint", "fingerprint"),
)
# What the start-up query reads (the keys of the last two days, in time order), and only over the
# rows that have a key: readings without `ts` (most of them at 100 msg/s) do not pay for it.
_HAS_KEY = events_table.c.dedup_key.is_not(None)
dedup_key_index = Index(
    "ix_events_ts_dedup_key",
    events_table.c.ts,
    events_table.c.dedup_key,
    sqlite_where=_HAS_KEY,
    postgresql_where=_HAS_KEY,
)

# Every nudge decided: sent (`dropped` is null) or dropped, with why.
nudges_table = Table(
    "nudges",
    metadata,
    Column("id", String(256), primary_key=True),
    Column("person", String(64), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("severity", String(16), nullable=True),
    # The nudge JSON as published (docs/contract.md); of a dropped one, {"title", "night"} alone.
    Column("payload", Text, nullable=True),
    Column("dropped", String(64), nullable=True),
    Column("published", Boolean, nullable=False, default=False),
    Index("ix_nudges_person_ts", "person", "ts"),
)

# One summary per person and night (the `last_night` of the published state).
nights_table = Table(
    "nights",
    metadata,
    Column("person", String(64), primary_key=True),
    Column("night", String(32), primary_key=True),
    Column("ts", Float, nullable=False),
    Column("summary", Text, nullable=False),
)

# What the core decided on since the stored state was written, in order: each `decide()` input
# (the event, as `coach.event.dump_event` writes it, and the `now` it was decided at). The core's
# state is a snapshot written every few seconds, not at every commit; on start the daemon replays
# these rows on top of it. Writing the snapshot empties the table (schema 3).
journal_table = Table(
    "journal",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("now", Float, nullable=False),
    Column("kind", String(64), nullable=False),  # the event class name
    Column("event", Text, nullable=False),
)

# The morning check-in's answers, one row per person and local day (a later answer the same day
# is merged into it by the core, and the row replaced): how rested (1-5), twitching while awake,
# and the restless-legs answers as a JSON object of yes/no by question (schema 4).
checkins_table = Table(
    "checkins",
    metadata,
    Column("person", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("ts", Float, nullable=False),  # the latest answer of the day
    Column("rested", Integer, nullable=True),
    Column("daytime_twitching", Boolean, nullable=True),
    Column("rls", Text, nullable=False),  # JSON: {"urge_to_move": true, ...}, {} when none
)

# The core's state (`coach.state.dump_state`) in row 1, the device profiles' states in row 2.
CORE_STATE = 1
PROFILE_STATES = 2
state_table = Table(
    "state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("updated_at", Float, nullable=False),
    Column("data", Text, nullable=False),
)

# Home Assistant's outbox: one row per nudge and notify service, written before anything touches
# the network. `state` is pending, delivered or expired; delivered and expired rows are kept two
# days so a nudge id handed over again is recognised, not resent (schema 5; the queries live in
# `integrations.home_assistant`).
ha_outbox_table = Table(
    "ha_outbox",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("nudge_id", String(256), nullable=False),
    Column("service", String(255), nullable=False),
    Column("person", String(64), nullable=False),
    Column("data", Text, nullable=False),  # the service data as JSON
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("state", String(16), nullable=False),
    Column("done_at", Float, nullable=True),
    UniqueConstraint("nudge_id", "service", name="uq_ha_outbox_nudge_service"),
    Index("ix_ha_outbox_state_next", "state", "next_attempt_at"),
)

# The Home Assistant discovery config topics last published, so a config that no longer produces
# one (a person removed, discovery switched off) clears it on the next start (schema 5).
ha_discovery_table = Table(
    "ha_discovery",
    metadata,
    Column("topic", String(512), primary_key=True),
    Column("published_at", Float, nullable=False),
)


def _create(conn: Connection) -> None:
    """An empty database gets the current schema at once."""
    metadata.create_all(conn)


def _add_dedup_keys(conn: Connection) -> None:
    """Version 1 -> 2: `events.dedup_key`, filled from the duplicate keys in the stored state."""
    conn.execute(text("ALTER TABLE events ADD COLUMN dedup_key TEXT"))
    dedup_key_index.create(conn)
    row = conn.execute(select(state_table.c.data).where(state_table.c.id == CORE_STATE)).first()
    seen: dict[str, float] = {} if row is None else json.loads(row[0]).get("seen") or {}
    lost = 0
    for key, t in seen.items():
        # The key's event was stored with the key's instant as its `ts`, by its device (the key
        # starts with the device id); the state after this migration no longer holds the key.
        rows = conn.execute(
            select(events_table.c.id, events_table.c.source)
            .where(events_table.c.ts == t, events_table.c.dedup_key.is_(None))
            .where(events_table.c.error.is_(None))
            .order_by(events_table.c.id)
        ).all()
        if not rows:
            lost += 1
            continue
        source = key.rsplit("|", 2)[0]
        chosen = next((r.id for r in rows if r.source == source), rows[0].id)
        conn.execute(update(events_table).where(events_table.c.id == chosen).values(dedup_key=key))
    if lost:
        log.warning("%d duplicate keys had no stored event (purged) and were dropped", lost)


def _add_journal(conn: Connection) -> None:
    """Version 2 -> 3: the `journal` table (empty: the stored state covers everything so far)."""
    journal_table.create(conn)


def _add_checkins(conn: Connection) -> None:
    """Version 3 -> 4: the `checkins` table (empty: there were no check-ins before)."""
    checkins_table.create(conn)


def _add_home_assistant(conn: Connection) -> None:
    """Version 4 -> 5: the Home Assistant tables join the versioned schema.

    Up to version 4 the Home Assistant bridge created `ha_outbox` and `ha_discovery` itself, with
    this very DDL, in the databases of the people who use it: those tables and their rows stay as
    they are; the others get them empty.
    """
    for table in (ha_outbox_table, ha_discovery_table):
        table.create(conn, checkfirst=True)


#: MIGRATIONS[0] creates the current schema in an empty database; MIGRATIONS[n] takes a database
#: from version n to n + 1.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _create,
    _add_dedup_keys,
    _add_journal,
    _add_checkins,
    _add_home_assistant,
]


class StorageError(ProjectError):
    """The database could not be opened, migrated, read or written."""


# -- rows ------------------------------------------------------------------------------------
# What the consumer writes: one class per table, whose fields are the table's columns (a test
# holds them equal), in the units stored: instants as POSIX seconds, documents as JSON text.
# Plain dataclasses, not slotted: `Storage.write` hands each row's own `__dict__` to the insert,
# so a typed row costs nothing over a dict.


@dataclass
class EventRow:
    """A message the coach took in: an event it accepted, or a refused message and why."""

    ts: float  # when it happened: the payload's ts, or its arrival
    received_at: float
    person: str | None
    kind: str  # the event's class name, or "refused"
    source: str
    topic: str
    data: str  # the event's own fields as JSON, or an excerpt of the refused payload
    error: str | None = None
    fingerprint: str | None = None  # recognises a QoS 1 redelivery of a stored message
    dedup_key: str | None = None  # the core's duplicate key (a payload with its own ts)


@dataclass
class NudgeRow:
    """A nudge decided: sent (its payload, published once the broker confirms), or dropped."""

    id: str
    person: str
    rule: str
    ts: float
    severity: str | None
    payload: str | None  # the nudge as published (JSON); when dropped {"title", "night"}
    dropped: str | None = None  # why it was not sent
    published: bool = False


@dataclass
class NightRow:
    """A night's summary (one per person and night; a later one replaces it)."""

    person: str
    night: str
    ts: float
    summary: str  # JSON


@dataclass
class CheckinRow:
    """A day's check-in answers as they stand (one per person and day; a later one replaces it)."""

    person: str
    day: str
    ts: float
    rested: int | None
    daytime_twitching: bool | None
    rls: str  # JSON


@dataclass
class JournalRow:
    """One `decide()` input since the stored state: when it was decided, and the event."""

    now: float
    kind: str  # the event's class name
    event: str  # `coach.event.dump_event`'s JSON


@dataclass(slots=True)
class Batch:
    """What one pass of the consumer wants stored, in one transaction."""

    events: list[EventRow] = field(default_factory=list)
    nudges: list[NudgeRow] = field(default_factory=list)
    nights: dict[tuple[str, str], NightRow] = field(default_factory=dict)
    checkins: dict[tuple[str, str], CheckinRow] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    # decide() inputs since the last snapshot.
    journal: list[JournalRow] = field(default_factory=list)
    # A snapshot of the core's state covering every decision so far: it replaces the journal.
    state: bytes | None = None
    profile_states: bytes | None = None

    def __len__(self) -> int:
        return (
            len(self.events)
            + len(self.nudges)
            + len(self.nights)
            + len(self.checkins)
            + len(self.published)
            + len(self.journal)
        )

    def is_empty(self) -> bool:
        """Nothing to write."""
        return not len(self) and self.state is None and self.profile_states is None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event (or refused message) read back from storage."""

    ts: datetime
    received_at: datetime
    person: str | None
    kind: str
    source: str
    topic: str
    data: dict[str, Any]
    error: str | None


@dataclass(frozen=True, slots=True)
class StoredNudge:
    """A nudge read back from storage: the published payload, or why it was dropped."""

    id: str
    person: str
    rule: str
    ts: datetime
    severity: str | None
    payload: dict[str, Any] | None
    dropped: str | None
    published: bool


@dataclass(frozen=True, slots=True)
class StoredCheckin:
    """A day's check-in answers read back from storage."""

    person: str
    day: str
    ts: datetime
    rested: int | None
    daytime_twitching: bool | None
    rls: dict[str, bool]


@dataclass(frozen=True, slots=True)
class StoredNight:
    """A night summary read back from storage."""

    person: str
    night: str
    ts: datetime
    summary: dict[str, Any]


def fingerprint(mid: int, topic: str, payload: bytes) -> str:
    """Recognises a redelivered QoS 1 message: packet id, topic and payload digest."""
    digest = hashlib.blake2b(payload, digest_size=12, key=topic.encode()[:64]).hexdigest()
    return f"{mid}:{digest}"


#: How much of a refused payload is kept: enough to see what a device sent, little enough that a
#: flood of junk cannot fill the disk (a refused message kept up to 4 KB for a year before).
REFUSED_EXCERPT_BYTES = 512


def excerpt(payload: bytes, limit: int = REFUSED_EXCERPT_BYTES) -> str:
    """A refused payload as storable text: its first `limit` bytes, binary-safe.

    Bytes that are not UTF-8 and control characters (NUL among them, which PostgreSQL refuses in
    text) are written as `\\xNN`; a longer payload ends with how long it was in all.
    """
    head = payload[:limit].decode("utf-8", "backslashreplace")
    head = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", head)
    if len(payload) > limit:
        head += f"… ({len(payload)} bytes in all)"
    return head


def db_text(text: str) -> str:
    """Text any database stores: NUL, which PostgreSQL refuses in text, written as `\\x00`."""
    return text.replace("\x00", "\\x00") if "\x00" in text else text


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def engine_url(url: str) -> str:
    """The SQLAlchemy URL for a config URL: `postgresql://` is driven by psycopg 3."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def safe_url(url: str) -> str:
    """The URL with any password masked, for logs and messages."""
    try:
        return make_url(engine_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable storage URL>"


SYNCHRONOUS = ("normal", "full")


def _sqlite_pragmas(synchronous: str) -> Callable[[Any, Any], None]:
    def apply(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL: readers (the report) never block the writer, and a commit appends instead of
        # rewriting pages. The sync level: see the module docstring.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()

    return apply


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _event_params(row: EventRow) -> dict[str, Any]:
    """An events row as insert parameters, in text PostgreSQL takes: what a publisher chose (a
    refused payload, the error that quotes it, a topic) may hold NUL, which PostgreSQL refuses in
    text; one such row failed every commit after it and held every acknowledgement."""
    if row.error is None and "\x00" not in row.topic:
        return vars(row)  # an accepted event: its data is JSON, where NUL is always escaped
    return {
        **vars(row),
        "topic": db_text(row.topic),
        "data": db_text(row.data),
        "error": None if row.error is None else db_text(row.error),
    }


@contextmanager
def _reading(url: str) -> Iterator[None]:
    """Turn a database failure while reading into a StorageError naming the database."""
    try:
        yield
    except SQLAlchemyError as err:
        raise StorageError(f"cannot read {safe_url(url)}: {_reason(err)}") from err


class Storage:
    """The database: open (and migrate) it, write batches, read history, purge old rows."""

    def __init__(self, engine: Engine, url: str, keep_days: int) -> None:
        """Wrap an engine; use `Storage.open`."""
        self.engine = engine
        self.url = url
        self.keep_days = keep_days
        self._upsert_nudge, self._upsert_night, self._upsert_checkin = _upserts(engine.dialect.name)

    @classmethod
    def open(cls, url: str, keep_days: int = 365) -> Storage:
        """Connect, migrate the schema forward, and return the storage.

        The default database (no `storage.url`) is the config's own: `integrations.identity`.
        """
        shown = safe_url(url)
        try:
            sa_url = make_url(engine_url(url))
        except ArgumentError as err:
            msg = f"storage.url {shown!r} is not a database URL (sqlite:///… or postgresql://…)"
            raise StorageError(msg) from err
        synchronous = "normal"
        if sa_url.get_backend_name() == "sqlite":
            synchronous = str(sa_url.query.get("synchronous", "normal")).lower()
            if synchronous not in SYNCHRONOUS:
                msg = f"storage.url {shown!r}: synchronous must be normal or full"
                raise StorageError(msg)
            sa_url = sa_url.difference_update_query(["synchronous"])
            if sa_url.database not in (None, "", ":memory:"):
                database = Path(sa_url.database).expanduser()
                database.parent.mkdir(parents=True, exist_ok=True)
                private_sqlite(database)  # health data: owner-only, its -wal and -shm too
        try:
            engine = create_engine(sa_url, pool_pre_ping=sa_url.get_backend_name() != "sqlite")
        except (ArgumentError, ImportError) as err:
            raise StorageError(f"cannot use storage {shown}: {err}") from err
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas(synchronous))
        storage = cls(engine, url, keep_days)
        try:
            storage.migrate()
        except SQLAlchemyError as err:
            engine.dispose()
            raise StorageError(f"cannot open storage {shown}: {_reason(err)}") from err
        except StorageError:
            engine.dispose()
            raise
        return storage

    # -- schema -------------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The version of the schema in the database (0 when empty)."""
        with _reading(self.url), self.engine.connect() as conn:
            return _read_version(conn)

    def migrate(self) -> int:
        """Bring the schema to `SCHEMA_VERSION`; return the version found before."""
        with self.engine.begin() as conn:
            found = _read_version(conn)
            if found > SCHEMA_VERSION:
                msg = (
                    f"the database {safe_url(self.url)} has schema version {found}, newer than "
                    f"this sleepcoach understands ({SCHEMA_VERSION}); upgrade sleepcoach"
                )
                raise StorageError(msg)
            if found == 0:
                MIGRATIONS[0](conn)
                _write_version(conn, SCHEMA_VERSION)
            else:
                for version in range(found, SCHEMA_VERSION):
                    MIGRATIONS[version](conn)
                    _write_version(conn, version + 1)
            if found < SCHEMA_VERSION:
                log.info("storage schema migrated from version %d to %d", found, SCHEMA_VERSION)
        return found

    # -- writing ------------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        """Store a batch in one transaction; when this returns, it is on disk."""
        if batch.is_empty():
            return
        try:
            with self.engine.begin() as conn:
                if batch.events:
                    conn.execute(events_table.insert(), [_event_params(r) for r in batch.events])
                if batch.nudges:
                    conn.execute(self._upsert_nudge, [vars(r) for r in batch.nudges])
                if batch.nights:
                    conn.execute(self._upsert_night, [vars(r) for r in batch.nights.values()])
                if batch.checkins:
                    conn.execute(self._upsert_checkin, [vars(r) for r in batch.checkins.values()])
                if batch.published:
                    conn.execute(
                        update(nudges_table)
                        .where(nudges_table.c.id.in_(batch.published))
                        .values(published=True)
                    )
                if batch.state is not None:
                    # The snapshot covers the journal so far and this batch's entries.
                    conn.execute(delete(journal_table))
                    self._write_state(conn, CORE_STATE, batch.state)
                elif batch.journal:
                    conn.execute(journal_table.insert(), [vars(r) for r in batch.journal])
                if batch.profile_states is not None:
                    self._write_state(conn, PROFILE_STATES, batch.profile_states)
        except SQLAlchemyError as err:
            raise StorageError(f"cannot write to {safe_url(self.url)}: {_reason(err)}") from err

    def _write_state(self, conn: Connection, row: int, data: bytes) -> None:
        now = datetime.now(UTC).timestamp()
        text = data.decode()
        done = conn.execute(
            update(state_table).where(state_table.c.id == row).values(updated_at=now, data=text)
        )
        if done.rowcount == 0:
            conn.execute(state_table.insert().values(id=row, updated_at=now, data=text))

    # -- reading ------------------------------------------------------------------------------

    def load_state(self) -> bytes | None:
        """The stored core state (JSON bytes), None on a first run."""
        return self._read_state(CORE_STATE)

    def load_journal(self) -> list[JournalRow]:
        """What was decided on since the stored state, in order."""
        query = select(journal_table.c.now, journal_table.c.kind, journal_table.c.event)
        with _reading(self.url), self.engine.connect() as conn:
            rows = conn.execute(query.order_by(journal_table.c.seq)).all()
        return [JournalRow(float(now), str(kind), str(event)) for now, kind, event in rows]

    def load_profile_states(self) -> dict[str, dict[str, Any]]:
        """The device profiles' states by device id ({} on a first run)."""
        raw = self._read_state(PROFILE_STATES)
        return {} if raw is None else dict(json.loads(raw))

    def _read_state(self, row_id: int) -> bytes | None:
        with _reading(self.url), self.engine.connect() as conn:
            row = conn.execute(select(state_table.c.data).where(state_table.c.id == row_id)).first()
        return None if row is None else str(row[0]).encode()

    def dedup_keys(self, since: datetime, limit: int = SEEN_MAX) -> list[tuple[str, float]]:
        """The duplicate keys of events from `since` on, with their instants, in time order: the
        newest `limit` of them (the most the core keeps), so a start never reads more."""
        query = (
            select(events_table.c.dedup_key, events_table.c.ts)
            .where(_HAS_KEY, events_table.c.ts >= since.timestamp())
            .order_by(events_table.c.ts.desc(), events_table.c.id.desc())
            .limit(limit)
        )
        with _reading(self.url), self.engine.connect() as conn:
            return [(str(key), float(ts)) for key, ts in conn.execute(query)][::-1]

    def has_fingerprint(self, fp: str) -> bool:
        """Whether a message with this fingerprint was already stored."""
        with _reading(self.url), self.engine.connect() as conn:
            row = conn.execute(
                select(events_table.c.id).where(events_table.c.fingerprint == fp).limit(1)
            ).first()
        return row is not None

    def unpublished_nudges(self, since: datetime | None = None) -> list[StoredNudge]:
        """Nudges decided and stored but whose publication the broker never confirmed."""
        return list(self.nudges(since=since, unpublished_only=True))

    def events(
        self,
        person: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: Sequence[str] | None = None,
    ) -> Iterator[StoredEvent]:
        """Stored events in time order, optionally of one person, a period and some kinds."""
        query = select(events_table).order_by(events_table.c.ts, events_table.c.id)
        if person is not None:
            query = query.where(events_table.c.person == person)
        if since is not None:
            query = query.where(events_table.c.ts >= since.timestamp())
        if until is not None:
            query = query.where(events_table.c.ts < until.timestamp())
        if kinds is not None:
            query = query.where(events_table.c.kind.in_(list(kinds)))
        with _reading(self.url), self.engine.connect() as conn:
            for row in conn.execute(query):
                yield StoredEvent(
                    ts=_ts(row.ts),
                    received_at=_ts(row.received_at),
                    person=row.person,
                    kind=row.kind,
                    source=row.source,
                    topic=row.topic,
                    data=json.loads(row.data) if row.error is None else {"payload": row.data},
                    error=row.error,
                )

    def nudges(
        self,
        person: str | None = None,
        since: datetime | None = None,
        *,
        unpublished_only: bool = False,
    ) -> Iterator[StoredNudge]:
        """Stored nudges (sent and dropped) in time order."""
        query = select(nudges_table).order_by(nudges_table.c.ts, nudges_table.c.id)
        if person is not None:
            query = query.where(nudges_table.c.person == person)
        if since is not None:
            query = query.where(nudges_table.c.ts >= since.timestamp())
        if unpublished_only:
            query = query.where(
                nudges_table.c.published.is_(False), nudges_table.c.dropped.is_(None)
            )
        with _reading(self.url), self.engine.connect() as conn:
            for row in conn.execute(query):
                yield StoredNudge(
                    id=row.id,
                    person=row.person,
                    rule=row.rule,
                    ts=_ts(row.ts),
                    severity=row.severity,
                    payload=json.loads(row.payload) if row.payload else None,
                    dropped=row.dropped,
                    published=bool(row.published),
                )

    def nights(self, person: str | None = None, since: str | None = None) -> Iterator[StoredNight]:
        """Stored night summaries, oldest first; `since` an evening's date (ISO), inclusive."""
        query = select(nights_table).order_by(nights_table.c.night, nights_table.c.person)
        if person is not None:
            query = query.where(nights_table.c.person == person)
        if since is not None:
            query = query.where(nights_table.c.night >= since)
        with _reading(self.url), self.engine.connect() as conn:
            for row in conn.execute(query):
                yield StoredNight(row.person, row.night, _ts(row.ts), json.loads(row.summary))

    def checkins(
        self, person: str | None = None, since: str | None = None
    ) -> Iterator[StoredCheckin]:
        """Stored check-ins, oldest day first; `since` a local date (ISO), inclusive."""
        query = select(checkins_table).order_by(checkins_table.c.day, checkins_table.c.person)
        if person is not None:
            query = query.where(checkins_table.c.person == person)
        if since is not None:
            query = query.where(checkins_table.c.day >= since)
        with _reading(self.url), self.engine.connect() as conn:
            for row in conn.execute(query):
                yield StoredCheckin(
                    person=row.person,
                    day=row.day,
                    ts=_ts(row.ts),
                    rested=row.rested,
                    daytime_twitching=row.daytime_twitching,
                    rls=json.loads(row.rls),
                )

    def count(self, table: str = "events") -> int:
        """How many rows a table holds (for tests, benchmarks and `--check`)."""
        tables = {
            "events": events_table,
            "nudges": nudges_table,
            "nights": nights_table,
            "checkins": checkins_table,
        }
        with _reading(self.url), self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(tables[table])).scalar_one())

    # -- upkeep -------------------------------------------------------------------------------

    def purge(self, now: datetime) -> int:
        """Delete history older than `keep_days`; return how many rows went."""
        horizon = now - timedelta(days=self.keep_days)
        cutoff = horizon.timestamp()
        # Events with a duplicate key stay as long as the core remembers keys (two days), even
        # with `keep_days: 1`: the daemon rebuilds the core's `seen` from them.
        keys_cutoff = min(cutoff, (now - timedelta(seconds=SEEN_KEEP_S)).timestamp())
        removed = 0
        try:
            with self.engine.begin() as conn:
                # By the earlier of when it happened and when it arrived: a row dated in the
                # future (stored before the time policy refused such dates) goes too.
                ts, arrived = events_table.c.ts, events_table.c.received_at
                removed += conn.execute(
                    delete(events_table).where(
                        or_(ts < cutoff, arrived < cutoff),
                        or_(
                            events_table.c.dedup_key.is_(None),
                            ts < keys_cutoff,
                            arrived < keys_cutoff,
                        ),
                    )
                ).rowcount
                removed += conn.execute(
                    delete(nudges_table).where(nudges_table.c.ts < cutoff)
                ).rowcount
                removed += conn.execute(
                    delete(nights_table).where(nights_table.c.ts < cutoff)
                ).rowcount
                removed += conn.execute(
                    delete(checkins_table).where(checkins_table.c.ts < cutoff)
                ).rowcount
        except SQLAlchemyError as err:
            raise StorageError(f"cannot purge {safe_url(self.url)}: {_reason(err)}") from err
        if removed:
            log.info("purged %d stored rows older than %d days", removed, self.keep_days)
        return removed

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()


def _read_version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, "meta"):
        return 0
    row = conn.execute(select(meta_table.c.value).where(meta_table.c.key == "schema")).first()
    return 0 if row is None else int(row[0])


def _write_version(conn: Connection, version: int) -> None:
    if not conn.dialect.has_table(conn, "meta"):
        meta_table.create(conn)
    done = conn.execute(
        update(meta_table).where(meta_table.c.key == "schema").values(value=str(version))
    )
    if done.rowcount == 0:
        conn.execute(meta_table.insert().values(key="schema", value=str(version)))


def _upserts(dialect: str) -> tuple[Any, Any, Any]:
    """Insert statements that tolerate a row already there (a replay after a crash); a night's
    summary and a day's check-in replace the stored one."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # noqa: PLC0415
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # noqa: PLC0415
    else:
        msg = f"unsupported database {dialect!r}: use SQLite or PostgreSQL"
        raise StorageError(msg)
    nudge = insert(nudges_table).on_conflict_do_nothing(index_elements=["id"])
    night = insert(nights_table)
    night = night.on_conflict_do_update(
        index_elements=["person", "night"],
        set_={"ts": night.excluded.ts, "summary": night.excluded.summary},
    )
    checkin = insert(checkins_table)
    checkin = checkin.on_conflict_do_update(
        index_elements=["person", "day"],
        set_={
            name: checkin.excluded[name] for name in ("ts", "rested", "daytime_twitching", "rls")
        },
    )
    return nudge, night, checkin


def _reason(err: SQLAlchemyError) -> str:
    """The database's own message, without SQL or parameters (which may hold personal data)."""
    orig = getattr(err, "orig", None)
    text = str(orig if orig is not None else err).strip().splitlines()
    return text[0] if text else type(err).__name__
