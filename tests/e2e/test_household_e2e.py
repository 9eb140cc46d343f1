"""A household through `sleepcoach run` on real Mosquitto: a shared coffee maker asks, one answers.

Alex and Sam share the kitchen's coffee maker (`person: [alex, sam]`); their bedtimes are 2 h and
2.5 h from now, so a drink now is past both cutoffs. Each test publishes what the maker and the
people would and reads what each person's topics carry: the question, the answer's cutoff nudge,
the open questions in the retained state, refusals on `sleepcoach/errors`.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.broker import Broker
from tests.e2e.conftest import (
    CLIENT_ID,
    TZ,
    DaemonProcess,
    Recorder,
    eventually,
    free_port,
    publisher,
)

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120)]

PREFIX = "sleepcoach"
COFFEE = "home/kitchen/coffee"


def household_yaml(broker: Broker, db: Path) -> str:
    now = datetime.now(ZoneInfo(TZ))

    def hhmm(delta: timedelta) -> str:
        return (now + delta).strftime("%H:%M")

    username = f"  username: {CLIENT_ID}\n" if broker.kind == "embedded" else ""
    return f"""\
timezone: {TZ}
mqtt:
  url: {broker.url}
  topic_prefix: {PREFIX}
  client_id: {CLIENT_ID}
{username}storage:
  url: sqlite:///{db}
dashboard: {{listen: '127.0.0.1:{free_port()}'}}
people:
  - id: alex
    bedtime: "{hhmm(timedelta(hours=2))}"
    wake: "{hhmm(timedelta(hours=10))}"
  - id: sam
    name: Sam
    bedtime: "{hhmm(timedelta(hours=2, minutes=30))}"
    wake: "{hhmm(timedelta(hours=10, minutes=30))}"
devices:
  - id: kitchen
    kind: coffee_maker
    topic: {COFFEE}
    person: [alex, sam]
"""


def nudges(rec: Recorder, person: str, prefix: str = "") -> list[dict[str, Any]]:
    return [n for n in rec.json_on(f"{PREFIX}/{person}/nudge") if n["rule"].startswith(prefix)]


def latest_state(rec: Recorder, person: str) -> dict[str, Any] | None:
    states = rec.json_on(f"{PREFIX}/{person}/state")
    return states[-1] if states else None


def stored_drinks(db: Path) -> list[tuple[str, float]]:
    """The brews the daemon stored in its history: (person, ts)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT person, ts FROM events WHERE kind = 'CoffeeBrewed' ORDER BY ts"
        ).fetchall()
    return [(str(p), float(t)) for p, t in rows]


def errors(rec: Recorder) -> list[dict[str, Any]]:
    return rec.json_on(f"{PREFIX}/errors")


