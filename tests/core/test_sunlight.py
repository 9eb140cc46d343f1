"""sunlight.daily, pinned: at 15:00, a day with less than 15 minutes of daylight gets a nudge.

A day without a daylight reading is unknown (the tracker may not report daylight at all): no
nudge. A reading of 0 minutes is a reading.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from coach import sunlight
from coach.event import Event
from tests.core.conftest import assert_no_dosing, make_config, run, run_day, t
from tests.core.conftest import sunlight as outside

SUN = "sunlight.daily:alex:2026-11-24"

SUNLIGHT_TABLE = [
    pytest.param([], [], id="no daylight reading today is unknown: no nudge"),
    pytest.param([outside("12:00", 0)], [SUN], id="a reading of 0 minutes counts: a nudge"),
    pytest.param([outside("12:00", 14.9)], [SUN], id="14.9 minutes is not enough"),
    pytest.param([outside("12:00", 15)], [], id="15 minutes is enough"),
    pytest.param([outside("08:00", 10), outside("13:00", 5)], [], id="minutes add up over the day"),
    pytest.param([outside("14:59", 20)], [], id="daylight logged a minute before the check counts"),
    pytest.param(
        [outside("12:00", 3), outside("15:01", 60)],
        [SUN],
        id="daylight after the check is too late for it",
    ),
    pytest.param(
        [outside("15:01", 60)], [], id="a first reading after the check: unknown at the check"
    ),
    pytest.param(
        [outside("12:00", 60, day="2026-11-23")],
        [],
        id="yesterday's daylight neither counts nor makes today known",
    ),
    pytest.param(
        [outside("12:00", 60, day="2026-11-23"), outside("12:00", 2)],
        [SUN],
        id="yesterday's daylight does not count toward today's",
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
    assert nudge.message == (
        "Your tracker has counted 6 minutes of daylight today. Consider stepping outside for at "
        "least 15 minutes before the evening: daylight helps your body clock and lowers stress."
    )
    assert_no_dosing(nudge.message)


@pytest.mark.parametrize(
    ("minutes", "counted"),
    [
        pytest.param(0, "no daylight", id="0 minutes is no daylight"),
        pytest.param(0.4, "less than a minute of daylight", id="under a minute"),
        pytest.param(1.7, "1 minute of daylight", id="one minute, singular"),
        pytest.param(14.9, "14 minutes of daylight", id="minutes rounded down, short of 15"),
    ],
)
def test_the_minutes_read_right(minutes: float, counted: str) -> None:
    replay = run_day([outside("11:00", minutes)])
    assert replay.nudge(SUN).message.startswith(f"Your tracker has counted {counted} today.")
    config = make_config(rules={"sunlight.daily": {"min_minutes": 1}})
    one = run_day([outside("11:00", 0)], config=config).nudge(SUN).message
    assert "for at least 1 minute before the evening" in one


@pytest.mark.parametrize(
    ("events", "reached"),
    [
        pytest.param([], None, id="no reading: unknown"),
        pytest.param([outside("09:00", 0)], False, id="a reading of 0: not reached"),
        pytest.param([outside("09:00", 14.9)], False, id="14.9 minutes: not reached"),
        pytest.param([outside("09:00", 10), outside("10:00", 5)], True, id="15 minutes: reached"),
        pytest.param([outside("09:00", 30, day="2026-11-23")], None, id="only yesterday's"),
    ],
)
def test_daylight_reached_is_unknown_without_a_reading(
    events: list[Event], reached: bool | None
) -> None:
    ps = run(events).state.person("alex")
    assert sunlight.is_daylight_reached(ps, "2026-11-24", 15) is reached


def test_every_day_gets_its_own_check() -> None:
    days = ("2026-11-24", "2026-11-25", "2026-11-26")
    readings = [outside("12:00", 5, day=day) for day in days]
    replay = run(readings, start=t("07:00"), until=t("07:00") + timedelta(days=3))
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
    replay = run_day([outside("09:00", 0)], config=off)
    assert [n.rule for n in replay.nudges if n.rule == "sunlight.daily"] == []
    assert replay.dropped == []


def test_a_check_whose_moment_passed_is_dropped_not_sent_late() -> None:
    # A check at 20:00 is after bedtime − 3 h (19:30): going outside is no advice any more.
    config = make_config(rules={"sunlight.daily": {"check_at": "20:00"}})
    replay = run_day([outside("09:00", 0)], config=config)
    assert [n.rule for n in replay.nudges if n.rule == "sunlight.daily"] == []
    assert [(d.nudge_id, d.reason) for d in replay.dropped] == [(SUN, "expired")]
