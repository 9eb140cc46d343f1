"""exercise.late_intense, pinned: late vigorous or moderate workouts, and a heart rate held high.

Alex (40, so a maximum heart rate of 180 and a vigorous threshold of 0.77 · 180 = 138.6 bpm) goes
to bed at 22:30: the vigorous window opens at 19:30 and the moderate one at 21:30.
"""

from __future__ import annotations

from typing import Any

import pytest

from coach import exercise
from coach.event import Event
from coach.state import Evening
from tests.core.conftest import (
    assert_no_dosing,
    every_minute,
    heart_rate,
    make_config,
    run,
    t,
    workout,
    workout_end,
)

NEXT = "2026-11-25"


def late(hhmm: str, day: str = "2026-11-24") -> str:
    """The id of the nudge for a workout that started at `hhmm`."""
    return f"exercise.late_intense:alex:{day}:{hhmm.replace(':', '')}"


HR = "exercise.late_intense:alex:2026-11-24:hr"


def high(first: str, last: str, bpm: float = 139, day: str = "2026-11-24") -> list[Event]:
    """A heart-rate reading every minute from `first` to `last`."""
    return every_minute(first, last, lambda hhmm, day: heart_rate(hhmm, bpm, day=day), day=day)


WORKOUT_TABLE = [
    pytest.param([workout("19:29", "vigorous")], [], id="a vigorous run at 19:29 is early enough"),
    pytest.param(
        [workout("19:30", "vigorous")], [late("19:30")], id="a vigorous run at 19:30 is 3 h before"
    ),
    pytest.param(
        [workout("19:31", "vigorous")], [late("19:31")], id="a vigorous run at 19:31 is too late"
    ),
    pytest.param([workout("19:31", "moderate")], [], id="a moderate workout at 19:31 is fine"),
    pytest.param([workout("21:29", "moderate")], [], id="a moderate walk at 21:29 is fine"),
    pytest.param(
        [workout("21:31", "moderate", "walking")],
        [late("21:31")],
        id="a moderate walk at 21:31 is too late",
    ),
    pytest.param([workout("22:00", "light", "yoga")], [], id="light workouts never count"),
    pytest.param(
        [workout("23:00", "vigorous")],
        [late("23:00")],
        id="a vigorous workout after bedtime still gets it: the person is awake",
    ),
    pytest.param(
        [workout("07:00", "vigorous", day=NEXT)], [], id="a morning run is for the next night"
    ),
    pytest.param(
        [workout("20:00", "vigorous"), workout_end("20:30"), workout("21:45", "moderate")],
        [late("20:00"), late("21:45")],
        id="each late workout gets its own nudge",
    ),
]


@pytest.mark.parametrize(("events", "expected"), WORKOUT_TABLE)
def test_late_workouts(events: list[Event], expected: list[str]) -> None:
    assert run(events).ids == expected


def test_workout_evidence_and_message() -> None:
    replay = run([workout("20:30", "vigorous", "cycling")])
    (nudge,) = replay.nudges
    assert nudge.rule == "exercise.late_intense"
    assert nudge.severity == "warning"
    assert nudge.title == "Switch to stretching"
    assert nudge.evidence == {
        "activity": "cycling",
        "intensity": "vigorous",
        "started_at": "2026-11-24T20:30:00+01:00",
        "window_hours": 3.0,
        "bedtime": "2026-11-24T22:30:00+01:00",
        "hours_before_bed": 2.0,
        "source": exercise.SOURCE,
    }
    assert "Stutz, Eiholzer & Spengler 2019" in nudge.evidence["source"]
    assert nudge.message.startswith("An intense workout 2.0 h before bedtime can keep your body")
    assert "Consider easing off to light stretching now" in nudge.message
    assert_no_dosing(nudge.message)
    # The evening's record says so, for the wind-down and the night's insight to ask.
    assert replay.state.people["alex"].evenings == {"2026-11-24": Evening(late_workout=True)}


def test_a_workout_after_bedtime_says_so() -> None:
    (nudge,) = run([workout("23:00", "vigorous")]).nudges
    assert nudge.evidence["hours_before_bed"] == -0.5
    assert nudge.message.startswith("An intense workout after your bedtime can keep your body")


def test_windows_are_configurable_and_the_rule_can_be_switched_off() -> None:
    config = make_config(
        rules={
            "exercise.late_intense": {
                "vigorous_hours_before_bed": 4,
                "moderate_hours_before_bed": 2,
            }
        }
    )
    events = [workout("18:31", "vigorous"), workout_end("19:00"), workout("20:31", "moderate")]
    assert run(events, config=config).ids == [late("18:31"), late("20:31")]
    off = make_config(rules={"exercise.late_intense": {"enabled": False}})
    assert run([workout("21:00", "vigorous")], config=off).nudges == []


