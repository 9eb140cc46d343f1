"""The device profiles by name, and the three calls the daemon makes: translate, tick, validate.

`translate` runs a device's profile on one message and hands each native body it made to the
native parser (`coach.payload.parse_device_message`), so events from profiles carry the same
checks, the same error wording and the same duplicate keys as native payloads: a key exactly when
the device supplied its own time. The parser is given a copy of the device with the kind the body
belongs to, so a statestream or custom device may feed any kind of event.

Nothing here raises for bad input: a payload the profile cannot read comes back as
`ProfileResult.error` naming the profile and what it expected, with the state as it was; a body
the native parser refuses (a heart rate of 400) is an error too, but the message was read and the
state moves on. The profile's state is copied in and returned, never mutated in place.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple

from pydantic import ValidationError

from coach.config import Device
from coach.event import Event
from coach.payload import PayloadError, parse_device_message
from integrations.profile.base import (
    EVENT_KIND,
    Message,
    Native,
    OptionPath,
    Options,
    Outcome,
    Profile,
    Refused,
)
from integrations.profile.custom import Custom
from integrations.profile.esphome import EsphomeBed
from integrations.profile.ha_statestream import HaStatestream
from integrations.profile.sleep_as_android import SleepAsAndroid
from integrations.profile.smart_plug import SmartPlug
from integrations.profile.zigbee2mqtt import ZigbeeOccupancy, ZigbeeVibration

NATIVE: Final = "native"

PROFILES: Final[dict[str, Profile[Any]]] = {
    p.name: p
    for p in (
        ZigbeeVibration(),
        ZigbeeOccupancy(),
        EsphomeBed(),
        SmartPlug(),
        SleepAsAndroid(),
        HaStatestream(),
        Custom(),
    )
}


@dataclass(frozen=True, slots=True)
class ProfileResult:
    """What a profile made of a message (or a tick): events or an error, and its new state.

    `state` is the profile's JSON-able per-device state, to be stored and passed to the next call
    (it is the old state, unchanged, when `error` is set). `notes` say in words what happened
    (for `devices listen` and debug logs). `wake_at`, when set, asks for `tick(device, wake_at,
    state)` at that time if no message for the device arrives before it.
    """

    events: list[Event]
    error: str | None
    state: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    wake_at: datetime | None = None


class OptionProblem(NamedTuple):
    """A problem in a device's profile or options; `path` is relative to the device entry."""

    path: OptionPath
    message: str

    def __str__(self) -> str:
        """`options.fields.intensity: not a valid JMESPath expression (…)`."""
        dotted = ".".join(str(p) for p in self.path)
        return f"{dotted}: {self.message}" if dotted else self.message


def is_profiled(device: Device) -> bool:
    """Whether the device speaks a profile rather than the native format."""
    return device.profile != NATIVE


def option_problems(device: Device) -> list[OptionProblem]:
    """Everything wrong with a device's profile and options, each with its path in the entry."""
    if device.profile == NATIVE:
        return []
    profile = PROFILES.get(device.profile)
    if profile is None:
        names = ", ".join([NATIVE, *PROFILES])
        return [OptionProblem(("profile",), f"unknown profile {device.profile!r}; one of {names}")]
    found: list[OptionProblem] = []
    if device.kind not in profile.kinds:
        kinds = " or ".join(profile.kinds)
        found.append(
            OptionProblem(
                ("kind",), f"profile {profile.name} is for {kinds} devices, not {device.kind}"
            )
        )
    try:
        options = profile.options_model.model_validate(device.options)
    except ValidationError as err:
        for e in err.errors(include_url=False):
            loc = tuple(e["loc"])
            message = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                known = ", ".join(profile.options_model.model_fields)
                message = f"unknown option for {profile.name}; known: {known}"
            found.append(OptionProblem(("options", *loc), message))
        return found
    found.extend(OptionProblem(p, m) for p, m in profile.check(options))
    return found


def validate_device(device: Device) -> list[str]:
    """Problems with a device's profile and options as `path: message` lines (empty when fine)."""
    return [str(p) for p in option_problems(device)]


