"""Actions: what the core asks the shell to do. Data only; the shell carries them out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coach.event import CoffeeBrewed, Timer
from coach.nudge import Nudge


@dataclass(frozen=True, slots=True)
class PublishNudge:
    """Send this nudge (MQTT, Home Assistant). Its id was never sent before."""

    nudge: Nudge


@dataclass(frozen=True, slots=True)
class ScheduleTimer:
    """Wake the core at `timer.at` with a TimerFired; replaces a timer with the same id."""

    timer: Timer


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Forget a scheduled timer."""

    timer_id: str


@dataclass(frozen=True, slots=True)
class UpdateState:
    """Publish a person's state (retained) as this JSON-able document."""

    person: str
    state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DropNudge:
    """A nudge fell due when it must not go out (quiet hours, expired): record it, send nothing."""

    nudge_id: str
    person: str
    rule: str
    ts: datetime
    reason: str
    #: The title it would have had (the report shows it); "" when not known.
    title: str = ""
    #: The night it belonged to (its evening's ISO date); "" when not known.
    night: str = ""


@dataclass(frozen=True, slots=True)
class RecordNight:
    """A night was summarised: store it (one row per person and night, replaced on repeat)."""

    person: str
    night: str
    ts: datetime
    summary: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RecordCheckin:
    """A day's check-in answers as they now stand: store them (one row per person and day,
    replaced when more answers come the same day)."""

    person: str
    day: str
    ts: datetime
    rested: int | None
    daytime_twitching: bool | None
    rls: dict[str, bool]


@dataclass(frozen=True, slots=True)
class WithdrawNudge:
    """A nudge that was sent no longer applies (a question someone else answered): take it back
    where that is possible (Home Assistant clears the notification by its tag)."""

    nudge_id: str
    person: str


@dataclass(frozen=True, slots=True)
class RecordDrink:
    """A shared coffee maker's drink was given to a person: store it in their history as their
    own brew (at the moment it was brewed), so what reads the history (the report) counts it."""

    drink: CoffeeBrewed


@dataclass(frozen=True, slots=True)
class RefuseEvent:
    """The event was well-formed but cannot be applied (an unknown nudge id): report it."""

    reason: str


Action = (
    PublishNudge
    | ScheduleTimer
    | CancelTimer
    | UpdateState
    | DropNudge
    | RecordNight
    | RecordCheckin
    | WithdrawNudge
    | RecordDrink
    | RefuseEvent
)
