"""What anyone who can publish on the broker can send: the coach refuses it, stores a bounded,
database-safe excerpt, and goes on. Through `sleepcoach run`, a real Mosquitto and, where the
defect is PostgreSQL's, a real PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.broker import Broker
from tests.e2e.conftest import DaemonProcess, Recorder, config_yaml, publisher

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120)]

PREFIX = "sleepcoach"
PG_URL = os.environ.get("SLEEPCOACH_TEST_POSTGRES_URL")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A private schema on the PostgreSQL server, dropped afterwards."""
    if PG_URL is None:
        pytest.skip("set SLEEPCOACH_TEST_POSTGRES_URL to run against PostgreSQL")
    schema = f"sc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _refused_rows(url: str) -> list[tuple[str, str]]:
    plain = url.split("?", maxsplit=1)[0]
    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        rows = conn.execute("SELECT data, error FROM events WHERE kind = 'refused'").fetchall()
    return [(str(d), str(e)) for d, e in rows]


@pytest.mark.postgres
def test_a_nul_byte_on_postgresql_is_refused_and_the_coach_goes_on_across_a_restart(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    pg_url: str,
) -> None:
    """PostgreSQL refuses U+0000 in text: storing the refused payload as it came stopped every
    commit, held every acknowledgement, and the broker sent the message again at each start."""
    rec = recorder_factory(broker, [f"{PREFIX}/#"])
    daemon = daemon_factory(config_yaml(broker, pg_url))
    daemon.start()
    dev = publisher(broker)
    dev.publish("home/kitchen/coffee", b"bad\x00byte", qos=1).wait_for_publish(5)
    dev.publish("home/kitchen/coffee", b'{"event":"brew","drink":"espresso\\u0000"}', qos=1)
    assert rec.wait_for(lambda: len(rec.on(f"{PREFIX}/errors")) >= 2), daemon.log_text()
    errors = rec.json_on(f"{PREFIX}/errors")
    assert {e["topic"] for e in errors} == {"home/kitchen/coffee"}
    # The coach goes on: a good coffee after it is decided, stored and answered.
    dev.publish("home/kitchen/coffee", b'{"event":"brew","drink":"espresso"}', qos=1)
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/alex/nudge")), daemon.log_text()
    assert "storage unavailable" not in daemon.log_text()

    # Stored, NUL and all, as an escaped excerpt; and acknowledged: a restart gets nothing again.
    rows = _refused_rows(pg_url)
    assert len(rows) == 2
    assert any("bad\\x00byte" in data for data, _ in rows), rows
    daemon.signal(15)
    assert daemon.wait() == 0
    daemon.start()
    dev.publish("home/kitchen/coffee", b'{"event":"brew","drink":"tea"}', qos=1)
    assert rec.wait_for(lambda: len(rec.on(f"{PREFIX}/alex/state")) >= 4), daemon.log_text()
    assert len(_refused_rows(pg_url)) == 2
    assert len(rec.on(f"{PREFIX}/errors")) == 2
    dev.loop_stop()


def test_a_refused_payload_is_stored_as_a_bounded_excerpt(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    """A 60 KB refused message keeps at most a short excerpt (it used to keep 4 KB for a year)."""
    path = tmp_path / "coach.db"
    rec = recorder_factory(broker, [f"{PREFIX}/errors"])
    daemon = daemon_factory(config_yaml(broker, f"sqlite:///{path}"))
    daemon.start()
    dev = publisher(broker)
    junk = b"\xff\x00" + b"x" * 60_000
    dev.publish("home/kitchen/coffee", junk, qos=1)
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/errors")), daemon.log_text()
    dev.loop_stop()
    daemon.signal(15)
    assert daemon.wait() == 0
    with sqlite3.connect(path) as conn:
        (data,) = conn.execute("SELECT data FROM events WHERE kind = 'refused'").fetchone()
    assert data.startswith("\\xff\\x00xxx")
    assert len(data.encode()) < 700
    assert data.endswith("(60002 bytes in all)")
