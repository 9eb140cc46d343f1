"""The engine, pinned: duplicates, people, planning, ack and snooze, bedtime changes, state.

Everything plays in Europe/Berlin with alex (bedtime 22:30, wake 06:30) unless said otherwise.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from coach import engine
from coach import state as state_module
from coach.action import Action, CancelTimer, RefuseEvent, ScheduleTimer, UpdateState
from coach.clock import local_iso
from coach.engine import decide
from coach.event import CoachStarted, CoffeeBrewed, Event, HeartRateMeasured, Timer, TimerFired
from coach.state import STATE_VERSION, CoachState, StateVersionError, dump_state, load_state
from tests.core.conftest import (
    CONFIG,
    DAY,
    TZ,
    Replay,
    ack,
    assert_no_dosing,
    bedtime_tonight,
    coffee,
    heart_rate,
    in_bed,
    logged,
    make_config,
    run,
    run_day,
    snooze,
    stress,
    sunlight,
    t,
    workout,
    workout_end,
)

NEXT = "2026-11-25"
WINDDOWN = "winddown.stretch:alex:2026-11-24"
SNOOZE_TIMER = f"snooze:alex:2026-11-24:{WINDDOWN}"


# The timers of the rule families pinned here; the bed-sensor nights (coach/night.py) plan their
# own, pinned with that family.
KINDS = {"plan", "snooze", "caffeine.last_call", "caffeine.bedtime_load", "winddown.stretch"}
KINDS |= {"sunlight.daily"}
#: Every nudge a day can hold: no budget, and the bedtime load as a nudge of its own.
EVERY_NUDGE = make_config(
    rules={"nudge_budget": {"routine_per_evening": 10, "merge_within_min": 0}}
)


def scheduled(actions: list[Action]) -> list[tuple[str, str]]:
    """(timer id, local due time) of every ScheduleTimer of KINDS among `actions`."""
    return [
        (a.timer.id, local_iso(a.timer.at, TZ))
        for a in actions
        if isinstance(a, ScheduleTimer) and a.timer.kind in KINDS
    ]


# -- decide's contract ----------------------------------------------------------------------------


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(CoachState(), coffee("09:00"), datetime(2026, 11, 24, 9), CONFIG)


def test_duplicates_are_ignored_by_key() -> None:
    brew = CoffeeBrewed(
        person="alex", ts=t("21:00"), drink="coffee", volume_ml=240, key="coffee|21:00|abc"
    )
    replay = Replay()
    first = replay.decide(brew)
    again = replay.decide(brew)
    assert [a.nudge.id for a in first if hasattr(a, "nudge")] == [
        "caffeine.cutoff:alex:2026-11-24:2100"
    ]
    assert again == []
    assert replay.state.people["alex"].doses == [(t("21:00").timestamp(), 95.0)]
    assert replay.state.seen == {"coffee|21:00|abc": t("21:00").timestamp()}


def test_a_key_that_arrived_late_is_forgotten_48_hours_after_its_own_instant() -> None:
    # A sensor that buffered a reading sends it after newer ones: its key is forgotten on time,
    # while the newer keys it arrived after are still remembered.
    replay = Replay()
    replay.decide(heart_rate("12:00", 60), now=t("12:00"))
    fresh = HeartRateMeasured(person="alex", ts=t("12:00"), bpm=60, key="watch|12:00")
    late = HeartRateMeasured(person="alex", ts=t("08:00"), bpm=60, key="band|08:00")
    replay.decide(fresh, now=t("12:00"))
    replay.decide(late, now=t("12:00"))
    assert not replay.state.seen_in_order
    # 48 h after 08:00 (the housekeeping runs on the hour): the late key goes, the other stays.
    replay.decide(heart_rate("08:30", 60, day="2026-11-26"))
    assert replay.state.seen == {"watch|12:00": t("12:00").timestamp()}
    assert replay.state.seen_in_order  # sorted back: the next hours forget a prefix
    replay.decide(heart_rate("12:30", 60, day="2026-11-26"))
    assert replay.state.seen == {}


def test_duplicate_keys_are_capped_forgetting_the_oldest_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flood of distinct timestamps inside 48 hours grew the keys without bound (1,000,000
    readings: RSS 84 to 261 MiB). At the cap the oldest tenth is forgotten, also when readings
    arrived out of order; the newest are still recognised as repeats."""
    monkeypatch.setattr(engine, "SEEN_MAX", 100)
    monkeypatch.setattr(state_module, "SEEN_MAX", 100)
    replay = Replay()
    base = t("12:00")
    order = [*range(60), 70, 65, *range(71, 131)]  # 65 after 70: out of order once
    for i in order:
        reading = HeartRateMeasured(
            person="alex", ts=base + timedelta(seconds=i), bpm=60, key=f"watch|{i}"
        )
        replay.decide(reading, now=base + timedelta(seconds=130))
    seen = replay.state.seen
    assert len(seen) <= 100
    kept = sorted(int(k.split("|")[1]) for k in seen)
    assert kept == sorted(order)[-len(kept) :]  # the newest, whatever order they came in
    assert list(seen.values()) == sorted(seen.values())
    again = HeartRateMeasured(
        person="alex", ts=base + timedelta(seconds=130), bpm=60, key="watch|130"
    )
    assert replay.decide(again, now=base + timedelta(seconds=131)) == []


