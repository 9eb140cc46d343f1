"""The core's state: everything `decide()` remembers, serialisable to JSON with a version.

Instants are stored as POSIX seconds (float, UTC) to keep the hot path cheap; local dates as ISO
strings. The shell persists `dump_state()` and restores with `load_state()`; a shell that keeps the
duplicate keys elsewhere dumps without them and gives them back with `restore_seen()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

STATE_VERSION = 1


@dataclass(slots=True)
class NudgeRecord:
    """A nudge that was sent, kept so ack and snooze can refer to it."""

    rule: str
    night: str
    severity: str
    title: str
    message: str
    evidence: dict[str, Any]
    sent_at: float
    expires_at: float
    acked: bool = False
    snoozes: int = 0
    # When a snoozed nudge is due again (instant), None when not snoozed.
    snooze_until: float | None = None


@dataclass(slots=True)
class Workout:
    """A workout in progress."""

    started_at: float
    activity: str
    intensity: str


@dataclass(slots=True)
class PersonState:
    """What the core remembers about one person."""

    # Caffeine doses as [instant, mg], pruned once negligible.
    doses: list[tuple[float, float]] = field(default_factory=list)
    # Caffeine total per local date.
    caffeine_days: dict[str, float] = field(default_factory=dict)
    # Nicotine and alcohol logs (instants).
    nicotine: list[float] = field(default_factory=list)
    alcohol: list[float] = field(default_factory=list)
    # Local dates with daytime twitching logged.
    daytime_twitching: list[str] = field(default_factory=list)
    workout: Workout | None = None
    # Nights (evening dates) with a late or intense workout: the wind-down text says more.
    late_workout_nights: list[str] = field(default_factory=list)
    hr_high_since: float | None = None
    last_hr_at: float | None = None
    stress_high_since: float | None = None
    last_stress_at: float | None = None
    # Minutes of daylight per local date.
    sunlight: dict[str, float] = field(default_factory=dict)
    in_bed: bool = False
    in_bed_since: float | None = None
    # Tonight's bedtime moved by command: evening date -> "HH:MM".
    bedtime_overrides: dict[str, str] = field(default_factory=dict)
    # Nudges sent recently, by id.
    nudges: dict[str, NudgeRecord] = field(default_factory=dict)
    # "Once per period" markers, e.g. "caffeine.daily_limit:2026-11-24" -> instant.
    once: dict[str, float] = field(default_factory=dict)
    # Bed-sensor scoring state and night summaries (the nights feature keeps its data here).
    nights: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CoachState:
    """The whole core state."""

    version: int = STATE_VERSION
    people: dict[str, PersonState] = field(default_factory=dict)
    # Duplicate detection: message key -> instant of the message, in time order while
    # `seen_in_order` (housekeeping then forgets a prefix; else it sorts the keys once).
    seen: dict[str, float] = field(default_factory=dict)
    seen_in_order: bool = True
    # Every nudge id ever sent (within retention) -> instant; never send an id twice.
    sent: dict[str, float] = field(default_factory=dict)
    # Nudges dropped (quiet hours, expired), counted per reason.
    dropped: dict[str, int] = field(default_factory=dict)
    # Latest instant the core has seen (events or timers); housekeeping runs from it.
    clock: float = 0.0

    def person(self, person_id: str) -> PersonState:
        """The state of a person, created on first use."""
        ps = self.people.get(person_id)
        if ps is None:
            ps = self.people[person_id] = PersonState()
        return ps


_ADAPTER: TypeAdapter[CoachState] = TypeAdapter(CoachState)


class StateVersionError(ValueError):
    """The stored state has a version this code cannot read."""


def dump_state(state: CoachState, *, seen: bool = True) -> bytes:
    """Serialise the state as JSON bytes; `seen=False` leaves out the duplicate keys."""
    # A shell that stores each event's key beside the event (the daemon) leaves them out: with
    # devices sending their own `ts`, 48 hours of keys are most of the state's bytes (8,640 keys
    # made a 588 KB document that took ~2.7 ms to dump), and it gives them back with
    # `restore_seen` on start.
    if seen:
        return _ADAPTER.dump_json(state)
    return _ADAPTER.dump_json(state, exclude={"seen", "seen_in_order"})


def set_seen(state: CoachState, keys: dict[str, float]) -> None:
    """Make `keys` the duplicate keys, in time order (a stable sort keeps ties as given), so
    housekeeping can forget a prefix."""
    state.seen = dict(sorted(keys.items(), key=lambda kv: kv[1]))
    state.seen_in_order = True


def restore_seen(state: CoachState, keys: Iterable[tuple[str, float]]) -> None:
    """Give back duplicate keys kept outside the state: (key, instant of the message) pairs."""
    merged = {**state.seen}
    merged.update(keys)
    set_seen(state, merged)


def load_state(raw: bytes | str) -> CoachState:
    """Restore state from JSON; migrates older versions forward."""
    state = _ADAPTER.validate_json(raw)
    if state.version > STATE_VERSION:
        msg = f"state version {state.version} is newer than this sleepcoach ({STATE_VERSION})"
        raise StateVersionError(msg)
    state.version = STATE_VERSION
    return state
