"""Native payloads (docs/contract.md) and commands, parsed into events; bad input is refused.

How it works: each device kind has a pydantic discriminated union over its payload models, keyed
by `event` (`command` for the command topic), validated straight from the raw bytes with
`validate_json` (pydantic's Rust JSON parser rejects non-UTF-8 and malformed JSON on its own, so
the hot path does no extra decoding). Models are strict (a string is not a number, 1 is not
`true`), ignore unknown fields and refuse NaN and infinities. A refused message comes back as a
`PayloadError` whose text names each field and why (`intensity: must be between 0 and 1, got
1.7`, worded by `coach.decode.refusal`); the parser never raises for bad input. `ts` is optional
ISO 8601 with a UTC offset; without it the event happens at `received_at`. A payload that carries
its own `ts` gets a duplicate key (device, ts, content hash) so a replay after a reconnect is
recognised; one without has none, because two identical readings at different arrival times are
two facts.

Device profiles hand what they make to the same parser (`parse_device_message`), so every event,
native or translated, passes the same checks.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from coach.config import Device, DeviceKind, parse_hhmm
from coach.decode.refusal import PayloadError, Wording, show
from coach.event import (
    RLS_CRITERIA,
    AccelSampled,
    BedtimeChanged,
    CheckinAnswered,
    CoffeeBrewed,
    Drink,
    DrinkClaimed,
    Event,
    HeartRateMeasured,
    Intensity,
    MovementDetected,
    NudgeAcked,
    NudgeSnoozed,
    OccupancyChanged,
    SharedDrinkBrewed,
    StressMeasured,
    Substance,
    SubstanceLogged,
    SunlightLogged,
    WorkoutEnded,
    WorkoutStarted,
)

#: Largest payload accepted, in bytes (64 KiB): a raw accelerometer chunk fits, a flood does not.
MAX_PAYLOAD_BYTES: Final = 64 * 1024


# ---------------------------------------------------------------------------------------------
# Payload models. One per payload kind; `to_event` turns a validated payload into its event.


def _plausible_year(ts: datetime) -> datetime:
    # Far-off years overflow later arithmetic (year 9999 plus an offset is past datetime.max).
    if not 2000 <= ts.year <= 2099:
        msg = f"must be a date-time between the years 2000 and 2099, got {ts.isoformat()}"
        raise ValueError(msg)
    return ts


Timestamp = Annotated[AwareDatetime, AfterValidator(_plausible_year)]


def _hhmm(value: str) -> str:
    # Normalised to two-digit "HH:MM", the form coach.clock reads back with time.fromisoformat.
    try:
        return parse_hhmm(value).strftime("%H:%M")
    except ValueError:
        msg = f'must be a time as "HH:MM" (00:00 to 23:59), got {show(value)}'
        raise ValueError(msg) from None


class _Payload(BaseModel):
    """Fields every payload may carry."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, allow_inf_nan=False)

    ts: Timestamp | None = Field(
        None, description="When it happened: ISO 8601 with a UTC offset; default arrival time."
    )

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """The event this payload reports."""
        raise NotImplementedError


class MovementPayload(_Payload):
    """bed_motion `movement`: the bed felt a movement."""

    event: Literal["movement"]
    intensity: float = Field(ge=0, le=1, description="Strength of the movement, 0 to 1.")
    # One hour is far beyond any limb movement (0.5-10 s) or posture change (3-45 s); larger
    # values are a sensor fault.
    duration_s: float = Field(ge=0, le=3600, description="Duration in seconds.")

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """A MovementDetected."""
        return MovementDetected(
            person=person,
            ts=ts,
            source=source,
            key=key,
            intensity=self.intensity,
            duration_s=self.duration_s,
        )


class OccupancyPayload(_Payload):
    """bed_motion `occupancy`: someone got into or out of bed."""

    event: Literal["occupancy"]
    occupied: bool = Field(description="Whether the bed is occupied now.")

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """An OccupancyChanged."""
        return OccupancyChanged(
            person=person, ts=ts, source=source, key=key, occupied=self.occupied
        )


#: Largest acceleration accepted on an axis, in g: ±16 g is the widest range of the MEMS
#: accelerometers in consumer sensors (±2, 4, 8 or 16 g); a bed at rest reads about 1 g of
#: gravity. Beyond it a sample is no measurement (±1e308 g overflowed the movement arithmetic).
MAX_G: Final = 16.0
_G = Annotated[float, Field(ge=-MAX_G, le=MAX_G)]


