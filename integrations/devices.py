"""`sleepcoach devices`: list the device profiles, and listen to a device to see what it becomes.

`devices list` prints every profile with what it reads, where its format is documented and an
example device entry. `devices listen TOPIC` subscribes to the broker for a while (`--seconds`)
and prints, for each message, what the coach would make of it: the events, or why it was
refused, with the profile's notes, times in the config's zone. The config is the one `run` would
use (`--config`, else $SLEEPCOACH_CONFIG, else the example config); the device is its device on
that topic, with `--profile` overriding its profile, or, when the config has none there, a
throw-away device of the profile's first kind (for native JSON, the kind whose `event` the
payload names: a brew is a coffee maker's). It connects with a clean session, a client id of its
own and no last will, so a running coach is not disturbed; stateful profiles keep their state for
the run only, and their `wake_at` ticks fire while listening.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import ssl
import threading
import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from coach.caffeine import dose_mg
from coach.config import Device, DeviceKind
from coach.decode.native import EVENT_KIND, parse_device_message
from coach.decode.profile.registry import NATIVE, PROFILES, DeviceProfile, ProfileResult
from coach.decode.refusal import PayloadError
from coach.decode.topic import TopicRouter
from coach.event import CoffeeBrewed, Event
from integrations.config_file import (
    ConfigError,
    ConfigFile,
    choose_config,
    load_config,
    with_env_overrides,
)
from integrations.error import ProjectError
from integrations.mqtt import parse_url
from integrations.subcommand import Command, SubParsers, say

DEFAULT_SECONDS: Final = 60.0
_PAYLOAD_SHOWN: Final = 160


class ListenError(ProjectError):
    """The listener could not reach or was refused by the broker."""


# -- devices list ------------------------------------------------------------------------------


def list_profiles(args: argparse.Namespace) -> int:
    """Print every profile with its kinds, sources and an example device entry."""
    del args
    say("Device profiles (set `profile:` on a device; `native` is the contract's own JSON):")
    for profile in PROFILES.values():
        say()
        say(f"{profile.name}: {profile.summary}")
        say(f"  device kinds: {', '.join(profile.kinds)}")
        say(f"  reads: {profile.expects}")
        for source in profile.sources:
            say(f"  format: {source}")
        example = yaml.safe_dump(
            {"devices": [profile.example]}, sort_keys=False, allow_unicode=True
        )
        say("  example:")
        for line in example.rstrip().splitlines():
            say(f"    {line}")
    return 0


# -- devices listen ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Broker:
    """Where to listen, and as whom."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def broker_of(config: ConfigFile | None) -> Broker:
    """The broker of a config (mqtt.url), or 127.0.0.1:1883 where the coach's own one runs."""
    url = config.mqtt.url if config is not None else None
    if url is None or url == "embedded":
        host, port, tls = "127.0.0.1", 1883, False
    else:
        host, port, tls = parse_url(url)
    if config is None:
        return Broker(host, port, tls)
    mqtt = config.mqtt
    password = mqtt.password.get_secret_value() if mqtt.password is not None else None
    return Broker(
        host,
        port,
        tls,
        username=mqtt.username,
        password=password,
        ca_file=mqtt.ca_file,
        cert_file=mqtt.cert_file,
        key_file=mqtt.key_file,
    )


