"""Decoding: an MQTT message in, the coach's events (or a refusal saying why not) out.

The path of one message, all pure: topic → device or command topic (`topic`) → the device's
profile, if it has one (`profile`) → the native parser (`native`, worded by `refusal`) → events.
`decoder.Decoder` is the one entry point the daemon and the simulator call; it keeps the
profiles' per-device states and says when a profile wants to be woken.

- `topic`: MQTT topic filters (the config's check and the matching) and the topic router.
- `native`: the native payload models per device kind and commands, parsed into events.
- `refusal`: `PayloadError` and the wording of what was wrong with a payload.
- `profile`: the device profiles (one module each), their shared readers (`profile.base`) and
  the registry that binds a device to its profile (`profile.registry`).
- `decoder`: routing, native parsing and profiles in one call, with the profiles' states.

This package imports nothing at load time: the config model imports `topic` to check its device
topics, and `decoder` imports the config model.
"""
