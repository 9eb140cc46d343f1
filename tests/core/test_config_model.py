"""The config models the core reads: times, weekly schedules, people, references, rule defaults.

Loading YAML files (paths, lines, secrets) is tested in tests/integrations/test_config_file.py;
this pins what the pure models accept and refuse.
"""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
from pydantic import ValidationError

from coach.config import NOT_RULES, Config, Person, WeeklyTime, parse_hhmm
from tests.core.conftest import make_config


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("22:30", time(22, 30), id="HH:MM"),
        pytest.param(" 7:05 ", time(7, 5), id="one-digit hour with spaces"),
        pytest.param("00:00", time(0, 0), id="midnight"),
        pytest.param("23:59", time(23, 59), id="the last minute"),
        pytest.param(1350, time(22, 30), id="YAML's sexagesimal 22:30 is 1350 minutes"),
        pytest.param(0, time(0, 0), id="zero minutes"),
        pytest.param(time(6, 30), time(6, 30), id="a time passes through"),
    ],
)
def test_times_are_parsed(value: Any, expected: time) -> None:
    assert parse_hhmm(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("24:00", id="hour 24"),
        pytest.param("22:60", id="minute 60"),
        pytest.param("2230", id="no colon"),
        pytest.param("22:30:00", id="seconds"),
        pytest.param(1440, id="a whole day of minutes"),
        pytest.param(-1, id="negative minutes"),
        pytest.param(True, id="a boolean"),
        pytest.param(22.5, id="a float"),
        pytest.param(None, id="nothing"),
    ],
)
def test_bad_times_are_refused_saying_what_is_expected(value: Any) -> None:
    with pytest.raises(ValueError, match=r'expected a time as "HH:MM" \(00:00 to 23:59\)'):
        parse_hhmm(value)


def test_a_weekly_time_falls_back_to_its_default() -> None:
    weekly = WeeklyTime.model_validate({"default": "22:30", "sat": "23:30"})
    assert [weekly.on(d) for d in range(7)] == [time(22, 30)] * 5 + [time(23, 30), time(22, 30)]


def test_a_weekly_time_without_default_must_list_every_day() -> None:
    with pytest.raises(ValidationError, match="no time for wed, sun: list every weekday or give"):
        WeeklyTime.model_validate(
            {"mon": "22:00", "tue": "22:00", "thu": "22:00", "fri": "22:00", "sat": "23:00"}
        )
    days = dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "21:00")
    assert WeeklyTime.model_validate(days).on(6) == time(21, 0)


def test_a_person_takes_one_time_or_one_per_weekday() -> None:
    alex = Person(id="alex", bedtime="22:30", wake={"default": "06:30", "sun": "09:00"})
    assert alex.bedtime.on(0) == time(22, 30)
    assert alex.wake.on(6) == time(9, 0)
    assert alex.caffeine_half_life_h == 5.0
    assert alex.display_name == "Alex"
    assert Person(id="a1", name="Alex B.", bedtime="22:30", wake="06:30").display_name == "Alex B."


