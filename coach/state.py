"""The core's state: everything `decide()` remembers, serialisable to JSON with a version.

Instants are stored as POSIX seconds (float, UTC) to keep the hot path cheap; local dates as ISO
strings. The shell persists `dump_state()` and restores with `load_state()`, which brings a state
an older version wrote up to this one; a shell that keeps the duplicate keys elsewhere dumps
without them and gives them back with `restore_seen()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, TypeAdapter, ValidationError
from pydantic_core import from_json

from coach.error import ProjectError
from coach.limb_movement import LimbMovementDetector

#: Most duplicate keys kept: the newest ones. Messages with their own `ts` are remembered for
#: 48 hours; 100,000 keys hold 48 hours of one such message every 1.7 s (about 20 MB), and a
#: flood of distinct timestamps can hold no more. Past it the oldest tenth is forgotten at once
#: (one sort, when keys arrived out of order): a repeat of a forgotten message counts again.
SEEN_MAX = 100_000

#: 2: the nights feature's state is typed (`NightsState`), and the facts of an evening that a
#: later rule asks about live in `PersonState.evenings`.
STATE_VERSION = 2


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
    # The commands that answer it (the nudge's `actions`), for a snoozed repeat.
    actions: tuple[str, ...] = ("ack", "snooze")


@dataclass(slots=True)
class Workout:
    """A workout in progress."""

    started_at: float
    activity: str
    intensity: str


@dataclass(slots=True)
class Evening:
    """What an evening held that a rule asks about later (the wind-down, the night's insight).

    Keyed by the evening's date in `PersonState.evenings`; the rules that see it happen write it.
    """

    #: An intense workout too close to bed (the condition of `exercise.late_intense`).
    late_workout: bool = False
    #: Stress held high within the hours before bed (the condition of `stress.relax`).
    stress_high: bool = False
    #: A stress reading came within those hours: without one, the evening's stress is unknown.
    stress_read: bool = False
    #: Alcohol logged within the hours before bed (the condition of `alcohol.late`).
    alcohol_late: bool = False
    #: The routine nudges sent for this evening (ids), against the nudge budget.
    routine: list[str] = field(default_factory=list)


@dataclass(slots=True)
class OpenNight:
    """The night being collected: its window and what the bed sensor sent so far (capped)."""

    #: The night's name: its evening's date (ISO).
    night: str
    #: Collecting runs from `start` until `wake` (instants); `bedtime` is that evening's.
    start: float
    bedtime: float
    wake: float
    #: Getting into (True) and out of bed, as (instant, occupied).
    occupancy: list[tuple[float, bool]] = field(default_factory=list)
    #: Movements as (onset instant, duration in seconds, intensity 0..1).
    movements: list[tuple[float, float, float]] = field(default_factory=list)
    #: Movements that came when `movements` was full, counted.
    lost: int = 0


@dataclass(slots=True, frozen=True)
class Exposures:
    """What the evening before a night had, as the weekly insight compares nights by it; None
    where nothing measured it (no caffeine tracked, no fitness tracker, no stress reading before
    bed): unknown, which the insight leaves out, never "without"."""

    caffeine_at_bedtime: bool | None = False
    late_workout: bool | None = False
    stress_evening: bool | None = False
    late_nicotine: bool = False
    alcohol_evening: bool = False


@dataclass(slots=True, frozen=True)
class NightRecord:
    """A scored night with movement data, as the weekly rules and the insight read it."""

    night: str
    plm_index: float | None
    plm_count: int
    series: int
    hypnic_jerks: int
    time_to_settle_s: float | None
    time_in_bed_s: float
    limb_movements: int
    exposures: Exposures = field(default_factory=Exposures)
    #: How rested the person said they felt the morning after (1-5), None when not answered.
    rested: int | None = None


def _load_detector(value: Any) -> LimbMovementDetector:
    if not isinstance(value, dict):
        msg = "a limb-movement detector state is a JSON object"
        raise ValueError(msg)  # pydantic reports a ValueError as a validation error
    return LimbMovementDetector.from_dict(value)


#: The raw-accel detector, kept live between events (it buffers about a minute of samples, and
#: rebuilding it from JSON for every 1 s chunk would cost more than the detection): the state
#: holds the detector itself and writes and reads it as its `to_dict()`.
LiveDetector = Annotated[
    LimbMovementDetector,
    PlainValidator(_load_detector),
    PlainSerializer(LimbMovementDetector.to_dict, return_type=dict[str, Any]),
]


@dataclass(slots=True)
class NightsState:
    """The nights feature's state for one person: the night being collected and the scored ones."""

    #: The night being collected, if any.
    open: OpenNight | None = None
    #: (from, until) instants in which no night is collected: messages there are passed over
    #: at the cost of one comparison.
    skip: tuple[float, float] | None = None
    #: The latest night closed (its evening's date); an older one is never opened again.
    closed: str = ""
    #: The last scored nights with movement data, oldest first.
    history: list[NightRecord] = field(default_factory=list)
    #: The latest night closed, as the state topic publishes it (`last_night`).
    last_night: dict[str, Any] | None = None
    #: The raw-accel detector, while a bed sensor sends raw samples.
    detector: LiveDetector | None = None
    #: When `twitch.frequent` and `twitch.daytime` last went out (instants), for their repeat.
    frequent_sent_at: float | None = None
    daytime_sent_at: float | None = None
    #: When `twitch.frequent` last suggested a sleep specialist (instant), for its own repeat.
    specialist_sent_at: float | None = None


@dataclass(slots=True)
class Checkin:
    """A day's check-in answers; a later answer the same day replaces only what it gives."""

    #: How rested the person feels, 1 (not at all) to 5.
    rested: int | None = None
    #: Twitching while awake.
    daytime_twitching: bool | None = None
    #: The restless-legs questions answered, by `coach.event.RLS_CRITERIA` key.
    rls: dict[str, bool] = field(default_factory=dict)
    #: When the latest answer came (instant).
    at: float = 0.0


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
    # When the latest workout the tracker reported started (instant); None: it never reported one,
    # so nothing is known about this person's exercise.
    last_workout_at: float | None = None
    # Minutes of moderate and of vigorous workouts per local date (of the workout's start).
    active_minutes: dict[str, tuple[float, float]] = field(default_factory=dict)
    # What each evening held that a later rule asks about, by evening date (ISO).
    evenings: dict[str, Evening] = field(default_factory=dict)
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
    # Bed-sensor scoring state and night summaries.
    nights: NightsState = field(default_factory=NightsState)
    # Morning check-in answers by local date.
    checkins: dict[str, Checkin] = field(default_factory=dict)

    def evening(self, key: str) -> Evening:
        """The record of the evening `key` (ISO date), created on first use."""
        record = self.evenings.get(key)
        if record is None:
            record = self.evenings[key] = Evening()
        return record


@dataclass(slots=True)
class SharedDrink:
    """A drink from a coffee maker several people use, and whose it turned out to be."""

    #: The device, the instant it was brewed, the drink and its caffeine.
    device: str
    at: float
    drink: str
    mg: float
    #: Who may have had it (the device's people), in config order.
    people: list[str]
    #: The question sent to each person asked: person -> nudge id.
    questions: dict[str, str] = field(default_factory=dict)
    #: Until when an answer counts (instant).
    open_until: float = 0.0
    #: "" while open, "claimed" (by `claimed_by`) or "unattributed".
    outcome: str = ""
    claimed_by: str | None = None
    #: When it was answered or given up (instant).
    closed_at: float | None = None


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
    # Drinks of shared coffee makers, open or recently closed, by key (device and instant).
    shared_drinks: dict[str, SharedDrink] = field(default_factory=dict)

    def person(self, person_id: str) -> PersonState:
        """The state of a person, created on first use."""
        ps = self.people.get(person_id)
        if ps is None:
            ps = self.people[person_id] = PersonState()
        return ps


_ADAPTER: TypeAdapter[CoachState] = TypeAdapter(CoachState)


class StateVersionError(ProjectError, ValueError):
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
    housekeeping can forget a prefix; the newest `SEEN_MAX` of them."""
    ordered = sorted(keys.items(), key=lambda kv: kv[1])
    state.seen = dict(ordered[-SEEN_MAX:] if len(ordered) > SEEN_MAX else ordered)
    state.seen_in_order = True


def forget_oldest_seen(state: CoachState) -> None:
    """Over `SEEN_MAX` keys: forget the oldest tenth (sorting them first if out of order)."""
    if not state.seen_in_order:
        set_seen(state, state.seen)
    seen = state.seen
    for key in list(islice(seen, len(seen) - (SEEN_MAX - SEEN_MAX // 10))):
        del seen[key]


def restore_seen(state: CoachState, keys: Iterable[tuple[str, float]]) -> None:
    """Give back duplicate keys kept outside the state: (key, instant of the message) pairs."""
    merged = {**state.seen}
    merged.update(keys)
    set_seen(state, merged)


def load_state(raw: bytes | str) -> CoachState:
    """Restore state from JSON; migrates older versions forward."""
    # A state of this version (the usual case) is read in one pass; the document is looked at
    # again only when that fails or finds an older version (whose shape may validate in part).
    try:
        state: CoachState | None = _ADAPTER.validate_json(raw)
    except ValidationError:
        state = None
    if state is not None and state.version == STATE_VERSION:
        return state
    doc = from_json(raw)
    version = doc.get("version", 1) if isinstance(doc, dict) else None
    if not isinstance(version, int):
        msg = "a stored state is a JSON object with an integer version"
        raise StateVersionError(msg)
    if version > STATE_VERSION:
        msg = f"state version {version} is newer than this sleepcoach ({STATE_VERSION})"
        raise StateVersionError(msg)
    if version < 1:
        msg = f"state version {version} is unknown"
        raise StateVersionError(msg)
    if version == STATE_VERSION:
        return _ADAPTER.validate_json(raw)  # raises the validation error again, with its detail
    if version == 1:
        _migrate_1(doc)
    doc["version"] = STATE_VERSION
    return _ADAPTER.validate_python(doc)


def _migrate_1(doc: dict[str, Any]) -> None:
    """Version 1 to 2, in place: the nights feature kept a plain dict (its open night's
    occupancy as [instant, 0|1], movements as `mov`, the repeat marks under `sent`), the exercise
    rule listed the evenings with a late workout, and the stress rule marked its evenings in
    `once` as "stress.relax:<evening>"."""
    for person in (doc.get("people") or {}).values():
        evenings: dict[str, dict[str, bool]] = {}
        for key in person.pop("late_workout_nights", None) or []:
            evenings.setdefault(key, {})["late_workout"] = True
        once = person.get("once") or {}
        for mark in [k for k in once if k.startswith("stress.relax:")]:
            evenings.setdefault(mark.removeprefix("stress.relax:"), {})["stress_high"] = True
            del once[mark]
        person["evenings"] = evenings
        old = person.get("nights") or {}
        nights: dict[str, Any] = {
            "history": old.get("history", []),
            "last_night": old.get("last_summary"),
            "detector": old.get("detector"),
            "frequent_sent_at": (old.get("sent") or {}).get("twitch.frequent"),
            "daytime_sent_at": (old.get("sent") or {}).get("twitch.daytime"),
        }
        for key in ("skip", "closed"):
            if key in old:
                nights[key] = old[key]
        cur = old.get("open")
        if cur is not None:
            nights["open"] = {
                "night": cur["night"],
                "start": cur["start"],
                "bedtime": cur["bedtime"],
                "wake": cur["wake"],
                "occupancy": [(t, bool(occupied)) for t, occupied in cur["occ"]],
                "movements": cur["mov"],
                "lost": cur["lost"],
            }
        person["nights"] = nights
