"""End to end through a real Mosquitto: `sleepcoach devices listen` and `sleepcoach run`.

Each profile family's fixture payloads are published as their devices would; `devices listen`
must print the events they become, and the daemon must turn a smart plug's brew into a nudge.
The broker is the shared `broker` fixture (tests/broker.py): a fresh Mosquitto per test, with the
same fallback and `SLEEPCOACH_TEST_REQUIRE_MOSQUITTO` policy as the daemon's e2e tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from coach.config import Device
from coach.decode.profile import translate
from tests.broker import Broker, free_port

pytestmark = pytest.mark.mosquitto

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "devices"


def _publisher(port: int) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{os.getpid()}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _bytes(payload: Any) -> bytes:
    return payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()


def _publish(client: paho.Client, topic: str, payload: Any) -> None:
    client.publish(topic, _bytes(payload), qos=1).wait_for_publish(5)


def _config(tmp_path: Path, port: int, devices: list[dict[str, Any]], **extra: Any) -> Path:
    doc: dict[str, Any] = {
        "timezone": "Europe/Berlin",
        "mqtt": {"url": f"mqtt://127.0.0.1:{port}"},
        "people": [{"id": "alex", "bedtime": "22:30", "wake": "06:30"}],
        "devices": devices,
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


class Listener:
    """`sleepcoach devices listen` in a subprocess, its output collected line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        cmd = [sys.executable, "-m", "integrations.cli", "devices", "listen", *args]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env or _env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.ready.wait(20):
            self.proc.kill()
            self.proc.wait()
            pytest.fail("devices listen did not subscribe:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("listening to"):
                self.ready.set()

    def finish(self) -> str:
        """Wait for the end of the listening time; the whole output."""
        code = self.proc.wait(30)
        self.reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        assert code == 0, "\n".join(self.lines)
        return "\n".join(self.lines)


FAMILIES = {
    "zigbee2mqtt": ["zigbee2mqtt_vibration", "zigbee2mqtt_occupancy"],
    "esphome": ["esphome_bed"],
    "smart plug": ["smart_plug_power"],
    "sleep as android": ["sleep_as_android"],
    "home assistant statestream": ["ha_statestream"],
    "custom": ["custom"],
}


@pytest.mark.parametrize("family", FAMILIES)
def test_devices_listen_prints_what_each_fixture_message_becomes(
    family: str, broker: Broker, tmp_path: Path
) -> None:
    fixtures = [json.loads((FIXTURES / f"{n}.json").read_text()) for n in FAMILIES[family]]
    devices = []
    for i, fixture in enumerate(fixtures):
        device = dict(fixture["device"])
        device["topic"] = f"e2e/{i}/#"  # each fixture's device under a prefix of its own
        if fixture["profile"] == "smart_plug_power":
            # Messages arrive milliseconds apart here: end brews at once, however short.
            device["options"] = {**device.get("options", {}), "stop_hold_s": 0, "min_brew_s": 0}
        devices.append(device)
    config = _config(tmp_path, broker.port, devices)
    messages = [
        (i, f"e2e/{i}/{step['topic']}", step["payload"])
        for i, fixture in enumerate(fixtures)
        for step in fixture["steps"]
        if not step.get("tick")
    ]
    # What the coach makes of them when they arrive together, as they do here: the printed
    # events must be these, in this order (timing-dependent ones, like a burst closed by a
    # later tick, are the table tests' business).
    expected: list[str] = []
    states: dict[int, dict[str, Any]] = {}
    now = datetime.now(ZoneInfo("UTC"))
    for i, topic, payload in messages:
        device = Device.model_validate(devices[i])
        result = translate(device, topic, _bytes(payload), now, states.get(i, {}))
        states[i] = result.state
        expected += [type(e).__name__ for e in result.events]
        if result.error is not None:
            expected.append(f"refused: {device.profile}: ")
    assert any(not x.startswith("refused") for x in expected), "the family makes events"
    listener = Listener("e2e/#", "--config", str(config), "--seconds", "3")
    publisher = _publisher(broker.port)
    try:
        for _, topic, payload in messages:
            _publish(publisher, topic, payload)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
    out = listener.finish()
    printed = [line.strip() for line in out.splitlines() if line.startswith(("  → ", "  refused"))]
    assert len(printed) == len(expected), out
    for line, want in zip(printed, expected, strict=True):
        assert want in line, out


def test_devices_listen_without_a_config_reads_the_readme_coffee_as_the_example_does(
    broker: Broker,
) -> None:
    """No --config: the example config, as `run` would use (its broker named by
    SLEEPCOACH_MQTT_URL, as a container's is). The README's coffee on the coffee maker's topic is
    alex's brew with its caffeine at Berlin time; on a topic no device has, still a brew."""
    env = {**_env(), "SLEEPCOACH_MQTT_URL": f"mqtt://127.0.0.1:{broker.port}"}
    env.pop("SLEEPCOACH_CONFIG", None)
    listener = Listener("+/kitchen/coffee", "--seconds", "3", env=env)
    brew = {"event": "brew", "drink": "coffee", "volume_ml": 240}
    publisher = _publisher(broker.port)
    try:
        _publish(publisher, "home/kitchen/coffee", brew)
        _publish(publisher, "cellar/kitchen/coffee", brew)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
    out = listener.finish()
    assert out.splitlines()[0] == "no --config given: using the example config " + str(
        ROOT / "integrations" / "example.yaml"
    ), out
    zone = datetime.now(ZoneInfo("Europe/Berlin")).tzname()
    events = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert len(events) == 2, out
    for event, person in zip(events, ["alex", "you"], strict=True):
        assert event.startswith(f"→ CoffeeBrewed for {person} at "), out
        assert event.endswith(
            f" {zone}: drink=coffee volume_ml=240 caffeine_mg=95 (from the drink and volume)"
        ), out
    assert "None" not in out
    assert "+00:00" not in out
    assert "refused" not in out


def test_devices_list_shows_every_profile_with_an_example() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "integrations.cli", "devices", "list"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in (
        "zigbee2mqtt_vibration",
        "zigbee2mqtt_occupancy",
        "esphome_bed",
        "smart_plug_power",
        "sleep_as_android",
        "ha_statestream",
        "custom",
    ):
        assert f"{name}: " in out
        assert f"profile: {name}" in out


def test_listen_without_a_broker_says_so(tmp_path: Path) -> None:
    config = _config(tmp_path, free_port(), [])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "integrations.cli",
            "devices",
            "listen",
            "x",
            "--config",
            str(config),
            "--seconds",
            "1",
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "cannot reach the MQTT broker" in done.stderr


def test_the_daemon_turns_a_shelly_brew_into_a_caffeine_nudge(
    broker: Broker, tmp_path: Path
) -> None:
    # Bedtime two hours from now: a coffee now is inside the 8-hour cutoff, so caffeine.cutoff
    # must go out as soon as the plug's brew is over.
    tz = ZoneInfo("Europe/Berlin")
    bedtime = (datetime.now(tz) + timedelta(hours=2)).strftime("%H:%M")
    wake = (datetime.now(tz) + timedelta(hours=10)).strftime("%H:%M")
    device = {
        "id": "coffee",
        "kind": "coffee_maker",
        "topic": "shellyplusplugs-e2e/status/switch:0",
        "person": "alex",
        "profile": "smart_plug_power",
        "options": {"stop_hold_s": 1, "min_brew_s": 0},
    }
    config = _config(
        tmp_path,
        broker.port,
        [device],
        storage={"url": f"sqlite:///{tmp_path / 'coach.db'}"},
        people=[{"id": "alex", "bedtime": bedtime, "wake": wake}],
    )
    nudges: list[dict[str, Any]] = []
    errors: list[bytes] = []
    watcher = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-watch")

    def on_message(_c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic.endswith("/nudge"):
            nudges.append(json.loads(msg.payload))
        elif msg.topic.endswith("/errors"):
            errors.append(msg.payload)

    watcher.on_message = on_message
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe([("sleepcoach/alex/nudge", 1), ("sleepcoach/errors", 1)])
    watcher.loop_start()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "integrations.cli", "run", "--config", str(config)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    publisher = _publisher(broker.port)
    try:
        online = _wait_retained(broker.port, "sleepcoach/status", "online", 30)
        assert online, "the daemon never published online"
        for watts in (8.9, 1350.0, 1300.0, 2.0):
            _publish(publisher, device["topic"], {"id": 0, "output": True, "apower": watts})
            time.sleep(0.3)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(
            n.get("rule") == "caffeine.cutoff" for n in nudges
        ):
            time.sleep(0.1)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        daemon.terminate()
        try:
            out, _ = daemon.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            out, _ = daemon.communicate()
        watcher.loop_stop()
        watcher.disconnect()
    assert any(n.get("rule") == "caffeine.cutoff" for n in nudges), (nudges, errors, out)
    assert errors == []


def _wait_retained(port: int, topic: str, value: str, timeout: float) -> bool:
    seen = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"test-status-{os.getpid()}")

    def on_message(_c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        if msg.payload.decode(errors="replace") == value:
            seen.set()

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(topic, 1)
    client.loop_start()
    try:
        return seen.wait(timeout)
    finally:
        client.loop_stop()
        client.disconnect()
