"""Native MQTT payloads (CONTRACT §4) and commands, parsed into events; bad input becomes an error.

How it works: each device kind has a pydantic discriminated union over its payload models, keyed
by `event` (`command` for the command topic), validated straight from the raw bytes with
`validate_json` (pydantic's Rust JSON parser rejects non-UTF-8 and malformed JSON on its own, so
the hot path does no extra decoding). Models are strict (a string is not a number, 1 is not
`true`), ignore unknown fields and refuse NaN and infinities. A refused message comes back as a
`PayloadError` whose text names each field and why (`intensity: must be between 0 and 1, got
1.7`); the parser never raises for bad input. `ts` is optional ISO 8601 with a UTC offset; without
it the event happens at `received_at`. A payload that carries its own `ts` gets a duplicate key
(device, ts, content hash) so a replay after a reconnect is recognised; one without has none,
because two identical readings at different arrival times are two facts.

`TopicRouter` maps a topic to the device that publishes on it (exact topics through a dict,
filters with `+`/`#` after) or to a person's command topic `<prefix>/<person>/command`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import annotated_types
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from coach.config import Config, Device, DeviceKind, parse_hhmm
from coach.event import (
    AccelSampled,
    BedtimeChanged,
    CoffeeBrewed,
    Drink,
    Event,
    HeartRateMeasured,
    Intensity,
    MovementDetected,
    NudgeAcked,
    NudgeSnoozed,
    OccupancyChanged,
    StressMeasured,
    Substance,
    SubstanceLogged,
    SunlightLogged,
    WorkoutEnded,
    WorkoutStarted,
)

#: Largest payload accepted, in bytes (64 KiB): a raw accelerometer chunk fits, a flood does not.
MAX_PAYLOAD_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class PayloadError:
    """A message that was refused, and why (for the `<prefix>/errors` record)."""

    error: str


@dataclass(frozen=True, slots=True)
class CommandRoute:
    """The topic is a person's command topic `<prefix>/<person>/command`."""

    person: str


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
        msg = f'must be a time as "HH:MM" (00:00 to 23:59), got {_show(value)}'
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


