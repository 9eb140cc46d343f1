"""The shipped Mosquitto configs, started as they are: config/mosquitto.conf (the machine's) and
config/mosquitto-container.conf (docker-compose.yml's).

Only what must differ here is changed: the listeners' ports and addresses (free ports on
loopback; 127.0.0.2 stands for the LAN address) and the paths (a temporary folder). Each one keeps
retained messages and a persistent session's queue across a restart, and its commented LAN
listener, once uncommented, lets in only a user with a password while the loopback listener
stays open to the coach.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.broker import ROOT, free_port, make_workdir, mosquitto_or_skip, wait_port
from tests.e2e.conftest import eventually

CONFS = {
    "host": ROOT / "config" / "mosquitto.conf",
    "container": ROOT / "config" / "mosquitto-container.conf",
}
LAN = "127.0.0.2"  # a loopback address standing for this machine's LAN address


def localised(conf: Path, workdir: Path, port: int, *, lan: bool = False) -> str:
    """The shipped config with its listeners on loopback ports and its paths in `workdir`;
    with `lan`, the commented LAN listener uncommented (on 127.0.0.2, same port)."""
    lines = []
    for shipped in conf.read_text().splitlines():
        line = shipped
        if lan and line.startswith(("#listener ", "#allow_anonymous ", "#password_file ")):
            line = line[1:]
            if line.startswith("listener "):
                line = f"listener {port} {LAN}"
        elif line.startswith("listener "):
            line = f"listener {port} 127.0.0.1"
        if line.startswith("persistence_location "):
            line = f"persistence_location {workdir}/data/"
        if line.startswith("password_file "):
            line = f"password_file {workdir}/passwd"
        lines.append(line)
    return "\n".join(lines) + "\n"


@dataclass
class Mosquitto:
    """Mosquitto in the foreground with one shipped config, restartable with the same data."""

    binary: str
    conf: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


@pytest.fixture(params=sorted(CONFS))
def shipped(request: pytest.FixtureRequest) -> Iterator[tuple[str, Path, Path]]:
    """(name, shipped config, a work folder Mosquitto's own user can write in)."""
    mosquitto_or_skip("needs Mosquitto: this starts it with the shipped configs")
    workdir = make_workdir()
    (workdir / "data").mkdir()
    (workdir / "data").chmod(0o777)  # Mosquitto started as root drops to its own user
    yield request.param, CONFS[request.param], workdir
    shutil.rmtree(workdir, ignore_errors=True)


def start(shipped: tuple[str, Path, Path], *, lan: bool = False) -> Mosquitto:
    _name, conf, workdir = shipped
    port = free_port()
    local = workdir / "mosquitto.conf"
    local.write_text(localised(conf, workdir, port, lan=lan))
    broker = Mosquitto(mosquitto_or_skip(""), local, port, workdir / "mosquitto.log")
    broker.start()
    return broker


@dataclass
class Client:
    """An MQTT 5 client on its own network thread, with what it received."""

    paho: mqtt.Client
    reason: int  # CONNACK's reason code: 0 accepted, 135 not authorised
    got: list[bytes]

    def subscribe(self, topic: str) -> None:
        subscribed = threading.Event()
        self.paho.on_subscribe = lambda *_a: subscribed.set()
        self.paho.subscribe(topic, qos=1)
        assert subscribed.wait(5), f"no SUBACK for {topic}"

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


def connect(
    port: int,
    client_id: str,
    *,
    host: str = "127.0.0.1",
    user: tuple[str, str] | None = None,
    keep_session: bool = False,
) -> Client:
    """Connect and wait for the broker's answer; `keep_session` as the coach does (clean start
    off, a session that outlives the connection)."""
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5)
    client = Client(paho, -1, [])
    answered = threading.Event()

    def on_connect(_c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        client.reason = int(getattr(reason, "value", 0))
        answered.set()

    paho.on_connect = on_connect
    paho.on_message = lambda _c, _u, msg: client.got.append(bytes(msg.payload))
    if user is not None:
        paho.username_pw_set(*user)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600 if keep_session else 0
    paho.connect(host, port, clean_start=not keep_session, properties=properties)
    paho.loop_start()
    assert answered.wait(5), "no CONNACK"
    return client


def test_the_shipped_config_keeps_retained_messages_and_queued_ones_across_a_restart(
    shipped: tuple[str, Path, Path],
) -> None:
    broker = start(shipped)
    try:
        # The coach's way: a persistent session subscribed at QoS 1, then away.
        coach = connect(broker.port, "coach", keep_session=True)
        coach.subscribe("home/kitchen/coffee")
        coach.close()
        device = connect(broker.port, "device")
        device.paho.publish("sleepcoach/status", b"online", qos=1, retain=True).wait_for_publish(5)
        device.paho.publish("home/kitchen/coffee", b"brew", qos=1).wait_for_publish(5)
        device.close()

        broker.stop()
        broker.start()

        watcher = connect(broker.port, "watcher")
        watcher.subscribe("sleepcoach/status")
        assert eventually(lambda: watcher.got == [b"online"]), "the retained message was lost"
        watcher.close()
        coach = connect(broker.port, "coach", keep_session=True)
        assert eventually(lambda: coach.got == [b"brew"]), "the session's queue was lost"
        coach.close()
    finally:
        broker.stop()
    log = broker.log.read_text(errors="replace")
    assert "Error" not in log, log
    assert list((shipped[2] / "data").iterdir()), "nothing saved in the data directory"


def test_the_commented_lan_listener_wants_a_password_and_loopback_stays_open(
    shipped: tuple[str, Path, Path],
) -> None:
    workdir = shipped[2]
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(workdir / "passwd"), "kitchen-plug", "secret"],
        check=True,
    )
    (workdir / "passwd").chmod(0o644)  # read by Mosquitto's own user, in this temporary folder
    broker = start(shipped, lan=True)
    try:
        stranger = connect(broker.port, "stranger", host=LAN)
        stranger.close()
        assert stranger.reason == 135, "the LAN listener let an anonymous client in"
        plug = connect(broker.port, "plug", host=LAN, user=("kitchen-plug", "secret"))
        plug.close()
        assert plug.reason == 0
        coach = connect(broker.port, "coach")
        coach.close()
        assert coach.reason == 0, "the loopback listener no longer lets the coach in"
    finally:
        broker.stop()


