"""Nights, pinned: bed events become a scored night, and the twitch and insight rules on top.

Alex goes to bed at 22:30 and wakes at 06:30 (Europe/Berlin). The coach starts at 07:00 on a
Tuesday (2026-11-24) and every timer fires at its time, so a night closes at 06:30 the next day
unless alex gets up earlier. Only the nights feature's nudges are compared (`night_ids`).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from coach import night
from coach.action import RecordNight
from coach.event import (
    RLS_CRITERIA,
    AccelSampled,
    CheckinAnswered,
    Event,
    MovementDetected,
    Timer,
    TimerFired,
)
from coach.limb_movement import LimbMovementDetector
from coach.night import insight_at
from coach.state import CoachState, Exposures, NightRecord, dump_state, load_state
from tests.core.conftest import (
    CONFIG,
    Replay,
    coffee,
    in_bed,
    logged,
    make_config,
    run,
    stress,
    sunlight,
    t,
    workout,
    workout_end,
)

RULES = ("twitch.", "insight.")
SUMMARY = "twitch.night_summary:alex:"
#: The morning after the first evening.
DAY2 = "2026-11-25"


def night_ids(replay: Replay) -> list[str]:
    """Ids of the nights feature's nudges, in order."""
    return [i for i in replay.ids if i.startswith(RULES)]


def day(first: str, offset: int) -> str:
    """The ISO date `offset` days after `first`."""
    return (date.fromisoformat(first) + timedelta(days=offset)).isoformat()


def move(at: datetime, intensity: float = 0.3, duration_s: float = 2.0) -> MovementDetected:
    """The bed felt a movement at an instant."""
    return MovementDetected(person="alex", ts=at, intensity=intensity, duration_s=duration_s)


def a_night(
    evening: str,
    *,
    lms: int = 0,
    interval_s: float = 30.0,
    jerk: bool = False,
    enter: str = "22:30",
    leave: str = "06:40",
) -> list[Event]:
    """A night in bed: posture changes, optionally a hypnic jerk and a train of limb movements.

    Posture changes at 00:00 and 04:00 (20 s, strong), a brief twitch at 02:00; the train starts
    at 01:00 with `lms` movements of 2 s every `interval_s` seconds.
    """
    morning = day(evening, 1)
    entered = t(enter, morning if enter < "12:00" else evening)
    events: list[Event] = [in_bed(entered.strftime("%H:%M"), day=entered.date().isoformat())]
    if jerk:
        events.append(move(entered + timedelta(minutes=4), 0.8, 1.0))
    if entered < t("00:00", morning):
        events.append(move(t("00:00", morning), 0.6, 20.0))
    train_start = t("01:00", morning)
    events += [move(train_start + timedelta(seconds=i * interval_s)) for i in range(lms)]
    events.append(move(t("02:00", morning) + timedelta(seconds=lms * interval_s), 0.2, 0.3))
    events.append(move(t("04:00", morning), 0.6, 20.0))
    events = [e for e in events if e.ts >= entered]
    events.append(in_bed(leave, occupied=False, day=morning))
    return events


def nights(
    first: str, count: int, *, overrides: dict[int, dict[str, Any]] | None = None
) -> list[Event]:
    """`count` nights from the evening `first`; `overrides[i]` are a_night keywords for night i."""
    out: list[Event] = []
    for i in range(count):
        out += a_night(day(first, i), **(overrides or {}).get(i, {}))
    return out


def replay_nights(events: list[Event], days: int, **kw: Any) -> Replay:
    """Start at 07:00 on the Tuesday and replay the events and every timer for `days` days."""
    start = t("07:00")
    return run(events, start=start, until=start + timedelta(days=days), **kw)


def last_night(replay: Replay) -> dict[str, Any]:
    """The `last_night` of the latest state document."""
    doc = replay.documents[-1]["last_night"]
    assert isinstance(doc, dict)
    return doc


# -- the night summary ---------------------------------------------------------------------------

# 150 LMs every 30 s from 01:00; asleep from 22:30 to 06:30 (8 h): 150 / 8 = 18.75/h.
SUMMARY_TABLE = [
    pytest.param(
        a_night("2026-11-24"), 0.0, 0, id="a quiet night: a summary with a PLM index of 0"
    ),
    pytest.param(
        a_night("2026-11-24", lms=150), 18.8, 1, id="a night with a PLM train: its index per hour"
    ),
    pytest.param(
        a_night("2026-11-24", lms=150, interval_s=8.0),
        0.0,
        0,
        id="movements 8 s apart are too close for a WASM series: no PLMs",
    ),
    pytest.param(
        a_night("2026-11-24", lms=3), 0.0, 0, id="three limb movements are not yet a series"
    ),
]


@pytest.mark.parametrize(("events", "index", "series"), SUMMARY_TABLE)
def test_night_summary(events: list[Event], index: float, series: int) -> None:
    replay = replay_nights(events, 1)
    assert night_ids(replay) == [SUMMARY + "2026-11-24"]
    nudge = replay.nudge(SUMMARY + "2026-11-24")
    assert nudge.ts == t("06:30", "2026-11-25")
    assert nudge.severity == "info"
    assert nudge.evidence["plm_index"] == index
    assert nudge.evidence["plm_series"] == series
    assert "Screening, not a diagnosis." in nudge.message
    assert nudge.evidence["source"].startswith("Ferri et al. 2016")
    doc = last_night(replay)
    assert doc["night"] == "2026-11-24"
    assert doc["status"] == "ok"
    assert doc["limb_movement_index"] == index
    assert doc["time_in_bed_min"] == 480