def test_a_different_key_is_a_different_message() -> None:
    events = [
        CoffeeBrewed(person="alex", ts=t("09:00"), drink="coffee", key="a"),
        CoffeeBrewed(person="alex", ts=t("09:00"), drink="coffee", key="b"),
    ]
    assert run(events).state.people["alex"].caffeine_days == {DAY: 190.0}


def test_an_unknown_person_is_refused() -> None:
    replay = run([CoffeeBrewed(person="bob", ts=t("21:00"), drink="coffee")])
    assert replay.actions == [RefuseEvent("unknown person 'bob'")]
    assert replay.state.people == {}


def test_frequent_readings_publish_the_state_only_when_something_happened() -> None:
    replay = Replay()
    assert replay.decide(heart_rate("12:00", 70)) == []
    assert replay.decide(stress("12:00", 10)) == []
    actions = replay.decide(sunlight("12:00", 5))
    assert [type(a) for a in actions] == [UpdateState]


def test_an_unknown_timer_kind_is_ignored() -> None:
    timer = Timer("twitch.night_summary", "alex", t("07:00"), DAY)
    actions = Replay().decide(TimerFired(person="alex", ts=t("07:00"), timer=timer))
    assert [type(a) for a in actions] == [UpdateState]


# -- planning -------------------------------------------------------------------------------------


DAY_TIMERS = [
    ("plan:alex:2026-11-24", "2026-11-25T06:30:00+01:00"),
    ("caffeine.last_call:alex:2026-11-24", "2026-11-24T13:00:00+01:00"),
    ("winddown.stretch:alex:2026-11-24", "2026-11-24T21:45:00+01:00"),
    ("sunlight.daily:alex:2026-11-24", "2026-11-24T15:00:00+01:00"),
]


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        pytest.param(t("07:00"), DAY_TIMERS, id="started in the morning: the whole day"),
        pytest.param(
            t("13:15"),
            [DAY_TIMERS[0], *DAY_TIMERS[2:]],
            id="started at 13:15: the 13:00 last call is 15 minutes late, gone",
        ),
        pytest.param(
            t("13:14"), DAY_TIMERS, id="started at 13:14: the last call still fires, at once"
        ),
        pytest.param(t("23:00"), DAY_TIMERS[:1], id="started in the night: only the plan at wake"),
        pytest.param(
            t("05:00"),
            [("plan:alex:2026-11-23", "2026-11-24T06:30:00+01:00")],
            id="started before wake: the night in progress",
        ),
    ],
)
def test_coach_started_plans_tonight(start: datetime, expected: list[tuple[str, str]]) -> None:
    actions = Replay().decide(CoachStarted(person="*", ts=start))
    assert scheduled(actions) == expected
    assert [a.person for a in actions if isinstance(a, UpdateState)] == ["alex"]