class AccelPayload(_Payload):
    """bed_motion `accel`: a chunk of raw three-axis acceleration in g."""

    event: Literal["accel"]
    # Bed-slat ballistocardiography runs at up to 500 Hz; research accelerometers at 30-100 Hz.
    rate_hz: float = Field(gt=0, le=1000, description="Sample rate in Hz.")
    samples: tuple[tuple[float, float, float], ...] = Field(
        min_length=1, description="Samples [x, y, z] in g, oldest first; ts is the first one's."
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


_KINDS: Final[dict[str, tuple[type[_Payload], ...]]] = {
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
_COMMANDS: Final = (AckCommand, SnoozeCommand, LogCommand, BedtimeTonightCommand)


class _Parser:
    """A compiled union of payload models with its error wording."""

    __slots__ = ("adapter", "expected", "models", "tag", "what")

    def __init__(self, tag: str, models: tuple[type[_Payload], ...], what: str) -> None:
        self.tag = tag
        self.what = what
        self.models = {m.model_fields[tag].annotation.__args__[0]: m for m in models}  # type: ignore[union-attr]
        self.expected = ", ".join(self.models)
        union: Any
        if len(models) == 1:
            # A one-member discriminated union is refused by pydantic; a plain model checks the
            # tag through its Literal.
            union = models[0]
        else:
            union = Annotated[_union(models), Field(discriminator=tag)]
        self.adapter: TypeAdapter[_Payload] = TypeAdapter(union)

    def describe(self, err: ValidationError, payload: bytes) -> str:
        """Human-readable text for the problems pydantic found (the first few of them)."""
        errors = err.errors(include_url=False)
        tag_errors = [e for e in errors if _is_tag_error(e, self.tag)]
        if tag_errors:
            # A wrong `event` makes every other complaint noise (single-model kinds report both).
            errors = tag_errors[:1]
        # pydantic counts a container's length after dropping its bad items, so a chunk of bad
        # samples is also "too short": the item errors already say what is wrong.
        inner = {tuple(e["loc"][:n]) for e in errors for n in range(1, len(e["loc"]))}
        errors = [e for e in errors if e["type"] != "too_short" or tuple(e["loc"]) not in inner]
        # A sample missing two axes yields two identical lines: keep one.
        problems = list(dict.fromkeys(self._problem(e, payload) for e in errors))
        if len(problems) > _MAX_PROBLEMS:
            more = len(problems) - _MAX_PROBLEMS
            problems = [*problems[:_MAX_PROBLEMS], f"and {more} more problems"]
        return "; ".join(problems)

    def _problem(self, e: Any, payload: bytes) -> str:
        kind: str = e["type"]
        loc: tuple[int | str, ...] = e["loc"]
        ctx: dict[str, Any] = e.get("ctx") or {}
        value = e.get("input")
        model: type[_Payload] | None = None
        if loc and loc[0] in self.models:
            # Errors inside a union member are located under its tag; single models are not.
            model = self.models[str(loc[0])]
            loc = loc[1:]
        elif len(self.models) == 1:
            model = next(iter(self.models.values()))
        if kind == "json_invalid":
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError as bad:
                return f"payload is not UTF-8 text (invalid byte at offset {bad.start})"
            return f"payload is not valid JSON: {ctx.get('error', e['msg'])}"
        if kind in ("dict_type", "model_type", "model_attributes_type") and not loc:
            return f"payload must be a JSON object, got {_json_kind(value)}"
        if kind == "union_tag_not_found" or (kind == "missing" and loc == (self.tag,)):
            return f"{self.tag}: missing; a {self.what} sends one of {self.expected}"
        if kind == "union_tag_invalid" or (kind == "literal_error" and loc == (self.tag,)):
            tag = ctx.get("tag", value)
            return (
                f"{self.tag}: unknown {self.tag} {_show(tag)}; "
                f"a {self.what} sends one of {self.expected}"
            )
        if (
            len(loc) >= 2
            and loc[0] == "samples"
            and (len(loc) == 2 or kind in ("missing", "too_short", "too_long"))
        ):
            # A sample of the wrong shape: say so once for the sample, not per missing axis.
            # (For `missing`, pydantic's input is the short sample itself.)
            return f"{_path(loc[:2])}: must be [x, y, z], three numbers in g, got {_show(value)}"
        field = _path(loc)
        return (
            f"{field}: {_explain(kind, msg=e['msg'], ctx=ctx, value=value, model=model, loc=loc)}"
        )


_MAX_PROBLEMS: Final = 5


def _is_tag_error(e: Any, tag: str) -> bool:
    kind = e["type"]
    return kind.startswith("union_tag_") or (
        kind in ("missing", "literal_error") and tuple(e["loc"])[-1:] == (tag,)
    )


def _union(models: tuple[type[_Payload], ...]) -> Any:
    union: Any = models[0]
    for m in models[1:]:
        union = union | m
    return union


_PARSERS: Final[dict[str, _Parser]] = {
    kind: _Parser("event", models, f"{kind} device") for kind, models in _KINDS.items()
}
_COMMAND_PARSER: Final = _Parser("command", _COMMANDS, "command topic")


# ---------------------------------------------------------------------------------------------
# Error wording: pydantic's types, said the way a person fixing a sensor wants to read them.


def _show(value: Any) -> str:
    """A value as JSON, cut short."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "payload"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range(model: type[_Payload] | None, loc: tuple[int | str, ...], ctx: dict[str, Any]) -> str:
    """Say "between 0 and 1" from the field's declared bounds, else from the bound pydantic saw."""
    lo: Any = None
    hi: Any = None
    lo_open = hi_open = False
    info = model.model_fields.get(str(loc[0])) if model is not None and len(loc) == 1 else None
    for m in info.metadata if info is not None else ():
        if isinstance(m, annotated_types.Ge):
            lo = m.ge
        elif isinstance(m, annotated_types.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, annotated_types.Le):
            hi = m.le
        elif isinstance(m, annotated_types.Lt):
            hi, hi_open = m.lt, True
    if lo is None and hi is None:
        for key, bound in ctx.items():
            if key in ("ge", "gt"):
                lo, lo_open = bound, key == "gt"
            elif key in ("le", "lt"):
                hi, hi_open = bound, key == "lt"
    if lo is not None and hi is not None and not lo_open and not hi_open:
        return f"must be between {_num(lo)} and {_num(hi)}"
    parts = []
    if lo is not None:
        parts.append(f"above {_num(lo)}" if lo_open else f"at least {_num(lo)}")
    if hi is not None:
        parts.append(f"below {_num(hi)}" if hi_open else f"at most {_num(hi)}")
    return "must be " + " and ".join(parts)


_TYPE_WORDS: Final = {
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be an array",
    "tuple_type": "must be an array",
    "finite_number": "must be a finite number",
    "datetime_type": "must be an ISO 8601 date-time with a UTC offset, "
    "like 2026-11-24T21:05:00+01:00",
    "datetime_parsing": "must be an ISO 8601 date-time with a UTC offset, "
    "like 2026-11-24T21:05:00+01:00",
    "datetime_object_invalid": "must be a valid date-time",
    "timezone_aware": "must include a UTC offset (2026-11-24T21:05:00+01:00 or …Z); "
    "a local time alone is ambiguous",
}


def _explain(
    kind: str,
    *,
    msg: str,
    ctx: dict[str, Any],
    value: Any,
    model: type[_Payload] | None,
    loc: tuple[int | str, ...],
) -> str:
    if kind == "missing":
        return "missing (required)"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{_range(model, loc, ctx)}, got {_show(value)}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "?")).replace("'", '"')
        return f"must be one of {expected}, got {_show(value)}"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"is too short: {msg}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} items, got {ctx.get('actual_length')}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items, got {ctx.get('actual_length')}"
    if kind == "value_error":
        return str(ctx.get("error", msg.removeprefix("Value error, ")))
    words = _TYPE_WORDS.get(kind)
    if words is not None:
        return f"{words}, got {_show(value)}"
    return f"{msg[:1].lower()}{msg[1:]}, got {_show(value)}"


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
        return PayloadError(parser.describe(err, bytes(payload)))
    ts = model.ts
    if ts is None:
        return model.to_event(person, received_at, source, None)
    digest = hashlib.sha1(payload, usedforsecurity=False).hexdigest()[:16]
    return model.to_event(person, ts, source, f"{key_prefix}|{ts.isoformat()}|{digest}")