def test_a_plm_index_above_15_says_what_it_means_and_sends_no_one_to_a_specialist() -> None:
    nudge = replay_nights(a_night("2026-11-24", lms=150), 1).nudge(SUMMARY + "2026-11-24")
    assert (
        "Periodic leg movements: 18.8 an hour asleep (the PLM index), above the 15 an hour that "
        "sleep medicine uses as the adult limit. About a quarter of middle-aged and older adults "
        "are above it, it is often harmless on its own, and one night says little."
    ) in nudge.message
    assert "specialist" not in nudge.message
    assert nudge.evidence["plm_count"] == 150
    assert nudge.evidence["source_plms_common"].startswith("Leary et al. 2018")


def test_the_summary_reads_plainly() -> None:
    nudge = replay_nights(a_night("2026-11-24", jerk=True), 1).nudge(SUMMARY + "2026-11-24")
    assert nudge.title == "Last night"
    assert nudge.message == (
        "Last night you were in bed 8 hours and settled after 4 minutes.\n"
        "Twitches (limb movements): 0.1 an hour in bed. With 0 earlier nights it is too soon to "
        "say what is usual for you (the coach compares from 5).\n"
        "No periodic leg movements (no run of 4 or more at regular intervals).\n"
        "1 hypnic jerk at sleep onset, a common and harmless 'sleep start'.\n"
        "Screening, not a diagnosis."
    )


def test_a_night_is_compared_with_the_persons_own_nights() -> None:
    # Five calm nights, then one with a train of 150 limb movements (18.8 an hour in bed).
    replay = replay_nights(nights("2026-11-24", 7, overrides={6: HIGH}), 7)
    fifth = replay.nudge(SUMMARY + "2026-11-28")
    assert "With 4 earlier nights it is too soon" in fifth.message
    sixth = replay.nudge(SUMMARY + "2026-11-29")
    assert (
        "Twitches (limb movements): 0.0 an hour in bed, about usual for you (usually 0.0 an "
        "hour over your last 5 nights)."
    ) in sixth.message
    busy = replay.nudge(SUMMARY + "2026-11-30")
    assert (
        "Twitches (limb movements): 19 an hour in bed, more than usual for you (usually 0.0 an "
        "hour over your last 6 nights)."
    ) in busy.message
    assert busy.evidence["compared_with_usual"] == "more"
    assert busy.evidence["compared_nights"] == 6
    assert busy.evidence["usual_range_per_hour"] == [0.0, 0.0]


USUAL_TABLE = [
    pytest.param(10.0, [10.0] * 4, None, id="4 earlier nights: too soon to say"),
    pytest.param(10.0, [10.0] * 5, "about", id="5 earlier nights: compared"),
    # Usual 8-12 (quartiles of 6, 8, 10, 12, 14), margin max(1, 0.2 x 10) = 2.
    pytest.param(14.0, [6.0, 8.0, 10.0, 12.0, 14.0], "about", id="at the top of the margin"),
    pytest.param(14.01, [6.0, 8.0, 10.0, 12.0, 14.0], "more", id="just above: more than usual"),
    pytest.param(6.0, [6.0, 8.0, 10.0, 12.0, 14.0], "about", id="at the bottom of the margin"),
    pytest.param(5.99, [6.0, 8.0, 10.0, 12.0, 14.0], "less", id="just below: less than usual"),
    pytest.param(1.0, [0.0] * 14, "about", id="a calm history: 1 an hour is still about usual"),
    pytest.param(1.01, [0.0] * 14, "more", id="a calm history: above 1 an hour is more"),
]


@pytest.mark.parametrize(("value", "earlier", "expected"), USUAL_TABLE)
def test_compare_with_usual(value: float, earlier: list[float], expected: str | None) -> None:
    assert night.compare_with_usual(value, earlier) == expected


def test_the_morning_digest_names_the_evening_before_and_the_days_encouragements() -> None:
    evening = "2026-11-24"
    events = sorted(
        [
            *a_night(evening),
            sunlight("12:00", 25),
            coffee("20:00", mg=150.0),
            logged("20:30", "alcohol"),
            logged("21:00", "nicotine"),
            *[stress(f"19:{m:02d}", 90) for m in range(0, 40, 5)],
            workout("20:30", "vigorous"),
            workout_end("22:00"),
            workout("07:30", "vigorous", day="2026-11-23"),
            workout_end("08:30", day="2026-11-23"),
        ],
        key=lambda e: e.ts,
    )
    replay = run(events, start=t("07:00", "2026-11-23"), until=t("07:00", "2026-11-25"))
    nudge = replay.nudge(SUMMARY + evening)
    lines = nudge.message.split("\n")
    assert lines[-1] == "Screening, not a diagnosis."
    assert [line for line in lines if line.startswith(("The evening before", "Well done"))] == [
        "The evening before: caffeine still in your body at bedtime (about 106 mg).",
        "The evening before: vigorous exercise close to bedtime.",
        "The evening before: stress stayed high in the hours before bed.",
        "The evening before: alcohol within 3 hours of bedtime.",
        "The evening before: nicotine within 4 hours of bedtime.",
        "Well done: 25 minutes of daylight yesterday.",
        "Well done: 300 active minutes over the last 7 days, the 150 a week the WHO recommends.",
    ]
    assert nudge.evidence["evening"]["alcohol_evening"] is True
    assert nudge.evidence["encouragements"]["active_minutes_7_days"] == 300


def test_a_quiet_evening_and_no_readings_add_nothing_to_the_digest() -> None:
    nudge = replay_nights(a_night("2026-11-24"), 1).nudge(SUMMARY + "2026-11-24")
    assert "The evening before" not in nudge.message
    assert "Well done" not in nudge.message
    assert nudge.evidence["encouragements"]["daylight_minutes"] is None
    assert nudge.evidence["encouragements"]["active_minutes_7_days"] is None


NO_DATA_TABLE = [
    pytest.param([], "no data", id="no bed data at all: 'no data', no summary nudge"),
    pytest.param(
        [in_bed("22:30"), in_bed("06:40", occupied=False, day="2026-11-25")],
        "no movement data",
        id="in bed but not one movement reported: 'no movement data', no nudge",
    ),
    pytest.param(
        [move(t("23:00")), move(t("03:00", "2026-11-25"))],
        "no data",
        id="movements without any occupancy: 'no data', no nudge",
    ),
]


