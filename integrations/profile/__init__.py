"""Device profiles: what the sensors people already own publish, turned into the coach's events.

A device's `profile` in the config (coach.config.Device, default `native`) names one of
`PROFILES`; its `options` are that profile's settings. The daemon's interface is three calls:

- `translate(device, topic, payload, received_at, state) -> ProfileResult` for every message
  from a device whose `is_profiled(device)`. `ProfileResult.events` go to `decide()`;
  `ProfileResult.error` (the profile's name and what it expected) goes to `<prefix>/errors`;
  `ProfileResult.state` is the profile's JSON-able per-device state, to be persisted and passed to
  the next call for that device (start with `{}`), so brew detection and Sleep as Android's night
  tally survive a restart.
- `tick(device, now, state) -> ProfileResult` when a result's `wake_at` comes due and no message
  for the device arrived before: it closes a brew whose power stayed low, or a vibration burst.
- `validate_device(device) -> list[str]` (or `option_problems(device)` with paths relative to the
  device entry, such as `("options", "fields", "intensity")`) at config load: an unknown profile,
  a kind the profile does not serve, bad options, a JMESPath expression that does not compile.

Events carry a duplicate `key` exactly when the device supplied its own time, as native payloads
with `ts` do. Each profile lives in its own module with its sources; `sleepcoach devices`
(integrations.profile.command) lists them and listens to a device.
"""

from integrations.profile.base import Options, Profile
from integrations.profile.registry import (
    NATIVE,
    PROFILES,
    OptionProblem,
    ProfileResult,
    is_profiled,
    option_problems,
    tick,
    translate,
    validate_device,
)

__all__ = [
    "NATIVE",
    "PROFILES",
    "OptionProblem",
    "Options",
    "Profile",
    "ProfileResult",
    "is_profiled",
    "option_problems",
    "tick",
    "translate",
    "validate_device",
]