def test_each_config_says_where_it_belongs_and_keeps_its_data_there() -> None:
    def lines(name: str, key: str) -> list[str]:
        return [x for x in CONFS[name].read_text().splitlines() if x.startswith(f"{key} ")]

    host, container = CONFS["host"].read_text(), CONFS["container"].read_text()
    assert "/etc/mosquitto/mosquitto.conf" in host.split("\n\n")[0]
    assert lines("host", "listener") == ["listener 1883 127.0.0.1"]
    assert lines("host", "persistence_location") == ["persistence_location /var/lib/mosquitto/"]
    assert "/mosquitto/config/mosquitto.conf" in container.split("\n\n")[0]
    assert lines("container", "persistence_location") == ["persistence_location /mosquitto/data/"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mosquitto = compose["services"]["mosquitto"]
    assert mosquitto["ports"] == ["127.0.0.1:1883:1883"]
    assert (
        "./config/mosquitto-container.conf:/mosquitto/config/mosquitto.conf:ro"
        in (mosquitto["volumes"])
    )
    assert any(v.startswith("mosquitto-data:/mosquitto/data") for v in mosquitto["volumes"])


def test_both_configs_carry_the_same_settings_apart_from_where_they_run() -> None:
    def settings(conf: Path) -> dict[str, str]:
        found = {}
        for line in conf.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, _, value = line.partition(" ")
                if key not in ("listener", "persistence_location", "log_type"):
                    found[key] = value
        return found

    assert settings(CONFS["host"]) == settings(CONFS["container"])