@pytest.mark.parametrize(("events", "status"), NO_DATA_TABLE)
def test_a_night_without_data_is_no_data_not_a_good_night(events: list[Event], status: str) -> None:
    replay = replay_nights(events, 1)
    assert night_ids(replay) == []
    doc = last_night(replay)
    assert doc["status"] == status
    assert doc["night"] == "2026-11-24"
    assert doc["plm_index"] is None
    assert doc["limb_movement_index"] is None
    assert doc["twitches"] is None
    assert replay.state.people["alex"].nights.history == []


TIMING_TABLE = [
    pytest.param(a_night("2026-11-24"), "06:30", "wake", id="still in bed at wake: at wake time"),
    pytest.param(
        a_night("2026-11-24", leave="05:45"),
        "05:45",
        "got_up",
        id="up at 05:45 after 7 h in bed: at once (later than wake - 1 h)",
    ),
    pytest.param(
        a_night("2026-11-24", leave="05:30"),
        "05:30",
        "got_up",
        id="up at exactly wake - 1 h: at once",
    ),
    pytest.param(
        [*a_night("2026-11-24", leave="05:29")[:-1], in_bed("05:29", False, day="2026-11-25")],
        "06:30",
        "wake",
        id="up at 05:29, before wake - 1 h: a night-time waking, the summary at wake",
    ),
    pytest.param(
        a_night("2026-11-24", enter="03:00", leave="05:50"),
        "06:30",
        "wake",
        id="up at 05:50 after under 3 h in bed: the summary at wake",
    ),
    pytest.param(
        [
            *a_night("2026-11-24", enter="22:30", leave="02:00"),
            in_bed("02:10", day="2026-11-25"),
            in_bed("05:45", occupied=False, day="2026-11-25"),
        ],
        "05:45",
        "got_up",
        id="a trip out of bed at 02:00 and up at 05:45: 7 h in bed in all, at 05:45",
    ),
]


@pytest.mark.parametrize(("events", "at", "ended_by"), TIMING_TABLE)
def test_summary_timing(events: list[Event], at: str, ended_by: str) -> None:
    replay = replay_nights(events, 1)
    nudge = replay.nudge(SUMMARY + "2026-11-24")
    assert nudge.ts == t(at, "2026-11-25")
    assert nudge.evidence["ended_by"] == ended_by
    assert night_ids(replay) == [SUMMARY + "2026-11-24"]


def test_getting_up_early_closes_the_night_and_later_movements_do_not_reopen_it() -> None:
    events = [
        *a_night("2026-11-24", leave="05:45"),
        in_bed("05:50", day="2026-11-25"),
        move(t("06:00", "2026-11-25"), 0.9, 3.0),
        in_bed("06:20", occupied=False, day="2026-11-25"),
    ]
    replay = replay_nights(events, 1)
    assert night_ids(replay) == [SUMMARY + "2026-11-24"]
    history = replay.state.people["alex"].nights.history
    assert [h.night for h in history] == ["2026-11-24"]
    assert history[0].time_in_bed_s == pytest.approx(7.25 * 3600)


def test_the_summary_is_off_but_the_night_is_still_scored() -> None:
    config = make_config(rules={"twitch.night_summary": {"enabled": False}})
    replay = replay_nights(a_night("2026-11-24", lms=150), 1, config=config)
    assert night_ids(replay) == []
    assert last_night(replay)["limb_movement_index"] == 18.8


def test_aasm_rules_count_a_train_8_s_apart() -> None:
    config = make_config(rules={"twitch.night_summary": {"plm_rules": "aasm"}})
    replay = replay_nights(a_night("2026-11-24", lms=100, interval_s=8.0), 1, config=config)
    assert last_night(replay)["plm_count"] == 100
    assert last_night(replay)["plm_rules"] == "aasm"


def test_a_night_the_timer_missed_is_closed_by_the_next_message() -> None:
    # No CoachStarted, so no timers: the next evening's first message closes the old night.
    events = [*a_night("2026-11-24", lms=150)[:-1], move(t("12:00", "2026-11-25"))]
    replay = run(events)
    (nudge,) = [n for n in replay.nudges if n.rule.startswith(RULES)]
    assert nudge.id == SUMMARY + "2026-11-24"
    assert nudge.ts == t("12:00", "2026-11-25")
    assert nudge.evidence["plm_index"] == 18.8
    assert nudge.evidence["ended_by"] == "wake"
    assert replay.state.people["alex"].nights.open is None


def test_a_summary_closed_a_whole_day_late_is_dropped_as_expired_but_the_night_is_kept() -> None:
    events = [*a_night("2026-11-24", lms=150)[:-1], in_bed("22:30", day="2026-11-25")]
    replay = run(events)
    assert [n for n in replay.nudges if n.rule.startswith(RULES)] == []
    assert [(d.nudge_id, d.reason) for d in replay.dropped] == [(SUMMARY + "2026-11-24", "expired")]
    nights_state = replay.state.people["alex"].nights
    assert [h.night for h in nights_state.history] == ["2026-11-24"]
    assert nights_state.open is not None
    assert nights_state.open.night == "2026-11-25"


# -- twitch.frequent -----------------------------------------------------------------------------

HIGH = {"lms": 150}  # 18.75/h
FREQUENT = "twitch.frequent:alex:"

FREQUENT_TABLE = [
    pytest.param({0: HIGH, 2: HIGH, 5: HIGH}, [FREQUENT + "2026-11-29"], id="3 of 7 nights: sent"),
    pytest.param({0: HIGH, 5: HIGH}, [], id="2 of 7 nights: silent"),
    pytest.param({0: HIGH, 6: HIGH, 7: HIGH}, [], id="3 high nights spread over 8: silent"),
    pytest.param(
        {0: {"lms": 110}, 1: {"lms": 110}, 2: {"lms": 110}},
        [],
        id="13.75/h on 3 nights is under the limit",
    ),
    pytest.param(
        dict.fromkeys(range(9), HIGH),
        [FREQUENT + "2026-11-26", FREQUENT + "2026-12-03"],
        id="high every night: once, and again only 7 days later",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), FREQUENT_TABLE)