def test_coach_started_plans_every_person() -> None:
    config = make_config(
        people=[
            {"id": "alex", "bedtime": "22:30", "wake": "06:30"},
            {"id": "sam", "bedtime": "00:15", "wake": "08:00"},
        ]
    )
    actions = Replay(config=config).decide(CoachStarted(person="*", ts=t("09:00")))
    sam = [(i, at) for i, at in scheduled(actions) if ":sam:" in i]
    assert sam == [
        ("plan:sam:2026-11-24", "2026-11-25T08:00:00+01:00"),
        ("caffeine.last_call:sam:2026-11-24", "2026-11-24T14:45:00+01:00"),
        ("winddown.stretch:sam:2026-11-24", "2026-11-24T23:30:00+01:00"),
        ("sunlight.daily:sam:2026-11-24", "2026-11-24T15:00:00+01:00"),
    ]
    assert [a.person for a in actions if isinstance(a, UpdateState)] == ["alex", "sam"]


def test_the_plan_timer_at_wake_plans_the_next_night() -> None:
    replay = run([], start=t("07:00"), until=t("07:00", NEXT))
    planned = [a for a in replay.actions if isinstance(a, ScheduleTimer) and a.timer.kind in KINDS]
    next_night = [a.timer.id for a in planned if a.timer.night == NEXT]
    assert next_night == [
        "plan:alex:2026-11-25",
        "caffeine.last_call:alex:2026-11-25",
        "winddown.stretch:alex:2026-11-25",
        "sunlight.daily:alex:2026-11-25",
    ]
    pending = [tm.id for tm in replay.timers.pending.values() if tm.kind in KINDS]
    assert sorted(pending) == sorted(next_night)


# -- ack and snooze -------------------------------------------------------------------------------


def test_ack_stops_repeats() -> None:
    replay = run_day([ack("21:50", WINDDOWN), snooze("21:51", WINDDOWN, 5)])
    assert replay.state.people["alex"].nudges[WINDDOWN].acked is True
    assert [i for i in replay.ids if i.startswith(WINDDOWN)] == [WINDDOWN]
    assert not [
        a for a in replay.actions if isinstance(a, ScheduleTimer) and "snooze" in a.timer.id
    ]


def test_ack_cancels_a_pending_snooze() -> None:
    replay = run_day([snooze("21:46", WINDDOWN, 10), ack("21:50", WINDDOWN)])
    assert CancelTimer(SNOOZE_TIMER) in replay.actions
    assert [i for i in replay.ids if i.startswith(WINDDOWN)] == [WINDDOWN]


def test_snooze_sends_it_again_after_the_minutes_and_again_when_snoozed_again() -> None:
    replay = run_day(
        [snooze("21:46", WINDDOWN, 10), snooze("21:57", f"{WINDDOWN}:snooze1", 5)],
    )
    repeats = [n for n in replay.nudges if n.id.startswith(WINDDOWN)]
    assert [(n.id, n.ts) for n in repeats] == [
        (WINDDOWN, t("21:45")),
        (f"{WINDDOWN}:snooze1", t("21:56")),
        (f"{WINDDOWN}:snooze2", t("22:02")),
    ]
    assert repeats[2].evidence["snoozed"] == 2
    assert repeats[2].evidence["original_id"] == WINDDOWN
    assert repeats[2].message == repeats[0].message
    assert repeats[2].severity == repeats[0].severity == "info"
    # A repeat goes stale when its original does (bedtime + 15 min), so an outbox never sends
    # it late.
    assert repeats[0].expires == repeats[2].expires == t("22:45")


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        pytest.param(
            [coffee("21:01"), snooze("21:02", "caffeine.cutoff:alex:2026-11-24:2101", 108)],
            "quiet_hours",
            id="a late-coffee nudge snoozed to 22:50 falls in quiet hours",
        ),
        pytest.param(
            [
                coffee("01:30", "coffee", ml=240, day=NEXT),
                snooze("01:31", "caffeine.cutoff:alex:2026-11-24:0130", 30, day=NEXT),
            ],
            "quiet_hours",
            id="the 01:30 coffee's nudge went out, its snooze to 02:01 does not",
        ),
        pytest.param(
            [snooze("21:46", WINDDOWN, 60)],
            "expired",
            id="a wind-down snoozed past bedtime + 15 min has expired",
        ),
        pytest.param(
            [snooze("23:00", WINDDOWN, 10)],
            "expired",
            id="a wind-down snoozed after it expired",
        ),
    ],
)
def test_a_snooze_that_falls_due_when_it_must_not_go_out_is_dropped_and_recorded(
    events: list[Event], reason: str
) -> None:
    replay = run(events, start=t("07:00"), until=t("07:00", NEXT))
    (drop,) = [d for d in replay.dropped if ":snooze" in d.nudge_id]
    assert drop.reason == reason
    assert drop.nudge_id in replay.state.sent
    assert replay.state.dropped == {reason: 1}
    assert not [i for i in replay.ids if ":snooze" in i]


