"""Device profiles: what the sensors people already own publish, turned into the coach's events.

A device's `profile` in the config (coach.config.Device, default `native`) names one of
`PROFILES`; its `options` are that profile's settings. A profile is pure translation: bytes and
the device's own state in, native payload bodies out (`base.Profile`). The decoder
(`coach.decode.decoder`) binds each profiled device once (`PROFILES.bind(device)`, which validates
its options) and makes two calls:

- `translate(topic, payload, received_at, state) -> ProfileResult` for every message from the
  device. `ProfileResult.events` go to `decide()`; `ProfileResult.error` (the profile's name and
  what it expected) goes to `<prefix>/errors`; `ProfileResult.state` is the profile's JSON-able
  per-device state, to be persisted and passed to the next call for that device (start with
  `{}`), so brew detection and Sleep as Android's night tally survive a restart.
- `tick(now, state) -> ProfileResult` when a result's `wake_at` comes due and no message for the
  device arrived before: it closes a brew whose power stayed low, or a vibration burst.

`PROFILES.option_problems(device)` checks a device entry when the config loads (paths relative to
the entry, such as `("options", "fields", "intensity")`): an unknown profile, a kind the profile
does not serve, bad options, a JMESPath expression that does not compile. The module functions
`translate`, `tick`, `option_problems` and `validate_device` do the same for one call with the
shipped profiles.

Events carry a duplicate `key` exactly when the device supplied its own time, as native payloads
with `ts` do. Each profile lives in its own module with its sources; `sleepcoach devices`
(integrations.devices) lists them and listens to a device.
"""

from coach.decode.profile.base import Options, Profile
from coach.decode.profile.registry import (
    NATIVE,
    PROFILES,
    DeviceProfile,
    OptionProblem,
    ProfileRegistry,
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
    "DeviceProfile",
    "OptionProblem",
    "Options",
    "Profile",
    "ProfileRegistry",
    "ProfileResult",
    "is_profiled",
    "option_problems",
    "tick",
    "translate",
    "validate_device",
]