def test_twitch_frequent(overrides: dict[int, dict[str, Any]], expected: list[str]) -> None:
    replay = replay_nights(nights("2026-11-24", 10, overrides=overrides), 11)
    assert [i for i in night_ids(replay) if i.startswith(FREQUENT)] == expected


def checkin(on: str, hhmm: str = "07:00", **answers: Any) -> CheckinAnswered:
    """Alex answered the morning check-in."""
    return CheckinAnswered(person="alex", ts=t(hhmm, on), **answers)


ALL_YES = dict.fromkeys(RLS_CRITERIA, True)
THREE_YES = {**ALL_YES, "worse_evening": False}
PATTERN = {0: HIGH, 1: HIGH, 2: HIGH}  # above 15/h on the nights of 24, 25 and 26 November
SPECIALIST = FREQUENT + "2026-11-26:specialist"

SYMPTOMS_TABLE = [
    pytest.param([], [FREQUENT + "2026-11-26"], id="the pattern alone: a check-in, no specialist"),
    pytest.param(
        [checkin("2026-11-25", rls=ALL_YES)],
        [SPECIALIST],
        id="the pattern and yes to all four restless-legs questions: specialist",
    ),
    pytest.param(
        [checkin("2026-11-25", rls=THREE_YES)],
        [FREQUENT + "2026-11-26"],
        id="yes to three of the four: no specialist",
    ),
    pytest.param(
        [
            checkin("2026-11-25", rls={"urge_to_move": True, "worse_at_rest": True}),
            checkin("2026-11-26", rls={"better_moving": True, "worse_evening": True}),
        ],
        [SPECIALIST],
        id="all four yes over two check-ins: specialist",
    ),
    pytest.param(
        [checkin("2026-11-25", rls=ALL_YES), checkin("2026-11-26", rls={"urge_to_move": False})],
        [FREQUENT + "2026-11-26"],
        id="a later no replaces a yes: no specialist",
    ),
    pytest.param(
        [checkin(d, rested=2) for d in ("2026-11-24", "2026-11-25", "2026-11-26")],
        [SPECIALIST],
        id="rested 2 on 3 of the last 7 mornings: specialist",
    ),
    pytest.param(
        [checkin(d, rested=2) for d in ("2026-11-25", "2026-11-26")],
        [FREQUENT + "2026-11-26"],
        id="rested 2 on 2 mornings: no specialist",
    ),
    pytest.param(
        [checkin(d, rested=3) for d in ("2026-11-24", "2026-11-25", "2026-11-26")],
        [FREQUENT + "2026-11-26"],
        id="rested 3 on 3 mornings: no specialist",
    ),
    pytest.param(
        [checkin(d, rested=1) for d in ("2026-11-20", "2026-11-25", "2026-11-26")],
        [FREQUENT + "2026-11-26"],
        id="one of the 3 unrested mornings 8 days back: no specialist",
    ),
    pytest.param(
        [checkin(d, rested=2) for d in ("2026-11-25", "2026-11-26", "2026-11-27")],
        [FREQUENT + "2026-11-26", SPECIALIST],
        id="the third unrested morning after the pattern: the check-in answer brings it",
    ),
]


@pytest.mark.parametrize(("answers", "expected"), SYMPTOMS_TABLE)
def test_twitch_frequent_suggests_a_specialist_only_with_symptoms(
    answers: list[Event], expected: list[str]
) -> None:
    events = sorted([*nights("2026-11-24", 3, overrides=PATTERN), *answers], key=lambda e: e.ts)
    start = min(t("07:00"), *(e.ts for e in events))
    replay = run(events, start=start, until=t("12:00", "2026-11-27"))
    assert [i for i in night_ids(replay) if i.startswith(FREQUENT)] == expected


def test_without_the_pattern_no_answer_brings_a_specialist() -> None:
    events = sorted(
        [
            *nights("2026-11-24", 3, overrides={0: HIGH, 1: HIGH}),
            *(checkin(d, rested=1, rls=ALL_YES) for d in ("2026-11-25", "2026-11-26")),
            checkin("2026-11-27", rested=1),
        ],
        key=lambda e: e.ts,
    )
    replay = run(events, start=t("07:00"), until=t("12:00", "2026-11-27"))
    assert [i for i in night_ids(replay) if i.startswith(FREQUENT)] == []


def test_twitch_frequent_describes_the_pattern_honestly_and_asks_the_check_in() -> None:
    events = nights("2026-11-24", 3, overrides=PATTERN)
    nudge = replay_nights(events, 3).nudge(FREQUENT + "2026-11-26")
    assert nudge.severity == "info"
    assert nudge.message.startswith(
        "On 3 of the last 7 nights the sensor counted more than 15 periodic leg movements an "
        "hour asleep. That is common: about a quarter of middle-aged and older adults are above "
        "15 an hour, and on its own it is often harmless."
    )
    for question in night.RLS_QUESTIONS.values():
        assert question in nudge.message
    assert "how rested do you feel this morning, from 1 to 5?" in nudge.message
    assert "specialist" not in nudge.message
    assert "1 in 10" not in nudge.message
    assert nudge.message.endswith("Screening, not a diagnosis.")
    assert nudge.evidence["plm_index_by_night"] == {
        "2026-11-24": 18.8,
        "2026-11-25": 18.8,
        "2026-11-26": 18.8,
    }
    assert nudge.evidence["specialist"] is False
    assert nudge.evidence["source"] == "ICSD-3 (AASM 2014): PLMS index above 15/h in adults"
    assert "Haba-Rubio et al. 2016, Ann Neurol 79(3)" in nudge.evidence["source_prevalence"]
    assert "Allen et al. 2014, Sleep Med 15(8)" in nudge.evidence["source_rls"]


