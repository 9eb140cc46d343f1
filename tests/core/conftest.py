"""Helpers for the core's table tests: a config builder, local times, and a whole-day replay.

`run(events)` feeds events through `decide()` with `now` = each event's `ts`; a fake timer service
keeps the `ScheduleTimer` actions (a later one replaces a pending timer with the same id,
`CancelTimer` removes it) and fires them in time order, each at its own due time, before any
event at or after that time. So a whole day, night or month replays in milliseconds.

Test modules import these with `from tests.core.conftest import ...` (the repository root is on
`sys.path`, see `tests/conftest.py`); `from conftest import` would pick whichever conftest pytest
loaded last.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from coach.action import (
    Action,
    CancelTimer,
    DropNudge,
    PublishNudge,
    RefuseEvent,
    ScheduleTimer,
    UpdateState,
)
from coach.config import Config
from coach.engine import decide
from coach.event import (
    BedtimeChanged,
    CoachStarted,
    CoffeeBrewed,
    Drink,
    Event,
    HeartRateMeasured,
    Intensity,
    NudgeAcked,
    NudgeSnoozed,
    OccupancyChanged,
    StressMeasured,
    Substance,
    SubstanceLogged,
    SunlightLogged,
    Timer,
    TimerFired,
    WorkoutEnded,
    WorkoutStarted,
)
from coach.nudge import Nudge
from coach.state import CoachState

TZ = ZoneInfo("Europe/Berlin")
#: A winter Tuesday (CET, UTC+1): the day most tables play on.
DAY = "2026-11-24"


def t(hhmm: str, day: str = DAY) -> datetime:
    """An aware instant: the Berlin wall clock shows `hhmm` (or HH:MM:SS) on `day`."""
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(hhmm), tzinfo=TZ)


def make_config(
    *, rules: dict[str, Any] | None = None, people: list[dict[str, Any]] | None = None, **alex: Any
) -> Config:
    """A config in Europe/Berlin with alex (bedtime 22:30, wake 06:30, age 40); keywords override.

    `rules` is keyed by rule id (`{"caffeine.cutoff": {"cutoff_hours": 6}}`); `people` replaces
    the people list entirely.
    """
    person = {"id": "alex", "bedtime": "22:30", "wake": "06:30", "age": 40, **alex}
    return Config.model_validate(
        {"timezone": "Europe/Berlin", "people": people or [person], "rules": rules or {}}
    )


CONFIG = make_config()

# The coach never tells anyone what or how much to take (screening language: no dosing advice).
_DOSING = re.compile(
    r"\b(take|taking|dose|doses|dosage|supplements?|pills?|tablets?|magnesium|iron|melatonin)\b",
    re.IGNORECASE,
)


def assert_no_dosing(message: str) -> None:
    """Fail when a nudge's text gives dosing advice."""
    assert not _DOSING.search(message), message


# Events of alex, at a local time on DAY unless `day` says otherwise.


def coffee(
    hhmm: str,
    drink: Drink = "espresso",
    *,
    ml: float | None = None,
    mg: float | None = None,
    day: str = DAY,
) -> CoffeeBrewed:
    """The coffee maker brewed a drink."""
    return CoffeeBrewed(person="alex", ts=t(hhmm, day), drink=drink, volume_ml=ml, caffeine_mg=mg)


def logged(hhmm: str, what: Substance, *, mg: float | None = None, day: str = DAY) -> Event:
    """Alex logged nicotine, alcohol, caffeine or daytime twitching."""
    return SubstanceLogged(person="alex", ts=t(hhmm, day), what=what, caffeine_mg=mg)


def workout(
    hhmm: str, intensity: Intensity, activity: str = "running", *, day: str = DAY
) -> WorkoutStarted:
    """A workout started."""
    return WorkoutStarted(person="alex", ts=t(hhmm, day), activity=activity, intensity=intensity)


def workout_end(hhmm: str, *, day: str = DAY) -> WorkoutEnded:
    """The workout ended."""
    return WorkoutEnded(person="alex", ts=t(hhmm, day))


def heart_rate(hhmm: str, bpm: float, *, day: str = DAY) -> HeartRateMeasured:
    """A heart-rate reading."""
    return HeartRateMeasured(person="alex", ts=t(hhmm, day), bpm=bpm)


def stress(hhmm: str, level: float, *, day: str = DAY) -> StressMeasured:
    """A stress reading."""
    return StressMeasured(person="alex", ts=t(hhmm, day), level=level)


def sunlight(hhmm: str, minutes: float, *, day: str = DAY) -> SunlightLogged:
    """Minutes of daylight."""
    return SunlightLogged(person="alex", ts=t(hhmm, day), minutes=minutes)


def in_bed(hhmm: str, occupied: bool = True, *, day: str = DAY) -> OccupancyChanged:
    """Alex got into (or out of) bed."""
    return OccupancyChanged(person="alex", ts=t(hhmm, day), occupied=occupied)


def ack(hhmm: str, nudge_id: str, *, day: str = DAY) -> NudgeAcked:
    """Alex acknowledged a nudge."""
    return NudgeAcked(person="alex", ts=t(hhmm, day), nudge_id=nudge_id)