class Interpreter:
    """What the coach makes of each message on the listened topic, with per-device state."""

    def __init__(self, config: ConfigFile | None, profile: str | None, topic: str) -> None:
        self.config = config
        self.profile = profile
        self.topic = topic
        #: Times are shown in the config's zone (the machine's without a config).
        self.tz: tzinfo | None = config.tz if config is not None else None
        self.states: dict[str, dict[str, Any]] = {}
        self.wakes: dict[str, tuple[DeviceProfile, datetime]] = {}
        self._router = (
            TopicRouter(config.core, config.mqtt.topic_prefix) if config is not None else None
        )
        self._bound: dict[str, DeviceProfile] = {}

    def device_for(self, topic: str, payload: bytes = b"") -> Device:
        """The config's device on `topic` (profile overridden), else a throw-away one: of the
        kind a native payload's `event` names (a brew is a coffee maker's), or the profile's."""
        device: Device | None = None
        if self._router is not None:
            routed = self._router.route(topic)
            device = routed if isinstance(routed, Device) else None
        if device is None:
            name = self.profile or NATIVE
            found = PROFILES.get(name)
            kind: DeviceKind = found.kinds[0] if found is not None else _native_kind(payload)
            device = Device(id="listen", kind=kind, topic=self.topic, person="you", profile=name)
        elif self.profile is not None and self.profile != device.profile:
            device = device.model_copy(update={"profile": self.profile})
        return device

    def message(self, topic: str, payload: bytes, at: datetime) -> list[str]:
        """Lines describing what one message becomes."""
        device = self.device_for(topic, payload)
        lines = [f"{_clock(at, self.tz)} {topic} {_shown(payload)}"]
        if device.profile == NATIVE:
            parsed = parse_device_message(device, payload, at)
            if isinstance(parsed, PayloadError):
                lines.append(f"  refused ({device.id}, native {device.kind}): {parsed.error}")
            else:
                lines.append(f"  → {describe(parsed, self.tz)}")
            return lines
        bound = self._bind(device)
        result = bound.translate(topic, payload, at, self.states.get(device.id, {}))
        return lines + self._result(bound, result)

    def due(self, now: datetime) -> list[str]:
        """Run the ticks that came due by `now`; lines for what they made."""
        lines: list[str] = []
        for device_id, (bound, at) in list(self.wakes.items()):
            if at <= now:
                del self.wakes[device_id]
                result = bound.tick(at, self.states.get(device_id, {}))
                made = self._result(bound, result)
                if result.events or result.error:
                    lines.append(f"{_clock(at, self.tz)} (tick for {device_id})")
                    lines += made
        return lines

    def _bind(self, device: Device) -> DeviceProfile:
        """The device bound to its profile, its options validated once while they stay the same."""
        bound = self._bound.get(device.id)
        if bound is None or bound.device != device:
            bound = self._bound[device.id] = PROFILES.bind(device)
        return bound

    def _result(self, bound: DeviceProfile, result: ProfileResult) -> list[str]:
        device_id = bound.device.id
        self.states[device_id] = result.state
        if result.wake_at is not None:
            self.wakes[device_id] = (bound, result.wake_at)
        lines = [f"  · {note}" for note in result.notes]
        lines += [f"  → {describe(e, self.tz)}" for e in result.events]
        if result.error is not None:
            lines.append(f"  refused: {result.error}")
        return lines


def _native_kind(payload: bytes) -> DeviceKind:
    """The device kind a native payload's `event` belongs to (bed_motion when it names none)."""
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        return "bed_motion"
    event = doc.get("event") if isinstance(doc, dict) else None
    return EVENT_KIND.get(event, "bed_motion") if isinstance(event, str) else "bed_motion"


def describe(event: Event, tz: tzinfo | None = None) -> str:
    """`CoffeeBrewed for alex at 2026-11-24 16:05:00 CET: drink=coffee volume_ml=240
    caffeine_mg=95 (from the drink and volume)`: the time in `tz` (the machine's zone when None),
    the fields that were given, and for a brew the caffeine the coach counts."""
    values = [
        f"{f.name}={_value(getattr(event, f.name))}"
        for f in fields(event)
        if f.name not in ("person", "ts", "source", "key") and getattr(event, f.name) is not None
    ]
    if isinstance(event, CoffeeBrewed) and event.caffeine_mg is None:
        mg = dose_mg(event.drink, event.volume_ml, None)
        values.append(f"caffeine_mg={mg:g} (from the drink and volume)")
    key = " (duplicate key)" if event.key is not None else ""
    when = _local(event.ts, tz)
    return f"{type(event).__name__} for {event.person} at {when}: {' '.join(values)}{key}"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple) and len(value) > 3:
        return f"[{len(value)} samples]"
    return str(value)


def _local(at: datetime, tz: tzinfo | None) -> str:
    """A date and wall-clock time with the zone's name: `2026-11-24 16:05:00 CET`."""
    local = at.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"


def _clock(at: datetime, tz: tzinfo | None = None) -> str:
    return at.astimezone(tz).strftime("%H:%M:%S")


def _shown(payload: bytes) -> str:
    text = payload.decode("utf-8", errors="backslashreplace")
    return text if len(text) <= _PAYLOAD_SHOWN else text[: _PAYLOAD_SHOWN - 3] + "..."


def _client(broker: Broker) -> paho.Client:
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"sleepcoach-listen-{os.getpid()}",
        clean_session=True,
        protocol=paho.MQTTv311,
    )
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        context = ssl.create_default_context(cafile=broker.ca_file)
        if broker.cert_file is not None:
            context.load_cert_chain(broker.cert_file, broker.key_file)
        client.tls_set_context(context)
    return client