# -- heart rate held high --------------------------------------------------------------------------

HR_TABLE = [
    pytest.param(high("20:00", "20:09"), [], id="139 bpm held 9 minutes is not enough"),
    pytest.param(high("20:00", "20:10"), [HR], id="139 bpm held 10 minutes counts as vigorous"),
    pytest.param(high("20:00", "20:30", bpm=138), [], id="138 bpm is below 77 % of 180"),
    pytest.param(
        high("20:00", "20:05") + high("20:06", "20:10", bpm=120) + high("20:11", "20:20"),
        [],
        id="a dip below the threshold starts the count again",
    ),
    pytest.param(
        high("20:00", "20:05") + high("20:11", "20:20"),
        [],
        id="a gap of more than 5 minutes between readings starts the count again",
    ),
    pytest.param(
        high("20:00", "20:05", day="2026-11-24") + high("20:10", "20:10"),
        [HR],
        id="a gap of exactly 5 minutes keeps the count",
    ),
    pytest.param(high("19:00", "19:29"), [], id="held high before the vigorous window"),
    pytest.param(
        high("19:20", "19:30"), [HR], id="held high into the window's first minute counts"
    ),
    pytest.param(high("20:00", "21:00"), [HR], id="one heart-rate nudge a night"),
    pytest.param(
        [workout("20:00", "light", "yoga"), *high("20:00", "20:30")],
        [],
        id="during a logged workout the heart rate is the workout's business",
    ),
    pytest.param(
        [workout("19:00", "light", "yoga"), workout_end("20:00"), *high("20:01", "20:11")],
        [HR],
        id="after the workout ends the heart rate counts again",
    ),
    pytest.param(
        [workout("16:11", "light", "yoga"), *high("20:00", "20:10")],
        [],
        id="a workout without its end still counts 3:59 h after its start",
    ),
    pytest.param(
        [workout("16:09", "light", "yoga"), *high("20:00", "20:10")],
        [HR],
        id="a workout whose end never came stops counting at 4:01 h after its start",
    ),
]


@pytest.mark.parametrize(("events", "expected"), HR_TABLE)
def test_heart_rate_held_high(events: list[Event], expected: list[str]) -> None:
    assert run(events).ids == expected


def test_heart_rate_evidence() -> None:
    replay = run(high("20:00", "20:10", bpm=150))
    (nudge,) = replay.nudges
    assert nudge.ts == t("20:10")
    assert nudge.evidence == {
        "heart_rate_bpm": 150,
        "max_heart_rate_bpm": 180.0,
        "fraction_of_max": 0.77,
        "held_minutes": 10.0,
        "window_hours": 3.0,
        "source_heart_rate": exercise.SOURCE_HR,
        "bedtime": "2026-11-24T22:30:00+01:00",
        "hours_before_bed": 2.33,
        "source": exercise.SOURCE,
    }


@pytest.mark.parametrize(
    ("person", "bpm", "expected"),
    [
        pytest.param({"max_hr": 170}, 131, [HR], id="a measured max of 170 puts 131 bpm over"),
        pytest.param({"max_hr": 170}, 130, [], id="a measured max of 170 keeps 130 bpm under"),
        pytest.param({"max_hr": 170, "age": 20}, 131, [HR], id="a measured max beats the age"),
        pytest.param({"age": 20}, 153.9, [], id="at 20, 153.9 bpm is under 77 % of 200"),
        pytest.param({"age": 20}, 154, [HR], id="at 20, 154 bpm is 77 % of 200"),
        pytest.param({"age": None}, 200, [], id="without age or max the heart rate is not judged"),
    ],
)
def test_maximum_heart_rate(person: dict[str, Any], bpm: float, expected: list[str]) -> None:
    config = make_config(**person)
    assert run(high("20:00", "20:10", bpm=bpm), config=config).ids == expected


def test_heart_rate_rule_settings() -> None:
    config = make_config(
        rules={"exercise.late_intense": {"hr_fraction_of_max": 0.6, "hr_minutes": 3}}
    )
    assert run(high("20:00", "20:03", bpm=108), config=config).ids == [HR]
    off = make_config(rules={"exercise.late_intense": {"enabled": False}})
    replay = run(high("20:00", "20:30"), config=off)
    assert replay.nudges == []
    assert replay.state.people["alex"].hr_high_since is None