class AccelPayload(_Payload):
    """bed_motion `accel`: a chunk of raw three-axis acceleration in g."""

    event: Literal["accel"]
    # Bed-slat ballistocardiography runs at up to 500 Hz; research accelerometers at 30-100 Hz.
    rate_hz: float = Field(gt=0, le=1000, description="Sample rate in Hz.")
    samples: tuple[tuple[_G, _G, _G], ...] = Field(
        min_length=1,
        description="Samples [x, y, z] in g (each within ±16 g), oldest first; ts is the first "
        "one's.",
    )

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """An AccelSampled."""
        return AccelSampled(
            person=person, ts=ts, source=source, key=key, rate_hz=self.rate_hz, samples=self.samples
        )


class BrewPayload(_Payload):
    """coffee_maker `brew`: a drink was made."""

    event: Literal["brew"]
    drink: Drink = Field(description="espresso, coffee, cold_brew, tea, decaf or other.")
    volume_ml: float | None = Field(None, gt=0, le=2000, description="Volume in millilitres.")
    # 1000 mg in one drink is beyond any brewed coffee (Drake et al. 2013 cite up to 500 mg in a
    # 16 oz cup); more is a typo.
    caffeine_mg: float | None = Field(
        None, ge=0, le=1000, description="Caffeine in mg, when the maker knows it."
    )

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """A CoffeeBrewed."""
        return CoffeeBrewed(
            person=person,
            ts=ts,
            source=source,
            key=key,
            drink=self.drink,
            volume_ml=self.volume_ml,
            caffeine_mg=self.caffeine_mg,
        )


class WorkoutStartPayload(_Payload):
    """fitness_tracker `workout_start`."""

    event: Literal["workout_start"]
    activity: str = Field(
        "workout", min_length=1, max_length=64, description="What kind (running, cycling…)."
    )
    intensity: Intensity = Field(description="light, moderate or vigorous.")

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """A WorkoutStarted."""
        return WorkoutStarted(
            person=person,
            ts=ts,
            source=source,
            key=key,
            activity=self.activity,
            intensity=self.intensity,
        )


class WorkoutEndPayload(_Payload):
    """fitness_tracker `workout_end`."""

    event: Literal["workout_end"]

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """A WorkoutEnded."""
        return WorkoutEnded(person=person, ts=ts, source=source, key=key)


class HeartRatePayload(_Payload):
    """fitness_tracker `heart_rate`."""

    event: Literal["heart_rate"]
    # Outside 20-250 bpm is a sensor fault, not a person.
    bpm: float = Field(ge=20, le=250, description="Beats per minute.")

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """A HeartRateMeasured."""
        return HeartRateMeasured(person=person, ts=ts, source=source, key=key, bpm=self.bpm)


class StressPayload(_Payload):
    """fitness_tracker `stress`."""

    event: Literal["stress"]
    level: float = Field(ge=0, le=100, description="Stress level, 0 to 100.")

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """A StressMeasured."""
        return StressMeasured(person=person, ts=ts, source=source, key=key, level=self.level)


class SunlightPayload(_Payload):
    """fitness_tracker `sunlight`: minutes of daylight since the last report."""

    event: Literal["sunlight"]
    minutes: float = Field(ge=0, le=1440, description="Minutes of natural daylight.")

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """A SunlightLogged."""
        return SunlightLogged(person=person, ts=ts, source=source, key=key, minutes=self.minutes)


NudgeId = Annotated[str, Field(min_length=1, max_length=256, description="The nudge's id.")]


class AckCommand(_Payload):
    """Command `ack`: the person saw the nudge; no repeats."""

    command: Literal["ack"]
    nudge_id: NudgeId

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """A NudgeAcked."""
        return NudgeAcked(person=person, ts=ts, source=source, key=key, nudge_id=self.nudge_id)


class SnoozeCommand(_Payload):
    """Command `snooze`: remind me again in `minutes`."""

    command: Literal["snooze"]
    nudge_id: NudgeId
    minutes: int = Field(30, ge=1, le=1440, description="Minutes until the reminder.")

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """A NudgeSnoozed."""
        return NudgeSnoozed(
            person=person,
            ts=ts,
            source=source,
            key=key,
            nudge_id=self.nudge_id,
            minutes=self.minutes,
        )