class Subscription:
    """A paho client subscribed to one topic filter; messages land on `inbox`."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.topic = topic
        self.where = f"{'mqtts' if broker.tls else 'mqtt'}://{broker.host}:{broker.port}"
        self.inbox: queue.Queue[tuple[str, bytes, datetime]] = queue.Queue()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._refused: list[str] = []
        self._broker = broker
        self._client = _client(broker)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refused.append(f"the broker at {self.where} refused the connection: {reason}")
        else:
            client.subscribe(self.topic, qos=1)
        self._connected.set()

    def _on_subscribe(self, _c: Any, _u: Any, _mid: Any, reasons: Any, _p: Any) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            self._refused.append(f"subscription to {self.topic!r} refused: {', '.join(failed)}")
        self._subscribed.set()

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        self.inbox.put((msg.topic, bytes(msg.payload), datetime.now(UTC)))

    def open(self, timeout: float = 10.0) -> None:
        """Connect and subscribe, or raise ListenError saying why not."""
        try:
            self._client.connect(self._broker.host, self._broker.port, keepalive=30)
        except (OSError, ValueError) as err:
            msg = f"cannot reach the MQTT broker at {self.where}: {err}"
            raise ListenError(msg) from err
        self._client.loop_start()
        for step, what in ((self._connected, "the connection"), (self._subscribed, "subscribing")):
            if not step.wait(timeout):
                self.close()
                msg = f"the MQTT broker at {self.where} did not answer {what} in {timeout:g} s"
                raise ListenError(msg)
            if self._refused:
                self.close()
                raise ListenError(self._refused[0])

    def close(self) -> None:
        """Stop the network thread and disconnect."""
        self._client.loop_stop()
        self._client.disconnect()


def listen(
    broker: Broker,
    topic: str,
    interpreter: Interpreter,
    seconds: float,
    *,
    ready: threading.Event | None = None,
) -> int:
    """Subscribe to `topic` for `seconds`, printing what each message becomes; messages seen."""
    subscription = Subscription(broker, topic)
    subscription.open()
    seen = 0
    try:
        say(f"listening to {topic} on {subscription.where} for {seconds:g} s …")
        if ready is not None:
            ready.set()
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got_topic, payload, at = subscription.inbox.get(timeout=min(0.2, left))
            except queue.Empty:
                for line in interpreter.due(datetime.now(UTC)):
                    say(line)
                continue
            for line in interpreter.due(at):
                say(line)
            seen += 1
            for line in interpreter.message(got_topic, payload, at):
                say(line)
    finally:
        subscription.close()
    say(f"{seen} message{'s' if seen != 1 else ''} in {seconds:g} s")
    return seen


def listen_command(args: argparse.Namespace) -> int:
    """`devices listen`: load the config if given, then listen."""
    if args.profile is not None and args.profile not in PROFILES.names():
        names = ", ".join(PROFILES.names())
        say(f"sleepcoach: unknown profile {args.profile!r}; one of {names}", err=True)
        return 2
    choice = choose_config(args.config)
    if choice.notice is not None:
        say(choice.notice, err=True)
    try:
        config = with_env_overrides(load_config(choice.path), os.environ)
    except ConfigError as err:
        for problem in err.problems:
            say(problem, err=True)
        return 1
    interpreter = Interpreter(config, args.profile, args.topic)
    listen(broker_of(config), args.topic, interpreter, args.seconds)
    return 0


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def _listen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", metavar="TOPIC", help="topic or filter to subscribe to (+, #)")
    parser.add_argument(
        "--profile",
        help="profile to read the messages with (default: the "
        "config's device on that topic, else native)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config with the broker and devices (default: $SLEEPCOACH_CONFIG, else the example "
        "config, as `run`)",
    )
    parser.add_argument(
        "--seconds", type=float, default=DEFAULT_SECONDS, help="how long to listen (default 60)"
    )


def register(subparsers: SubParsers) -> None:
    """Add `devices list` and `devices listen` to the sleepcoach command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "devices",
        help="list the device profiles, or listen to a device to see what the coach makes of it",
        description="Connect your devices: the profiles, and a listener to set one up.",
    )
    inner = parser.add_subparsers(title="devices commands", metavar="COMMAND")
    Command(
        "list", "the device profiles, each with an example config", _list_arguments, list_profiles
    ).register(inner)
    Command(
        "listen",
        "subscribe for a while and print what the coach would make of each message",
        _listen_arguments,
        listen_command,
    ).register(inner)
    parser.set_defaults(handler=lambda _args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
