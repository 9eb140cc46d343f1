"""Missing data is not zero: every rule that reads a sum of readings tells "nothing measured it"
(unknown: no nudge, left out of the insight) from a measured 0.

Daylight (`sunlight.daily`) and the week's active minutes have their tables in test_sunlight and
test_activity; here the day's caffeine, the evening's stress and the evening's exercise, as the
rules and the night's record read them.
"""

from __future__ import annotations

from typing import Any

import pytest

from coach import caffeine, stress
from coach.config import Config
from coach.event import Event
from coach.state import PersonState
from tests.core.conftest import (
    DAY,
    coffee,
    heart_rate,
    logged,
    make_config,
    run_day,
    sunlight,
    workout,
    workout_end,
)
from tests.core.conftest import stress as stress_reading
from tests.core.test_night import a_night, replay_nights

ALEX = {"id": "alex", "bedtime": "22:30", "wake": "06:30", "age": 40}


def with_devices(*kinds: str) -> Config:
    """alex with a device of each kind."""
    topics = {"coffee_maker": "home/kitchen/coffee", "fitness_tracker": "tracker/alex"}
    devices = [{"id": k, "kind": k, "topic": topics[k], "person": "alex"} for k in kinds]
    return Config.model_validate(
        {"timezone": "Europe/Berlin", "people": [ALEX], "devices": devices}
    )


# -- the day's caffeine -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "tracked", "expected"),
    [
        pytest.param({}, False, None, id="nothing recorded, not tracked: unknown"),
        pytest.param({}, True, 0.0, id="nothing recorded by a coffee maker that is there: 0"),
        pytest.param({DAY: 0.0}, False, 0.0, id="a recorded 0 (decaf counted as none) counts"),
        pytest.param({DAY: 95.0}, False, 95.0, id="a recorded coffee"),
        pytest.param({"2026-11-23": 95.0}, True, 0.0, id="yesterday's coffee is not today's"),
    ],
)
def test_caffeine_of_a_day(days: dict[str, float], tracked: bool, expected: float | None) -> None:
    ps = PersonState(caffeine_days=days)
    assert caffeine.caffeine_mg_on(ps, DAY, tracked=tracked) == expected


@pytest.mark.parametrize(
    ("config", "events"),
    [
        pytest.param(make_config(), [], id="unknown: no last call"),
        pytest.param(with_devices("coffee_maker"), [], id="a measured 0: no last call"),
        pytest.param(make_config(), [coffee("08:00", "decaf")], id="3 mg of decaf: none"),
    ],
)
def test_no_last_call_without_caffeine_known_today(config: Config, events: list[Event]) -> None:
    replay = run_day(events, config=config, hours=10)
    assert [n.rule for n in replay.nudges] == []


def test_the_last_call_evidence_carries_the_days_caffeine() -> None:
    replay = run_day([coffee("08:00", "coffee", ml=240)], hours=10)
    (last_call,) = replay.nudges
    assert last_call.rule == "caffeine.last_call"
    assert last_call.evidence["caffeine_mg_today"] == 95.0


# -- the evening's record, as the insight reads it -----------------------------------------------


def exposures(events: list[Event], config: Config | None = None) -> dict[str, Any]:
    """The exposures recorded with the night of DAY."""
    ordered = sorted([*events, *a_night(DAY)], key=lambda e: e.ts)
    replay = replay_nights(ordered, 1, **({"config": config} if config else {}))
    (entry,) = replay.state.people["alex"].nights.history
    e = entry.exposures
    return {
        "caffeine": e.caffeine_at_bedtime,
        "workout": e.late_workout,
        "stress": e.stress_evening,
    }


@pytest.mark.parametrize(
    ("events", "config", "expected"),
    [
        pytest.param(
            [],
            None,
            {"caffeine": None, "workout": None, "stress": None},
            id="nothing measured the evening: all unknown",
        ),
        pytest.param(
            [],
            with_devices("coffee_maker", "fitness_tracker"),
            {"caffeine": False, "workout": False, "stress": None},
            id="a coffee maker and a tracker that saw nothing: caffeine and exercise known",
        ),
        pytest.param(
            [logged("09:00", "caffeine", mg=80), heart_rate("19:00", 70)],
            None,
            {"caffeine": False, "workout": False, "stress": None},
            id="a morning coffee logged and a heart rate: known, and without",
        ),
        pytest.param(
            [stress_reading("20:00", 30)],
            None,
            {"caffeine": None, "workout": None, "stress": False},
            id="a calm stress reading in the 4 h before bed: known, without",
        ),
        pytest.param(
            [stress_reading("12:00", 30)],
            None,
            {"caffeine": None, "workout": None, "stress": None},
            id="a stress reading at noon says nothing about the evening",
        ),
        pytest.param(
            [stress_reading(f"20:{m:02d}", 90) for m in range(25)],
            None,
            {"caffeine": None, "workout": None, "stress": True},
            id="stress held high before bed: with",
        ),
        pytest.param(
            [
                coffee("16:00", "espresso", mg=126),
                workout("20:30", "vigorous"),
                workout_end("21:00"),
            ],
            None,
            {"caffeine": True, "workout": True, "stress": None},
            id="a late espresso and a late vigorous workout: with",
        ),
    ],
)
def test_the_evenings_exposures(
    events: list[Event], config: Config | None, expected: dict[str, Any]
) -> None:
    assert exposures(events, config) == expected


def test_stress_evening_reads_the_evening_record() -> None:
    ps = PersonState()
    assert stress.stress_evening(ps, DAY) is None
    ps.evening(DAY).stress_read = True
    assert stress.stress_evening(ps, DAY) is False
    ps.evening(DAY).stress_high = True
    assert stress.stress_evening(ps, DAY) is True


def test_daylight_unknown_and_zero_side_by_side() -> None:
    """The rule this began with: no reading, no nudge; a reading of 0, the nudge."""
    assert [n.rule for n in run_day([], hours=10).nudges] == []
    replay = run_day([sunlight("12:00", 0)], hours=10)
    assert [n.rule for n in replay.nudges] == ["sunlight.daily"]
