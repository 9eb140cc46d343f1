"""The nudge budget: routine nudges per person and evening, the bedtime load inside the wind-down,
and answers to what the person did never held back (tables, then a property over any events)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coach.config import Config
from coach.event import (
    CoffeeBrewed,
    Event,
    OccupancyChanged,
    StressMeasured,
    SubstanceLogged,
    SunlightLogged,
    WorkoutEnded,
    WorkoutStarted,
)
from coach.rule import ROUTINE_RULES
from tests.core.conftest import (
    DAY,
    Replay,
    coffee,
    in_bed,
    logged,
    make_config,
    run,
    run_day,
    snooze,
    sunlight,
    t,
    workout,
    workout_end,
)

# A day with three routine nudges due: caffeine in the morning (the last call at 13:00), too
# little daylight (15:00) and the wind-down (21:45).
BUSY_DAY = [coffee("08:00", "coffee", ml=240), sunlight("12:00", 5)]


def budget(n: int, **more: Any) -> Config:
    """The default config with a budget of `n` routine nudges an evening."""
    rules = {"nudge_budget": {"routine_per_evening": n}, **more}
    return make_config(rules=rules)


@pytest.mark.parametrize(
    ("n", "sent", "dropped"),
    [
        pytest.param(
            2,
            ["caffeine.last_call", "winddown.stretch"],
            ["sunlight.daily"],
            id="the default 2: the first daytime one and the wind-down; the third is dropped",
        ),
        pytest.param(
            3,
            ["caffeine.last_call", "sunlight.daily", "winddown.stretch"],
            [],
            id="3: all three",
        ),
        pytest.param(
            1,
            ["winddown.stretch"],
            ["caffeine.last_call", "sunlight.daily"],
            id="1: the wind-down keeps its place",
        ),
        pytest.param(
            0,
            [],
            ["caffeine.last_call", "sunlight.daily", "winddown.stretch"],
            id="0: no routine nudge at all",
        ),
    ],
)
def test_routine_nudges_per_evening(n: int, sent: list[str], dropped: list[str]) -> None:
    replay = run_day(BUSY_DAY, config=budget(n), hours=17)
    assert [x.rule for x in replay.nudges] == sent
    budget_drops = [d for d in replay.dropped if d.reason == "budget"]
    assert [d.rule for d in budget_drops] == dropped
    # A dropped nudge is recorded under the id it would have had, and is never sent later.
    for drop in budget_drops:
        assert drop.nudge_id == f"{drop.rule}:alex:{DAY}"
        assert drop.nudge_id in replay.state.sent


def test_without_a_wind_down_the_daytime_nudges_use_the_whole_budget() -> None:
    config = budget(2, **{"winddown.stretch": {"enabled": False}})
    replay = run_day(BUSY_DAY, config=config, hours=17)
    assert [x.rule for x in replay.nudges] == ["caffeine.last_call", "sunlight.daily"]


def test_a_wind_down_dropped_in_bed_frees_its_place_for_nothing_later() -> None:
    """In bed before the wind-down: it is dropped as before ("in_bed"), and does not count."""
    replay = run_day([*BUSY_DAY, in_bed("21:30")], config=budget(2), hours=17)
    assert [x.rule for x in replay.nudges] == ["caffeine.last_call"]
    assert [(d.rule, d.reason) for d in replay.dropped] == [
        ("sunlight.daily", "budget"),
        ("winddown.stretch", "in_bed"),
    ]


def test_each_evening_has_its_own_budget() -> None:
    tomorrow = "2026-11-25"
    events = [
        *BUSY_DAY,
        coffee("08:00", "coffee", ml=240, day=tomorrow),
        sunlight("12:00", 5, day=tomorrow),
    ]
    replay = run_day(events, config=budget(2), hours=41)
    routine = [x for x in replay.nudges if x.rule in ROUTINE_RULES]
    assert Counter(x.id.rsplit(":", 1)[-1] for x in routine) == {DAY: 2, tomorrow: 2}


def test_answers_to_what_the_person_did_are_never_held_back() -> None:
    """A budget of 0: the cutoff alert after a late coffee, the exercise alert and the alcohol
    nudge still go out, and they use up nothing."""
    events = [
        coffee("16:05", "espresso", mg=126),
        logged("20:00", "alcohol"),
        workout("21:40", "vigorous"),
        workout_end("22:00"),
    ]
    replay = run_day(events, config=budget(0), hours=17)
    assert [x.rule for x in replay.nudges] == [
        "caffeine.cutoff",
        "alcohol.late",
        "exercise.late_intense",
    ]
    assert [x.severity for x in replay.nudges] == ["alert", "info", "alert"]
    assert {d.rule for d in replay.dropped if d.reason == "budget"} == {"winddown.stretch"}


def test_a_snoozed_routine_nudge_comes_back_whatever_the_budget() -> None:
    """The repeat answers the person's snooze: it is not a new routine nudge."""
    nudge_id = f"winddown.stretch:alex:{DAY}"
    replay = run_day([*BUSY_DAY, snooze("21:46", nudge_id, 10)], config=budget(2), hours=17)
    assert [x.id for x in replay.nudges] == [
        f"caffeine.last_call:alex:{DAY}",
        nudge_id,
        f"{nudge_id}:snooze1",
    ]


