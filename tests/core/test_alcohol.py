"""alcohol.late, pinned: a drink logged within 3 h of bedtime gets one informational nudge.

Alex goes to bed at 22:30, so the window opens at 19:30.
"""

from __future__ import annotations

import pytest

from coach import alcohol
from coach.event import Event
from tests.core.conftest import DAY, assert_no_dosing, in_bed, logged, make_config, run, t

NEXT = "2026-11-25"
LATE = f"alcohol.late:alex:{DAY}"

ALCOHOL_TABLE = [
    pytest.param([logged("19:29", "alcohol")], [], id="a drink at 19:29 is before the window"),
    pytest.param([logged("19:30", "alcohol")], [LATE], id="a drink at 19:30 is 3 h before bed"),
    pytest.param([logged("22:29", "alcohol")], [LATE], id="a drink a minute before bed"),
    pytest.param([logged("23:30", "alcohol")], [LATE], id="a drink after bedtime: still awake"),
    pytest.param(
        [logged("20:00", "alcohol"), logged("21:00", "alcohol"), logged("22:00", "alcohol")],
        [LATE],
        id="one nudge an evening, however many drinks",
    ),
    pytest.param(
        [logged("20:00", "alcohol"), logged("20:00", "alcohol", day=NEXT)],
        [LATE, f"alcohol.late:alex:{NEXT}"],
        id="and one the next evening",
    ),
    pytest.param(
        [logged("04:00", "alcohol", day=NEXT)],
        [],
        id="a drink logged in the night's last third, out of bed, belongs to the new day",
    ),
    pytest.param(
        [in_bed("22:40"), logged("04:00", "alcohol", day=NEXT)],
        [LATE],
        id="logged from bed in the last third: still the night in progress",
    ),
    pytest.param([logged("21:00", "nicotine")], [], id="nicotine is not alcohol"),
]


@pytest.mark.parametrize(("events", "expected"), ALCOHOL_TABLE)
def test_alcohol_late(events: list[Event], expected: list[str]) -> None:
    replay = run(events)
    assert [n.id for n in replay.nudges if n.rule == "alcohol.late"] == expected


def test_message_evidence_and_the_evening_record() -> None:
    replay = run([logged("20:45", "alcohol")])
    (nudge,) = replay.nudges
    assert (nudge.ts, nudge.severity, nudge.title) == (
        t("20:45"),
        "info",
        "Alcohol close to bedtime",
    )
    assert nudge.message == (
        "You logged a drink 1 hour 45 minutes before your bedtime (22:30). Alcohol can help you "
        "fall asleep but tends to disturb the second half of the night. Consider water or "
        "alcohol-free drinks from now on."
    )
    assert nudge.evidence == {
        "logged_at": "2026-11-24T20:45:00+01:00",
        "bedtime": "2026-11-24T22:30:00+01:00",
        "hours_before_bed": 1.75,
        "window_hours": 3.0,
        "source": alcohol.SOURCE,
    }
    # The source says what it found, at what dose, in whom.
    assert "Ebrahim et al. 2013, Alcohol Clin Exp Res 37(4)" in nudge.evidence["source"]
    assert "27 studies in healthy volunteers" in nudge.evidence["source"]
    assert "2 or more standard drinks" in nudge.evidence["source"]
    assert_no_dosing(nudge.message)
    ps = replay.state.people["alex"]
    assert ps.evenings[DAY].alcohol_late is True
    assert ps.alcohol == [t("20:45").timestamp()]


def test_after_bedtime_the_message_says_so() -> None:
    (nudge,) = run([logged("23:10", "alcohol")]).nudges
    assert nudge.message.startswith("You logged a drink after your bedtime (22:30). Alcohol can")


def test_an_early_drink_is_remembered_but_marks_no_evening() -> None:
    replay = run([logged("18:00", "alcohol")])
    ps = replay.state.people["alex"]
    assert ps.alcohol == [t("18:00").timestamp()]
    assert ps.evenings == {}


def test_the_window_is_configurable_and_the_rule_can_be_switched_off() -> None:
    config = make_config(rules={"alcohol.late": {"hours_before_bed": 4}})
    assert run([logged("18:30", "alcohol")], config=config).ids == [LATE]
    off = make_config(rules={"alcohol.late": {"enabled": False}})
    replay = run([logged("21:00", "alcohol")], config=off)
    assert replay.nudges == []
    ps = replay.state.people["alex"]
    assert ps.alcohol == [t("21:00").timestamp()]
    assert ps.evenings[DAY].alcohol_late is True  # the evening's fact, for the morning summary
