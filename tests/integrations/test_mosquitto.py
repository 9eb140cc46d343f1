"""The coach's own Mosquitto (integrations/mosquitto.py): the shipped config's settings, a real
start on a free loopback port with owner-only files, and a failed start said and replaced by the
embedded broker. The first run through `sleepcoach run` is tested in tests/e2e/test_first_run.py."""

from __future__ import annotations

import stat
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from integrations.broker import BrokerChoice, port_state, start_broker
from integrations.config_file import ConfigFile, load_config
from integrations.embedded_broker import EmbeddedBroker
from integrations.mosquitto import TUNED, ChildMosquitto, MosquittoError
from tests.broker import ROOT, SHIPPED_CONF, free_port, mosquitto_or_skip

pytestmark = pytest.mark.timeout(60)


def _example() -> ConfigFile:
    return load_config(str(ROOT / "config" / "example.yaml"))


def test_its_settings_are_those_config_mosquitto_conf_explains() -> None:
    shipped: dict[str, str] = {}
    for line in SHIPPED_CONF.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            shipped.setdefault(key, value.strip())
    assert {key: shipped.get(key) for key in TUNED} == TUNED


@pytest.mark.mosquitto
def test_it_starts_on_loopback_with_owner_only_files_and_stops(tmp_path: Path) -> None:
    binary = mosquitto_or_skip("needs an installed Mosquitto")
    port = free_port()
    child = ChildMosquitto(binary, tmp_path / "data", "127.0.0.1", port)
    child.start()
    try:
        assert port_state("127.0.0.1", port) == "mqtt"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, "retainer", protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", port)
        client.loop_start()
        client.publish("sc/x", b"kept", qos=1, retain=True).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
    finally:
        child.stop()
    assert port_state("127.0.0.1", port, timeout=0.3) == "free"
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in child.dir.iterdir()}
    assert files == {"mosquitto.conf": 0o600, "mosquitto.db": 0o600}
    assert stat.S_IMODE(child.dir.stat().st_mode) == 0o700
    assert f"listener {port} 127.0.0.1" in (child.dir / "mosquitto.conf").read_text()


def test_one_that_cannot_start_says_why(tmp_path: Path) -> None:
    child = ChildMosquitto("/bin/false", tmp_path, "127.0.0.1", free_port())
    with pytest.raises(MosquittoError, match=r"/bin/false exited at start \(code 1\)"):
        child.start()


def test_when_mosquitto_cannot_start_the_embedded_broker_starts_instead(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    port = free_port()
    asked = BrokerChoice("127.0.0.1", port, False, "mosquitto", "no broker answers", "/bin/false")
    choice, broker = start_broker(_example(), asked, tmp_path)
    try:
        assert choice.embedded
        assert isinstance(broker, EmbeddedBroker)
        assert broker.port == port
        assert port_state("127.0.0.1", port) == "mqtt"
    finally:
        broker.stop()
    assert "/bin/false exited at start" in caplog.text
    assert "Mosquitto could not start (/bin/false): starting the embedded broker" in caplog.text
