"""Regular activity, pinned: the week's minutes (WHO 2020) and `encouragement.exercise`.

Alex's tracker reports workouts, and a heart rate every morning while it is worn. On the fourth
day after the day of the latest workout, at 11:00, a suggestion to move; then none for four more
days. Monday 2026-11-23 is the first day.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from coach import activity
from coach.config import Config
from coach.event import Event
from tests.core.conftest import (
    assert_no_dosing,
    heart_rate,
    make_config,
    run,
    snooze,
    t,
    workout,
    workout_end,
)

MON, TUE, WED, THU, FRI, SAT, SUN = (f"2026-11-{d}" for d in range(23, 30))


def nudge_id(day: str) -> str:
    """The id of the suggestion on `day`."""
    return f"encouragement.exercise:alex:{day}"


def session(day: str, intensity: str = "moderate", start: str = "18:00", minutes: int = 45):
    """A workout on `day` that ended after `minutes`."""
    begin = t(start, day)
    end = begin + timedelta(minutes=minutes)
    return [
        workout(start, intensity, day=day),  # type: ignore[arg-type]
        workout_end(end.strftime("%H:%M"), day=end.date().isoformat()),
    ]


def worn(first: int = 0, last: int = 12) -> list[Event]:
    """The tracker on the wrist: a heart rate at 08:00 on each day from MON + `first` to `last`."""
    days = [(t("08:00", MON) + timedelta(days=i)).date().isoformat() for i in range(first, last)]
    return [heart_rate("08:00", 64, day=d) for d in days]


def with_wear(events: list[Event], wear: list[Event] | None = None) -> list[Event]:
    """The events and the tracker's morning readings, in time order."""
    return sorted([*events, *(worn() if wear is None else wear)], key=lambda e: e.ts)


def suggestions(
    events: list[Event],
    days: int = 10,
    config: Config | None = None,
    wear: list[Event] | None = None,
) -> list[str]:
    """The suggestions sent from Monday 07:00 over `days` days, the tracker worn every morning
    unless `wear` says which readings it sent."""
    start = t("07:00", MON)
    until = start + timedelta(days=days)
    replay = run(
        [e for e in with_wear(events, wear) if e.ts < until],
        start=start,
        until=until,
        **({"config": config} if config else {}),
    )
    return [n.id for n in replay.nudges if n.rule == "encouragement.exercise"]


ENCOURAGEMENT_TABLE = [
    pytest.param([], [], id="a tracker that never reported a workout: nothing, ever"),
    pytest.param(
        session(MON),
        [nudge_id(FRI), nudge_id("2026-12-01")],
        id="last workout Monday: Friday is the fourth day after, and again four days later",
    ),
    pytest.param(
        [*session(MON), *session(FRI, start="07:30")],
        [nudge_id("2026-12-01")],
        id="a workout early on the fourth day: no suggestion that day",
    ),
    pytest.param(
        [*session(MON), *session(FRI, start="11:30")],
        [nudge_id(FRI), nudge_id("2026-12-01")],
        id="a workout after the suggestion: the fourth day after it, Tuesday",
    ),
    pytest.param(
        [*session(MON), *session(WED)],
        [nudge_id(SUN)],
        id="a workout Wednesday: Sunday is the fourth day after",
    ),
    pytest.param(
        session(MON, "light", "19:00", 30),
        [nudge_id(FRI), nudge_id("2026-12-01")],
        id="a light workout is a workout too",
    ),
    pytest.param(
        [workout("18:00", "moderate", day=MON)],
        [nudge_id(FRI), nudge_id("2026-12-01")],
        id="a workout whose end never came still happened",
    ),
]


@pytest.mark.parametrize(
    ("wear", "expected"),
    [
        pytest.param(worn(), [nudge_id(FRI), nudge_id("2026-12-01")], id="worn every day"),
        pytest.param(
            worn(0, 2),
            [],
            id="off the wrist from Wednesday: the days without a workout are unknown, not zero",
        ),
        pytest.param(
            worn(0, 2) + worn(4, 5),
            [nudge_id(FRI)],
            id="back on the wrist Friday at 08:00: the 11:00 check knows again",
        ),
        pytest.param(
            [heart_rate("10:59", 64, day=d) for d in (MON, "2026-12-01")],
            [nudge_id("2026-12-01")],
            id="silent Tuesday to Monday: only the day it reported again",
        ),
    ],
)
def test_days_without_a_workout_count_only_while_the_tracker_is_worn(
    wear: list[Event], expected: list[str]
) -> None:
    assert suggestions(session(MON), wear=wear) == expected


