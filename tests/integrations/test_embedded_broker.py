"""The embedded broker: loopback only, MQTT 3.1.1, and the coach's named session kept across a
restart (amqtt 0.12.1's own session plugin lost most of it; see embedded_broker.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from integrations.broker import port_state
from integrations.embedded_broker import EmbeddedBroker, EmbeddedBrokerError
from integrations.mqtt import BrokerLink, LinkSettings, Message
from tests.broker import free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(tmp_path / "broker", port=free_port())
    broker.start()
    yield broker
    broker.stop()


def _publish(port: int, topic: str, payloads: list[bytes]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, "device", protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for payload in payloads:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def _link(port: int, got: list[Message], *, mqtt5: bool) -> BrokerLink:
    settings = LinkSettings(
        host="127.0.0.1",
        port=port,
        client_id="coach-test",
        status_topic="sleepcoach/status",
        subscriptions=["dev/x"],
        username="coach-test",
        mqtt5=mqtt5,
    )
    lock = threading.Lock()

    def deliver(msg: Message) -> None:
        with lock:
            got.append(msg)

    return BrokerLink(settings, deliver)


def test_it_answers_as_an_mqtt_broker_on_loopback_only(embedded: EmbeddedBroker) -> None:
    assert port_state("127.0.0.1", embedded.port) == "mqtt"
    assert embedded.config()["listeners"]["default"]["bind"] == f"127.0.0.1:{embedded.port}"
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in __import__("psutil").Process().net_connections("tcp")
        if c.status == "LISTEN"
    }
    assert ("127.0.0.1", embedded.port) in listening
    assert ("0.0.0.0", embedded.port) not in listening


def test_a_port_taken_by_something_else_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        # A listener that never answers MQTT.
        assert port_state("127.0.0.1", port, timeout=0.3) == "other"
        with pytest.raises(EmbeddedBrokerError, match=f"port {port} on 127.0.0.1 is taken"):
            EmbeddedBroker(tmp_path, port=port).start()


def test_the_link_falls_back_to_3_1_1_and_the_named_session_survives_a_restart(
    tmp_path: Path,
) -> None:
    port = free_port()
    broker = EmbeddedBroker(tmp_path / "broker", port=port)
    broker.start()
    got: list[Message] = []
    link = _link(port, got, mqtt5=True)  # it has to find out that this broker speaks 3.1.1 only
    link.start()
    try:
        assert link.wait_up(15)
        assert not link.settings.mqtt5
        _publish(port, "dev/x", [b"live"])
        end = time.monotonic() + 5
        while not got and time.monotonic() < end:
            time.sleep(0.02)
        for msg in got:
            link.ack(msg)
        assert [m.payload for m in got] == [b"live"]
    finally:
        link.stop()
    # Away: 20 messages queued for the named session, then the broker restarts.
    _publish(port, "dev/x", [str(n).encode() for n in range(20)])
    time.sleep(0.5)
    broker.stop()
    broker = EmbeddedBroker(tmp_path / "broker", port=port)
    broker.start()
    got.clear()
    link = _link(port, got, mqtt5=False)  # as the daemon connects to its embedded broker
    link.start()
    try:
        assert link.wait_up(10)
        end = time.monotonic() + 10
        while len(got) < 20 and time.monotonic() < end:
            time.sleep(0.05)
        assert sorted(int(m.payload) for m in got) == list(range(20))
    finally:
        link.stop()
        broker.stop()