def start(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> tuple[DaemonProcess, Recorder]:
    rec = recorder_factory(broker, [f"{PREFIX}/#"])
    daemon = daemon_factory(household_yaml(broker, tmp_path / "coach.db"))
    daemon.start()
    assert rec.wait_for(lambda: b"online" in rec.on(f"{PREFIX}/status")), daemon.log_text()
    return daemon, rec


def brew_espresso(broker: Broker) -> datetime:
    """A double espresso on the shared maker, with its own `ts`; the brew time."""
    at = datetime.now(ZoneInfo(TZ)).replace(microsecond=0)
    maker = publisher(broker, "kitchen-maker")
    body = {"event": "brew", "drink": "espresso", "volume_ml": 60, "ts": at.isoformat()}
    maker.publish(COFFEE, json.dumps(body).encode(), qos=1).wait_for_publish(5)
    maker.loop_stop()
    maker.disconnect()
    return at


def command(broker: Broker, person: str, body: dict[str, Any]) -> None:
    client = publisher(broker, f"{person}-phone")
    client.publish(f"{PREFIX}/{person}/command", json.dumps(body).encode(), qos=1).wait_for_publish(
        5
    )
    client.loop_stop()
    client.disconnect()


def questions_asked(rec: Recorder) -> bool:
    return bool(nudges(rec, "alex", "household.whose") and nudges(rec, "sam", "household.whose"))


def test_a_shared_espresso_asks_both_and_sams_answer_moves_only_sam(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    daemon, rec = start(broker, daemon_factory, recorder_factory, tmp_path)
    at = brew_espresso(broker)
    assert rec.wait_for(lambda: questions_asked(rec)), daemon.log_text()
    (question,) = nudges(rec, "sam", "household.whose")
    assert question["title"] == "Sam: Whose espresso?"
    assert question["severity"] == "info"
    assert question["actions"] == ["mine"]
    assert question["id"] == f"household.whose:sam:{at.date().isoformat()}:{at:%H%M}"
    assert f"{at:%H:%M}" in question["message"]
    assert "126 mg" in question["message"]
    assert nudges(rec, "alex", "household.whose")[0]["title"] == "Alex: Whose espresso?"
    # The open question is part of Sam's retained state; nobody's caffeine moved yet.
    assert rec.wait_for(
        lambda: (
            (s := latest_state(rec, "sam")) is not None
            and [q["id"] for q in s["open_questions"]] == [question["id"]]
        )
    ), rec.json_on(f"{PREFIX}/sam/state")
    assert latest_state(rec, "sam")["caffeine_mg_today"] == 0.0  # type: ignore[index]
    assert not nudges(rec, "alex", "caffeine.")
    assert not nudges(rec, "sam", "caffeine.")

    command(broker, "sam", {"command": "mine"})
    assert rec.wait_for(lambda: nudges(rec, "sam", "caffeine.cutoff")), daemon.log_text()
    (cutoff,) = nudges(rec, "sam", "caffeine.cutoff")
    assert cutoff["title"] == "Sam: No caffeine now"
    assert cutoff["evidence"]["drink_at"] == at.isoformat()
    assert rec.wait_for(
        lambda: (s := latest_state(rec, "alex")) is not None and s["open_questions"] == []
    )
    sam = latest_state(rec, "sam")
    assert sam is not None
    assert sam["caffeine_mg_today"] == 126.0
    assert sam["open_questions"] == []
    assert latest_state(rec, "alex")["caffeine_mg_today"] == 0.0  # type: ignore[index]
    # Sam's history holds the drink as Sam's own, at brew time, so the report counts it.
    assert eventually(lambda: stored_drinks(tmp_path / "coach.db") == [("sam", at.timestamp())])

    # Alex answers too late, a stranger answers: each refused on the errors topic, nothing moves.
    command(broker, "alex", {"command": "mine", "nudge_id": question["id"]})
    command(broker, "taylor", {"command": "mine"})
    assert rec.wait_for(lambda: len(errors(rec)) >= 2), daemon.log_text()
    reasons = {e["topic"]: e["error"] for e in errors(rec)}
    assert "already claimed by sam" in reasons[f"{PREFIX}/alex/command"]
    assert "no person 'taylor' in the config" in reasons[f"{PREFIX}/taylor/command"]
    assert not nudges(rec, "alex", "caffeine.")
    assert latest_state(rec, "alex")["caffeine_mg_today"] == 0.0  # type: ignore[index]


def test_an_answer_after_a_restart_of_the_daemon_still_counts(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    daemon, rec = start(broker, daemon_factory, recorder_factory, tmp_path)
    at = brew_espresso(broker)
    assert rec.wait_for(lambda: questions_asked(rec)), daemon.log_text()
    question = nudges(rec, "alex", "household.whose")[0]["id"]
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(15) == 0, daemon.log_text()

    daemon.start()
    command(broker, "alex", {"command": "mine", "nudge_id": question})
    assert rec.wait_for(lambda: nudges(rec, "alex", "caffeine.cutoff")), daemon.log_text()
    (cutoff,) = nudges(rec, "alex", "caffeine.cutoff")
    assert cutoff["evidence"]["drink_at"] == at.isoformat()
    assert rec.wait_for(
        lambda: (s := latest_state(rec, "sam")) is not None and s["open_questions"] == []
    )
    assert not nudges(rec, "sam", "caffeine.")
    assert len(nudges(rec, "alex", "household.whose")) == 1  # not asked again after the restart
