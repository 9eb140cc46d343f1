"""Messages to events: the one step `sleepcoach run` and `sleepcoach simulate` call.

A message is routed by its topic (`coach.decode.topic.TopicRouter`). A command topic or a device
that speaks the native format goes through the native parser (`coach.decode.native`) and becomes
an event or a refusal. A device with a profile goes through its `DeviceProfile.translate` (bound
once, when the decoder is built) with that device's state, which is kept here (a JSON-able dict
per device id, `{}` at first) and replaced by each result's state; the caller gets the whole
`ProfileResult` (events, error, notes, `wake_at`).

The time policy: an event may be dated by its message (`ts`), but only from the duplicate window
(48 hours, `coach.engine.SEEN_KEEP_S`) before the message arrived to 5 minutes after. A later
`ts` would act now on something that has not happened (a brew dated next year sent a cutoff
nudge at once) and its duplicate key would never expire; an older one could no longer be
recognised as a repeat (the core forgets keys after that window) and would be counted again.
`received_at` is the arrival time the caller passes in: the daemon's clock, the simulator's
virtual one. Late data inside the window is used. The check is `time_problem`, applied to every
event a message or a profile's wake-up makes.

Wake-ups: a result's `wake_at` asks for `tick` at that time. The caller schedules it under
`wake_id(device_id)`, which replaces the device's pending wake-up, and at that time calls
`Decoder.tick`. A result without `wake_at` leaves a pending wake-up alone: a message that carries
nothing for the profile (a Shelly RPC frame about another component, a Zigbee2MQTT report without
power) returns none while a brew still waits to be closed, and a wake-up that finds nothing due
re-reads the state and at most asks again. A tick that asks to be woken at or before its own time
would wake itself forever; that request is dropped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from coach.config import Config, Device
from coach.decode.native import parse_command, parse_device_message
from coach.decode.profile.registry import (
    PROFILES,
    DeviceProfile,
    ProfileRegistry,
    ProfileResult,
    is_profiled,
)
from coach.decode.refusal import PayloadError
from coach.decode.topic import CommandRoute, TopicRouter
from coach.engine import SEEN_KEEP_S
from coach.event import Event

#: How far after its arrival a message's own `ts` may lie (device clocks drift a little).
MAX_AHEAD: Final = timedelta(minutes=5)
#: How far before its arrival: the window in which the core recognises a repeat (48 hours).
MAX_BEHIND: Final = timedelta(seconds=SEEN_KEEP_S)


def time_problem(ts: datetime, received_at: datetime) -> str | None:
    """Why an event dated `ts`, in a message that arrived at `received_at`, is refused, or None."""
    if received_at - MAX_BEHIND <= ts <= received_at + MAX_AHEAD:
        return None
    earliest = (received_at - MAX_BEHIND).isoformat(timespec="seconds")
    latest = (received_at + MAX_AHEAD).isoformat(timespec="seconds")
    where = "in the future" if ts > received_at else "too old"
    return (
        f"ts: {ts.isoformat()} is {where}; a ts is accepted from 48 hours before the message "
        f"arrives to 5 minutes after it, here {earliest} to {latest}"
    )


#: Wake-up ids are `profile:<device id>`; core timer ids (`kind:person:night`) never look so.
WAKE_PREFIX: Final = "profile:"


def wake_id(device_id: str) -> str:
    """The id a device's profile wake-up is scheduled under (one pending per device)."""
    return WAKE_PREFIX + device_id


@dataclass(frozen=True, slots=True)
class Profiled:
    """What a device's profile made of a message or a wake-up (its state is already kept)."""

    device: Device
    result: ProfileResult


class Decoder:
    """The router, the devices with profiles and their states; one per daemon or simulation."""

    __slots__ = ("_people", "_profiled", "router", "states")

    def __init__(
        self,
        config: Config,
        prefix: str,
        states: dict[str, dict[str, Any]] | None = None,
        *,
        profiles: ProfileRegistry = PROFILES,
    ) -> None:
        """Route `config`'s devices, and commands under the topic `prefix`, with `profiles`."""
        self.router = TopicRouter(config, prefix)
        #: Profile state by device id; mutated in place (the daemon stores this very dict).
        self.states: dict[str, dict[str, Any]] = states if states is not None else {}
        self._people = frozenset(p.id for p in config.people)
        self._profiled: dict[str, DeviceProfile] = {
            d.id: profiles.bind(d) for d in config.devices if is_profiled(d)
        }

    def message(
        self, topic: str, payload: bytes, received_at: datetime
    ) -> Event | PayloadError | Profiled | None:
        """One message: an event, a refusal, a profile's result, or None when not our topic."""
        target = self.router.route(topic)
        if target is None:
            return None
        if isinstance(target, CommandRoute):
            if target.person not in self._people:
                return PayloadError(f"no person {target.person!r} in the config")
            return _in_time(parse_command(target.person, payload, received_at), received_at)
        bound = self._profiled.get(target.id) if self._profiled else None
        if bound is None:
            return _in_time(parse_device_message(target, payload, received_at), received_at)
        state = self.states.get(target.id, {})
        result = bound.translate(topic, payload, received_at, state)
        self.states[target.id] = result.state
        return Profiled(target, _events_in_time(result, received_at))

    def tick(self, device_id: str, at: datetime) -> Profiled | None:
        """A profile's wake-up at `at`; None when the device has no profile (any more)."""
        bound = self._profiled.get(device_id)
        if bound is None:
            return None
        result = bound.tick(at, self.states.get(device_id, {}))
        self.states[device_id] = result.state
        if result.wake_at is not None and result.wake_at <= at:
            result = dataclasses.replace(result, wake_at=None)
        return Profiled(bound.device, _events_in_time(result, at))


def _in_time(parsed: Event | PayloadError, received_at: datetime) -> Event | PayloadError:
    """The event, or a refusal when its `ts` is outside the time policy."""
    if isinstance(parsed, PayloadError):
        return parsed
    problem = time_problem(parsed.ts, received_at)
    return parsed if problem is None else PayloadError(problem)


def _events_in_time(result: ProfileResult, received_at: datetime) -> ProfileResult:
    """A profile's result without the events outside the time policy, which become its error."""
    problems = [p for e in result.events if (p := time_problem(e.ts, received_at)) is not None]
    if not problems:
        return result
    kept = [e for e in result.events if time_problem(e.ts, received_at) is None]
    error = "; ".join(x for x in (result.error, problems[0]) if x)
    return dataclasses.replace(result, events=kept, error=error)