def snooze(hhmm: str, nudge_id: str, minutes: int, *, day: str = DAY) -> NudgeSnoozed:
    """Alex snoozed a nudge."""
    return NudgeSnoozed(person="alex", ts=t(hhmm, day), nudge_id=nudge_id, minutes=minutes)


def bedtime_tonight(hhmm: str, new_bedtime: str, *, day: str = DAY) -> BedtimeChanged:
    """Alex moved tonight's bedtime."""
    return BedtimeChanged(person="alex", ts=t(hhmm, day), time=new_bedtime)


def every_minute(
    first: str, last: str, make: Any, *, day: str = DAY, step_min: int = 1
) -> list[Event]:
    """`make(hhmm)` for every `step_min` minutes from `first` to `last` inclusive, on `day`."""
    out: list[Event] = []
    at, end = t(first, day), t(last, day)
    while at <= end:
        out.append(make(at.strftime("%H:%M"), day=day))
        at += timedelta(minutes=step_min)
    return out


@dataclass
class TimerService:
    """The shell's scheduler, faked: pending timers by id, fired in (due time, id) order."""

    pending: dict[str, Timer] = field(default_factory=dict)

    def apply(self, actions: Iterable[Action]) -> None:
        """Carry out the timer actions among `actions`."""
        for action in actions:
            if isinstance(action, ScheduleTimer):
                self.pending[action.timer.id] = action.timer
            elif isinstance(action, CancelTimer):
                self.pending.pop(action.timer_id, None)

    def pop_due(self, until: datetime) -> Timer | None:
        """The earliest timer due at or before `until`, removed from the pending ones."""
        due = [tm for tm in self.pending.values() if tm.at <= until]
        if not due:
            return None
        first = min(due, key=lambda tm: (tm.at, tm.id))
        del self.pending[first.id]
        return first


@dataclass
class Replay:
    """A state, a virtual clock and a timer service, fed one event at a time."""

    config: Config = CONFIG
    state: CoachState = field(default_factory=CoachState)
    timers: TimerService = field(default_factory=TimerService)
    actions: list[Action] = field(default_factory=list)
    now: datetime | None = None

    def decide(self, event: Event, now: datetime | None = None) -> list[Action]:
        """Apply one event at `now` (default: its ts), carry out its timer actions."""
        at = now if now is not None else event.ts
        if self.now is not None and at < self.now:
            at = self.now  # the clock never runs backwards
        self.now = at
        actions = decide(self.state, event, at, self.config)
        self.actions.extend(actions)
        self.timers.apply(actions)
        return actions

    def advance(self, until: datetime) -> None:
        """Fire every timer due at or before `until`, in time order, each at its due time."""
        while (timer := self.timers.pop_due(until)) is not None:
            self.decide(TimerFired(person=timer.person, ts=timer.at, timer=timer))
        if self.now is None or until > self.now:
            self.now = until

    def feed(self, events: Iterable[Event], until: datetime | None = None) -> Replay:
        """Feed events in order, firing due timers before each; then fire timers up to `until`."""
        for event in events:
            self.advance(event.ts)
            self.decide(event)
        if until is not None:
            self.advance(until)
        return self

    def start(self, at: datetime) -> Replay:
        """The daemon starts at `at`: CoachStarted plans every person's timers."""
        self.decide(CoachStarted(person="*", ts=at))
        return self

    @property
    def nudges(self) -> list[Nudge]:
        """Every nudge published so far, in order."""
        return [a.nudge for a in self.actions if isinstance(a, PublishNudge)]

    @property
    def ids(self) -> list[str]:
        """The ids of the nudges published so far."""
        return [n.id for n in self.nudges]

    @property
    def dropped(self) -> list[DropNudge]:
        """Every nudge dropped so far (quiet hours, expired, in bed)."""
        return [a for a in self.actions if isinstance(a, DropNudge)]

    @property
    def refused(self) -> list[str]:
        """The reasons of every refused event."""
        return [a.reason for a in self.actions if isinstance(a, RefuseEvent)]

    @property
    def documents(self) -> list[dict[str, Any]]:
        """Every published state document, in order."""
        return [a.state for a in self.actions if isinstance(a, UpdateState)]

    def nudge(self, nudge_id: str) -> Nudge:
        """The published nudge with this id."""
        (found,) = [n for n in self.nudges if n.id == nudge_id]
        return found


def run(
    events: Iterable[Event],
    *,
    config: Config = CONFIG,
    start: datetime | None = None,
    until: datetime | None = None,
    state: CoachState | None = None,
) -> Replay:
    """Replay events (started by CoachStarted at `start` if given) and timers up to `until`."""
    replay = Replay(config=config, state=state if state is not None else CoachState())
    if start is not None:
        replay.start(start)
    return replay.feed(events, until)


def run_day(
    events: Iterable[Event] = (), day: str = DAY, *, config: Config = CONFIG, hours: float = 24
) -> Replay:
    """Start the coach at 07:00 on `day` and replay `events` and every timer for `hours`."""
    start = t("07:00", day)
    return run(events, config=config, start=start, until=start + timedelta(hours=hours))
