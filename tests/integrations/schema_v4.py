"""The database as sleepcoach wrote it at schema version 4, frozen for the migration tests.

The tables below are the DDL of that release, copied as they were: `integrations/storage.py`'s
tables, and the two tables the Home Assistant bridge created on its own with `create_all`
(`ha_outbox`, `ha_discovery`) in the databases of the people who used it. A test builds a
database with them, as a user's file would be, and opens it with today's code.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

storage_metadata = MetaData()

meta = Table(
    "meta",
    storage_metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

events = Table(
    "events",
    storage_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("person", String(64), nullable=True),
    Column("kind", String(64), nullable=False),
    Column("source", String(128), nullable=False),
    Column("topic", Text, nullable=False),
    Column("data", Text, nullable=False),
    Column("error", Text, nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("dedup_key", Text, nullable=True),
    Index("ix_events_ts", "ts"),
    Index("ix_events_person_kind_ts", "person", "kind", "ts"),
    Index("ix_events_fingerprint", "fingerprint"),
)
_HAS_KEY = events.c.dedup_key.is_not(None)
Index(
    "ix_events_ts_dedup_key",
    events.c.ts,
    events.c.dedup_key,
    sqlite_where=_HAS_KEY,
    postgresql_where=_HAS_KEY,
)

nudges = Table(
    "nudges",
    storage_metadata,
    Column("id", String(256), primary_key=True),
    Column("person", String(64), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("ts", Float, nullable=False),
    Column("severity", String(16), nullable=True),
    Column("payload", Text, nullable=True),
    Column("dropped", String(64), nullable=True),
    Column("published", Boolean, nullable=False, default=False),
    Index("ix_nudges_person_ts", "person", "ts"),
)

nights = Table(
    "nights",
    storage_metadata,
    Column("person", String(64), primary_key=True),
    Column("night", String(32), primary_key=True),
    Column("ts", Float, nullable=False),
    Column("summary", Text, nullable=False),
)

journal = Table(
    "journal",
    storage_metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("now", Float, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("event", Text, nullable=False),
)

checkins = Table(
    "checkins",
    storage_metadata,
    Column("person", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("ts", Float, nullable=False),
    Column("rested", Integer, nullable=True),
    Column("daytime_twitching", Boolean, nullable=True),
    Column("rls", Text, nullable=False),
)

state = Table(
    "state",
    storage_metadata,
    Column("id", Integer, primary_key=True),
    Column("updated_at", Float, nullable=False),
    Column("data", Text, nullable=False),
)

# What `integrations/home_assistant.py` created itself, outside the versioned schema.
home_assistant_metadata = MetaData()

ha_outbox = Table(
    "ha_outbox",
    home_assistant_metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("nudge_id", String(256), nullable=False),
    Column("service", String(255), nullable=False),
    Column("person", String(64), nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("state", String(16), nullable=False),
    Column("done_at", Float, nullable=True),
    UniqueConstraint("nudge_id", "service", name="uq_ha_outbox_nudge_service"),
    Index("ix_ha_outbox_state_next", "state", "next_attempt_at"),
)

ha_discovery = Table(
    "ha_discovery",
    home_assistant_metadata,
    Column("topic", String(512), primary_key=True),
    Column("published_at", Float, nullable=False),
)


def create(conn: Connection, *, home_assistant: bool) -> None:
    """A version 4 database: the storage schema, and the bridge's tables if it ever ran."""
    storage_metadata.create_all(conn)
    conn.execute(meta.insert().values(key="schema", value="4"))
    if home_assistant:
        # The bridge's own `metadata.create_all(engine, tables=[outbox, discovery])`.
        home_assistant_metadata.create_all(conn)
