"""The advice rules as a person meets them: messages to `sleepcoach run` on a real broker, and the
nudges (or their absence) that come back.

Each test writes a config whose bedtime is a given time from now, so the rule's window is open
(or closed) at the real clock, starts the daemon, publishes what a device or the person would,
and reads the nudge topic. "Nothing came" is read only after the coach published the state that
shows it handled the message.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.broker import Broker
from tests.e2e.conftest import TZ, DaemonProcess, Recorder, config_yaml, publisher

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120)]

PREFIX = "sleepcoach"
NUDGES = f"{PREFIX}/alex/nudge"
STATE = f"{PREFIX}/alex/state"


def start(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
    *,
    bedtime_in: timedelta,
    rules: str = "",
) -> tuple[DaemonProcess, Recorder]:
    """The coach running with alex's bedtime `bedtime_in` from now, and a recorder of its topics."""
    db = f"sqlite:///{tmp_path / 'coach.db'}"
    text = config_yaml(broker, db, bedtime_in=bedtime_in)
    if rules:
        text += f"rules:\n{rules}"
    rec = recorder_factory(broker, [f"{PREFIX}/#"])
    daemon = daemon_factory(text)
    daemon.start()
    assert rec.wait_for(lambda: b"online" in rec.on(f"{PREFIX}/status"))
    return daemon, rec


class Barrier:
    """Proof that the coach handled everything published before it: a 10 mg drink from the
    coffee maker (below the 20 mg the caffeine rules look at), and the state that counts it.

    The coach publishes a person's state once per batch of messages, so counting state messages
    says nothing; the day's caffeine total does, as messages are handled in order.
    """

    def __init__(self, broker: Broker, rec: Recorder) -> None:
        self.rec = rec
        self.maker = publisher(broker, "barrier")
        self.passed = 0

    def wait(self, daemon: DaemonProcess) -> None:
        """Publish the marker drink and wait until the state shows it."""
        self.passed += 1
        total = 10.0 * self.passed
        self.maker.publish(
            "home/kitchen/coffee",
            b'{"event": "brew", "drink": "other", "caffeine_mg": 10}',
            qos=1,
        )
        assert self.rec.wait_for(
            lambda: any(json.loads(s)["caffeine_mg_today"] >= total for s in self.rec.on(STATE))
        ), daemon.log_text()

    def close(self) -> None:
        """Disconnect the marker's publisher."""
        self.maker.loop_stop()


def nudges(rec: Recorder, prefix: str = "") -> list[dict[str, Any]]:
    """The nudges alex received so far, of the rules whose id starts with `prefix`.

    (A start close to bedtime may also bring the wind-down, planned at once.)
    """
    return [n for n in rec.json_on(NUDGES) if n["rule"].startswith(prefix)]


