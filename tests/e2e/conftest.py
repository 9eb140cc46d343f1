"""Fixtures for the daemon's end-to-end tests: the daemon as a subprocess, and an MQTT client that
records what the coach publishes.

The broker they run against (`broker`, `auth_broker`: Mosquitto on a free loopback port, or the
embedded broker when Mosquitto is missing) comes from `tests/broker.py`, shared with
tests/integrations and registered as a plugin by `tests/conftest.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.broker import ROOT, Broker, free_port

TZ = "Europe/Berlin"

#: How long a command that starts, checks and exits (`run --check`, a refused start) may take
#: before a test gives up on it: a deadline, not a speed target. Importing the daemon alone took
#: 5.6 s on a shared 2-core machine at load 15 (0.5 s idle).
EXIT_DEADLINE_S = 45.0


def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether `predicate` comes true within `timeout` seconds (asked every 20 ms)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# -- the client side -----------------------------------------------------------------------------


class Recorder:
    """An MQTT client that records every message on the topics it subscribed to: MQTT 5 to
    Mosquitto, MQTT 3.1.1 to the embedded broker (`Broker.protocol`)."""

    def __init__(self, broker: Broker, topics: list[str], client_id: str = "recorder") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=broker.protocol)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._ready.set()
        self.client.on_connect = lambda c, *_a: c.subscribe([(t, 1) for t in topics])
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self._ready.wait(5), "the recorder could not subscribe"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _r in self.messages if t == topic]

    def json_on(self, topic: str) -> list[Any]:
        return [json.loads(p) for p in self.on(topic)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        return eventually(predicate, timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def recorder_factory() -> Iterator[Callable[..., Recorder]]:
    made: list[Recorder] = []

    def make(broker: Broker, topics: list[str], client_id: str = "recorder") -> Recorder:
        r = Recorder(broker, topics, client_id)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def publisher(broker: Broker, client_id: str = "device") -> mqtt.Client:
    """A connected publisher on its own network thread, speaking the broker's `protocol`."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=broker.protocol)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


# -- the daemon ------------------------------------------------------------------------------------


CLIENT_ID = "coach-under-test"


def config_yaml(
    broker: Broker,
    db_url: str,
    *,
    bedtime_in: timedelta = timedelta(hours=3),
    extra_mqtt: str = "",
    bedtime: str | None = None,
    wake: str | None = None,
    dashboard: str | None = None,
) -> str:
    """A config for `broker` whose bedtime is `bedtime_in` from now (any hour of the day, after
    midnight too), and wake 8 h later; or the `bedtime` and `wake` given ("HH:MM").

    The dashboard is on, as by default, but on a free port (`dashboard` replaces the block), so
    daemons of tests that run at the same time do not contend for 8099.

    On the embedded broker the coach names itself with a user name, as it does on its own
    embedded broker (`integrations.daemon.link_settings`): amqtt keeps no session for an anonymous
    client, so what was queued while the coach was away would be lost. Mosquitto needs none.
    """
    now = datetime.now(ZoneInfo(TZ))
    bed = bedtime or (now + bedtime_in).strftime("%H:%M")
    wake = wake or (now + bedtime_in + timedelta(hours=8)).strftime("%H:%M")
    if broker.kind == "embedded" and "username:" not in extra_mqtt:
        extra_mqtt = f"  username: {CLIENT_ID}\n{extra_mqtt}"
    if dashboard is None:
        dashboard = f"{{listen: '127.0.0.1:{free_port()}'}}"
    return f"""\
timezone: {TZ}
mqtt:
  url: {broker.url}
  topic_prefix: sleepcoach
  client_id: {CLIENT_ID}
{extra_mqtt}storage:
  url: {db_url}
dashboard: {dashboard}
people:
  - id: alex
    bedtime: "{bed}"
    wake: "{wake}"
devices:
  - id: bed
    kind: bed_motion
    topic: home/bedroom/bed
    person: alex
  - id: coffee
    kind: coffee_maker
    topic: home/kitchen/coffee
    person: alex
  - id: watch
    kind: fitness_tracker
    topic: tracker/alex
    person: alex
"""


@dataclass
class DaemonProcess:
    """`sleepcoach run` in a subprocess, with its logs in a file."""

    config: Path
    home: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.home / "daemon.log"

    @property
    def out(self) -> Path:
        return self.home / "daemon.out"

    def command(self, *args: str) -> list[str]:
        code = "import sys; from integrations.cli import main; sys.exit(main(sys.argv[1:]))"
        return [sys.executable, "-c", code, "run", "--config", str(self.config), *args]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["XDG_DATA_HOME"] = str(self.home / "data")
        env["PYTHONPATH"] = str(ROOT)
        env.pop("SLEEPCOACH_MQTT_PASSWORD", None)
        env.update(self.env)
        return env

    def start(self, *, wait: bool = True) -> None:
        self.starts += 1
        with self.log.open("ab") as err, self.out.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command(*self.extra_args),
                stdout=out,
                stderr=err,
                env=self.environment(),
                cwd=self.home,
            )
        if wait:
            self.wait_listening()

    def is_listening(self) -> bool:
        return self.out.exists() and self.out.read_text().count("is listening") >= self.starts

    def wait_listening(self, timeout: float = 15.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.is_listening():
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.05)
        msg = f"the daemon did not start:\n{self.log_text()}"
        raise AssertionError(msg)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    made: list[DaemonProcess] = []

    def make(
        config_text: str, *extra_args: str, env: dict[str, str] | None = None
    ) -> DaemonProcess:
        home = tmp_path / f"daemon{len(made)}"
        home.mkdir()
        cfg = home / "config.yaml"
        cfg.write_text(config_text)
        d = DaemonProcess(cfg, home, list(extra_args), env or {})
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()
