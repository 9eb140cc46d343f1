"""stress.relax, pinned: stress ≥ 75 held 20 minutes within 4 h of bed, once an evening.

Alex goes to bed at 22:30, so the window opens at 18:30.
"""

from __future__ import annotations

import pytest

from coach import stress
from coach.event import Event
from coach.state import Evening
from tests.core.conftest import (
    assert_no_dosing,
    every_minute,
    make_config,
    run,
    t,
)
from tests.core.conftest import stress as reading

RELAX = "stress.relax:alex:2026-11-24"


def held(first: str, last: str, level: float = 75, step_min: int = 1) -> list[Event]:
    """A stress reading every `step_min` minutes from `first` to `last`."""
    return every_minute(
        first, last, lambda hhmm, day: reading(hhmm, level, day=day), step_min=step_min
    )


STRESS_TABLE = [
    pytest.param(held("20:00", "20:20"), [RELAX], id="75 held 20 minutes gets a nudge"),
    pytest.param(held("20:00", "20:19"), [], id="75 held 19 minutes does not"),
    pytest.param(held("20:00", "20:30", level=74), [], id="74 is not high stress"),
    pytest.param(held("20:00", "21:30", level=95), [RELAX], id="once an evening"),
    pytest.param(
        held("20:00", "20:10") + held("20:11", "20:11", level=60) + held("20:12", "20:30"),
        [],
        id="a reading under 75 starts the count again",
    ),
    pytest.param(
        held("20:00", "20:10") + held("20:26", "20:35"),
        [],
        id="a gap of more than 15 minutes starts the count again",
    ),
    pytest.param(
        held("20:00", "20:10", step_min=10) + held("20:25", "20:25"),
        [RELAX],
        id="readings 10 and then 15 minutes apart keep the count",
    ),
    pytest.param(held("18:00", "18:29"), [], id="held high but over before the 4 h window opens"),
    pytest.param(held("18:10", "18:30"), [RELAX], id="held high into the window's first minute"),
    pytest.param(held("15:00", "16:00"), [], id="a stressful afternoon is outside the 4 h window"),
]


@pytest.mark.parametrize(("events", "expected"), STRESS_TABLE)
def test_stress_relax(events: list[Event], expected: list[str]) -> None:
    assert run(events).ids == expected


def test_evidence_and_message() -> None:
    (nudge,) = run(held("20:00", "20:25", level=80)).nudges
    assert nudge.ts == t("20:20")
    assert nudge.rule == "stress.relax"
    assert nudge.severity == "info"
    assert nudge.title == "Make time to relax"
    assert nudge.evidence == {
        "stress_level": 80,
        "threshold": 75,
        "held_minutes": 20.0,
        "bedtime": "2026-11-24T22:30:00+01:00",
        "window_hours": 4.0,
        "source": stress.SOURCE,
    }
    assert "American Academy of Sleep Medicine" in nudge.evidence["source"]
    assert nudge.message == (
        "Your stress level has been high for a while this evening. Consider a short walk, slow "
        "breathing, or time with someone close: stress and anxiety make twitches as you fall "
        "asleep more likely."
    )  # it keeps "time with someone close": connecting with others
    assert_no_dosing(nudge.message)


def test_next_evening_gets_its_own() -> None:
    replay = run(
        held("20:00", "20:20")
        + every_minute(
            "20:00", "20:20", lambda hhmm, day: reading(hhmm, 90, day=day), day="2026-11-25"
        )
    )
    assert replay.ids == [RELAX, "stress.relax:alex:2026-11-25"]
    # Each evening's record says stress was held high, for the night's insight to ask.
    assert replay.state.people["alex"].evenings == {
        "2026-11-24": Evening(stress_high=True, stress_read=True),
        "2026-11-25": Evening(stress_high=True, stress_read=True),
    }


def test_stress_held_after_quiet_hours_begin_is_not_sent() -> None:
    # The rule is about the evening: once quiet hours start (22:45) the moment has passed.
    replay = run(held("22:30", "22:50"))
    assert replay.ids == []
    assert [(d.nudge_id, d.reason) for d in replay.dropped] == [(RELAX, "expired")]


def test_settings_are_configurable_and_the_rule_can_be_switched_off() -> None:
    config = make_config(rules={"stress.relax": {"level": 60, "minutes": 5, "hours_before_bed": 6}})
    assert run(held("16:31", "16:36", level=60), config=config).ids == [RELAX]
    off = make_config(rules={"stress.relax": {"enabled": False}})
    replay = run(held("20:00", "21:00", level=99), config=off)
    assert replay.nudges == []
    assert replay.state.people["alex"].stress_high_since is None