def test_ack_and_snooze_of_an_unknown_nudge_are_refused() -> None:
    replay = run([ack("12:00", "winddown.stretch:alex:1999-01-01"), snooze("12:00", "nope", 5)])
    assert replay.refused == [
        "ack: no recent nudge with id 'winddown.stretch:alex:1999-01-01'",
        "snooze: no recent nudge with id 'nope'",
    ]


def test_a_snooze_id_with_a_non_numeric_tail_is_not_a_repeat() -> None:
    replay = run_day([snooze("21:50", f"{WINDDOWN}:snoozex", 5)])
    assert replay.refused == [f"snooze: no recent nudge with id '{WINDDOWN}:snoozex'"]


def test_a_snooze_timer_for_an_acked_or_forgotten_nudge_does_nothing() -> None:
    replay = run_day([snooze("21:46", WINDDOWN, 10)], hours=14.8)  # stops at 21:48
    # The ack reaches the core but the shell fires the snooze timer before cancelling it.
    decide(replay.state, ack("21:50", WINDDOWN), t("21:50"), CONFIG)
    replay.advance(t("22:00"))
    stray = Timer("snooze", "alex", t("22:10"), DAY, "caffeine.cutoff:alex:2026-11-24:0900")
    replay.decide(TimerFired(person="alex", ts=t("22:10"), timer=stray))
    assert [i for i in replay.ids if i.startswith(WINDDOWN)] == [WINDDOWN]
    assert replay.dropped == []


def test_a_snooze_is_measured_in_real_minutes_across_the_fall_back() -> None:
    # A night worker (bed 09:00, up 17:00) has a coffee at 02:40 CEST on 2026-10-25 and snoozes
    # its nudge at 02:50 CEST for 30 minutes: due 02:20 CET, 30 real minutes later.
    config = make_config(bedtime="09:00", wake="17:00")
    nudge_id = "caffeine.cutoff:alex:2026-10-24:0240"
    replay = run(
        [coffee("02:40", day="2026-10-25"), snooze("02:50", nudge_id, 30, day="2026-10-25")],
        config=config,
        until=t("04:00", "2026-10-25"),
    )
    (timer,) = [a.timer for a in replay.actions if isinstance(a, ScheduleTimer)]
    assert timer.at == datetime(2026, 10, 25, 1, 20, tzinfo=UTC)
    assert replay.nudge(f"{nudge_id}:snooze1").ts == datetime(2026, 10, 25, 1, 20, tzinfo=UTC)


def test_coach_started_re_arms_pending_snoozes() -> None:
    before = run_day([snooze("21:46", WINDDOWN, 10)], hours=14.8)  # stops at 21:48
    restored = Replay(state=load_state(dump_state(before.state)))  # the timers are lost
    actions = restored.decide(CoachStarted(person="*", ts=t("21:50")))
    assert (SNOOZE_TIMER, "2026-11-24T21:56:00+01:00") in scheduled(actions)
    restored.advance(t("23:00"))
    assert restored.ids == [f"{WINDDOWN}:snooze1"]


# -- bedtime_tonight ------------------------------------------------------------------------------


