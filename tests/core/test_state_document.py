"""The retained state says what it means: tonight's bedtime and the next one, ids as sent, local
times.

`tonight_bedtime` is the bedtime of the night in progress (between bedtime and wake) or of the
next night; `next_bedtime` is the first bedtime still ahead, so at 02:57 it is this evening's,
never last night's. Pinned at the boundaries: just before and after bedtime, at bedtime itself,
after midnight, after wake, with a bedtime moved for tonight, and across both DST changes.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coach.config import Config
from coach.event import MovementDetected, OccupancyChanged
from tests.core.conftest import (
    DAY,
    TZ,
    Replay,
    bedtime_tonight,
    make_config,
    run,
    run_day,
    snooze,
    t,
)

WINDDOWN = "winddown.stretch:alex:2026-11-24"


def state_at(now: datetime, config: Config | None = None) -> dict[str, Any]:
    """The state document the coach publishes when started at `now`."""
    replay = Replay(config=config or make_config())
    replay.start(now)
    return replay.documents[-1]


@pytest.mark.parametrize(
    ("now", "tonight", "following"),
    [
        pytest.param(
            t("22:29"), "2026-11-24T22:30:00+01:00", "2026-11-24T22:30:00+01:00", id="22:29"
        ),
        pytest.param(
            t("22:30"), "2026-11-24T22:30:00+01:00", "2026-11-25T22:30:00+01:00", id="at 22:30"
        ),
        pytest.param(
            t("22:31"), "2026-11-24T22:30:00+01:00", "2026-11-25T22:30:00+01:00", id="22:31"
        ),
        pytest.param(
            t("23:59:59"),
            "2026-11-24T22:30:00+01:00",
            "2026-11-25T22:30:00+01:00",
            id="just before midnight",
        ),
        pytest.param(
            t("02:57", "2026-11-25"),
            "2026-11-24T22:30:00+01:00",
            "2026-11-25T22:30:00+01:00",
            id="02:57, the night in progress",
        ),
        pytest.param(
            t("06:29", "2026-11-25"),
            "2026-11-24T22:30:00+01:00",
            "2026-11-25T22:30:00+01:00",
            id="06:29, just before wake",
        ),
        pytest.param(
            t("06:31", "2026-11-25"),
            "2026-11-25T22:30:00+01:00",
            "2026-11-25T22:30:00+01:00",
            id="06:31, just after wake",
        ),
        pytest.param(
            t("12:00"), "2026-11-24T22:30:00+01:00", "2026-11-24T22:30:00+01:00", id="noon"
        ),
    ],
)
def test_tonight_and_next_bedtime_around_the_clock(
    now: datetime, tonight: str, following: str
) -> None:
    doc = state_at(now)
    assert (doc["tonight_bedtime"], doc["next_bedtime"]) == (tonight, following)
    assert datetime.fromisoformat(doc["next_bedtime"]) >= now
    assert datetime.fromisoformat(doc["next_wake"]) > now


def test_next_bedtime_is_never_in_the_past_over_a_week_of_minutes() -> None:
    """Every 7 minutes for a week, weekend bedtimes after midnight included."""
    config = make_config(bedtime={"default": "22:30", "fri": "00:15", "sat": "23:45"})
    now = t("00:00")
    while now < t("00:00", "2026-12-01"):
        doc = state_at(now, config)
        following = datetime.fromisoformat(doc["next_bedtime"])
        tonight = datetime.fromisoformat(doc["tonight_bedtime"])
        assert following >= now, (now, doc["next_bedtime"])
        assert following - now <= timedelta(hours=26), (now, doc["next_bedtime"])
        assert tonight == following or tonight <= now < datetime.fromisoformat(doc["next_wake"])
        now += timedelta(minutes=7)


def test_a_bedtime_moved_for_tonight_counts_for_both() -> None:
    """At 22:45, bedtime moved from 22:30 to 23:15: both are 23:15, still ahead."""
    replay = run([bedtime_tonight("22:45", "23:15")], start=t("07:00"))
    doc = replay.documents[-1]
    assert doc["tonight_bedtime"] == doc["next_bedtime"] == "2026-11-24T23:15:00+01:00"


@pytest.mark.parametrize(
    ("now", "tonight", "following"),
    [
        pytest.param(
            datetime(2026, 10, 25, 2, 30, tzinfo=TZ, fold=0),
            "2026-10-24T22:30:00+02:00",
            "2026-10-25T22:30:00+01:00",
            id="02:30 CEST on the fall-back night",
        ),
        pytest.param(
            datetime(2026, 10, 25, 2, 30, tzinfo=TZ, fold=1),
            "2026-10-24T22:30:00+02:00",
            "2026-10-25T22:30:00+01:00",
            id="02:30 CET, the hour again",
        ),
        pytest.param(
            datetime(2026, 3, 28, 23, 0, tzinfo=TZ),
            "2026-03-28T22:30:00+01:00",
            "2026-03-29T22:30:00+02:00",
            id="23:00 before the spring-forward night",
        ),
        pytest.param(
            datetime(2026, 3, 29, 3, 30, tzinfo=TZ),
            "2026-03-28T22:30:00+01:00",
            "2026-03-29T22:30:00+02:00",
            id="03:30 CEST, just after the clocks went forward",
        ),
    ],
)
def test_next_bedtime_across_dst(now: datetime, tonight: str, following: str) -> None:
    doc = state_at(now)
    assert (doc["tonight_bedtime"], doc["next_bedtime"]) == (tonight, following)


def test_last_nudge_keeps_the_id_it_was_sent_with() -> None:
    """A snoozed repeat is `<id>:snooze1` in the state, as on the nudge topic: the id a Home
    Assistant button or a person answers with."""
    replay = run_day([snooze("21:46", WINDDOWN, 10)], hours=14.95)  # up to 21:57
    sent = [n.id for n in replay.nudges if n.id.startswith(WINDDOWN)]
    assert sent == [WINDDOWN, f"{WINDDOWN}:snooze1"]
    doc = replay.documents[-1]
    assert doc["last_nudge"]["id"] == f"{WINDDOWN}:snooze1"
    assert doc["last_nudge"]["ts"] == "2026-11-24T21:56:00+01:00"
    # Answering with that id is answering the original.
    replay.feed([snooze("21:58", doc["last_nudge"]["id"], 5)], until=t("22:04"))
    assert [n.id for n in replay.nudges if n.id.startswith(WINDDOWN)][-1] == f"{WINDDOWN}:snooze2"
    assert replay.documents[-1]["last_nudge"]["id"] == f"{WINDDOWN}:snooze2"


_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _instants(value: Any, path: str = "") -> list[tuple[str, datetime]]:
    """Every ISO date-time string anywhere in a JSON document, with where it is."""
    if isinstance(value, dict):
        return [i for k, v in value.items() for i in _instants(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [i for n, v in enumerate(value) for i in _instants(v, f"{path}[{n}]")]
    if isinstance(value, str) and _INSTANT.match(value):
        return [(path, datetime.fromisoformat(value))]
    return []


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_every_time_in_the_state_is_in_the_configs_zone(zone: str) -> None:
    """A night with a bed sensor, closed and summarised: every instant of the document, the
    last night's included, carries the config zone's offset, never +00:00."""
    config = Config.model_validate(
        {
            "timezone": zone,
            "people": [{"id": "alex", "bedtime": "22:30", "wake": "06:30"}],
        }
    )
    tz = ZoneInfo(zone)

    def at(hhmm: str, day: str) -> datetime:
        return t(hhmm, day).replace(tzinfo=tz)

    events: list[Any] = [OccupancyChanged(person="alex", ts=at("22:40", DAY), occupied=True)]
    events += [
        MovementDetected(
            person="alex",
            ts=at("23:30", DAY) + timedelta(seconds=25 * i),
            intensity=0.3,
            duration_s=1.5,
        )
        for i in range(6)
    ]
    events.append(OccupancyChanged(person="alex", ts=at("06:40", "2026-11-25"), occupied=False))
    replay = run(events, config=config, start=at("21:00", DAY))
    replay.advance(at("10:00", "2026-11-25"))
    doc = replay.documents[-1]
    assert doc["last_night"] is not None
    found = _instants(doc)
    assert any(p.startswith(".last_night.night_end") for p, _ in found)
    for path, instant in found:
        assert instant.utcoffset() == instant.astimezone(tz).utcoffset(), (path, instant)