class MineCommand(_Payload):
    """Command `mine`: the drink a shared coffee maker asked about was mine."""

    command: Literal["mine"]
    nudge_id: NudgeId | None = Field(
        None, description="The question's id; default: the person's most recent open question."
    )

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """A DrinkClaimed."""
        return DrinkClaimed(person=person, ts=ts, source=source, key=key, nudge_id=self.nudge_id)


class LogCommand(_Payload):
    """Command `log`: nicotine, alcohol, caffeine or daytime twitching happened."""

    command: Literal["log"]
    what: Substance = Field(description="nicotine, alcohol, daytime_twitching or caffeine.")
    caffeine_mg: float | None = Field(None, ge=0, le=1000, description="Caffeine in mg.")

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """A SubstanceLogged."""
        return SubstanceLogged(
            person=person,
            ts=ts,
            source=source,
            key=key,
            what=self.what,
            caffeine_mg=self.caffeine_mg,
        )


class BedtimeTonightCommand(_Payload):
    """Command `bedtime_tonight`: tonight's bedtime moves to a local HH:MM."""

    command: Literal["bedtime_tonight"]
    time: Annotated[str, AfterValidator(_hhmm)] = Field(description='Local time, "HH:MM".')

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """A BedtimeChanged."""
        return BedtimeChanged(person=person, ts=ts, source=source, key=key, time=self.time)


class RlsAnswers(BaseModel):
    """The restless-legs questions of the check-in (IRLSSG essential criteria 1-4), yes or no;
    any of them may be left out."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    urge_to_move: bool | None = Field(
        None, description="An urge to move the legs, usually with unpleasant feelings in them?"
    )
    worse_at_rest: bool | None = Field(
        None, description="Does it start or get worse while resting, sitting or lying down?"
    )
    better_moving: bool | None = Field(
        None, description="Does moving (walking, stretching) ease it, at least while moving?"
    )
    worse_evening: bool | None = Field(
        None, description="Is it worse in the evening or at night than during the day?"
    )


class CheckinCommand(_Payload):
    """Command `checkin`: the morning check-in's answers; at least one is given."""

    command: Literal["checkin"]
    rested: int | None = Field(
        None, ge=1, le=5, description="How rested do you feel this morning? 1 (not at all) to 5."
    )
    daytime_twitching: bool | None = Field(
        None, description="Twitching while awake (muscle twitches by day, not at falling asleep)."
    )
    rls: RlsAnswers | None = Field(None, description="The restless-legs questions, yes or no.")

    @model_validator(mode="after")
    def _answers_something(self) -> CheckinCommand:
        rls_given = self.rls is not None and any(
            getattr(self.rls, k) is not None for k in RLS_CRITERIA
        )
        if self.rested is None and self.daytime_twitching is None and not rls_given:
            msg = "a check-in needs at least one answer: rested, daytime_twitching or rls"
            raise ValueError(msg)
        return self

    def to_event(self, person: str, ts: datetime, source: str, key: str | None) -> Event:
        """A CheckinAnswered."""
        rls = None
        if self.rls is not None:
            given = {k: getattr(self.rls, k) for k in RLS_CRITERIA}
            rls = {k: v for k, v in given.items() if v is not None} or None
        return CheckinAnswered(
            person=person,
            ts=ts,
            source=source,
            key=key,
            rested=self.rested,
            daytime_twitching=self.daytime_twitching,
            rls=rls,
        )


_KINDS: Final[dict[DeviceKind, tuple[type[_Payload], ...]]] = {
    "bed_motion": (MovementPayload, OccupancyPayload, AccelPayload),
    "coffee_maker": (BrewPayload,),
    "fitness_tracker": (
        WorkoutStartPayload,
        WorkoutEndPayload,
        HeartRatePayload,
        StressPayload,
        SunlightPayload,
    ),
}
_COMMANDS: Final = (
    AckCommand,
    SnoozeCommand,
    LogCommand,
    BedtimeTonightCommand,
    CheckinCommand,
    MineCommand,
)


