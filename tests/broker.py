"""A real MQTT broker for the tests, on a free loopback port: the helpers and the `broker` and
`auth_broker` fixtures shared by tests/e2e and tests/integrations.

The broker is Mosquitto, started in the foreground with its own config in a temporary directory,
built from the shipped `config/mosquitto.conf` (persistence, autosave, queue limits, TCP_NODELAY)
with only the listener and the data directory changed. Without Mosquitto installed the fixture
falls back to the embedded amqtt broker (in a subprocess, so it can be restarted) and says so;
`SLEEPCOACH_TEST_REQUIRE_MOSQUITTO=1` (set by .ci/run) makes a missing Mosquitto a failure.
`SLEEPCOACH_TEST_NO_MOSQUITTO=1` makes the tests behave as if Mosquitto were not installed (the
embedded broker, as on a fresh machine), to check that path on a machine that has Mosquitto:
`SLEEPCOACH_TEST_NO_MOSQUITTO=1 scripts/test`. It does not combine with the requirement.

The embedded broker speaks MQTT 3.1.1 only, so the test clients speak what `Broker.protocol` says
(MQTT 5 to Mosquitto, 3.1.1 to amqtt); it keeps sessions only for clients with a user name, so the
e2e config names the coach on it (tests/e2e/conftest.py, `config_yaml`). The tests whose subject is
a Mosquitto-only feature (a password file, a TLS listener, persistence of acknowledged messages
across a broker restart, redelivery of in-flight messages to a SIGKILLed coach) skip on it and
say so; every other test runs against it.

This module is a pytest plugin, registered by `tests/conftest.py`; test modules import its helpers
with `from tests.broker import ...`. (bench/broker.py keeps its own copy: the benchmarks run as
plain scripts, without pytest or tests/ on their path.)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CONF = ROOT / "config" / "mosquitto.conf"


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
    """Mosquitto's path, also where Debian puts it outside a normal user's PATH; None when it is
    not installed or `SLEEPCOACH_TEST_NO_MOSQUITTO=1` asks the tests to do without it."""
    if os.environ.get("SLEEPCOACH_TEST_NO_MOSQUITTO") == "1":
        return None
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

    @property
    def protocol(self) -> int:
        """The MQTT version a test client speaks to this broker: see `mqtt_protocol`."""
        return mqtt_protocol(self.kind)

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


def mqtt_protocol(kind: str) -> int:
    """MQTT 5 to Mosquitto (what the coach speaks to it in production); MQTT 3.1.1 to the embedded
    amqtt broker, which speaks nothing else (it never answers an MQTT 5 CONNECT with a will)."""
    return mqtt.MQTTv5 if kind == "mosquitto" else mqtt.MQTTv311


def _fail_if_required() -> None:
    if os.environ.get("SLEEPCOACH_TEST_REQUIRE_MOSQUITTO") == "1":
        pytest.fail("Mosquitto is required here (SLEEPCOACH_TEST_REQUIRE_MOSQUITTO=1) but missing")


def mosquitto_or_skip(why: str) -> str:
    """Mosquitto's path for a test of what only Mosquitto does; without it the test skips, saying
    `why` (or fails, where `SLEEPCOACH_TEST_REQUIRE_MOSQUITTO=1`)."""
    found = mosquitto_binary()
    if found is None:
        _fail_if_required()
        pytest.skip(why)
    return found


def broker_kind() -> str:
    if mosquitto_binary() is not None:
        return "mosquitto"
    _fail_if_required()
    # Said in pytest's warnings summary, as a notice: the suite's `filterwarnings = ["error"]`
    # would otherwise turn the fallback itself into an error in every test that asks for a broker.
    with warnings.catch_warnings():
        warnings.simplefilter("always", pytest.PytestWarning)
        warnings.warn(
            "mosquitto is not installed (or SLEEPCOACH_TEST_NO_MOSQUITTO=1): the broker tests use "
            "the embedded amqtt broker instead, and those about Mosquitto-only behaviour skip",
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
    mosquitto_or_skip(
        "needs Mosquitto: password authentication (mosquitto_passwd); the embedded broker "
        "accepts every loopback client"
    )
    b = Broker("mosquitto", free_port(), make_workdir(), password="right-password")
    b.start()
    yield b
    b.stop()
    shutil.rmtree(b.workdir, ignore_errors=True)
