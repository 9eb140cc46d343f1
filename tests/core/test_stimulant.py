"""stimulant.late, pinned: nicotine less than 4 h before bed (Spadola et al. 2019).

Alex goes to bed at 22:30, so the window opens at 18:30.
"""

from __future__ import annotations

import pytest

from coach import stimulant
from coach.event import Event
from tests.core.conftest import assert_no_dosing, logged, make_config, run, t

NEXT = "2026-11-25"

STIMULANT_TABLE = [
    pytest.param(
        [logged("18:29", "nicotine")], [], id="nicotine 4:01 before bed is outside the window"
    ),
    pytest.param(
        [logged("18:30", "nicotine")],
        ["stimulant.late:alex:2026-11-24:1830"],
        id="nicotine exactly 4 h before bed is inside",
    ),
    pytest.param(
        [logged("18:31", "nicotine")],
        ["stimulant.late:alex:2026-11-24:1831"],
        id="nicotine 3:59 before bed gets a nudge",
    ),
    pytest.param(
        [logged("18:31", "nicotine"), logged("21:00", "nicotine")],
        ["stimulant.late:alex:2026-11-24:1831", "stimulant.late:alex:2026-11-24:2100"],
        id="each late cigarette gets its own nudge",
    ),
    pytest.param(
        [logged("01:30", "nicotine", day=NEXT)],
        ["stimulant.late:alex:2026-11-24:0130"],
        id="nicotine at 01:30 belongs to the night in progress",
    ),
    pytest.param(
        [logged("07:00", "nicotine", day=NEXT)], [], id="nicotine in the morning is not late"
    ),
    pytest.param([logged("21:00", "alcohol")], [], id="alcohol is no stimulant"),
    pytest.param(
        [logged("04:00", "nicotine", day=NEXT)],
        [],
        id="nicotine in the night's last third, out of bed, belongs to the new day",
    ),
    pytest.param([logged("21:00", "daytime_twitching")], [], id="daytime twitching is no nudge"),
]


@pytest.mark.parametrize(("events", "expected"), STIMULANT_TABLE)
def test_stimulant_late(events: list[Event], expected: list[str]) -> None:
    assert [n.id for n in run(events).nudges if n.rule == "stimulant.late"] == expected


def test_evidence_message_and_source() -> None:
    (nudge,) = run([logged("19:30", "nicotine")]).nudges
    assert nudge.rule == "stimulant.late"
    assert nudge.severity == "warning"
    assert nudge.title == "Nicotine this late keeps you wired"
    assert nudge.evidence == {
        "logged_at": "2026-11-24T19:30:00+01:00",
        "bedtime": "2026-11-24T22:30:00+01:00",
        "hours_before_bed": 3.0,
        "window_hours": 4.0,
        "source": stimulant.SOURCE,
    }
    assert "Spadola et al. 2019" in nudge.evidence["source"]
    assert nudge.message == (
        "Nicotine is a stimulant, and this was 3 hours before your bedtime (22:30). Consider "
        "keeping the last 4 hours before bed nicotine-free; if you'd like help quitting, talk to "
        "your doctor."
    )
    assert_no_dosing(nudge.message)


def test_nicotine_after_bedtime_says_so() -> None:
    (nudge,) = run([logged("01:30", "nicotine", day=NEXT)]).nudges
    assert nudge.evidence["hours_before_bed"] == -3.0
    assert nudge.message.startswith(
        "Nicotine is a stimulant, and this was after your bedtime (22:30)."
    )


def test_nicotine_and_alcohol_are_remembered() -> None:
    replay = run([logged("09:00", "nicotine"), logged("20:00", "alcohol")])
    ps = replay.state.people["alex"]
    assert ps.nicotine == [t("09:00").timestamp()]
    assert ps.alcohol == [t("20:00").timestamp()]


def test_window_is_configurable_and_the_rule_can_be_switched_off() -> None:
    wide = make_config(rules={"stimulant.late": {"hours_before_bed": 6}})
    assert run([logged("16:31", "nicotine")], config=wide).ids == [
        "stimulant.late:alex:2026-11-24:1631"
    ]
    off = make_config(rules={"stimulant.late": {"enabled": False}})
    replay = run([logged("21:00", "nicotine")], config=off)
    assert replay.nudges == []
    assert replay.state.people["alex"].nicotine == [t("21:00").timestamp()]
