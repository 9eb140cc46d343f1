"""Fixtures for the daemon's end-to-end tests: a real broker on a free loopback port, the daemon
as a subprocess, and an MQTT client that records what the coach publishes.

The broker is Mosquitto, started in the foreground with its own config in a temporary directory,
built from the shipped `config/mosquitto.conf` (persistence, autosave, queue limits, TCP_NODELAY)
with only the listener and the data directory changed. Without Mosquitto installed the fixture
falls back to the embedded amqtt broker (in a subprocess, so it can be restarted) and says so;
`SLEEPCOACH_TEST_REQUIRE_MOSQUITTO=1` (set by .ci/run) makes a missing Mosquitto a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONF = ROOT / "config" / "mosquitto.conf"
TZ = "Europe/Berlin"


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.02)
        else:
            return
    msg = f"nothing listens on 127.0.0.1:{port} after {timeout} s"
    raise TimeoutError(msg)


def mosquitto_binary() -> str | None:
    """Mosquitto's path, also where Debian puts it outside a normal user's PATH."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


@dataclass
class Broker:
    """A broker the tests can stop, kill and restart on the same port with the same data."""

    kind: str  # "mosquitto" or "embedded"
    port: int
    workdir: Path
    password: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / f"{self.kind}.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        """The shipped config with the test's listener, data directory and users."""
        lines = []
        for line in SHIPPED_CONF.read_text().splitlines():
            if line.startswith(("listener ", "persistence_location ", "allow_anonymous ")):
                continue
            if line.startswith("log_type"):
                continue
            lines.append(line)
        lines += [
            f"listener {self.port} 127.0.0.1",
            f"persistence_location {self.workdir}/data/",
            "log_type all" if os.environ.get("SLEEPCOACH_TEST_BROKER_LOG") else "log_type error",
        ]
        if self.password is not None:
            lines += ["allow_anonymous false", f"password_file {self.workdir}/passwd"]
        else:
            lines.append("allow_anonymous true")
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        if self.kind == "mosquitto":
            (self.workdir / "data").mkdir(exist_ok=True)
            (self.workdir / "data").chmod(0o777)  # Mosquitto drops root to its own user
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(self.config_text())
            if self.password is not None:
                passwd = self.workdir / "passwd"
                subprocess.run(
                    ["mosquitto_passwd", "-b", "-c", str(passwd), "coach", self.password],
                    check=True,
                )
                passwd.chmod(0o644)
            cmd = [mosquitto_binary() or "mosquitto", "-c", str(conf)]
        else:
            code = (
                "import sys, time, signal; from pathlib import Path; "
                "from integrations.embedded_broker import EmbeddedBroker; "
                f"b = EmbeddedBroker(Path({str(self.workdir / 'data')!r}), port={self.port}); "
                "b.start(); signal.signal(signal.SIGTERM, lambda *a: (b.stop(), sys.exit(0))); "
                "signal.pause()"
            )
            cmd = [sys.executable, "-W", "ignore", "-c", code]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        wait_port(self.port)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()


def broker_kind() -> str:
    if mosquitto_binary() is not None:
        return "mosquitto"
    if os.environ.get("SLEEPCOACH_TEST_REQUIRE_MOSQUITTO") == "1":
        pytest.fail("Mosquitto is required here (SLEEPCOACH_TEST_REQUIRE_MOSQUITTO=1) but missing")
    warnings.warn(
        "mosquitto is not installed: the e2e tests use the embedded amqtt broker instead",
        pytest.PytestWarning,
        stacklevel=2,
    )
    return "embedded"


def make_workdir() -> Path:
    # Not under pytest's tmp_path: its parent is private to root, and Mosquitto runs as its own
    # user, which must reach the data directory.
    path = Path(tempfile.mkdtemp(prefix="sleepcoach-broker-"))
    path.chmod(0o755)
    return path


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A fresh broker (Mosquitto when installed) on a free loopback port."""
    b = Broker(broker_kind(), free_port(), make_workdir())
    b.start()
    yield b
    b.stop()
    shutil.rmtree(b.workdir, ignore_errors=True)


@pytest.fixture
def auth_broker() -> Iterator[Broker]:
    """A Mosquitto that wants user `coach` with a password."""
    if mosquitto_binary() is None:
        pytest.skip("needs Mosquitto (password files)")
    b = Broker("mosquitto", free_port(), make_workdir(), password="right-password")
    b.start()
    yield b
    b.stop()
    shutil.rmtree(b.workdir, ignore_errors=True)


# -- the client side -----------------------------------------------------------------------------


class Recorder:
    """An MQTT 5 client that records every message on the topics it subscribed to."""

    def __init__(self, port: int, topics: list[str], client_id: str = "recorder") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._ready.set()
        self.client.on_connect = lambda c, *_a: c.subscribe([(t, 1) for t in topics])
        self.client.connect("127.0.0.1", port)
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
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def recorder_factory() -> Iterator[Callable[..., Recorder]]:
    made: list[Recorder] = []

    def make(port: int, topics: list[str], client_id: str = "recorder") -> Recorder:
        r = Recorder(port, topics, client_id)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def publisher(port: int, client_id: str = "device") -> mqtt.Client:
    """A connected MQTT 5 publisher on its own network thread."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


# -- the daemon ------------------------------------------------------------------------------------


def config_yaml(
    broker_url: str,
    db_url: str,
    *,
    bedtime_in: timedelta = timedelta(hours=3),
    extra_mqtt: str = "",
) -> str:
    """A config whose bedtime is `bedtime_in` from now (any hour of the day, after midnight too)."""
    now = datetime.now(ZoneInfo(TZ))
    bed = (now + bedtime_in).strftime("%H:%M")
    wake = (now + bedtime_in + timedelta(hours=8)).strftime("%H:%M")
    return f"""\
timezone: {TZ}
mqtt:
  url: {broker_url}
  topic_prefix: sleepcoach
  client_id: coach-under-test
{extra_mqtt}storage:
  url: {db_url}
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