# -- the bedtime load inside the wind-down ------------------------------------------------------


def test_the_bedtime_load_goes_out_inside_the_wind_down() -> None:
    """Defaults: the load check (60 min before bed) and the wind-down (45) are 15 min apart, so
    one nudge at the wind-down says both, as a warning."""
    replay = run_day([coffee("16:05", "espresso", mg=126)], hours=17)
    assert [x.rule for x in replay.nudges] == ["caffeine.cutoff", "winddown.stretch"]
    winddown = replay.nudges[1]
    assert winddown.ts == t("21:45")
    assert winddown.severity == "warning"
    assert winddown.message.startswith(
        "Bedtime is at 22:30, and about 52 mg of caffeine will still be in your body then, "
        "which can make it harder to fall asleep. Consider dimming the lights"
    )
    load = winddown.evidence["caffeine.bedtime_load"]
    assert load["predicted_mg_at_bedtime"] == 51.8
    assert load["bedtime_limit_mg"] == 50.0
    assert "Gardiner et al. 2023" in load["source"]


def test_a_wind_down_without_caffeine_at_bedtime_says_nothing_about_it() -> None:
    replay = run_day([coffee("08:00", "espresso", mg=126)], hours=17)
    (winddown,) = [x for x in replay.nudges if x.rule == "winddown.stretch"]
    assert winddown.severity == "info"
    assert "caffeine" not in winddown.message
    assert "caffeine.bedtime_load" not in winddown.evidence


@pytest.mark.parametrize(
    ("load_min", "winddown_min", "merge_min", "joined"),
    [
        pytest.param(60, 45, 30, True, id="15 min apart, within 30: one nudge"),
        pytest.param(75, 45, 30, True, id="exactly 30 apart: one nudge"),
        pytest.param(76, 45, 30, False, id="31 apart: two nudges"),
        pytest.param(60, 45, 0, False, id="merging off: two nudges"),
        pytest.param(30, 45, 30, True, id="the load after the wind-down: still one, at wind-down"),
    ],
)
def test_when_the_load_joins_the_wind_down(
    load_min: int, winddown_min: int, merge_min: int, joined: bool
) -> None:
    config = make_config(
        rules={
            "caffeine.bedtime_load": {"minutes_before_bed": load_min},
            "winddown.stretch": {"minutes_before_bed": winddown_min},
            "nudge_budget": {"merge_within_min": merge_min},
        }
    )
    replay = run_day([coffee("16:05", "espresso", mg=126)], config=config, hours=17)
    rules = [x.rule for x in replay.nudges]
    if joined:
        assert rules == ["caffeine.cutoff", "winddown.stretch"]
        assert "caffeine.bedtime_load" in replay.nudges[1].evidence
    else:
        assert sorted(rules) == ["caffeine.bedtime_load", "caffeine.cutoff", "winddown.stretch"]
        (load,) = [x for x in replay.nudges if x.rule == "caffeine.bedtime_load"]
        assert load.ts == t("22:30") - timedelta(minutes=load_min)


def test_with_the_wind_down_off_the_bedtime_load_goes_out_alone() -> None:
    config = make_config(rules={"winddown.stretch": {"enabled": False}})
    replay = run_day([coffee("16:05", "espresso", mg=126)], config=config, hours=17)
    assert [(x.rule, x.ts) for x in replay.nudges] == [
        ("caffeine.cutoff", t("16:05")),
        ("caffeine.bedtime_load", t("21:30")),
    ]