@pytest.mark.parametrize(
    ("answers", "why"),
    [
        pytest.param(
            [checkin("2026-11-25", rls=ALL_YES)],
            "and you answered yes to all four restless-legs questions",
            id="restless legs",
        ),
        pytest.param(
            [checkin(d, rested=2) for d in ("2026-11-24", "2026-11-25", "2026-11-26")],
            "and you felt poorly rested (2 or less of 5) on 3 of the last 7 mornings",
            id="unrested mornings",
        ),
    ],
)
def test_the_specialist_message_says_why(answers: list[Event], why: str) -> None:
    events = sorted([*nights("2026-11-24", 3, overrides=PATTERN), *answers], key=lambda e: e.ts)
    replay = run(events, start=t("07:00", "2026-11-24"), until=t("12:00", "2026-11-27"))
    nudge = replay.nudge(SPECIALIST)
    assert nudge.severity == "warning"
    assert nudge.message == (
        "On 3 of the last 7 nights the sensor counted more than 15 periodic leg movements an "
        f"hour asleep, {why}. Together these are worth having checked: consider seeing a sleep "
        "specialist, or talk to your doctor first. Screening, not a diagnosis."
    )
    assert nudge.evidence["specialist"] is True


# -- twitch.daytime ------------------------------------------------------------------------------

DAYTIME = "twitch.daytime:alex:"
TWITCHY = {"jerk": True}


def daytime_log(on: str) -> Event:
    """Alex logged daytime twitching at noon."""
    return logged("12:00", "daytime_twitching", day=on)


def with_logs(events: list[Event], *days: str) -> list[Event]:
    """The events with daytime-twitching logs at noon on `days`, in time order."""
    return sorted([*events, *(daytime_log(d) for d in days)], key=lambda e: e.ts)


DAYTIME_TABLE = [
    pytest.param(
        with_logs(nights("2026-11-24", 3), "2026-11-25", "2026-11-26"),
        [DAYTIME + "2026-11-26"],
        id="2 days of daytime twitching logged: at the second log, whatever the nights",
    ),
    pytest.param(
        sorted(
            [
                *nights("2026-11-24", 3),
                checkin("2026-11-25", daytime_twitching=True),
                checkin("2026-11-26", daytime_twitching=True),
            ],
            key=lambda e: e.ts,
        ),
        [DAYTIME + "2026-11-26"],
        id="2 days reported in the check-in: at the second",
    ),
    pytest.param(
        sorted(
            [
                *nights("2026-11-24", 3),
                checkin("2026-11-25", daytime_twitching=False),
                checkin("2026-11-26", daytime_twitching=True),
            ],
            key=lambda e: e.ts,
        ),
        [],
        id="a check-in saying no does not count",
    ),
    pytest.param(
        with_logs(nights("2026-11-24", 3, overrides={0: TWITCHY, 1: TWITCHY}), "2026-11-25"),
        [],
        id="1 day of daytime twitching and hypnic jerks at night: silent (jerks do not count)",
    ),
    pytest.param(
        with_logs(nights("2026-11-24", 3), "2026-11-19", "2026-11-26"),
        [],
        id="2 days 7 days apart: not within 7 days",
    ),
    pytest.param(
        with_logs(nights("2026-11-24", 17), *[day("2026-11-25", i) for i in range(17)]),
        [DAYTIME + "2026-11-26", DAYTIME + "2026-12-10"],
        id="twitching every day: once in 14 days",
    ),
]


@pytest.mark.parametrize(("events", "expected"), DAYTIME_TABLE)
def test_twitch_daytime(events: list[Event], expected: list[str]) -> None:
    start = min(t("07:00"), *(e.ts for e in events))
    replay = run(events, start=start, until=t("07:00") + timedelta(days=19))
    assert [i for i in night_ids(replay) if i.startswith(DAYTIME)] == expected


def test_twitch_daytime_message_names_the_tests_but_no_dose() -> None:
    events = with_logs(nights("2026-11-24", 2, overrides={0: TWITCHY}), "2026-11-25", "2026-11-26")
    nudge = replay_nights(events, 3).nudge(DAYTIME + "2026-11-26")
    assert nudge.message.startswith("You reported twitching while awake on 2 days of the last 7.")
    assert "consider asking your doctor whether a blood test makes sense" in nudge.message
    for test_name in ("vitamin D", "B12", "magnesium", "calcium", "ferritin"):
        assert test_name in nudge.message
    assert "don't self-diagnose" in nudge.message
    assert "hypnic" not in nudge.message
    assert "Screening, not a diagnosis." in nudge.message
    assert not re.search(r"\d\s*(mg|µg|mcg|IU|ng)\b", nudge.message)
    assert not re.search(r"\b(take|taking|dose|supplement)", nudge.message, re.IGNORECASE)
    assert nudge.evidence["daytime_twitching_days"] == ["2026-11-25", "2026-11-26"]
    assert "twitching_nights" not in nudge.evidence


# -- insight.correlation -------------------------------------------------------------------------

SUNDAY = "2026-11-29"
INSIGHT = f"insight.correlation:alex:{SUNDAY}"


def history(
    count: int,
    exposed: set[int],
    worse: float,
    *,
    exposure: str = "late_workout",
    last: str = "2026-11-28",
) -> list[NightRecord]:
    """`count` stored nights up to `last` (a Saturday); `exposed` nights have the exposure and a
    PLM index `worse` times as high (with some night-to-night spread either way)."""
    out = []
    for i in range(count):
        key = day(last, i - count + 1)
        base = 4.0 + (i * 7 % 5)  # 4..8/h
        is_exposed = i in exposed
        out.append(
            NightRecord(
                night=key,
                plm_index=base * worse if is_exposed else base,
                plm_count=0,
                series=0,
                hypnic_jerks=i % 2,
                time_to_settle_s=600.0 + 60 * (i % 4),
                time_in_bed_s=8 * 3600.0,
                limb_movements=10,
                exposures=Exposures(**{exposure: is_exposed}),
            )
        )
    return out


