"""Events to JSON and back: what the daemon's journal replays must be the event it decided on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from coach.event import (
    EVENT_KINDS,
    AccelSampled,
    BedtimeChanged,
    CheckinAnswered,
    CoachStarted,
    CoffeeBrewed,
    DrinkClaimed,
    Event,
    HeartRateMeasured,
    MovementDetected,
    NudgeAcked,
    NudgeSnoozed,
    OccupancyChanged,
    SharedDrinkBrewed,
    StressMeasured,
    SubstanceLogged,
    SunlightLogged,
    Timer,
    TimerFired,
    WorkoutEnded,
    WorkoutStarted,
    dump_event,
    load_event,
)

BERLIN = ZoneInfo("Europe/Berlin")
TS = datetime(2026, 11, 24, 21, 5, 30, 125_000, tzinfo=BERLIN)

SAMPLES = [
    MovementDetected(person="alex", ts=TS, intensity=0.42, duration_s=1.5, source="bed"),
    OccupancyChanged(person="alex", ts=TS, occupied=True, key="bed|x|1"),
    AccelSampled(person="alex", ts=TS, rate_hz=50.0, samples=((0.0, 0.01, 0.98), (0.1, -0.2, 1.0))),
    CoffeeBrewed(person="alex", ts=TS, drink="espresso", volume_ml=30.0, caffeine_mg=None),
    SharedDrinkBrewed(
        person="*", ts=TS, source="kitchen", people=("alex", "sam"), drink="tea", volume_ml=240.0
    ),
    DrinkClaimed(person="sam", ts=TS, nudge_id=None),
    DrinkClaimed(person="sam", ts=TS, nudge_id="household.whose:sam:2026-11-24:2105"),
    WorkoutStarted(person="alex", ts=TS, activity="run", intensity="vigorous"),
    WorkoutEnded(person="alex", ts=TS),
    HeartRateMeasured(person="alex", ts=TS.astimezone(UTC), bpm=61.0, key="watch|t|2"),
    StressMeasured(person="alex", ts=TS, level=73.0),
    SunlightLogged(person="alex", ts=TS, minutes=15.0),
    NudgeAcked(person="alex", ts=TS, nudge_id="caffeine.cutoff:alex:2026-11-24:2100"),
    NudgeSnoozed(person="alex", ts=TS, nudge_id="winddown.start:alex:2026-11-24", minutes=15),
    SubstanceLogged(person="alex", ts=TS, what="caffeine", caffeine_mg=80.0),
    BedtimeChanged(person="alex", ts=TS, time="23:15"),
    CheckinAnswered(
        person="alex", ts=TS, rested=2, rls={"urge_to_move": True, "worse_evening": False}
    ),
    TimerFired(
        person="alex",
        ts=TS,
        timer=Timer("snooze", "alex", TS + timedelta(minutes=30), "2026-11-24", "winddown"),
    ),
    CoachStarted(person="*", ts=datetime(2026, 11, 24, 20, 5, tzinfo=UTC)),
]


def test_every_kind_of_event_has_a_sample() -> None:
    assert {type(e).__name__ for e in SAMPLES} == set(EVENT_KINDS)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_an_event_comes_back_equal_and_at_the_same_instant(event: Event) -> None:
    back = load_event(type(event).__name__, dump_event(event))
    assert back == event
    assert type(back) is type(event)
    assert back.ts.utcoffset() == event.ts.utcoffset()  # the same local wall-clock time too


def test_a_utc_offset_survives_a_daylight_saving_change() -> None:
    # 02:30 happens twice in Berlin on 2026-10-25; the offset says which one it was.
    first = datetime(2026, 10, 25, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    event = HeartRateMeasured(person="alex", ts=first, bpm=58.0)
    back = load_event("HeartRateMeasured", dump_event(event))
    assert back.ts.timestamp() == first.timestamp()


def test_an_unknown_kind_or_a_bad_document_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown event kind 'Sneezed'"):
        load_event("Sneezed", b"{}")
    with pytest.raises(ValidationError):
        load_event("CoffeeBrewed", b'{"person": "alex", "ts": "2026-11-24T21:05:00+01:00"}')