def test_bedtime_tonight_re_plans_the_night_under_the_same_timer_ids() -> None:
    replay = run([], start=t("07:00"))
    first = scheduled(replay.actions)
    actions = replay.decide(bedtime_tonight("12:00", "23:15"))
    assert scheduled(actions) == [
        ("plan:alex:2026-11-24", "2026-11-25T06:30:00+01:00"),
        ("caffeine.last_call:alex:2026-11-24", "2026-11-24T13:45:00+01:00"),
        ("winddown.stretch:alex:2026-11-24", "2026-11-24T22:30:00+01:00"),
        ("sunlight.daily:alex:2026-11-24", "2026-11-24T15:00:00+01:00"),
    ]
    assert [i for i, _ in scheduled(actions)] == [i for i, _ in first]
    assert replay.state.people["alex"].bedtime_overrides == {DAY: "23:15"}
    assert replay.documents[-1]["next_bedtime"] == "2026-11-24T23:15:00+01:00"
    replay.advance(t("07:00", NEXT))
    assert replay.nudge(WINDDOWN).ts == t("22:30")
    assert "Bedtime is at 23:15." in replay.nudge(WINDDOWN).message


def test_bedtime_tonight_after_midnight_and_only_tonight() -> None:
    replay = run([bedtime_tonight("12:00", "00:30")], start=t("07:00"), until=t("23:59", NEXT))
    winddowns = [n for n in replay.nudges if n.rule == "winddown.stretch"]
    assert [(n.id, local_iso(n.ts, TZ)) for n in winddowns] == [
        (WINDDOWN, "2026-11-24T23:45:00+01:00"),
        ("winddown.stretch:alex:2026-11-25", "2026-11-25T21:45:00+01:00"),
    ]


def test_bedtime_tonight_during_the_night_moves_the_night_in_progress() -> None:
    # At 22:40 the night has begun; moved to 23:30, quiet hours start at 23:45, not 22:45, so
    # the late coffee's nudge snoozed to 23:42 still goes out.
    cutoff_id = "caffeine.cutoff:alex:2026-11-24:2241"
    replay = run(
        [bedtime_tonight("22:40", "23:30"), coffee("22:41"), snooze("22:42", cutoff_id, 60)],
        start=t("07:00"),
        until=t("07:00", NEXT),
    )
    assert replay.state.people["alex"].bedtime_overrides == {DAY: "23:30"}
    assert replay.nudge(f"{cutoff_id}:snooze1").ts == t("23:42")
    assert replay.nudge(cutoff_id).evidence["bedtime"] == "2026-11-24T23:30:00+01:00"


@pytest.mark.parametrize(
    ("changed_at", "new_bedtime", "expected_at"),
    [
        pytest.param(
            "21:20", "22:00", "21:20", id="moved to 22:00 at 21:20: its 21:15 wind-down is due now"
        ),
        pytest.param(
            "21:20", "21:30", "21:20", id="moved to 21:30 at 21:20: wind-down now, not never"
        ),
        pytest.param("20:00", "22:00", "21:15", id="moved to 22:00 at 20:00: at 21:15"),
    ],
)
def test_an_earlier_bedtime_brings_the_wind_down_forward(
    changed_at: str, new_bedtime: str, expected_at: str
) -> None:
    replay = run([bedtime_tonight(changed_at, new_bedtime)], start=t("07:00"), until=t("23:59"))
    nudge = replay.nudge(WINDDOWN)
    assert nudge.ts == t(expected_at)
    assert f"Bedtime is at {new_bedtime}." in nudge.message


def test_a_timer_that_already_fired_is_not_fired_again_by_a_bedtime_change() -> None:
    replay = run(
        [coffee("09:00"), sunlight("12:00", 3), bedtime_tonight("21:50", "22:00")],
        start=t("07:00"),
        until=t("23:59"),
    )
    assert replay.ids == ["caffeine.last_call:alex:2026-11-24", WINDDOWN]
    # The daylight nudge went to the budget (two routine nudges an evening), not to the change.
    assert [(d.nudge_id, d.reason) for d in replay.dropped] == [
        ("sunlight.daily:alex:2026-11-24", "budget")
    ]


# -- the state document ---------------------------------------------------------------------------


