"""Events: facts in the past tense that the core decides on.

Device payloads, commands, timer firings and the start of the daemon all become one of these.
Every event names its person and carries an aware `ts` (when the fact happened). `key` is the
duplicate-detection key the parser computes (device, ts and content), None where the payload had
no timestamp of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import TypeAdapter

Drink = Literal["espresso", "coffee", "cold_brew", "tea", "decaf", "other"]
Intensity = Literal["light", "moderate", "vigorous"]
Substance = Literal["nicotine", "alcohol", "daytime_twitching", "caffeine"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened to a person at `ts`."""

    person: str
    ts: datetime
    source: str = ""
    key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MovementDetected(Event):
    """The bed sensor felt a movement of this intensity (0-1) and duration."""

    intensity: float
    duration_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class OccupancyChanged(Event):
    """The person got into (occupied) or out of bed."""

    occupied: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AccelSampled(Event):
    """A chunk of raw three-axis acceleration (g) from the bed sensor; `ts` is the first sample."""

    rate_hz: float
    samples: tuple[tuple[float, float, float], ...] = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CoffeeBrewed(Event):
    """The coffee maker brewed a drink; `caffeine_mg` when the maker knows it."""

    drink: Drink
    volume_ml: float | None = None
    caffeine_mg: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedDrinkBrewed(Event):
    """A coffee maker several people use brewed a drink; `person` is "*", `people` who may
    have had it (the device's list), `source` the device."""

    people: tuple[str, ...]
    drink: Drink
    volume_ml: float | None = None
    caffeine_mg: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DrinkClaimed(Event):
    """The person said a shared maker's drink was theirs (command `mine`): the question
    `nudge_id`, or their most recent open one when None."""

    nudge_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkoutStarted(Event):
    """The tracker saw a workout start."""

    activity: str
    intensity: Intensity


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkoutEnded(Event):
    """The tracker saw the workout end."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartRateMeasured(Event):
    """A heart-rate reading, beats per minute."""

    bpm: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StressMeasured(Event):
    """A stress reading, 0-100."""

    level: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SunlightLogged(Event):
    """Minutes of natural daylight, added to the day's total."""

    minutes: float


@dataclass(frozen=True, slots=True, kw_only=True)
class NudgeAcked(Event):
    """The person said "done" to a nudge: no repeats of it."""

    nudge_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NudgeSnoozed(Event):
    """The person asked to be reminded of a nudge again in `minutes`."""

    nudge_id: str
    minutes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SubstanceLogged(Event):
    """The person logged nicotine, alcohol, caffeine (with mg) or daytime twitching."""

    what: Substance
    caffeine_mg: float | None = None


#: The four essential criteria of restless legs syndrome (Allen et al. 2014, IRLSSG consensus,
#: Sleep Med 15(8):860-873) that a person can answer: the keys of a check-in's `rls` answers.
RLS_CRITERIA: tuple[str, ...] = ("urge_to_move", "worse_at_rest", "better_moving", "worse_evening")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckinAnswered(Event):
    """The person answered the morning check-in: any of how rested they feel (1-5), whether
    they had twitching while awake, and yes/no answers to the restless-legs questions (keyed by
    `RLS_CRITERIA`)."""

    rested: int | None = None
    daytime_twitching: bool | None = None
    rls: dict[str, bool] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BedtimeChanged(Event):
    """The person moved tonight's bedtime to a local HH:MM."""

    time: str


@dataclass(frozen=True, slots=True)
class Timer:
    """A point in time the core asked to be woken at. Its id is deterministic."""

    kind: str
    person: str
    at: datetime
    night: str
    ref: str = ""

    @property
    def id(self) -> str:
        """Stable id: the same timer is scheduled under the same id after a restart."""
        base = f"{self.kind}:{self.person}:{self.night}"
        return f"{base}:{self.ref}" if self.ref else base


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerFired(Event):
    """A timer the core scheduled came due; `ts` is its due time."""

    timer: Timer


@dataclass(frozen=True, slots=True, kw_only=True)
class CoachStarted(Event):
    """The daemon or simulator started: plan every person's timers. `person` is "*"."""


def _kinds() -> dict[str, type[Event]]:
    # From this module's names, not `Event.__subclasses__()`: `dataclass(slots=True)` replaces
    # each class, and the discarded originals linger among the subclasses.
    return {
        name: obj
        for name, obj in globals().items()
        if isinstance(obj, type) and issubclass(obj, Event) and obj is not Event
    }


#: Every concrete event class by name (the `kind` a journal row or a stored event carries).
EVENT_KINDS: dict[str, type[Event]] = _kinds()
_ADAPTERS: dict[type[Event], TypeAdapter[Any]] = {}


def _adapter(cls: type[Event]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def dump_event(event: Event) -> bytes:
    """The event as JSON (its kind is `type(event).__name__`); instants keep their UTC offset."""
    return _adapter(type(event)).dump_json(event)


def load_event(kind: str, raw: bytes | str) -> Event:
    """The event `dump_event` wrote; ValueError for an unknown kind or a document that misfits."""
    cls = EVENT_KINDS.get(kind)
    if cls is None:
        msg = f"unknown event kind {kind!r}"
        raise ValueError(msg)
    event: Event = _adapter(cls).validate_json(raw)
    return event