def sunday_insight(stored: list[NightRecord]) -> Replay:
    """Fire the Sunday 10:00 insight timer with this history stored."""
    state = CoachState()
    state.person("alex").nights.history = stored
    replay = Replay(state=state)
    timer = Timer("insight.correlation", "alex", t("10:00", SUNDAY), SUNDAY)
    replay.decide(TimerFired(person="alex", ts=timer.at, timer=timer))
    return replay


EVERY_THIRD = {i for i in range(20) if i % 3 == 0}  # 7 of 20


def zero_baseline() -> list[NightRecord]:
    """20 nights: 30/h after a late workout, no periodic movements at all otherwise."""
    return [
        replace(h, plm_index=30.0 if h.exposures.late_workout else 0.0)
        for h in history(20, EVERY_THIRD, 1.0)
    ]


INSIGHT_TABLE = [
    pytest.param(history(20, EVERY_THIRD, 3.0), [INSIGHT], id="late workouts triple PLMs: sent"),
    pytest.param(history(20, EVERY_THIRD, 1.0), [], id="an exposure that changes nothing: silent"),
    pytest.param(zero_baseline(), [INSIGHT], id="30/h against none at all: sent"),
    pytest.param(
        history(20, EVERY_THIRD, 1.5), [], id="about 2/h more, under the 5/h minimum: silent"
    ),
    pytest.param(history(20, {0, 3, 6, 9}, 3.0), [], id="only 4 nights with the exposure: silent"),
    pytest.param(history(20, set(range(16)), 3.0), [], id="only 4 nights without it: silent"),
    pytest.param(history(13, {0, 3, 6, 9, 12}, 3.0), [], id="13 nights stored, under 14: silent"),
    pytest.param(
        history(14, {0, 3, 6, 9, 12}, 3.0), [INSIGHT], id="14 nights stored and 5 with: sent"
    ),
]


@pytest.mark.parametrize(("stored", "expected"), INSIGHT_TABLE)
def test_insight_correlation(stored: list[NightRecord], expected: list[str]) -> None:
    assert sunday_insight(stored).ids == expected


def test_insight_reports_an_association_with_both_sides_and_reproducibly() -> None:
    first = sunday_insight(history(20, EVERY_THIRD, 3.0)).nudge(INSIGHT)
    again = sunday_insight(history(20, EVERY_THIRD, 3.0)).nudge(INSIGHT)
    assert first == again
    (finding,) = first.evidence["findings"]
    # Exposed nights average 3 × 39/7 = 16.71/h, the others 81/13 = 6.23/h.
    assert {k: finding[k] for k in finding if k not in ("p_value", "q_value")} == {
        "factor": "late_workout",
        "outcome": "plm_index",
        "nights_with": 7,
        "nights_without": 13,
        "mean_with": 16.71,
        "mean_without": 6.23,
        "difference": 10.48,
        "is_reported": True,
    }
    assert 0 < finding["p_value"] <= finding["q_value"] <= 0.01
    # late_workout against 3 outcomes; the other factors never happened: not compared.
    assert first.evidence["comparisons"] == 3
    assert first.message == (
        "From your last 20 nights: A late intense workout was associated with a higher "
        "PLM-like index: 16.7 per hour on average on the 7 nights with it, 6.2 per hour on the "
        "13 nights without. This is an association in your own data, not proof of cause: "
        "consider changing one thing for a few weeks and see whether the pattern holds, and "
        "talk to your doctor if your nights trouble you. Screening, not a diagnosis."
    )
    assert first.severity == "info"


def test_insight_finds_an_effect_against_a_zero_baseline() -> None:
    nudge = sunday_insight(zero_baseline()).nudge(INSIGHT)
    (finding,) = nudge.evidence["findings"]
    assert (finding["mean_with"], finding["mean_without"], finding["difference"]) == (30, 0, 30)
    assert "30.0 per hour on average on the 7 nights with it, 0.0 per hour on the 13" in (
        nudge.message
    )


INSIGHT_AT_TABLE = [
    pytest.param("2026-11-24", "2026-11-29T10:00:00+01:00", id="a Tuesday night: that Sunday"),
    pytest.param("2026-11-28", "2026-11-29T10:00:00+01:00", id="Saturday night: the next morning"),
    pytest.param("2026-11-29", "2026-11-29T10:00:00+01:00", id="planned at Sunday's wake: 10:00"),
    pytest.param("2026-11-30", "2026-12-06T10:00:00+01:00", id="a Monday night: the next Sunday"),
    pytest.param(
        "2026-10-24", "2026-10-25T10:00:00+01:00", id="the autumn DST Sunday: 10:00 in CET"
    ),
    pytest.param(
        "2026-03-28", "2026-03-29T10:00:00+02:00", id="the spring DST Sunday: 10:00 in CEST"
    ),
]


@pytest.mark.parametrize(("evening", "expected"), INSIGHT_AT_TABLE)
def test_the_weekly_insight_is_planned_for_sunday_10_local(evening: str, expected: str) -> None:
    replay = Replay().start(t("07:00", evening))
    timers = [tm for tm in replay.timers.pending.values() if tm.kind == "insight.correlation"]
    assert [tm.at for tm in timers] == [datetime.fromisoformat(expected)]
    assert timers[0].at.astimezone(CONFIG.tz).isoformat() == expected
    assert insight_at is night.insight_at