@pytest.mark.parametrize(
    ("person", "message"),
    [
        pytest.param({"caffeine_half_life_h": 1.9}, "greater than or equal to 2", id="t½ < 2 h"),
        pytest.param({"caffeine_half_life_h": 10.1}, "less than or equal to 10", id="t½ > 10 h"),
        pytest.param({"age": 9}, "greater than or equal to 10", id="age under 10"),
        pytest.param({"id": "alex smith"}, "should match pattern", id="a space in the id"),
        pytest.param({"bedtime": "late"}, 'expected a time as "HH:MM"', id="a bad bedtime"),
        pytest.param({"snore": True}, "Extra inputs are not permitted", id="an unknown key"),
    ],
)
def test_bad_people_are_refused(person: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_config(**person)


def test_a_config_is_frozen_and_finds_its_people() -> None:
    config = make_config()
    assert config.person("alex") is config.people[0]
    assert config.person("bob") is None
    assert config.tz.key == "Europe/Berlin"
    with pytest.raises(ValidationError, match="frozen"):
        config.people[0].age = 41  # type: ignore[misc]


def test_rule_defaults_are_the_evidence_based_numbers() -> None:
    rules = make_config().rules
    assert rules.caffeine_cutoff.cutoff_hours == 9.0
    assert rules.caffeine_cutoff.min_dose_mg == 20.0
    assert rules.caffeine_cutoff.bedtime_limit_mg == 50.0
    assert rules.caffeine_last_call.minutes_before_cutoff == 30
    assert rules.caffeine_bedtime_load.minutes_before_bed == 60
    assert rules.caffeine_bedtime_load.bedtime_limit_mg == 50.0
    assert rules.caffeine_daily_limit.daily_limit_mg == 400.0
    assert rules.stimulant_late.hours_before_bed == 4.0
    assert rules.exercise_late_intense.vigorous_hours_before_bed == 3.0
    assert rules.exercise_late_intense.alert_minutes_before_bed == 60
    assert rules.exercise_late_intense.hr_fraction_of_max == 0.77
    assert rules.exercise_late_intense.hr_minutes == 10
    assert rules.winddown_stretch.minutes_before_bed == 45
    assert rules.stress_relax.level == 75
    assert rules.stress_relax.minutes == 20
    assert rules.stress_relax.hours_before_bed == 4.0
    assert rules.sunlight_daily.check_at == time(15, 0)
    assert rules.sunlight_daily.min_minutes == 15
    assert rules.quiet_hours.after_bedtime_min == 15
    assert rules.nudge_budget.routine_per_evening == 2
    assert rules.nudge_budget.merge_within_min == 30
    assert all(
        getattr(rules, name).enabled for name in type(rules).model_fields if name not in NOT_RULES
    )


def test_rules_are_keyed_by_rule_id_or_field_name() -> None:
    by_id = make_config(rules={"caffeine.cutoff": {"cutoff_hours": 6}})
    by_name = make_config(rules={"caffeine_cutoff": {"cutoff_hours": 6}})
    assert by_id.rules == by_name.rules
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        make_config(rules={"caffeine.cutof": {}})


DEVICE = {"id": "bed", "kind": "bed_motion", "topic": "home/bedroom/bed", "person": "alex"}
ALEX = {"id": "alex", "bedtime": "22:30", "wake": "06:30"}


def config_with(**changes: Any) -> Config:
    """A whole config document, with top-level keys replaced."""
    return Config.model_validate(
        {"timezone": "Europe/Berlin", "people": [ALEX], "devices": [DEVICE], **changes}
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"timezone": "Europe/Atlantis"},
            "unknown time zone 'Europe/Atlantis': use an IANA name",
            id="an unknown time zone",
        ),
        pytest.param({"timezone": "../etc"}, "unknown time zone", id="a path as a time zone"),
        pytest.param({"people": [ALEX, ALEX]}, "people: id 'alex' appears twice", id="two alexes"),
        pytest.param({"people": []}, "at least 1 item", id="nobody"),
        pytest.param(
            {"devices": [DEVICE, DEVICE]}, "devices: id 'bed' appears twice", id="two beds"
        ),
        pytest.param(
            {"devices": [{**DEVICE, "person": "bob"}]},
            "device 'bed' names person 'bob', who is not in people",
            id="a device of someone unknown",
        ),
        pytest.param(
            {"devices": [{**DEVICE, "topic": "home/be+d"}]},
            "wildcards \\+ and # must stand alone",
            id="a + glued to a topic level",
        ),
        pytest.param(
            {"devices": [{**DEVICE, "topic": "home/#/bed"}]},
            "# only at the end",
            id="a # before the end of the topic",
        ),
    ],
)
def test_bad_configs_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config_with(**changes)


def test_wildcard_topics_that_stand_alone_are_accepted() -> None:
    devices = [
        {**DEVICE, "topic": "home/+/bed"},
        {**DEVICE, "id": "watch", "kind": "fitness_tracker", "topic": "tracker/#"},
    ]
    assert [d.topic for d in config_with(devices=devices).devices] == ["home/+/bed", "tracker/#"]
