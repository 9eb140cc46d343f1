"""The check-in as a person uses it: two restless nights through `sleepcoach run` on a real
broker, the pattern's nudge that asks the check-in (and sends no one to a specialist), the answers
sent on the command topic, stored by the daemon, and the specialist suggestion they bring."""

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
from tests.e2e.conftest import TZ, DaemonProcess, Recorder, config_yaml, publisher
from tests.e2e.test_nights_stored import BED, PREFIX, _hhmm, sleepcoach

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(240)]

NUDGES = f"{PREFIX}/alex/nudge"
COMMAND = f"{PREFIX}/alex/command"
ERRORS = f"{PREFIX}/errors"
ALL_YES = {
    "urge_to_move": True,
    "worse_at_rest": True,
    "better_moving": True,
    "worse_evening": True,
}


def test_the_check_in_is_stored_and_decides_whether_a_specialist_is_suggested(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    # Two nights with 30 periodic leg movements an hour, begun 46 h and 22 h ago: a device's `ts`
    # may be at most 48 hours old, so the pattern is asked of two nights (twitch.frequent.nights).
    start = (datetime.now(ZoneInfo(TZ)) - timedelta(hours=46)).replace(second=0, microsecond=0)
    scenario = tmp_path / "nights.jsonl"
    made = sleepcoach(
        "synth",
        "--out",
        str(scenario),
        "--nights",
        "2",
        "--seed",
        "11",
        "--start",
        start.isoformat(),
        "--plm-index",
        "30",
        "--topic",
        BED,
        home=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    lines = [json.loads(line) for line in scenario.read_text().splitlines()]
    exits = [
        datetime.fromisoformat(line["ts"])
        for line in lines
        if line["payload"]["event"] == "occupancy" and not line["payload"]["occupied"]
    ]
    # Wake half an hour after the earliest final getting-up, so each night ends when alex gets up.
    up_after = [
        max(e for e in exits if start + timedelta(days=i) <= e < start + timedelta(days=i + 1))
        - start
        - timedelta(days=i)
        for i in range(2)
    ]
    wake = start + min(up_after) + timedelta(minutes=30)
    db = tmp_path / "coach.db"
    config = (
        config_yaml(
            broker,
            f"sqlite:///{db}",
            bedtime=_hhmm(start + timedelta(minutes=30)),
            wake=_hhmm(wake),
        )
        + "rules:\n  twitch.frequent: {nights: 2}\n"
    )
    rec = recorder_factory(broker, [NUDGES, ERRORS])
    daemon = daemon_factory(config)
    daemon.start()

    bed = publisher(broker, "bed")
    for line in lines:
        bed.publish(BED, json.dumps(line["payload"]).encode(), qos=1).wait_for_publish(5)

    def frequent() -> list[dict[str, Any]]:
        return [n for n in rec.json_on(NUDGES) if n["rule"] == "twitch.frequent"]

    # The pattern alone: described as common, a check-in asked, no specialist.
    assert rec.wait_for(lambda: len(frequent()) == 1, 90), daemon.log_text()
    (asking,) = frequent()
    assert "about a quarter of middle-aged and older adults" in asking["message"]
    assert "Do you have an urge to move your legs" in asking["message"]
    assert "specialist" not in asking["message"]
    assert asking["evidence"]["specialist"] is False

    # A check-in that cannot be used is refused on the errors topic, and changes nothing.
    person = publisher(broker, "phone")
    person.publish(COMMAND, b'{"command": "checkin", "rested": 9}', qos=1).wait_for_publish(5)
    assert rec.wait_for(
        lambda: any(
            e["topic"] == COMMAND and "rested: must be between 1 and 5, got 9" in e["error"]
            for e in rec.json_on(ERRORS)
        )
    ), daemon.log_text()

    # Yes to all four restless-legs questions: with the pattern, a specialist is worth it.
    answer = {"command": "checkin", "rested": 3, "rls": ALL_YES}
    person.publish(COMMAND, json.dumps(answer).encode(), qos=1).wait_for_publish(5)
    assert rec.wait_for(lambda: len(frequent()) == 2, 30), daemon.log_text()
    suggesting = frequent()[1]
    assert suggesting["id"] == asking["id"] + ":specialist"
    assert "consider seeing a sleep specialist" in suggesting["message"]
    assert "yes to all four restless-legs questions" in suggesting["message"]
    assert suggesting["evidence"]["rls_answers"] == ALL_YES

    bed.loop_stop()
    person.loop_stop()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.log_text()

    # The daemon stored the day's answers where the report can read them.
    today = datetime.now(ZoneInfo(TZ)).date().isoformat()
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT person, day, rested, daytime_twitching, rls FROM checkins"
        ).fetchall()
    assert [(p, d, r, t, json.loads(rls)) for p, d, r, t, rls in rows] == [
        ("alex", today, 3, None, ALL_YES)
    ]