def test_the_insight_fires_from_the_replayed_week() -> None:
    # 22 nights, the late-workout ones clearly worse; the coach itself records the exposures.
    events: list[Event] = []
    for i in range(22):
        evening = day("2026-11-07", i)
        exposed = i % 3 == 0
        if exposed:
            events += [workout("21:00", "vigorous", day=evening), workout_end("21:40", day=evening)]
        events += a_night(evening, lms=150 if exposed else 20 + 5 * (i % 4))
    start = t("07:00", "2026-11-07")
    replay = run(events, start=start, until=t("12:00", SUNDAY))
    stored = replay.state.people["alex"].nights.history
    assert len(stored) == 22
    assert [h.exposures.late_workout for h in stored[:4]] == [True, False, False, True]
    insights = [n for n in replay.nudges if n.rule == "insight.correlation"]
    # 2026-11-15 had 8 nights stored; 2026-11-22 the first 15.
    assert [n.id for n in insights] == ["insight.correlation:alex:2026-11-22", INSIGHT]
    nudge = insights[-1]
    assert nudge.ts == t("10:00", SUNDAY)
    assert {(f["factor"], f["outcome"]) for f in nudge.evidence["findings"]} == {
        ("late_workout", "plm_index")
    }


def test_exposures_are_recorded_with_the_night() -> None:
    events = [
        logged("20:00", "caffeine", mg=300),
        logged("21:00", "nicotine"),
        workout("21:00", "vigorous"),
        workout_end("21:30"),
        *a_night("2026-11-24"),
    ]
    replay = replay_nights(events, 1)
    (entry,) = replay.state.people["alex"].nights.history
    # No stress reading that evening: its stress is unknown, not "without".
    assert entry.exposures == Exposures(
        caffeine_at_bedtime=True, late_workout=True, stress_evening=None, late_nicotine=True
    )


# -- the stored night ----------------------------------------------------------------------------


def recorded(replay: Replay) -> list[RecordNight]:
    """Every night the coach asked the shell to store, in order."""
    return [a for a in replay.actions if isinstance(a, RecordNight)]


def test_a_closed_night_is_recorded_with_its_evening_and_timeline() -> None:
    events = [logged("20:00", "caffeine", mg=300), *a_night("2026-11-24", lms=150, jerk=True)]
    replay = replay_nights(events, 1)
    (record,) = recorded(replay)
    assert (record.person, record.night, record.ts) == ("alex", "2026-11-24", t("06:30", DAY2))
    summary = dict(record.summary)
    evening, drawn = summary.pop("evening"), summary.pop("timeline")
    assert summary == last_night(replay)  # the figures the person saw
    assert evening == {
        "caffeine_mg_at_bedtime": 212.1,  # 300 mg at 20:00, half-life 5 h: 300 × 0.5^0.5
        "caffeine_at_bedtime": True,
        # No tracker reported exercise or stress: unknown, not "without".
        "late_workout": None,
        "stress_evening": None,
        "late_nicotine": False,
        "alcohol_evening": False,
    }
    # Seconds after the night's start, 18:30 (wake - 12 h): in bed 22:30-06:30, the jerk at
    # 22:34 (asleep after it), 150 LMs every 30 s from 01:00, two posture changes, a twitch.
    assert summary["night_start"] == "2026-11-24T18:30:00+01:00"
    lms = [[23400.0 + 30 * i, 2.0, 0.3, night.IN_SERIES] for i in range(150)]
    assert drawn == {
        "stays": [[14400.0, 43200.0]],
        "sleep_onset": 14641.0,
        "movements": [
            [14640.0, 1.0, 0.8, night.JERK],
            [19800.0, 20.0, 0.6, night.OTHER],
            *lms,
            [31500.0, 0.3, 0.2, night.OTHER],
            [34200.0, 20.0, 0.6, night.OTHER],
        ],
        "series": [[23400.0, 23400.0 + 149 * 30 + 2, 150]],
        "omitted": 0,
    }
    json.dumps(record.summary)


@pytest.mark.parametrize(
    ("events", "status", "stays"),
    [
        pytest.param([], "no data", [], id="no bed data: recorded as 'no data'"),
        pytest.param(
            [in_bed("22:30"), in_bed("06:40", occupied=False, day=DAY2)],
            "no movement data",
            [[14400.0, 43200.0]],
            id="occupancy only: recorded as 'no movement data', no sleep onset",
        ),
    ],
)
def test_a_night_without_movements_is_recorded_as_such(
    events: list[Event], status: str, stays: list[list[float]]
) -> None:
    (record,) = recorded(replay_nights(events, 1))
    assert record.summary["status"] == status
    assert record.summary["plm_index"] is None
    assert record.summary["timeline"] == {
        "stays": stays,
        "sleep_onset": None,
        "movements": [],
        "series": [],
        "omitted": 0,
    }


def test_a_night_is_recorded_once_when_it_closes_early() -> None:
    replay = replay_nights(a_night("2026-11-24", leave="05:45"), 2)
    assert [(r.night, r.ts, r.summary["ended_by"]) for r in recorded(replay)] == [
        ("2026-11-24", t("05:45", DAY2), "got_up"),
        ("2026-11-25", t("06:30", "2026-11-26"), "wake"),  # the next night: no data
    ]


def test_the_stored_timeline_is_bounded() -> None:
    """19,000 faint fidgets, a PLM train and a jerk: 2,000 movements kept, the marked ones
    first, then the strongest; the rest counted. The whole record stays under 70 KB."""
    fidgets = [
        move(t("23:00") + timedelta(seconds=i), 0.01 + (i % 10) / 100, 0.3) for i in range(19_000)
    ]
    # The train comes after the fidgets: an LM within 0.5 s of a fidget would absorb it.
    train = [move(t("04:30", DAY2) + timedelta(seconds=30 * i + 0.5)) for i in range(40)]
    events = [in_bed("22:30"), move(t("22:34"), 0.8, 1.0), *fidgets, *train]
    events.append(in_bed("06:40", occupied=False, day=DAY2))
    replay = replay_nights(sorted(events, key=lambda e: e.ts), 1)
    (record,) = recorded(replay)
    drawn = record.summary["timeline"]
    assert record.summary["movements"] == 19_041
    assert len(drawn["movements"]) == night.TIMELINE_MOVEMENTS
    assert drawn["omitted"] == 19_041 - night.TIMELINE_MOVEMENTS
    marks = [m[3] for m in drawn["movements"]]
    assert (marks.count(night.JERK), marks.count(night.IN_SERIES)) == (1, 40)
    # The 1,959 others are the strongest fidgets: the 1,900 of 0.10, then 59 of 0.09.
    faint = Counter(m[2] for m in drawn["movements"] if m[3] == night.OTHER)
    assert faint == {0.1: 1_900, 0.09: 59}
    assert [m[0] for m in drawn["movements"]] == sorted(m[0] for m in drawn["movements"])
    assert len(json.dumps(record.summary)) < 70_000


