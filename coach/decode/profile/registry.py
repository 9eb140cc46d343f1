"""The device profiles by name, and a device bound to its profile: translate, tick, validate.

`PROFILES` holds the profiles that ship with the coach; `ProfileRegistry.adding` makes a registry
with more (a caller's own profile), which the decoder and the config loader take in place of it.
`ProfileRegistry.bind(device)` validates the device's options once and gives a `DeviceProfile`
whose `translate` runs the profile on one message and hands each native body it made to the
native parser (`coach.decode.native.parse_device_message`), so events from profiles carry the same
checks, the same error wording and the same duplicate keys as native payloads: a key exactly when
the device supplied its own time. A body is parsed as the kind it belongs to, so a statestream or
custom device may feed any kind of event.

Nothing here raises for bad input: a payload the profile cannot read comes back as
`ProfileResult.error` naming the profile and what it expected, with the state as it was; a body
the native parser refuses (a heart rate of 400) is an error too, but the message was read and the
state moves on. The profile's state is copied in and returned, never mutated in place.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple

from pydantic import ValidationError

from coach.config import Device, plain_error
from coach.decode.native import EVENT_KIND, parse_device_message
from coach.decode.profile.base import (
    Message,
    Native,
    OptionPath,
    Options,
    Outcome,
    Profile,
    Refused,
)
from coach.decode.profile.custom import Custom
from coach.decode.profile.esphome import EsphomeBed
from coach.decode.profile.ha_statestream import HaStatestream
from coach.decode.profile.sleep_as_android import SleepAsAndroid
from coach.decode.profile.smart_plug import SmartPlug
from coach.decode.profile.zigbee2mqtt import ZigbeeOccupancy, ZigbeeVibration
from coach.decode.refusal import PayloadError
from coach.event import Event

#: The profile name of a device that speaks the native format (the config's default).
NATIVE: Final = "native"


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


class ProfileRegistry(Mapping[str, Profile[Any]]):
    """Device profiles by name; a registry never changes, `adding` makes a new one."""

    __slots__ = ("_by_name",)

    def __init__(self, profiles: Iterable[Profile[Any]]) -> None:
        self._by_name: dict[str, Profile[Any]] = {}
        for profile in profiles:
            if profile.name == NATIVE or profile.name in self._by_name:
                msg = f"a profile named {profile.name!r} is already registered"
                raise ValueError(msg)
            self._by_name[profile.name] = profile

    def adding(self, *profiles: Profile[Any]) -> ProfileRegistry:
        """This registry with more profiles (a name already taken is a programming error)."""
        return ProfileRegistry([*self._by_name.values(), *profiles])

    def __getitem__(self, name: str) -> Profile[Any]:
        """The profile of this name (KeyError when none is registered)."""
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        """The profiles' names in the order they were registered."""
        return iter(self._by_name)

    def __len__(self) -> int:
        """How many profiles are registered."""
        return len(self._by_name)

    def names(self) -> list[str]:
        """`native` and every profile's name, for messages that list them."""
        return [NATIVE, *self._by_name]

    def option_problems(self, device: Device) -> list[OptionProblem]:
        """Everything wrong with a device's profile and options, each with its path in the entry."""
        if device.profile == NATIVE:
            return []
        profile = self._by_name.get(device.profile)
        if profile is None:
            names = ", ".join(self.names())
            return [
                OptionProblem(("profile",), f"unknown profile {device.profile!r}; one of {names}")
            ]
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
                message = plain_error(e)
                if e["type"] == "extra_forbidden":
                    known = ", ".join(profile.options_model.model_fields)
                    message = f"unknown option for {profile.name}; known: {known}"
                found.append(OptionProblem(("options", *loc), message))
            return found
        found.extend(OptionProblem(p, m) for p, m in profile.check(options))
        return found

    def bind(self, device: Device) -> DeviceProfile:
        """The device with its profile and its options, validated now, once."""
        profile = self._by_name.get(device.profile)
        if profile is None:
            return DeviceProfile(device, None, None, None)
        problems = self.option_problems(device)
        if problems:
            return DeviceProfile(device, profile, None, "; ".join(str(p) for p in problems))
        return DeviceProfile(device, profile, profile.options_model.model_validate(device.options))