def parse_device_message(
    device: Device, payload: bytes, received_at: datetime
) -> Event | PayloadError:
    """Parse a native payload (CONTRACT §4) from `device`; never raises for bad input.

    The event's person is the device's, `source` its id; `key` is set when the payload has `ts`.
    """
    return _parse(
        _PARSERS[device.kind],
        payload,
        received_at,
        person=device.person,
        source=device.id,
        key_prefix=device.id,
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


# ---------------------------------------------------------------------------------------------
# Topic routing.


def _matches(filter_levels: tuple[str, ...], topic: str) -> bool:
    """MQTT topic-filter matching (MQTT 5 §4.7): `+` is one level, a final `#` the rest."""
    if topic.startswith("$"):
        # Wildcards never match $SYS-style topics at the first level (MQTT 5 §4.7.2).
        return False
    levels = topic.split("/")
    for i, want in enumerate(filter_levels):
        if want == "#":
            return True
        if i >= len(levels):
            return False
        if want != "+" and want != levels[i]:
            return False
    return len(levels) == len(filter_levels)


class TopicRouter:
    """Which device (or whose command topic) a topic belongs to; built once per config.

    `prefix` is the coach's topic prefix (the MQTT settings' `topic_prefix`): commands arrive on
    `<prefix>/<person>/command`.
    """

    __slots__ = ("_exact", "_people", "_prefix", "_wild")

    def __init__(self, config: Config, prefix: str) -> None:
        self._exact: dict[str, Device] = {}
        self._wild: list[tuple[tuple[str, ...], Device]] = []
        for device in config.devices:
            if "+" in device.topic or "#" in device.topic:
                self._wild.append((tuple(device.topic.split("/")), device))
            else:
                # The first device listed on a topic wins, as it does for wildcards.
                self._exact.setdefault(device.topic, device)
        self._prefix = prefix + "/"
        self._people = frozenset(p.id for p in config.people)

    def route(self, topic: str) -> Device | CommandRoute | None:
        """The device publishing on `topic`, a person's command topic, or None if not ours.

        Exact device topics win, then `<prefix>/+/command` (the person is not checked here),
        then wildcard device filters in config order. Wildcard filters never match the coach's own
        topics under `<prefix>/`, so a `#` device cannot feed the coach its own nudges and errors.
        """
        device = self._exact.get(topic)
        if device is not None:
            return device
        if topic.startswith(self._prefix):
            rest = topic[len(self._prefix) :]
            person, sep, tail = rest.partition("/")
            if sep and tail == "command" and person and person not in ("+", "#"):
                return CommandRoute(person)
            return None
        for levels, device in self._wild:
            if _matches(levels, topic):
                return device
        return None

    def parse(
        self, topic: str, payload: bytes, received_at: datetime
    ) -> Event | PayloadError | None:
        """Route and parse one message: an event, a refusal, or None when the topic is not ours."""
        target = self.route(topic)
        if target is None:
            return None
        if isinstance(target, CommandRoute):
            if target.person not in self._people:
                return PayloadError(f"no person {target.person!r} in the config")
            return parse_command(target.person, payload, received_at)
        return parse_device_message(target, payload, received_at)


_last_router: tuple[Config, str, TopicRouter] | None = None


def router_for(config: Config, prefix: str) -> TopicRouter:
    """The router of a config, built once and reused while the same config object is passed."""
    global _last_router  # noqa: PLW0603 - a one-entry memo; configs are frozen, so it is pure
    cached = _last_router
    if cached is not None and cached[0] is config and cached[1] == prefix:
        return cached[2]
    router = TopicRouter(config, prefix)
    _last_router = (config, prefix, router)
    return router


def route(config: Config, prefix: str, topic: str) -> Device | CommandRoute | None:
    """Which device or person's command topic `topic` belongs to (see `TopicRouter.route`)."""
    return router_for(config, prefix).route(topic)


__all__ = [
    "MAX_PAYLOAD_BYTES",
    "CommandRoute",
    "PayloadError",
    "TopicRouter",
    "parse_command",
    "parse_device_message",
    "payload_schema",
    "route",
    "router_for",
]