def test_state_document() -> None:
    replay = run(
        [
            coffee("09:00", "coffee", ml=240),
            workout("20:00", "vigorous"),
            workout_end("20:40"),
            in_bed("21:50"),
        ],
        start=t("07:00"),
        until=t("21:50"),
    )
    doc = replay.documents[-1]
    assert "last_night" in doc  # the bed-sensor nights fill it; pinned with that family
    assert {k: v for k, v in doc.items() if k != "last_night"} == {
        "person": "alex",
        "ts": "2026-11-24T21:50:00+01:00",
        "caffeine_mg_now": round(95 * 0.5 ** (12.8333333 / 5), 1),
        "caffeine_mg_at_bedtime": round(95 * 0.5 ** (13.5 / 5), 1),
        "caffeine_mg_today": 95.0,
        "caffeine_cutoff": "2026-11-24T13:30:00+01:00",
        "caffeine_last_call": "2026-11-24T13:00:00+01:00",
        "caffeine_cutoff_passed": True,
        "tonight_bedtime": "2026-11-24T22:30:00+01:00",
        "next_bedtime": "2026-11-24T22:30:00+01:00",
        "next_wake": "2026-11-25T06:30:00+01:00",
        "exercise_ok_until": "2026-11-24T21:30:00+01:00",
        "winddown": True,
        "in_bed": True,
        "last_nudge": {
            "id": WINDDOWN,
            "rule": "winddown.stretch",
            "title": "Time to wind down",
            "message": replay.nudge(WINDDOWN).message,
            "severity": "info",
            "ts": "2026-11-24T21:45:00+01:00",
        },
        "open_questions": [],
    }
    json.dumps(doc)  # JSON-able as it is


def test_state_document_before_any_nudge() -> None:
    doc = Replay().decide(in_bed("12:00"))[-1]
    assert isinstance(doc, UpdateState)
    assert doc.state["last_nudge"] is None
    assert doc.state["winddown"] is False
    assert doc.state["caffeine_mg_now"] == 0.0


# -- state: serialisation, restarts, housekeeping, replays ----------------------------------------


def busy_day(day: str) -> list[Event]:
    """A day with something for every rule."""
    return [
        in_bed("06:45", occupied=False, day=day),
        coffee("08:00", "coffee", ml=240, day=day),
        sunlight("09:00", 5, day=day),
        logged("10:00", "caffeine", mg=250, day=day),
        logged("12:00", "daytime_twitching", day=day),
        coffee("15:30", "cold_brew", ml=240, day=day),
        logged("19:00", "nicotine", day=day),
        logged("19:30", "alcohol", day=day),
        *[stress(f"20:{m:02d}", 80, day=day) for m in range(25)],
        workout("21:00", "vigorous", day=day),
        workout_end("21:20", day=day),
        *[heart_rate(f"21:{m:02d}", 150, day=day) for m in range(21, 35)],
        in_bed("22:20", day=day),
    ]


def test_state_round_trips_through_json() -> None:
    replay = run_day([*busy_day(DAY), snooze("21:46", WINDDOWN, 10)], hours=14.8)
    raw = dump_state(replay.state)
    restored = load_state(raw)
    assert restored == replay.state
    assert dump_state(restored) == raw
    assert json.loads(raw)["version"] == STATE_VERSION
    assert load_state(raw.decode()) == replay.state


def test_decide_carries_on_after_a_round_trip_exactly_as_without_it() -> None:
    events = busy_day(DAY)
    morning = [e for e in events if e.ts < t("14:30")]
    evening = [e for e in events if e.ts >= t("14:30")]
    straight = run(events, start=t("07:00"), until=t("07:00", NEXT))
    first = run(morning, start=t("07:00"), until=t("14:30"))
    second = Replay(state=load_state(dump_state(first.state)), timers=first.timers)
    second.feed(evening, until=t("07:00", NEXT))
    assert first.nudges + second.nudges == straight.nudges
    assert dump_state(second.state) == dump_state(straight.state)