class DeviceProfile:
    """One device, its profile and its validated options: what its messages and wake-ups make."""

    __slots__ = ("device", "options", "problems", "profile")

    def __init__(
        self,
        device: Device,
        profile: Profile[Any] | None,
        options: Options | None,
        problems: str | None = None,
    ) -> None:
        self.device = device
        #: None when the device's profile is not registered.
        self.profile = profile
        self.options = options
        #: What is wrong with the device's profile or options: every message is refused for it.
        self.problems = problems

    def translate(
        self, topic: str, payload: bytes, received_at: datetime, state: dict[str, Any]
    ) -> ProfileResult:
        """Translate one message into events; never raises for bad input.

        `received_at` must be aware. `state` is what the last call returned for this device ({}
        at first); the result carries the state to keep.
        """
        if received_at.tzinfo is None:
            msg = "received_at must be an aware datetime"
            raise ValueError(msg)
        profile = self.profile
        if profile is None:
            return ProfileResult([], f"unknown profile {self.device.profile!r}", state)
        message = Message(self.device, topic, bytes(payload), received_at)
        return self._run(
            profile, state, lambda options, work: profile.handle(message, options, work)
        )

    def tick(self, now: datetime, state: dict[str, Any]) -> ProfileResult:
        """Let a stateful profile close what is due by `now` (call it at a result's `wake_at`)."""
        if now.tzinfo is None:
            msg = "now must be an aware datetime"
            raise ValueError(msg)
        profile = self.profile
        if profile is None:
            return ProfileResult([], None, state)
        device = self.device
        return self._run(
            profile, state, lambda options, work: profile.tick(device, options, now, work)
        )

    def _run(
        self,
        profile: Profile[Any],
        state: dict[str, Any],
        step: Callable[[Options, dict[str, Any]], Outcome],
    ) -> ProfileResult:
        """One step of the profile on a copy of the state; a refusal or a bug keeps the state."""
        work = _copy(state)
        try:
            if self.options is None:
                raise Refused(str(self.problems))
            outcome = step(self.options, work)
        except Refused as err:
            return _fail(profile, str(err), state)
        except Exception as err:  # a profile bug must not stop the daemon
            reason = f"internal error ({type(err).__name__}: {err}); please report it"
            return ProfileResult([], f"{profile.name}: {reason}", state)
        return self._finish(profile, outcome, work)

    def _finish(
        self, profile: Profile[Any], outcome: Outcome, work: dict[str, Any]
    ) -> ProfileResult:
        events: list[Event] = []
        errors: list[str] = []
        for native in outcome.natives:
            made = to_event(self.device, native)
            if isinstance(made, PayloadError):
                # The message was read (the state moves on); what it made is out of range.
                what = json.dumps(native.body, sort_keys=True, default=str)
                errors.append(
                    f"{profile.name}: it made {what}, which the coach refused: {made.error}"
                )
            else:
                events.append(made)
        error = "; ".join(errors) if errors else None
        return ProfileResult(events, error, work, outcome.notes, outcome.wake_at)


def _fail(profile: Profile[Any], reason: str, state: dict[str, Any]) -> ProfileResult:
    return ProfileResult([], f"{profile.name}: {reason}; expected {profile.expects}", state)


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(state) if isinstance(state, dict) else {}


def to_event(device: Device, native: Native) -> Event | PayloadError:
    """Parse a native body through the native parser, as the device's person and source."""
    kind = EVENT_KIND.get(str(native.body.get("event")))
    body = dict(native.body)
    if native.device_ts:
        body["ts"] = native.at.isoformat()
    try:
        raw = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        return PayloadError(f"not JSON-able ({err})")
    return parse_device_message(device, raw.encode(), native.at, kind=kind)


#: The profiles that ship with the coach, in the order `sleepcoach devices list` shows them.
PROFILES: Final = ProfileRegistry(
    (
        ZigbeeVibration(),
        ZigbeeOccupancy(),
        EsphomeBed(),
        SmartPlug(),
        SleepAsAndroid(),
        HaStatestream(),
        Custom(),
    )
)


def option_problems(device: Device) -> list[OptionProblem]:
    """Everything wrong with a device's shipped profile and options (`PROFILES.option_problems`)."""
    return PROFILES.option_problems(device)


def validate_device(device: Device) -> list[str]:
    """Problems with a device's profile and options as `path: message` lines (empty when fine)."""
    return [str(p) for p in option_problems(device)]


def translate(
    device: Device, topic: str, payload: bytes, received_at: datetime, state: dict[str, Any]
) -> ProfileResult:
    """One message from a device with a shipped profile, its options validated for this call."""
    return PROFILES.bind(device).translate(topic, payload, received_at, state)


def tick(device: Device, now: datetime, state: dict[str, Any]) -> ProfileResult:
    """A device's wake-up at `now` with a shipped profile, its options validated for this call."""
    return PROFILES.bind(device).tick(now, state)
