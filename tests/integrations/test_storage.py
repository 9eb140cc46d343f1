"""Storage: batches, state, migrations, retention; against SQLite always and PostgreSQL when set."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, create_engine, inspect, text

from integrations import storage as storage_module
from integrations.home_assistant import NotifyCall, Outbox
from integrations.storage import (
    Batch,
    CheckinRow,
    EventRow,
    JournalRow,
    NightRow,
    NudgeRow,
    Storage,
    StorageError,
    fingerprint,
    safe_url,
)
from tests.integrations import schema_v4
from tests.integrations.databases import PG_URL, pg_schema_url

NOW = datetime(2026, 11, 24, 21, 5, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Storage]:
    s = Storage.open(db_url, keep_days=30)
    yield s
    s.close()


def _event(
    ts: datetime,
    n: int = 0,
    person: str = "alex",
    fp: str | None = None,
    key: str | None = None,
    source: str = "coffee",
) -> EventRow:
    return EventRow(
        ts=ts.timestamp(),
        received_at=ts.timestamp(),
        person=person,
        kind="CoffeeBrewed",
        source=source,
        topic="home/kitchen/coffee",
        data=json.dumps({"drink": "espresso", "n": n}),
        fingerprint=fp,
        dedup_key=key,
    )


def _key(source: str, at: datetime, digest: str = "0123456789abcdef") -> str:
    """A duplicate key as the core's parser makes it: device, the payload's ts, payload digest."""
    return f"{source}|{at.isoformat()}|{digest}"


def _nudge(nudge_id: str, ts: datetime, *, dropped: str | None = None) -> NudgeRow:
    return NudgeRow(
        id=nudge_id,
        person="alex",
        rule="caffeine.cutoff",
        ts=ts.timestamp(),
        severity="warning",
        payload=json.dumps({"id": nudge_id}),
        dropped=dropped,
    )


def test_a_batch_is_stored_in_one_write_and_read_back_in_time_order(store: Storage) -> None:
    batch = Batch(events=[_event(NOW + timedelta(seconds=-i), i) for i in range(100)])
    store.write(batch)
    events = list(store.events(person="alex"))
    assert len(events) == 100
    assert [e.data["n"] for e in events] == list(range(99, -1, -1))
    assert events[0].ts.tzinfo is not None


def test_the_state_is_replaced_not_appended(store: Storage) -> None:
    assert store.load_state() is None
    store.write(Batch(state=b'{"version": 1, "n": 1}'))
    store.write(Batch(state=b'{"version": 1, "n": 2}'))
    assert store.load_state() == b'{"version": 1, "n": 2}'


def test_a_nudge_stored_twice_stays_one_row_and_publication_is_recorded(store: Storage) -> None:
    store.write(Batch(nudges=[_nudge("caffeine.cutoff:alex:2026-11-24:2105", NOW)]))
    store.write(Batch(nudges=[_nudge("caffeine.cutoff:alex:2026-11-24:2105", NOW)]))
    store.write(
        Batch(nudges=[_nudge("winddown.stretch:alex:2026-11-24", NOW, dropped="quiet_hours")])
    )
    assert store.count("nudges") == 2
    assert [n.id for n in store.unpublished_nudges()] == ["caffeine.cutoff:alex:2026-11-24:2105"]
    store.write(Batch(published=["caffeine.cutoff:alex:2026-11-24:2105"]))
    assert store.unpublished_nudges() == []


def test_a_night_summary_is_updated_in_place(store: Storage) -> None:
    key = ("alex", "2026-11-24")
    store.write(Batch(nights={key: NightRow("alex", "2026-11-24", 1.0, '{"twitches": 3}')}))
    store.write(Batch(nights={key: NightRow("alex", "2026-11-24", 2.0, '{"twitches": 5}')}))
    nights = list(store.nights("alex"))
    assert [(n.night, n.summary) for n in nights] == [("2026-11-24", {"twitches": 5})]


def test_nights_since_an_evening_leave_out_the_older_ones(store: Storage) -> None:
    rows = {
        (person, night): NightRow(person, night, 1.0, "{}")
        for person in ("alex", "sam")
        for night in ("2026-11-22", "2026-11-23", "2026-11-24")
    }
    store.write(Batch(nights=rows))
    assert [(n.person, n.night) for n in store.nights(since="2026-11-23")] == [
        ("alex", "2026-11-23"),
        ("sam", "2026-11-23"),
        ("alex", "2026-11-24"),
        ("sam", "2026-11-24"),
    ]
    assert [n.night for n in store.nights("sam", since="2026-11-24")] == ["2026-11-24"]


def test_a_redelivered_message_is_recognised_by_its_fingerprint(store: Storage) -> None:
    fp = fingerprint(17, "home/kitchen/coffee", b'{"event": "brew"}')
    assert fp != fingerprint(17, "home/kitchen/tea", b'{"event": "brew"}')
    assert fp != fingerprint(18, "home/kitchen/coffee", b'{"event": "brew"}')
    assert not store.has_fingerprint(fp)
    store.write(Batch(events=[_event(NOW, fp=fp)]))
    assert store.has_fingerprint(fp)


def test_purge_removes_what_is_older_than_keep_days(store: Storage) -> None:
    old, new = NOW - timedelta(days=31), NOW - timedelta(days=29)
    store.write(
        Batch(
            events=[_event(old, 1), _event(new, 2)],
            nudges=[_nudge("old", old), _nudge("new", new)],
            nights={
                ("alex", "a"): NightRow("alex", "a", old.timestamp(), "{}"),
                ("alex", "b"): NightRow("alex", "b", new.timestamp(), "{}"),
            },
        )
    )
    assert store.purge(NOW) == 3
    assert [e.data["n"] for e in store.events()] == [2]
    assert [n.id for n in store.nudges()] == ["new"]
    assert [n.night for n in store.nights()] == ["b"]


def test_opening_a_new_database_writes_the_current_schema_version(store: Storage) -> None:
    assert store.schema_version() == storage_module.SCHEMA_VERSION
    assert store.migrate() == storage_module.SCHEMA_VERSION  # nothing to do the second time


def test_a_database_from_a_newer_sleepcoach_is_refused(db_url: str) -> None:
    s = Storage.open(db_url)
    with s.engine.begin() as conn:
        conn.execute(text("UPDATE meta SET value = '99' WHERE key = 'schema'"))
    s.close()
    with pytest.raises(StorageError, match="schema version 99, newer"):
        Storage.open(db_url)


def test_an_older_schema_is_migrated_forward_step_by_step(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Storage.open(db_url).close()
    steps: list[int] = []

    def add_column(conn: object) -> None:
        steps.append(2)
        conn.execute(text("ALTER TABLE events ADD COLUMN note TEXT"))  # type: ignore[attr-defined]

    current = storage_module.SCHEMA_VERSION
    monkeypatch.setattr(storage_module, "SCHEMA_VERSION", current + 1)
    monkeypatch.setattr(storage_module, "MIGRATIONS", [*storage_module.MIGRATIONS, add_column])
    s = Storage.open(db_url)
    assert steps == [2]
    assert s.schema_version() == current + 1
    s.close()


def test_duplicate_keys_are_read_back_from_a_horizon_in_time_order(store: Storage) -> None:
    at = [NOW - timedelta(hours=h) for h in (50, 47, 30, 1)]
    store.write(
        Batch(
            events=[
                _event(at[3], 0, key=_key("coffee", at[3])),
                _event(at[0], 1, key=_key("coffee", at[0])),
                _event(at[1], 2, key=_key("watch", at[1])),
                _event(at[2], 3),  # a payload without ts has no key
            ]
        )
    )
    assert store.dedup_keys(NOW - timedelta(hours=48)) == [
        (_key("watch", at[1]), at[1].timestamp()),
        (_key("coffee", at[3]), at[3].timestamp()),
    ]


def test_a_start_reads_at_most_the_newest_keys_the_core_keeps(store: Storage) -> None:
    """A restart after a flood of keyed readings read every key of two days (a peak of
    458 MiB after 1,000,000): only the newest the core would keep are read."""
    at = [NOW - timedelta(minutes=m) for m in range(5)]
    store.write(Batch(events=[_event(a, i, key=_key("watch", a)) for i, a in enumerate(at)]))
    got = store.dedup_keys(NOW - timedelta(hours=48), limit=3)
    assert got == [(_key("watch", a), a.timestamp()) for a in reversed(at[:3])]


def test_purge_goes_by_arrival_too_so_rows_dated_in_the_future_go(store: Storage) -> None:
    """Rows dated in the future (kept before the time policy refused such dates) were never
    purged: now a row goes `keep_days` after it happened or arrived, whichever is earlier."""
    future, arrived = NOW + timedelta(days=400), NOW - timedelta(days=31)
    rows = [
        dataclasses.replace(_event(future, 0), received_at=arrived.timestamp()),
        dataclasses.replace(
            _event(future, 1, key=_key("coffee", future)), received_at=arrived.timestamp()
        ),
        _event(NOW - timedelta(days=29), 2),
    ]
    store.write(Batch(events=rows))
    assert store.purge(NOW) == 2
    assert [e.data["n"] for e in store.events()] == [2]


def test_purge_keeps_keyed_events_as_long_as_the_core_remembers_keys(db_url: str) -> None:
    store = Storage.open(db_url, keep_days=1)
    at = [NOW - timedelta(hours=h) for h in (49, 30, 30)]
    store.write(
        Batch(
            events=[
                _event(at[0], 0, key=_key("coffee", at[0])),
                _event(at[1], 1, key=_key("coffee", at[1])),
                _event(at[2], 2),
            ]
        )
    )
    assert store.purge(NOW) == 2  # older than a day: the unkeyed one, and the key past 48 h
    assert [e.data["n"] for e in store.events()] == [1]
    assert store.dedup_keys(NOW - timedelta(days=3)) == [(_key("coffee", at[1]), at[1].timestamp())]
    store.close()


def test_a_version_1_database_gets_its_duplicate_keys_from_the_stored_state(db_url: str) -> None:
    # A database as schema 1 left it: no key column, the core's keys inside the stored state.
    Storage.open(db_url).close()
    engine = create_engine(storage_module.engine_url(db_url))
    at = NOW - timedelta(hours=3)
    rows = [
        _event(at + timedelta(seconds=0.5), 0, source="watch"),  # its payload had no ts
        _event(at, 1, source="watch"),  # two devices' readings at the same instant
        _event(at, 2, source="coffee"),
        _event(at - timedelta(hours=1), 3, source="coffee"),
    ]
    watch_key, coffee_key = _key("watch", at, "fedcba9876543210"), _key("coffee", at)
    purged_key = _key("coffee", NOW - timedelta(hours=20))
    seen = {coffee_key: at.timestamp(), watch_key: at.timestamp(), purged_key: 0.0}
    state = {"version": 1, "people": {}, "seen": seen, "sent": {}, "dropped": {}, "clock": 0}
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE checkins"))  # schema 4
        conn.execute(text("DROP TABLE journal"))  # schema 3
        conn.execute(text("DROP INDEX ix_events_ts_dedup_key"))
        conn.execute(text("ALTER TABLE events DROP COLUMN dedup_key"))
        conn.execute(text("UPDATE meta SET value = '1' WHERE key = 'schema'"))
        conn.execute(
            storage_module.events_table.insert(),
            [{k: v for k, v in vars(r).items() if k != "dedup_key"} for r in rows],
        )
        conn.execute(
            storage_module.state_table.insert().values(
                id=storage_module.CORE_STATE, updated_at=0.0, data=json.dumps(state)
            )
        )
    engine.dispose()
    migrated = Storage.open(db_url)
    assert migrated.schema_version() == storage_module.SCHEMA_VERSION
    # Each key found its own event (same instant, same device); one whose event is gone is not
    # invented.
    with migrated.engine.connect() as conn:
        by_n = {
            json.loads(data)["n"]: key
            for data, key in conn.execute(text("SELECT data, dedup_key FROM events"))
        }
    assert by_n == {0: None, 1: watch_key, 2: coffee_key, 3: None}
    assert migrated.dedup_keys(NOW - timedelta(days=2)) == [
        (watch_key, at.timestamp()),
        (coffee_key, at.timestamp()),
    ]
    migrated.close()


@pytest.mark.parametrize(
    ("query", "level"),
    [("", 1), ("?synchronous=full", 2), ("?synchronous=NORMAL", 1)],
    ids=["normal sync by default", "full sync on request", "the level in any case"],
)
def test_sqlite_runs_in_wal_mode_with_the_sync_level_of_the_url(
    tmp_path: Path, query: str, level: int
) -> None:
    s = Storage.open(f"sqlite:///{tmp_path / 'c.db'}{query}")
    with s.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == level
    s.close()


def test_an_unknown_sync_level_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="synchronous must be normal or full"):
        Storage.open(f"sqlite:///{tmp_path / 'c.db'}?synchronous=off")


def test_what_was_written_survives_without_a_clean_close(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    s = Storage.open(f"sqlite:///{path}")
    s.write(Batch(events=[_event(NOW)], state=b"{}"))
    # Read with a separate connection, as a restarted process would, without closing `s`.
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)
    s.close()


def test_errors_and_logs_never_show_the_database_password() -> None:
    assert "s3cret" not in safe_url("postgresql://coach:s3cret@db:5432/coach")
    with pytest.raises(StorageError) as err:
        Storage.open("postgresql://coach:s3cret@127.0.0.1:1/coach")
    assert "s3cret" not in str(err.value)


def test_a_url_that_is_not_a_database_is_a_clear_error() -> None:
    with pytest.raises(StorageError, match="not a database URL"):
        Storage.open("not a url at all")


def _decision(n: int) -> JournalRow:
    return JournalRow(NOW.timestamp() + n, "CoffeeBrewed", json.dumps({"n": n}))


def test_the_journal_is_read_back_in_order_and_a_snapshot_replaces_it(store: Storage) -> None:
    store.write(Batch(journal=[_decision(0), _decision(1)]))
    store.write(Batch(events=[_event(NOW)], journal=[_decision(2)]))
    assert store.load_journal() == [_decision(0), _decision(1), _decision(2)]
    # A state snapshot covers every decision so far, this batch's included.
    store.write(Batch(journal=[_decision(3)], state=b'{"version": 1}'))
    assert store.load_journal() == []
    assert store.load_state() == b'{"version": 1}'
    store.write(Batch(journal=[_decision(4)]))
    assert store.load_journal() == [_decision(4)]


def test_a_version_2_database_gets_an_empty_journal(db_url: str) -> None:
    Storage.open(db_url).close()
    engine = create_engine(storage_module.engine_url(db_url))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE checkins"))
        conn.execute(text("DROP TABLE journal"))
        conn.execute(text("UPDATE meta SET value = '2' WHERE key = 'schema'"))
    engine.dispose()
    migrated = Storage.open(db_url)
    assert migrated.schema_version() == storage_module.SCHEMA_VERSION
    assert migrated.load_journal() == []
    migrated.write(Batch(journal=[_decision(0)]))
    assert len(migrated.load_journal()) == 1
    migrated.close()


def _checkin(day: str, rested: int | None, **rls: bool) -> CheckinRow:
    at = datetime.fromisoformat(f"{day}T07:00:00+01:00")
    return CheckinRow("alex", day, at.timestamp(), rested, None, json.dumps(rls))


def test_a_version_3_database_gets_an_empty_checkins_table(db_url: str) -> None:
    Storage.open(db_url).close()
    engine = create_engine(storage_module.engine_url(db_url))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE checkins"))
        conn.execute(text("UPDATE meta SET value = '3' WHERE key = 'schema'"))
    engine.dispose()
    migrated = Storage.open(db_url)
    assert migrated.schema_version() == storage_module.SCHEMA_VERSION
    assert list(migrated.checkins()) == []
    migrated.write(Batch(checkins={("alex", "2026-11-25"): _checkin("2026-11-25", 3)}))
    assert [c.rested for c in migrated.checkins()] == [3]
    migrated.close()


def test_a_days_checkin_is_one_row_replaced_by_later_answers(store: Storage) -> None:
    store.write(Batch(checkins={("alex", "2026-11-25"): _checkin("2026-11-25", 2)}))
    store.write(Batch(checkins={("alex", "2026-11-26"): _checkin("2026-11-26", 4)}))
    later = _checkin("2026-11-25", 2, urge_to_move=True, worse_evening=False)
    store.write(Batch(checkins={("alex", "2026-11-25"): later}))
    stored = list(store.checkins(person="alex"))
    assert [(c.day, c.rested, c.rls) for c in stored] == [
        ("2026-11-25", 2, {"urge_to_move": True, "worse_evening": False}),
        ("2026-11-26", 4, {}),
    ]
    assert [c.day for c in store.checkins(since="2026-11-26")] == ["2026-11-26"]
    assert store.count("checkins") == 2


@pytest.mark.parametrize(
    ("row", "table"),
    [
        pytest.param(CheckinRow, storage_module.checkins_table, id="checkins"),
        pytest.param(EventRow, storage_module.events_table, id="events"),
        pytest.param(NudgeRow, storage_module.nudges_table, id="nudges"),
        pytest.param(NightRow, storage_module.nights_table, id="nights"),
        pytest.param(JournalRow, storage_module.journal_table, id="journal"),
    ],
)
def test_each_row_type_has_its_tables_columns(row: type, table: Table) -> None:
    """A row's fields are what its insert writes: a column added to one must be added to both."""
    generated = {c.name for c in table.columns if c.autoincrement is True}
    assert [f.name for f in dataclasses.fields(row)] == [
        c.name for c in table.columns if c.name not in generated
    ]