def test_a_newer_state_version_is_refused() -> None:
    raw = json.loads(dump_state(CoachState()))
    raw["version"] = STATE_VERSION + 1
    with pytest.raises(StateVersionError, match="newer than this sleepcoach"):
        load_state(json.dumps(raw))


def test_nudge_ids_are_stable_across_two_identical_replays() -> None:
    events = busy_day(DAY) + busy_day(NEXT)
    first = run(events, start=t("07:00"), until=t("12:00", "2026-11-26"))
    second = run(events, start=t("07:00"), until=t("12:00", "2026-11-26"))
    assert [n.to_payload(TZ) for n in first.nudges] == [n.to_payload(TZ) for n in second.nudges]
    assert len({n.id for n in first.nudges}) == len(first.nudges) > 10
    assert first.ids[:3] == [
        "caffeine.last_call:alex:2026-11-24",
        "caffeine.cutoff:alex:2026-11-24:1530",
        "caffeine.daily_limit:alex:2026-11-24",
    ]


def test_a_replay_on_top_of_its_own_state_sends_nothing_twice() -> None:
    events = busy_day(DAY)
    first = run(events, start=t("07:00"), until=t("07:00", NEXT))
    again = run(events, start=t("07:00"), until=t("07:00", NEXT), state=first.state)
    assert again.nudges == []


def test_housekeeping_keeps_state_bounded_over_a_month() -> None:
    # A month of a busy household: a heart-rate reading every 5 minutes with a device key,
    # a busy day every day, every nudge acknowledged.
    start = t("07:00", "2026-11-01")
    replay = Replay(config=EVERY_NUDGE).start(start)
    for day_n in range(30):
        day = (start + timedelta(days=day_n)).date().isoformat()
        beats = [
            HeartRateMeasured(person="alex", ts=at, bpm=70, key=f"watch|{at.isoformat()}")
            for at in (t("00:00", day) + timedelta(minutes=5 * i) for i in range(288))
        ]
        events = sorted(beats + busy_day(day), key=lambda e: e.ts)
        replay.feed(events)
        for nudge_id in list(replay.state.people["alex"].nudges):
            replay.decide(ack("23:59", nudge_id, day=day))
    state, ps = replay.state, replay.state.people["alex"]
    assert len(replay.nudges) > 30 * 8
    assert len(state.seen) <= 2 * 288 + 12  # 48 h of readings
    per_day = max(Counter(local_iso(n.ts, TZ)[:10] for n in replay.nudges).values())
    assert len(ps.nudges) <= 3 * per_day  # sent in the last 48 h: parts of three days at most
    assert len(ps.caffeine_days) <= engine.DAYS_KEEP + 1
    assert len(ps.sunlight) <= engine.DAYS_KEEP + 1
    assert len(ps.nicotine) <= engine.DAYS_KEEP + 1
    assert len(ps.alcohol) <= engine.DAYS_KEEP + 1
    assert len(ps.daytime_twitching) <= engine.DAYS_KEEP + 1
    assert len(ps.evenings) <= engine.DAYS_KEEP + 1
    assert ps.evenings[day].late_workout
    assert ps.evenings[day].stress_high
    assert len(ps.doses) <= 8
    assert len(state.sent) <= 30 * 12
    assert len(dump_state(state)) < 200_000


def test_housekeeping_forgets_what_is_old() -> None:
    replay = run(busy_day("2026-11-01"))
    replay.decide(bedtime_tonight("12:00", "23:00", day="2026-11-01"))
    replay.decide(sunlight("12:00", 1, day="2026-12-20"))  # seven weeks later
    ps = replay.state.people["alex"]
    assert replay.state.sent == {}
    assert ps.nudges == {}
    assert ps.once == {}
    assert ps.doses == []
    assert ps.caffeine_days == {}
    assert ps.sunlight == {"2026-12-20": 1.0}
    assert ps.bedtime_overrides == {}
    assert ps.nicotine == ps.alcohol == []
    assert ps.daytime_twitching == []
    assert ps.evenings == {}