# -- the property: any events ------------------------------------------------------------------

PEOPLE = [
    {"id": "alex", "bedtime": "22:30", "wake": "06:30", "age": 40},
    {"id": "sam", "bedtime": {"default": "23:15", "sat": "00:30"}, "wake": "07:15", "age": 30},
]
START = t("07:00")
HOURS = 3 * 24


def _at(minute: int) -> datetime:
    return START + timedelta(minutes=minute)


_person = st.sampled_from(["alex", "sam"])
_minute = st.integers(min_value=0, max_value=HOURS * 60 - 1)


@st.composite
def _events(draw: st.DrawFn) -> list[Event]:
    """A few days of anything a household's devices and commands can say, in time order."""
    out: list[Event] = []
    for _ in range(draw(st.integers(0, 40))):
        who, at = draw(_person), _at(draw(_minute))
        kind = draw(st.sampled_from(["coffee", "log", "workout", "stress", "sun", "bed"]))
        if kind == "coffee":
            mg = draw(st.floats(0, 300))
            out.append(CoffeeBrewed(person=who, ts=at, drink="coffee", caffeine_mg=mg))
        elif kind == "log":
            what = draw(st.sampled_from(["alcohol", "nicotine", "caffeine", "daytime_twitching"]))
            out.append(SubstanceLogged(person=who, ts=at, what=what))
        elif kind == "workout":
            intensity = draw(st.sampled_from(["light", "moderate", "vigorous"]))
            out.append(WorkoutStarted(person=who, ts=at, activity="run", intensity=intensity))
            end = at + timedelta(minutes=draw(st.integers(5, 180)))
            out.append(WorkoutEnded(person=who, ts=end))
        elif kind == "stress":
            level = draw(st.integers(50, 100))
            for i in range(draw(st.integers(1, 12))):
                out.append(
                    StressMeasured(person=who, ts=at + timedelta(minutes=5 * i), level=level)
                )
        elif kind == "sun":
            minutes = draw(st.integers(0, 40))
            out.append(SunlightLogged(person=who, ts=at, minutes=minutes))
        else:
            out.append(OccupancyChanged(person=who, ts=at, occupied=draw(st.booleans())))
    return sorted(out, key=lambda e: e.ts)


def _replay(events: list[Event], config: Config) -> Replay:
    return run(events, config=config, start=START, until=START + timedelta(hours=HOURS))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=_events(), n=st.integers(0, 3), merge=st.sampled_from([0, 30]))
def test_the_budget_holds_for_any_events(events: list[Event], n: int, merge: int) -> None:
    """For any events: routine nudges per person and evening stay within the budget; every other
    nudge (an alert answering a coffee, a workout, a drink) goes out exactly as without a
    budget; and a routine nudge the budget held back is recorded as dropped, never lost."""

    def config(per_evening: int) -> Config:
        rules = {"nudge_budget": {"routine_per_evening": per_evening, "merge_within_min": merge}}
        return Config.model_validate(
            {"timezone": "Europe/Berlin", "people": PEOPLE, "rules": rules}
        )

    limited = _replay(events, config(n))
    free = _replay(events, config(10))

    # Routine nudges: their id ends with the evening's date (the night they belong to).
    routine = Counter(
        (x.person, x.id.rsplit(":", 1)[-1]) for x in limited.nudges if x.rule in ROUTINE_RULES
    )
    assert all(count <= n for count in routine.values()), routine

    def others(replay: Replay) -> list[tuple[str, str, str, str]]:
        return [
            (x.id, x.severity, x.title, x.message)
            for x in replay.nudges
            if x.rule not in ROUTINE_RULES
        ]

    assert others(limited) == others(free)
    assert all(d.rule in ROUTINE_RULES for d in limited.dropped if d.reason == "budget")
    # The budget only holds back: every routine nudge sent is one the free run sent, and every
    # one the free run sent is either sent or recorded as dropped for the budget.
    free_routine = {x.id for x in free.nudges if x.rule in ROUTINE_RULES}
    sent_routine = {x.id for x in limited.nudges if x.rule in ROUTINE_RULES}
    held = {d.nudge_id for d in limited.dropped if d.reason == "budget"}
    assert sent_routine <= free_routine
    assert free_routine - sent_routine <= held
