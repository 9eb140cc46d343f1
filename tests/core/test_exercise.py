"""exercise.late_intense, pinned: vigorous exercise in the last hour before bed (the alert) or
starting within 3 h of it (one tip), from workouts or a heart rate held high.

Alex (40, so a maximum heart rate of 180 and a vigorous threshold of 0.77 · 180 = 138.6 bpm) goes
to bed at 22:30: the tip window opens at 19:30 and the last hour at 21:30.
"""

from __future__ import annotations

from typing import Any

import pytest

from coach import exercise
from coach.event import Event
from tests.core.conftest import (
    assert_no_dosing,
    bedtime_tonight,
    every_minute,
    heart_rate,
    make_config,
    run,
    t,
    workout,
    workout_end,
)

NEXT = "2026-11-25"
END = t("23:59")


def tip(hhmm: str, day: str = "2026-11-24") -> str:
    """The id of the tip for a vigorous workout that started at `hhmm`."""
    return f"exercise.late_intense:alex:{day}:{hhmm.replace(':', '')}"


def alert(hhmm: str, day: str = "2026-11-24") -> str:
    """The id of the last-hour alert for a vigorous workout that started at `hhmm`."""
    return tip(hhmm, day) + ":last_hour"


HR = "exercise.late_intense:alex:2026-11-24:hr"
HR_ALERT = HR + ":last_hour"


def high(first: str, last: str, bpm: float = 139, day: str = "2026-11-24") -> list[Event]:
    """A heart-rate reading every minute from `first` to `last`."""
    return every_minute(first, last, lambda hhmm, day: heart_rate(hhmm, bpm, day=day), day=day)


def vigorous(start: str, end: str | None = None, activity: str = "running") -> list[Event]:
    """A vigorous workout from `start`, ended at `end` (never, if None)."""
    return [workout(start, "vigorous", activity)] + ([workout_end(end)] if end else [])


WORKOUT_TABLE = [
    pytest.param(vigorous("19:29", "21:00"), [], id="a vigorous run from 19:29 is early enough"),
    pytest.param(vigorous("19:30", "21:00"), [tip("19:30")], id="one from 19:30 gets the tip"),
    pytest.param(
        vigorous("20:00", "21:29"), [tip("20:00")], id="ending at 21:29, outside the last hour"
    ),
    pytest.param(
        vigorous("20:00", "21:30"),
        [tip("20:00"), alert("20:00")],
        id="still going at 21:30, an hour before bed: the alert",
    ),
    pytest.param(
        vigorous("21:29"),
        [tip("21:29"), alert("21:29")],
        id="starting at 21:29 and still going a minute later: tip and alert, two at most",
    ),
    pytest.param(
        vigorous("21:30"), [alert("21:30")], id="starting at 21:30: the alert at once, no tip"
    ),
    pytest.param(
        vigorous("23:00"), [alert("23:00")], id="after bedtime the alert still goes: awake"
    ),
    pytest.param(
        vigorous("18:00"),
        [alert("18:00")],
        id="a long one from 18:00 still going at 21:30: the alert only",
    ),
    pytest.param(
        vigorous("17:31"), [alert("17:31")], id="a workout without its end counts 3:59 h later"
    ),
    pytest.param(vigorous("17:29"), [], id="a workout whose end never came stops at 4:01 h"),
    pytest.param([workout("19:31", "moderate")], [], id="a moderate workout at 19:31: nothing"),
    pytest.param(
        [workout("21:45", "moderate", "walking")], [], id="a moderate walk at 21:45: nothing"
    ),
    pytest.param([workout("22:00", "light", "yoga")], [], id="light workouts never count"),
    pytest.param(
        [workout("07:00", "vigorous", day=NEXT)], [], id="a morning run is for the next night"
    ),
    pytest.param(
        [*vigorous("20:00", "20:30"), *vigorous("21:45")],
        [tip("20:00"), alert("21:45")],
        id="each workout gets its own nudges",
    ),
]


@pytest.mark.parametrize(("events", "expected"), WORKOUT_TABLE)
def test_late_workouts(events: list[Event], expected: list[str]) -> None:
    assert run(events, until=END).ids == expected


def test_the_tip_informs_and_the_alert_says_switch_now() -> None:
    replay = run(vigorous("20:00", "21:40", "cycling"), until=END)
    first, second = replay.nudges
    assert (first.ts, first.severity, first.title) == (
        t("20:00"),
        "info",
        "Keep the last hour light",
    )
    assert first.message == (
        "This vigorous workout started 2 hours 30 minutes before your bedtime (22:30). Evening "
        "exercise generally doesn't harm sleep; only hard exercise that ends within an hour of "
        "bedtime can make it harder to fall asleep. Consider finishing by 21:30 and keeping the "
        "last hour for light stretching."
    )
    assert first.evidence == {
        "activity": "cycling",
        "intensity": "vigorous",
        "started_at": "2026-11-24T20:00:00+01:00",
        "window_hours": 3.0,
        "alert_minutes_before_bed": 60,
        "bedtime": "2026-11-24T22:30:00+01:00",
        "hours_before_bed": 2.5,
        "last_hour": False,
        "source": exercise.SOURCE,
    }
    assert (second.ts, second.severity, second.title) == (
        t("21:30"),
        "alert",
        "Switch to stretching",
    )
    assert second.message == (
        "Your vigorous workout is still going 1 hour before your bedtime (22:30). Hard exercise "
        "this close to bed can make it harder to fall asleep; consider switching to light "
        "stretching now."
    )
    assert second.evidence["hours_before_bed"] == 1.0
    assert second.evidence["last_hour"] is True
    assert "vigorous exercise ending ≤ 1 h before bedtime" in exercise.SOURCE
    assert "23 studies in healthy adults" in exercise.SOURCE
    for nudge in replay.nudges:
        assert_no_dosing(nudge.message)
    assert replay.state.people["alex"].evenings["2026-11-24"].late_workout