# Options are validated once per device and options; profiles are pure functions of them.
_options_cache: dict[tuple[str, str, str], Options] = {}


def _options(profile: Profile[Any], device: Device) -> Options:
    try:
        blob = json.dumps(device.options, sort_keys=True, default=str)
    except (TypeError, ValueError):
        blob = repr(device.options)
    key = (profile.name, device.id, blob)
    options = _options_cache.get(key)
    if options is None:
        problems = option_problems(device)
        if problems:
            raise Refused("; ".join(str(p) for p in problems))
        options = profile.options_model.model_validate(device.options)
        if len(_options_cache) > 1024:
            _options_cache.clear()
        _options_cache[key] = options
    return options


def _fail(name: str, reason: str, expects: str, state: dict[str, Any]) -> ProfileResult:
    return ProfileResult([], f"{name}: {reason}; expected {expects}", state)


def translate(
    device: Device, topic: str, payload: bytes, received_at: datetime, state: dict[str, Any]
) -> ProfileResult:
    """Translate one message from a device with a profile into events; never raises for bad input.

    `received_at` must be aware. `state` is what the last call returned for this device ({} at
    first); the result carries the state to keep.
    """
    if received_at.tzinfo is None:
        msg = "received_at must be an aware datetime"
        raise ValueError(msg)
    profile = PROFILES.get(device.profile)
    if profile is None:
        return ProfileResult([], f"unknown profile {device.profile!r}", state)
    work = _copy(state)
    try:
        options = _options(profile, device)
        message = Message(device, topic, bytes(payload), received_at)
        outcome = profile.handle(message, options, work)
    except Refused as err:
        return _fail(profile.name, str(err), profile.expects, state)
    except Exception as err:  # a profile bug must not stop the daemon
        reason = f"internal error ({type(err).__name__}: {err}); please report it"
        return ProfileResult([], f"{profile.name}: {reason}", state)
    return _finish(device, profile, outcome, work)


def tick(device: Device, now: datetime, state: dict[str, Any]) -> ProfileResult:
    """Let a stateful profile close what is due by `now` (call it at a result's `wake_at`)."""
    if now.tzinfo is None:
        msg = "now must be an aware datetime"
        raise ValueError(msg)
    profile = PROFILES.get(device.profile)
    if profile is None:
        return ProfileResult([], None, state)
    work = _copy(state)
    try:
        options = _options(profile, device)
        outcome = profile.tick(device, options, now, work)
    except Refused as err:
        return _fail(profile.name, str(err), profile.expects, state)
    except Exception as err:  # a profile bug must not stop the daemon
        reason = f"internal error ({type(err).__name__}: {err}); please report it"
        return ProfileResult([], f"{profile.name}: {reason}", state)
    return _finish(device, profile, outcome, work)


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(state) if isinstance(state, dict) else {}


def _finish(
    device: Device, profile: Profile[Any], outcome: Outcome, work: dict[str, Any]
) -> ProfileResult:
    events: list[Event] = []
    errors: list[str] = []
    for native in outcome.natives:
        made = to_event(device, native)
        if isinstance(made, PayloadError):
            # The message was read (the state moves on); what it made is out of range.
            what = json.dumps(native.body, sort_keys=True, default=str)
            errors.append(f"{profile.name}: it made {what}, which the coach refused: {made.error}")
        else:
            events.append(made)
    error = "; ".join(errors) if errors else None
    return ProfileResult(events, error, work, outcome.notes, outcome.wake_at)


def to_event(device: Device, native: Native) -> Event | PayloadError:
    """Parse a native body through the native parser, as the device's person and source."""
    kind = EVENT_KIND.get(str(native.body.get("event")))
    target = device
    if kind is not None and kind != device.kind:
        target = device.model_copy(update={"kind": kind})
    body = dict(native.body)
    if native.device_ts:
        body["ts"] = native.at.isoformat()
    try:
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        return PayloadError(f"not JSON-able ({err})")
    return parse_device_message(target, raw.encode(), native.at)