class _Parser:
    """A compiled union of payload models, and how its refusals are worded."""

    __slots__ = ("adapter", "wording")

    def __init__(self, tag: str, models: tuple[type[_Payload], ...], what: str) -> None:
        by_tag = {m.model_fields[tag].annotation.__args__[0]: m for m in models}  # type: ignore[union-attr]
        self.wording = Wording(tag, by_tag, what)
        union: Any
        if len(models) == 1:
            # A one-member discriminated union is refused by pydantic; a plain model checks the
            # tag through its Literal.
            union = models[0]
        else:
            union = Annotated[_union(models), Field(discriminator=tag)]
        self.adapter: TypeAdapter[_Payload] = TypeAdapter(union)


def _union(models: tuple[type[_Payload], ...]) -> Any:
    union: Any = models[0]
    for m in models[1:]:
        union = union | m
    return union


_PARSERS: Final[dict[DeviceKind, _Parser]] = {
    kind: _Parser("event", models, f"{kind} device") for kind, models in _KINDS.items()
}
_COMMAND_PARSER: Final = _Parser("command", _COMMANDS, "command topic")

#: The device kind of each native event name, from the models above.
EVENT_KIND: Final[dict[str, DeviceKind]] = {
    name: kind for kind, parser in _PARSERS.items() for name in parser.wording.models
}


# ---------------------------------------------------------------------------------------------
# Parsing.

_EMPTY: Final = PayloadError("payload is empty; expected a JSON object")
_TOO_BIG: Final = PayloadError(
    f"payload is larger than {MAX_PAYLOAD_BYTES} bytes (64 KiB); split raw samples into chunks"
)


def _parse(
    parser: _Parser,
    payload: bytes,
    received_at: datetime,
    *,
    person: str,
    source: str,
    key_prefix: str,
) -> Event | PayloadError:
    if received_at.tzinfo is None:
        # A caller's bug, not bad input: fail loudly.
        msg = "received_at must be an aware datetime"
        raise ValueError(msg)
    if not payload:
        return _EMPTY
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _TOO_BIG
    try:
        model = parser.adapter.validate_json(payload)
    except ValidationError as err:
        return PayloadError(parser.wording.describe(err, bytes(payload)))
    ts = model.ts
    if ts is None:
        return model.to_event(person, received_at, source, None)
    digest = hashlib.sha1(payload, usedforsecurity=False).hexdigest()[:16]
    return model.to_event(person, ts, source, f"{key_prefix}|{ts.isoformat()}|{digest}")


def parse_device_message(
    device: Device, payload: bytes, received_at: datetime, *, kind: DeviceKind | None = None
) -> Event | PayloadError:
    """Parse a native payload from `device`; never raises for bad input.

    The event's person is the device's, `source` its id; `key` is set when the payload has `ts`.
    `kind` reads the payload as another kind's (a profile may make any kind of event).
    """
    event = _parse(
        _PARSERS[kind or device.kind],
        payload,
        received_at,
        person=device.owner,
        source=device.id,
        key_prefix=device.id,
    )
    if not device.shared or isinstance(event, PayloadError):
        return event
    if not isinstance(event, CoffeeBrewed):
        return PayloadError(
            f"device {device.id!r} is shared by {', '.join(device.people)}: only its brews are "
            f"used (each asks whose drink it was), not a {type(event).__name__}"
        )
    # Never guessed onto someone: the core asks the device's people whose drink it was.
    return SharedDrinkBrewed(
        person="*",
        ts=event.ts,
        source=event.source,
        key=event.key,
        people=device.people,
        drink=event.drink,
        volume_ml=event.volume_ml,
        caffeine_mg=event.caffeine_mg,
    )


def parse_command(person_id: str, payload: bytes, received_at: datetime) -> Event | PayloadError:
    """Parse a message from `<prefix>/<person_id>/command`; never raises for bad input."""
    source = f"command:{person_id}"
    return _parse(
        _COMMAND_PARSER, payload, received_at, person=person_id, source=source, key_prefix=source
    )


def payload_schema(kind: DeviceKind | Literal["command"]) -> dict[str, Any]:
    """JSON Schema of a device kind's payloads (or of commands), for docs and tooling."""
    parser = _COMMAND_PARSER if kind == "command" else _PARSERS[kind]
    return parser.adapter.json_schema()
