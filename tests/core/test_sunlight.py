"""sunlight.daily, pinned: at 15:00, a day with less than 15 minutes of daylight gets a nudge."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coach import sunlight
from coach.event import Event
from tests.core.conftest import assert_no_dosing, make_config, run, run_day, t
from tests.core.conftest import sunlight as outside

SUN = "sunlight.daily:alex:2026-11-24"

SUNLIGHT_TABLE = [
    pytest.param([], [SUN], id="no daylight by 15:00 gets a nudge"),
    pytest.param([outside("12:00", 14.9)], [SUN], id="14.9 minutes is not enough"),
    pytest.param([outside("12:00", 15)], [], id="15 minutes is enough"),
    pytest.param([outside("08:00", 10), outside("13:00", 5)], [], id="minutes add up over the day"),
    pytest.param([outside("14:59", 20)], [], id="daylight logged a minute before the check counts"),
    pytest.param([outside("15:01", 60)], [SUN], id="daylight after the check is too late for it"),
    pytest.param(
        [outside("12:00", 60, day="2026-11-23")], [SUN], id="yesterday's daylight does not count"
    ),
]


@pytest.mark.parametrize(("events", "expected"), SUNLIGHT_TABLE)
def test_sunlight_daily(events: list[Event], expected: list[str]) -> None:
    replay = run(events, start=t("07:00"), until=t("23:59"))
    assert [n.id for n in replay.nudges if n.rule == "sunlight.daily"] == expected


def test_evidence_and_message() -> None:
    replay = run_day([outside("11:00", 4.4), outside("12:00", 2.0)])
    nudge = replay.nudge(SUN)
    assert nudge.ts == t("15:00")
    assert nudge.severity == "info"
    assert nudge.title == "Get some daylight"
    assert nudge.evidence == {
        "sunlight_minutes_today": 6.4,
        "min_minutes": 15,
        "date": "2026-11-24",
        "source": sunlight.SOURCE,
    }
    assert "Brown et al. 2022" in nudge.evidence["source"]
    assert nudge.message.startswith(
        "You've had about 6 minutes of daylight today. Consider stepping outside for at least "
        "15 minutes before the evening"
    )
    assert_no_dosing(nudge.message)


def test_every_day_gets_its_own_check() -> None:
    replay = run([], start=t("07:00"), until=t("07:00") + timedelta(days=3))
    assert [n.id for n in replay.nudges if n.rule == "sunlight.daily"] == [
        "sunlight.daily:alex:2026-11-24",
        "sunlight.daily:alex:2026-11-25",
        "sunlight.daily:alex:2026-11-26",
    ]


def test_check_time_and_minutes_are_configurable() -> None:
    config = make_config(rules={"sunlight.daily": {"check_at": "11:30", "min_minutes": 30}})
    replay = run_day([outside("09:00", 29)], config=config)
    assert replay.nudge(SUN).ts == t("11:30")
    off = make_config(rules={"sunlight.daily": {"enabled": False}})
    replay = run_day(config=off)
    assert [n.rule for n in replay.nudges if n.rule == "sunlight.daily"] == []
    assert replay.dropped == []


def test_a_check_whose_moment_passed_is_dropped_not_sent_late() -> None:
    # A check at 20:00 is after bedtime − 3 h (19:30): going outside is no advice any more.
    config = make_config(rules={"sunlight.daily": {"check_at": "20:00"}})
    replay = run_day(config=config)
    assert [n.rule for n in replay.nudges if n.rule == "sunlight.daily"] == []
    assert [(d.nudge_id, d.reason) for d in replay.dropped] == [(SUN, "expired")]
