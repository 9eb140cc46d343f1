"""winddown.stretch, pinned: 45 minutes before bed, not when in bed, more after a late workout.

The coach starts at 07:00 and a whole day and night replays through the fake timer service.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from coach import winddown
from coach.action import ScheduleTimer
from coach.clock import hhmm, local_iso
from coach.event import Event
from tests.core.conftest import (
    TZ,
    assert_no_dosing,
    in_bed,
    make_config,
    run,
    run_day,
    t,
    workout,
    workout_end,
)

WINDDOWN = "winddown.stretch:alex:2026-11-24"

WINDDOWN_TABLE = [
    pytest.param([], [WINDDOWN], id="an ordinary evening gets the wind-down at 21:45"),
    pytest.param([in_bed("21:30")], [], id="already in bed at 21:45: not sent"),
    pytest.param(
        [in_bed("21:30"), in_bed("21:40", occupied=False)],
        [WINDDOWN],
        id="in bed and up again before 21:45: sent",
    ),
    pytest.param([in_bed("21:46")], [WINDDOWN], id="getting into bed after 21:45 changes nothing"),
    pytest.param(
        [in_bed("01:00"), in_bed("07:00", occupied=False)],
        [WINDDOWN],
        id="last night's bed does not count once up",
    ),
]


@pytest.mark.parametrize(("events", "expected"), WINDDOWN_TABLE)
def test_winddown(events: list[Event], expected: list[str]) -> None:
    replay = run_day(events)
    assert [n.id for n in replay.nudges if n.rule == "winddown.stretch"] == expected


def test_in_bed_is_recorded_as_dropped_and_never_sent_later() -> None:
    replay = run_day([in_bed("21:30"), in_bed("22:00", occupied=False)])
    assert [(d.nudge_id, d.reason, d.ts) for d in replay.dropped] == [
        (WINDDOWN, "in_bed", t("21:45"))
    ]
    assert WINDDOWN in replay.state.sent
    assert replay.state.dropped == {"in_bed": 1}
    assert [n.rule for n in replay.nudges if n.rule == "winddown.stretch"] == []


def test_evidence_and_message() -> None:
    nudge = run_day().nudge(WINDDOWN)
    assert nudge.ts == t("21:45")
    assert nudge.severity == "info"
    assert nudge.title == "Time to wind down"
    assert nudge.evidence == {
        "bedtime": "2026-11-24T22:30:00+01:00",
        "minutes_before_bed": 45,
        "late_workout_today": False,
        "source": winddown.SOURCE,
    }
    assert "Brown et al. 2022" in nudge.evidence["source"]
    assert nudge.message == (
        "Bedtime is at 22:30. Consider dimming the lights, putting screens away and doing a few "
        "minutes of light stretching to relax."
    )
    assert_no_dosing(nudge.message)


def test_after_a_late_workout_it_says_more_about_stretching() -> None:
    replay = run_day([workout("20:00", "vigorous"), workout_end("20:45")])
    nudge = replay.nudge(WINDDOWN)
    assert nudge.evidence["late_workout_today"] is True
    assert nudge.message.endswith(
        "After today's late workout, slow stretches for the legs, hips and back, held 20–30 "
        "seconds each with calm breathing, help your body settle."
    )


def test_an_early_workout_does_not_change_the_text() -> None:
    replay = run_day([workout("17:00", "vigorous"), workout_end("18:00")])
    assert replay.nudge(WINDDOWN).evidence["late_workout_today"] is False


@pytest.mark.parametrize(
    ("person", "rules", "expected"),
    [
        pytest.param({}, {"winddown.stretch": {"minutes_before_bed": 90}}, "21:00", id="90 min"),
        pytest.param({"bedtime": "00:45"}, {}, "00:00", id="bedtime 00:45: at midnight"),
        pytest.param(
            {"bedtime": {"default": "22:30", "tue": "21:00"}}, {}, "20:15", id="Tuesday's bedtime"
        ),
    ],
)
def test_winddown_hangs_on_the_nights_bedtime(
    person: dict[str, Any], rules: dict[str, Any], expected: str
) -> None:
    replay = run_day(config=make_config(rules=rules, **person))
    assert hhmm(replay.nudge(WINDDOWN).ts, TZ) == expected


def test_switched_off_it_is_not_even_scheduled() -> None:
    replay = run_day(config=make_config(rules={"winddown.stretch": {"enabled": False}}))
    assert [n.rule for n in replay.nudges if n.rule == "winddown.stretch"] == []
    assert replay.dropped == []
    timers = [a.timer.kind for a in replay.actions if isinstance(a, ScheduleTimer)]
    assert "winddown.stretch" not in timers
    assert "caffeine.bedtime_load" in timers


@pytest.mark.parametrize(
    ("first_day", "offsets"),
    [
        pytest.param(
            "2026-03-26",
            ["+01:00", "+01:00", "+01:00", "+02:00", "+02:00", "+02:00"],
            id="a week across the spring-forward of 2026-03-29",
        ),
        pytest.param(
            "2026-10-22",
            ["+02:00", "+02:00", "+02:00", "+01:00", "+01:00", "+01:00"],
            id="a week across the fall-back of 2026-10-25",
        ),
    ],
)
def test_winddown_stays_at_2145_local_across_daylight_saving(
    first_day: str, offsets: list[str]
) -> None:
    start = t("07:00", first_day)
    replay = run([], start=start, until=start + timedelta(days=6))
    winddowns = [n for n in replay.nudges if n.rule == "winddown.stretch"]
    assert [local_iso(n.ts, TZ)[11:] for n in winddowns] == [f"21:45:00{o}" for o in offsets]
    evenings = [n.id.rsplit(":", 1)[1] for n in winddowns]
    first = t("12:00", first_day).date()
    assert evenings == [(first + timedelta(days=i)).isoformat() for i in range(6)]