@pytest.mark.parametrize(("events", "expected"), ENCOURAGEMENT_TABLE)
def test_encouragement_after_four_days_without_a_workout(
    events: list[Event], expected: list[str]
) -> None:
    assert suggestions(events) == expected


def test_the_suggestion_is_daytime_informational_and_reads_right() -> None:
    start = t("07:00", MON)
    replay = run(with_wear(session(MON), worn(0, 5)), start=start, until=start + timedelta(days=5))
    nudge = replay.nudge(nudge_id(FRI))
    assert (nudge.ts, nudge.severity, nudge.title) == (t("11:00", FRI), "info", "Time to move?")
    assert nudge.message == (
        "Your tracker hasn't recorded a workout for 4 days. If you can, consider some activity "
        "today, even a brisk walk: regular exercise tends to help sleep."
    )
    assert nudge.evidence == {
        "days_without_workout": 4,
        "last_workout": MON,
        "days_without": 4,
        "active_minutes_7_days": 45.0,
        "source": activity.SOURCE,
    }
    assert "WHO 2020" in nudge.evidence["source"]
    assert_no_dosing(nudge.message)


def test_settings_and_switching_off() -> None:
    three = make_config(rules={"encouragement.exercise": {"days_without": 3, "check_at": "17:59"}})
    start = t("07:00", MON)
    events = with_wear(session(MON), worn(0, 4))
    replay = run(events, start=start, until=start + timedelta(days=4), config=three)
    (nudge,) = [n for n in replay.nudges if n.rule == "encouragement.exercise"]
    assert nudge.ts == t("17:59", THU)
    off = make_config(rules={"encouragement.exercise": {"enabled": False}})
    assert suggestions(session(MON), config=off) == []


@pytest.mark.parametrize("check_at", ["18:00", "21:30", "05:59"])
def test_never_after_18_00(check_at: str) -> None:
    with pytest.raises(ValueError, match="daytime suggestion"):
        make_config(rules={"encouragement.exercise": {"check_at": check_at}})


def test_a_check_that_comes_late_after_a_restart_is_dropped_at_18_00() -> None:
    # The daemon was down from 10:00 to 18:30 on Friday: the 11:00 check comes at 18:30, too late.
    start = t("07:00", MON)
    replay = run(with_wear(session(MON), worn(0, 5)), start=start, until=t("10:00", FRI))
    replay.timers.pending.clear()
    replay.start(t("18:30", FRI))
    replay.advance(t("23:00", FRI))
    assert [n.rule for n in replay.nudges if n.rule == "encouragement.exercise"] == []


# -- the week's minutes ------------------------------------------------------------------------


WEEK_TABLE = [
    pytest.param([], None, None, id="no workout ever reported: unknown"),
    pytest.param(
        [workout("18:00", "moderate", day=SUN)], 0.0, False, id="a workout not ended yet: 0"
    ),
    pytest.param(
        [*session(MON, minutes=75), *session(WED, minutes=74)],
        149.0,
        False,
        id="149 moderate minutes: not yet",
    ),
    pytest.param(
        [*session(MON, minutes=75), *session(WED, minutes=75)],
        150.0,
        True,
        id="150 moderate minutes: reached",
    ),
    pytest.param(
        session(TUE, "vigorous", minutes=75), 150.0, True, id="75 vigorous minutes count double"
    ),
    pytest.param(session(TUE, "light", minutes=200), 0.0, False, id="light workouts do not count"),
    pytest.param(session(MON, minutes=300), 240.0, True, id="one workout counts at most 4 hours"),
    pytest.param(
        [*session("2026-11-22", minutes=150), *session(MON, minutes=10)],
        10.0,
        False,
        id="the day before the 7 days does not count",
    ),
]


@pytest.mark.parametrize(("events", "minutes", "reached"), WEEK_TABLE)
def test_the_weeks_minutes(
    events: list[Event], minutes: float | None, reached: bool | None
) -> None:
    ps = run(events).state.person("alex")
    assert activity.active_minutes_week(ps, SUN) == minutes
    assert activity.is_active_week(ps, SUN) is reached


def test_a_snoozed_suggestion_never_comes_back_after_18_00() -> None:
    start = t("07:00", MON)
    events = [*with_wear(session(MON), worn(0, 5)), snooze("17:50", nudge_id(FRI), 30, day=FRI)]
    replay = run(events, start=start, until=t("23:00", FRI))
    assert [n.id for n in replay.nudges if n.rule == "encouragement.exercise"] == [nudge_id(FRI)]
    assert [(d.nudge_id, d.reason) for d in replay.dropped] == [
        (f"{nudge_id(FRI)}:snooze1", "expired")
    ]