@pytest.mark.parametrize(
    ("start", "opening"),
    [
        pytest.param(
            "21:50",
            "Your vigorous workout started 40 minutes before your bedtime (22:30).",
            id="inside the last hour: minutes",
        ),
        pytest.param(
            "22:29",
            "Your vigorous workout started 1 minute before your bedtime (22:30).",
            id="a minute before bed: singular",
        ),
        pytest.param(
            "23:00",
            "Your vigorous workout started after your bedtime (22:30).",
            id="after bedtime",
        ),
    ],
)
def test_a_workout_starting_in_the_last_hour_says_when(start: str, opening: str) -> None:
    (nudge,) = run(vigorous(start)).nudges
    assert nudge.message.startswith(opening + " Hard exercise this close to bed")
    assert nudge.severity == "alert"


def test_no_late_workout_in_the_evening_record_for_moderate_exercise() -> None:
    replay = run([workout("21:45", "moderate"), workout_end("22:15")], until=END)
    assert replay.state.people["alex"].evenings == {}


def test_a_restart_re_arms_the_last_hour_check_of_an_open_workout() -> None:
    replay = run(vigorous("20:00"))
    replay.timers.pending.clear()  # the shell lost its timers
    replay.start(t("20:30"))
    replay.advance(END)
    assert [n.id for n in replay.nudges if n.rule == "exercise.late_intense"] == [
        tip("20:00"),
        alert("20:00"),
    ]


def test_a_later_bedtime_moves_the_last_hour_check() -> None:
    # Bed moved to 23:30 at 20:15: the workout ending at 22:00 is 1.5 h before it.
    events = [*vigorous("20:00"), bedtime_tonight("20:15", "23:30"), workout_end("22:00")]
    replay = run(events, until=END)
    assert [n.id for n in replay.nudges if n.rule == "exercise.late_intense"] == [tip("20:00")]
    moved = run([*vigorous("20:00"), bedtime_tonight("20:15", "23:30")], until=END)
    (last,) = [n for n in moved.nudges if n.id == alert("20:00")]
    assert last.ts == t("22:30")


def test_an_ended_workout_leaves_no_pending_check() -> None:
    replay = run(vigorous("20:00", "20:45"))
    assert [tm for tm in replay.timers.pending.values() if tm.kind == "exercise.last_hour"] == []


def test_windows_are_configurable_and_the_rule_can_be_switched_off() -> None:
    config = make_config(
        rules={
            "exercise.late_intense": {
                "vigorous_hours_before_bed": 4,
                "alert_minutes_before_bed": 30,
            }
        }
    )
    events = [*vigorous("18:31", "19:00"), *vigorous("21:58", "21:59"), *vigorous("22:00")]
    assert run(events, config=config, until=END).ids == [
        tip("18:31"),
        tip("21:58"),
        alert("22:00"),
    ]
    off = make_config(rules={"exercise.late_intense": {"enabled": False}})
    assert run(vigorous("20:00"), config=off, until=END).nudges == []


# -- heart rate held high --------------------------------------------------------------------------

HR_TABLE = [
    pytest.param(high("20:00", "20:09"), [], id="139 bpm held 9 minutes is not enough"),
    pytest.param(high("20:00", "20:10"), [HR], id="139 bpm held 10 minutes: the tip"),
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
    pytest.param(high("19:00", "19:29"), [], id="held high before the tip window"),
    pytest.param(high("19:20", "19:30"), [HR], id="held high into the window's first minute"),
    pytest.param(high("20:00", "21:00"), [HR], id="one tip a night"),
    pytest.param(
        high("21:19", "21:29"), [HR], id="10 minutes reached at 21:29: just outside the last hour"
    ),
    pytest.param(
        high("21:20", "21:30"), [HR_ALERT], id="10 minutes reached at 21:30: inside, the alert"
    ),
    pytest.param(
        high("21:00", "21:45"), [HR, HR_ALERT], id="held from 21:00 into the last hour: both"
    ),
    pytest.param(high("21:00", "23:00"), [HR, HR_ALERT], id="never more than two a night"),
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


def test_heart_rate_evidence_and_messages() -> None:
    replay = run(high("20:00", "21:40", bpm=150))
    first, second = replay.nudges
    assert (first.ts, first.severity) == (t("20:10"), "info")
    assert first.evidence == {
        "heart_rate_bpm": 150,
        "max_heart_rate_bpm": 180.0,
        "fraction_of_max": 0.77,
        "held_minutes": 10.0,
        "window_hours": 3.0,
        "alert_minutes_before_bed": 60,
        "source_heart_rate": exercise.SOURCE_HR,
        "bedtime": "2026-11-24T22:30:00+01:00",
        "hours_before_bed": 2.33,
        "last_hour": False,
        "source": exercise.SOURCE,
    }
    assert first.message == (
        "Your heart rate has been at a hard-exercise level (139 bpm or more) for 10 minutes, "
        "about 2 hours 15 minutes before your bedtime (22:30). Evening exercise generally doesn't "
        "harm sleep; only hard exercise that ends within an hour of bedtime can make it harder to "
        "fall asleep. Consider finishing by 21:30 and keeping the last hour for light stretching."
    )
    assert (second.ts, second.severity) == (t("21:30"), "alert")
    assert second.message == (
        "Your heart rate has been at a hard-exercise level (139 bpm or more) for 90 minutes, "
        "1 hour before your bedtime (22:30). Hard exercise this close to bed can make it harder "
        "to fall asleep; consider switching to light stretching now."
    )
    assert replay.state.people["alex"].evenings["2026-11-24"].late_workout


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