# -- state: bounded, serialisable, restartable ----------------------------------------------------


def test_a_flood_of_movements_is_capped_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(night, "MAX_MOVEMENTS", 100)
    flood = [move(t("23:00") + timedelta(seconds=2 * i), 0.05, 0.6) for i in range(250)]
    events = sorted([*a_night("2026-11-24"), *flood], key=lambda e: e.ts)
    replay = replay_nights(events, 1)
    assert last_night(replay)["movements_lost"] == 153  # 250 + 3 of the night itself - 100


def test_history_keeps_the_last_60_nights() -> None:
    state = CoachState()
    state.person("alex").nights.history = history(60, set(), 1.0, last="2026-11-23")
    replay = replay_nights(a_night("2026-11-24"), 1, state=state)
    stored = replay.state.people["alex"].nights.history
    assert len(stored) == 60
    assert stored[-1].night == "2026-11-24"
    assert stored[0].night == "2026-09-26"  # the oldest of the 60 before it is gone


def accel_chunk(at: datetime, rng: random.Random, burst: bool) -> AccelSampled:
    """10 s of 50 Hz samples: gravity on z, 2 mg of noise, and a 2 s 5 Hz burst of 0.1 g."""
    samples = tuple(
        (
            rng.gauss(0, 0.002) + (0.1 * math.sin(math.pi * k / 5) if burst and k < 100 else 0),
            rng.gauss(0, 0.002),
            1 + rng.gauss(0, 0.002),
        )
        for k in range(500)
    )
    return AccelSampled(person="alex", ts=at, rate_hz=50.0, samples=samples)


def raw_night(restart_at: int | None = None) -> dict[str, Any]:
    """In bed 22:30; raw chunks from 23:00 for 20 min with a 2 s burst every 30 s from 23:05.

    With `restart_at`, the state goes through JSON after that many chunks (a daemon restart).
    """
    replay = replay_nights([in_bed("22:30")], 0)
    rng = random.Random(1)
    for i in range(120):
        at = t("23:00") + timedelta(seconds=10 * i)
        replay.advance(at)
        replay.decide(accel_chunk(at, rng, burst=i >= 30 and i % 3 == 0), at)
        if restart_at == i:
            live = replay.state.people["alex"].nights.detector
            assert isinstance(live, LimbMovementDetector)
            assert live.is_streaming
            restored = load_state(dump_state(replay.state))
            assert restored == replay.state  # the detector too, buffered samples and all
            replay.state = restored
    replay.advance(t("07:00", "2026-11-25"))
    return last_night(replay)


def test_raw_accel_is_scored_through_the_detector_and_survives_a_restart() -> None:
    doc = raw_night()
    assert doc["status"] == "ok"
    assert doc["limb_movements"] == 30
    assert doc["plm_count"] == 30
    assert raw_night(restart_at=40) == doc


def test_a_malformed_raw_chunk_is_refused_not_raised() -> None:
    replay = replay_nights([in_bed("22:30")], 0)
    bad = AccelSampled(person="alex", ts=t("23:00"), rate_hz=5.0, samples=((0.0, 0.0, 1.0),))
    replay.decide(bad)
    assert replay.refused == ["accel: rate_hz must be >= 10.0, got 5.0"]


def test_the_state_with_a_night_in_progress_round_trips_through_json() -> None:
    replay = replay_nights(a_night("2026-11-24")[:3], 0)
    replay.advance(t("01:00", "2026-11-25"))
    state = replay.state
    assert load_state(dump_state(state)) == state
    assert CONFIG.rules.twitch_frequent.repeat_days == 7


def test_a_night_left_open_while_the_coach_was_down_closes_when_it_starts_again() -> None:
    replay = run(
        a_night("2026-11-24", lms=150)[:-2], start=t("07:00"), until=t("04:00", "2026-11-25")
    )
    # The coach is down from 04:00 until 09:00: the 06:30 timer never fires.
    state = load_state(dump_state(replay.state))
    restarted = run([], state=state, start=t("09:00", "2026-11-25"), until=t("09:01", "2026-11-25"))
    (nudge,) = [n for n in restarted.nudges if n.rule.startswith(RULES)]
    assert nudge.id == SUMMARY + "2026-11-24"
    assert nudge.ts == t("09:00", "2026-11-25")
    assert nudge.evidence["plm_index"] == 18.8
    assert restarted.state.people["alex"].nights.open is None


def test_a_late_timer_for_an_older_night_does_not_drop_the_open_one() -> None:
    replay = replay_nights([*a_night("2026-11-24"), in_bed("22:30", day="2026-11-25")], 1)
    nights_state = replay.state.people["alex"].nights
    assert nights_state.open is not None
    assert nights_state.open.night == "2026-11-25"
    timer = Timer("night.end", "alex", t("06:30", "2026-11-25"), "2026-11-23")
    replay.decide(TimerFired(person="alex", ts=timer.at, timer=timer), t("23:00", "2026-11-25"))
    nights_state = replay.state.people["alex"].nights
    assert nights_state.open is not None
    assert nights_state.open.night == "2026-11-25"
    assert nights_state.closed == "2026-11-24"