def _shape(url: str) -> dict[str, Any]:
    """Every table's columns (name, type, nullable), indexes and unique constraints."""
    engine = create_engine(storage_module.engine_url(url))
    try:
        insp = inspect(engine)
        return {
            name: (
                [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(name)],
                sorted((i["name"], tuple(i["column_names"])) for i in insp.get_indexes(name)),
                sorted(
                    (u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(name)
                ),
            )
            for name in sorted(insp.get_table_names())
        }
    finally:
        engine.dispose()


def _v4_database(url: str, *, home_assistant: bool) -> None:
    """A database as sleepcoach left it at version 4 (its DDL, frozen), with a row in each table."""
    engine = create_engine(storage_module.engine_url(url))
    with engine.begin() as conn:
        schema_v4.create(conn, home_assistant=home_assistant)
        conn.execute(schema_v4.events.insert(), [vars(_event(NOW, 7, key=_key("coffee", NOW)))])
        conn.execute(schema_v4.nudges.insert(), [vars(_nudge("n1", NOW))])
        conn.execute(
            schema_v4.nights.insert().values(person="alex", night="a", ts=1.0, summary="{}")
        )
        conn.execute(schema_v4.journal.insert(), [vars(_decision(0))])
        conn.execute(schema_v4.checkins.insert(), [vars(_checkin("2026-11-24", 4))])
        conn.execute(schema_v4.state.insert().values(id=1, updated_at=0.0, data='{"version": 1}'))
        if home_assistant:
            outbox = {
                "service": "notify.persistent_notification",
                "person": "alex",
                "data": json.dumps({"title": "Last call", "message": "m"}),
                "created_at": NOW.timestamp(),
                "expires_at": NOW.timestamp() + 7200,
                "next_attempt_at": NOW.timestamp(),
                "attempts": 0,
            }
            conn.execute(
                schema_v4.ha_outbox.insert(),
                [
                    {**outbox, "nudge_id": "sent", "state": "delivered", "done_at": 1.0},
                    {**outbox, "nudge_id": "waiting", "state": "pending", "done_at": None},
                ],
            )
            conn.execute(
                schema_v4.ha_discovery.insert().values(
                    topic="homeassistant/sensor/sleepcoach/alex_caffeine_now/config",
                    published_at=1.0,
                )
            )
    engine.dispose()


@pytest.mark.parametrize("home_assistant", [True, False], ids=["with HA tables", "without"])
def test_a_version_4_database_migrates_to_the_one_schema_with_its_rows(
    db_url: str, tmp_path: Path, home_assistant: bool
) -> None:
    _v4_database(db_url, home_assistant=home_assistant)
    migrated = Storage.open(db_url)
    assert migrated.schema_version() == storage_module.SCHEMA_VERSION == 5
    # Every row of version 4 is still there.
    assert [e.data["n"] for e in migrated.events()] == [7]
    assert migrated.dedup_keys(NOW - timedelta(days=1)) == [(_key("coffee", NOW), NOW.timestamp())]
    assert [n.id for n in migrated.nudges()] == ["n1"]
    assert [n.night for n in migrated.nights()] == ["a"]
    assert migrated.load_journal() == [_decision(0)]
    assert [c.rested for c in migrated.checkins()] == [4]
    assert migrated.load_state() == b'{"version": 1}'
    # The Home Assistant outbox, read and written by the bridge's own queries.
    outbox = Outbox(migrated)
    if home_assistant:
        assert outbox.counts() == {"pending": 1, "delivered": 1, "expired": 0}
        assert [r.nudge_id for r in outbox.due(NOW.timestamp())] == ["waiting"]
        gone = outbox.swap_discovery_topics([], NOW.timestamp())
        assert gone == ["homeassistant/sensor/sleepcoach/alex_caffeine_now/config"]
    else:
        assert outbox.counts() == {"pending": 0, "delivered": 0, "expired": 0}
    assert outbox.add("next", "alex", [NotifyCall("notify.x", {})], NOW.timestamp(), 9e9) == 1
    assert outbox.add("next", "alex", [NotifyCall("notify.x", {})], NOW.timestamp(), 9e9) == 0
    migrated.close()
    # The migrated database has exactly the shape of a new one, on the same kind of database.
    with _fresh_url(db_url, tmp_path) as fresh:
        Storage.open(fresh).close()
        assert _shape(db_url) == _shape(fresh)


@contextmanager
def _fresh_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """Another empty database of the same kind as `db_url`."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        assert PG_URL is not None
        yield from pg_schema_url(PG_URL)


def test_a_new_database_holds_the_home_assistant_tables_at_once(store: Storage) -> None:
    outbox = Outbox(store)
    assert outbox.counts() == {"pending": 0, "delivered": 0, "expired": 0}
    assert outbox.swap_discovery_topics(["t"], NOW.timestamp()) == []
    assert store.schema_version() == storage_module.SCHEMA_VERSION
