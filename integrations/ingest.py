"""Messages to events: the one step `sleepcoach run` and `sleepcoach simulate` share.

A message is routed by its topic (`coach.payload.TopicRouter`). A command topic or a device that
speaks the native format goes through the native parser and becomes an event or a refusal. A
device with a profile goes through `profile.translate` with that device's state, which is kept
here (a JSON-able dict per device id, `{}` at first) and replaced by each result's state; the
caller gets the whole `ProfileResult` (events, error, notes, `wake_at`).

Wake-ups: a result's `wake_at` asks for `tick` at that time. The caller schedules it under
`wake_id(device_id)`, which replaces the device's pending wake-up, and at that time calls
`Ingest.tick`. A result without `wake_at` leaves a pending wake-up alone: a message that carries
nothing for the profile (a Shelly RPC frame about another component, a Zigbee2MQTT report without
power) returns none while a brew still waits to be closed, and a wake-up that finds nothing due
re-reads the state and at most asks again. A tick that asks to be woken at or before its own time
would wake itself forever; that request is dropped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from coach.config import Config, Device
from coach.event import Event
from coach.payload import PayloadError, TopicRouter
from integrations.profile import registry
from integrations.profile.registry import ProfileResult

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


class Ingest:
    """The router, the devices with profiles and their states; one per daemon or simulation."""

    __slots__ = ("_parse", "_profiled", "router", "states")

    def __init__(
        self, config: Config, prefix: str, states: dict[str, dict[str, Any]] | None = None
    ) -> None:
        """Route `config`'s devices, and commands under the topic `prefix`."""
        self.router = TopicRouter(config, prefix)
        #: Profile state by device id; mutated in place (the daemon stores this very dict).
        self.states: dict[str, dict[str, Any]] = states if states is not None else {}
        self._profiled = {d.id: d for d in config.devices if registry.is_profiled(d)}
        # With no profiled device every message takes the native parser's one call.
        self._parse = self.router.parse

    def message(
        self, topic: str, payload: bytes, received_at: datetime
    ) -> Event | PayloadError | Profiled | None:
        """One message: an event, a refusal, a profile's result, or None when not our topic."""
        if not self._profiled:
            return self._parse(topic, payload, received_at)
        target = self.router.route(topic)
        if target is None:
            return None
        if isinstance(target, Device) and registry.is_profiled(target):
            state = self.states.get(target.id, {})
            result = registry.translate(target, topic, payload, received_at, state)
            self.states[target.id] = result.state
            return Profiled(target, result)
        return self._parse(topic, payload, received_at)

    def tick(self, device_id: str, at: datetime) -> Profiled | None:
        """A profile's wake-up at `at`; None when the device has no profile (any more)."""
        device = self._profiled.get(device_id)
        if device is None:
            return None
        result = registry.tick(device, at, self.states.get(device_id, {}))
        self.states[device_id] = result.state
        if result.wake_at is not None and result.wake_at <= at:
            result = dataclasses.replace(result, wake_at=None)
        return Profiled(device, result)