def test_alcohol_logged_two_hours_before_bed_gets_one_informational_nudge(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    daemon, rec = start(
        broker, daemon_factory, recorder_factory, tmp_path, bedtime_in=timedelta(hours=2)
    )
    person = publisher(broker)
    for _ in range(2):
        person.publish(f"{PREFIX}/alex/command", b'{"command": "log", "what": "alcohol"}', qos=1)
    Barrier(broker, rec).wait(daemon)
    assert rec.wait_for(lambda: nudges(rec, "alcohol.")), daemon.log_text()
    (nudge,) = nudges(rec, "alcohol.")  # a second drink the same evening gets no second nudge
    assert (nudge["rule"], nudge["severity"]) == ("alcohol.late", "info")
    # The config's bedtime is a whole minute: "2 hours" or "about 2 hours" before it.
    assert nudge["message"].startswith("You logged a drink "), nudge["message"]
    assert "2 hours before your bedtime (" in nudge["message"]
    assert "Ebrahim et al. 2013" in nudge["evidence"]["source"]
    person.loop_stop()


@pytest.mark.parametrize(
    ("bedtime_in", "severity", "opening"),
    [
        pytest.param(timedelta(hours=2), "info", "This vigorous workout started ", id="2 h: a tip"),
        pytest.param(
            timedelta(minutes=45),
            "alert",
            "Your vigorous workout started ",
            id="45 min before bed: the alert",
        ),
    ],
)
def test_a_vigorous_workout_gets_a_tip_early_in_the_evening_and_the_alert_in_the_last_hour(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
    bedtime_in: timedelta,
    severity: str,
    opening: str,
) -> None:
    daemon, rec = start(broker, daemon_factory, recorder_factory, tmp_path, bedtime_in=bedtime_in)
    watch = publisher(broker)
    watch.publish(
        "tracker/alex",
        b'{"event": "workout_start", "activity": "running", "intensity": "vigorous"}',
        qos=1,
    )
    assert rec.wait_for(lambda: nudges(rec, "exercise.")), daemon.log_text()
    (nudge,) = nudges(rec, "exercise.")
    assert (nudge["rule"], nudge["severity"]) == ("exercise.late_intense", severity)
    # The config's bedtime is a whole minute: the span is 1-2 h or 44-45 minutes.
    assert nudge["message"].startswith(opening), nudge["message"]
    assert " before your bedtime (" in nudge["message"]
    watch.loop_stop()


def test_a_moderate_evening_walk_gets_nothing(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    daemon, rec = start(
        broker, daemon_factory, recorder_factory, tmp_path, bedtime_in=timedelta(minutes=30)
    )
    watch = publisher(broker)
    watch.publish(
        "tracker/alex",
        b'{"event": "workout_start", "activity": "walking", "intensity": "moderate"}',
        qos=1,
    )
    Barrier(broker, rec).wait(daemon)
    assert nudges(rec, "exercise.") == []
    watch.loop_stop()


@pytest.mark.parametrize(
    ("bedtime_in", "expected"),
    [
        pytest.param(
            timedelta(hours=-2),
            ["caffeine.cutoff"],
            id="2 h after bedtime: the night in progress",
        ),
        pytest.param(
            timedelta(hours=-6), [], id="6 h after bedtime, 2 h before wake, up: the new day"
        ),
    ],
)
def test_a_coffee_in_the_night_belongs_to_the_night_until_the_person_is_up_for_the_day(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
    bedtime_in: timedelta,
    expected: list[str],
) -> None:
    daemon, rec = start(broker, daemon_factory, recorder_factory, tmp_path, bedtime_in=bedtime_in)
    maker = publisher(broker)
    maker.publish(
        "home/kitchen/coffee", b'{"event": "brew", "drink": "coffee", "volume_ml": 240}', qos=1
    )
    assert rec.wait_for(
        lambda: any(json.loads(s)["caffeine_mg_now"] > 90 for s in rec.on(STATE))
    ), daemon.log_text()
    if expected:
        assert rec.wait_for(lambda: nudges(rec, "caffeine.")), daemon.log_text()
        (nudge,) = nudges(rec, "caffeine.")
        assert nudge["message"].startswith("That coffee (95 mg of caffeine) came after your")
    assert [n["rule"] for n in nudges(rec, "caffeine.")] == expected
    maker.loop_stop()


# -- daytime checks: a zone where it is midday now ------------------------------------------------


def midday_zone() -> ZoneInfo:
    """A fixed-offset zone in which the local time now is between 12:00 and 13:00."""
    offset = 12 - datetime.now(UTC).hour  # -11 .. 12; Etc/GMT names count the other way
    return ZoneInfo(f"Etc/GMT{-offset:+d}")


def midday_config(broker: Broker, tmp_path: Path, rules: str) -> str:
    """A config in a zone where it is about noon, bedtime 6 h from now, and these rules, whose
    `{check_at}` is 5 minutes ago: a daily check that fires at once when the coach starts."""
    zone = midday_zone()
    now = datetime.now(zone)
    text = config_yaml(
        broker,
        f"sqlite:///{tmp_path / 'coach.db'}",
        bedtime=(now + timedelta(hours=6)).strftime("%H:%M"),
        wake=(now + timedelta(hours=14)).strftime("%H:%M"),
    ).replace(f"timezone: {TZ}", f"timezone: {zone.key}")
    check_at = (now - timedelta(minutes=5)).strftime("%H:%M")
    return text + "rules:\n" + rules.format(check_at=check_at)


def restart(daemon: DaemonProcess, rec: Recorder) -> None:
    """Stop the coach and start it again on its stored state: its daily checks are re-planned,
    and one due in the last 15 minutes fires at once."""
    daemon.stop()
    online = len([p for p in rec.on(f"{PREFIX}/status") if p == b"online"])
    daemon.start()
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/status").count(b"online") > online)


def test_no_daylight_reading_is_unknown_and_a_reading_of_0_gets_the_nudge(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    rec = recorder_factory(broker, [f"{PREFIX}/#"])
    daemon = daemon_factory(
        midday_config(broker, tmp_path, '  sunlight.daily: {{check_at: "{check_at}"}}\n')
    )
    daemon.start()
    # The check fired at start, with no daylight reading today: nothing.
    barrier = Barrier(broker, rec)
    barrier.wait(daemon)
    watch = publisher(broker)
    watch.publish("tracker/alex", b'{"event": "sunlight", "minutes": 0}', qos=1)
    barrier.wait(daemon)
    assert nudges(rec, "sunlight.") == []
    watch.loop_stop()
    # Restarted, the check fires again, now with a reading of 0 minutes: the nudge.
    restart(daemon, rec)
    assert rec.wait_for(lambda: nudges(rec, "sunlight.")), daemon.log_text()
    (nudge,) = nudges(rec, "sunlight.")
    assert nudge["message"].startswith("Your tracker has counted no daylight today.")


def test_days_without_a_workout_get_one_daytime_suggestion(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    rec = recorder_factory(broker, [f"{PREFIX}/#"])
    # Two days, the least the rule takes: a tracker's `ts` may be at most 48 hours old.
    rules = '  encouragement.exercise: {{check_at: "{check_at}", days_without: 2}}\n'
    daemon = daemon_factory(midday_config(broker, tmp_path, rules))
    daemon.start()
    barrier = Barrier(broker, rec)
    barrier.wait(daemon)
    # The tracker reports a 40-minute run that started 47 hours ago, two days back at noon.
    started = datetime.now(midday_zone()) - timedelta(hours=47)
    watch = publisher(broker)
    for doc in (
        {"event": "workout_start", "activity": "running", "intensity": "moderate"},
        {"event": "workout_end"},
    ):
        at = started if doc["event"] == "workout_start" else started + timedelta(minutes=40)
        watch.publish("tracker/alex", json.dumps({**doc, "ts": at.isoformat()}).encode(), qos=1)
    # Worn now: a heart rate (a tracker silent for a day says nothing about those days).
    watch.publish("tracker/alex", b'{"event": "heart_rate", "bpm": 64}', qos=1)
    barrier.wait(daemon)
    assert nudges(rec, "encouragement.") == []  # the first check knew of no workout
    watch.loop_stop()
    restart(daemon, rec)
    assert rec.wait_for(lambda: nudges(rec, "encouragement.")), daemon.log_text()
    (nudge,) = nudges(rec, "encouragement.")
    assert nudge["severity"] == "info"
    assert nudge["message"].startswith("Your tracker hasn't recorded a workout for 2 days.")


def test_the_budget_holds_back_a_routine_nudge_and_records_it_but_never_an_answer(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    """Two routine checks fall due at once, with the wind-down still to come tonight: with the
    default budget (2 an evening, one kept for the wind-down) one goes out, the other is stored
    and logged as dropped; a late coffee right after still gets its answer."""
    rec = recorder_factory(broker, [f"{PREFIX}/#"])
    rules = (
        '  sunlight.daily: {{check_at: "{check_at}"}}\n'
        '  encouragement.exercise: {{check_at: "{check_at}", days_without: 2}}\n'
    )
    daemon = daemon_factory(midday_config(broker, tmp_path, rules))
    daemon.start()
    barrier = Barrier(broker, rec)
    barrier.wait(daemon)
    # No daylight today (a reading of 0), and the last workout two days ago (47 hours: a `ts`
    # may be at most 48 hours old).
    started = datetime.now(midday_zone()) - timedelta(hours=47)
    watch = publisher(broker)
    watch.publish("tracker/alex", b'{"event": "sunlight", "minutes": 0}', qos=1)
    for doc in (
        {"event": "workout_start", "activity": "running", "intensity": "moderate"},
        {"event": "workout_end"},
    ):
        at = started if doc["event"] == "workout_start" else started + timedelta(minutes=40)
        watch.publish("tracker/alex", json.dumps({**doc, "ts": at.isoformat()}).encode(), qos=1)
    # Worn now: a heart rate (a tracker silent for a day says nothing about those days).
    watch.publish("tracker/alex", b'{"event": "heart_rate", "bpm": 64}', qos=1)
    barrier.wait(daemon)
    watch.loop_stop()
    assert nudges(rec, "sunlight.") == nudges(rec, "encouragement.") == []
    # Restarted, both checks fire at once.
    restart(daemon, rec)
    routine = ("sunlight.daily", "encouragement.exercise")
    assert rec.wait_for(lambda: [n for n in nudges(rec) if n["rule"] in routine]), daemon.log_text()
    # A coffee now, 6 h before bed: its answer is never held back.
    maker = publisher(broker)
    maker.publish("home/kitchen/coffee", b'{"event": "brew", "drink": "coffee"}', qos=1)
    assert rec.wait_for(lambda: nudges(rec, "caffeine.cutoff")), daemon.log_text()
    maker.loop_stop()
    barrier.wait(daemon)
    barrier.close()
    (sent,) = [n for n in nudges(rec) if n["rule"] in routine]
    (held,) = [r for r in routine if r != sent["rule"]]
    with sqlite3.connect(tmp_path / "coach.db") as conn:
        rows = conn.execute("SELECT rule, dropped FROM nudges WHERE dropped IS NOT NULL").fetchall()
    assert rows == [(held, "budget")]
    assert f"dropped nudge {held}:alex:" in daemon.log_text()