def test_housekeeping_skips_people_without_state() -> None:
    config = make_config(
        people=[
            {"id": "alex", "bedtime": "22:30", "wake": "06:30"},
            {"id": "sam", "bedtime": "23:00", "wake": "07:00"},
        ]
    )
    replay = run([coffee("09:00"), coffee("09:00", day="2026-12-01")], config=config)
    assert list(replay.state.people) == ["alex"]


# -- odds and ends --------------------------------------------------------------------------------


def test_a_message_delivered_late_is_judged_at_its_own_time() -> None:
    # An espresso brewed at 13:29 whose message arrives at 13:35 was before the cutoff.
    replay = Replay()
    replay.decide(coffee("13:29"), now=t("13:35"))
    replay.decide(coffee("13:31"), now=t("13:36"))
    assert replay.ids == ["caffeine.cutoff:alex:2026-11-24:1331"]
    assert replay.nudges[0].ts == t("13:36")


def test_getting_into_bed_twice_keeps_the_first_time() -> None:
    replay = run([in_bed("22:00"), in_bed("22:10"), in_bed("07:00", occupied=False, day=NEXT)])
    assert replay.documents[1]["in_bed"] is True
    ps = replay.state.people["alex"]
    assert ps.in_bed is False
    assert ps.in_bed_since is None
    first = run([in_bed("22:00"), in_bed("22:10")]).state.people["alex"]
    assert first.in_bed_since == t("22:00").timestamp()


def test_a_restart_while_in_bed_does_not_record_the_wind_down_twice() -> None:
    replay = run([in_bed("21:30")], start=t("07:00"), until=t("21:50"))
    replay.start(t("21:50"))  # re-plans the 21:45 wind-down within the start-up grace
    replay.advance(t("23:00"))
    assert [(d.nudge_id, d.reason) for d in replay.dropped] == [(WINDDOWN, "in_bed")]
    assert replay.state.dropped == {"in_bed": 1}


def test_daytime_twitching_is_recorded_once_a_day() -> None:
    replay = run([logged("10:00", "daytime_twitching"), logged("15:00", "daytime_twitching")])
    assert replay.state.people["alex"].daytime_twitching == [DAY]
    assert replay.nudges == []


# -- every nudge of these families ----------------------------------------------------------------

FAMILY_RULES = (
    "caffeine.",
    "stimulant.late",
    "exercise.late_intense",
    "winddown.stretch",
    "stress.relax",
    "sunlight.daily",
)


def test_every_nudge_cites_its_source_suggests_and_never_doses() -> None:
    replay = run(busy_day(DAY), config=EVERY_NUDGE, start=t("07:00"), until=t("07:00", NEXT))
    nudges = [n for n in replay.nudges if n.rule.startswith(FAMILY_RULES)]
    assert sorted({n.rule for n in nudges}) == [
        "caffeine.bedtime_load",
        "caffeine.cutoff",
        "caffeine.daily_limit",
        "caffeine.last_call",
        "exercise.late_intense",
        "stimulant.late",
        "stress.relax",
        "sunlight.daily",
        "winddown.stretch",
    ]
    for nudge in nudges:
        assert nudge.evidence["source"], nudge.id
        assert "consider" in nudge.message.lower(), nudge.id
        assert_no_dosing(nudge.message)
        assert nudge.severity in ("info", "warning", "alert")
        assert nudge.actions == ("ack", "snooze")
        assert nudge.id.startswith(f"{nudge.rule}:alex:2026-11-24")
        assert json.loads(json.dumps(nudge.to_payload(TZ))) == nudge.to_payload(TZ)


def test_a_nudge_payload_is_the_contracts() -> None:
    nudge = run([coffee("21:00", "coffee", ml=240)]).nudges[0]
    payload = nudge.to_payload(TZ)
    assert list(payload) == [
        "id",
        "person",
        "rule",
        "ts",
        "severity",
        "title",
        "message",
        "evidence",
        "actions",
    ]
    assert payload["id"] == "caffeine.cutoff:alex:2026-11-24:2100"
    assert payload["person"] == "alex"
    assert payload["ts"] == "2026-11-24T21:00:00+01:00"
    assert payload["severity"] == "alert"
    assert payload["actions"] == ["ack", "snooze"]
