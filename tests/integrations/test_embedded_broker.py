"""The embedded broker: loopback only, MQTT 3.1.1, and the coach's named session kept across a
restart (amqtt 0.12.1's own session plugin lost most of it; see embedded_broker.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
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


def _subscriber(port: int, topic: str, got: list[bytes], *, client_id: str = "sub") -> mqtt.Client:
    """A clean-session QoS 0 subscriber that collects payloads; connected and subscribed."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv311)
    subscribed = threading.Event()
    client.on_message = lambda _c, _u, msg: got.append(msg.payload)
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(topic, 0)
    assert subscribed.wait(5), "no SUBACK"
    return client


def _wait_for(check: Callable[[], bool], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not check() and time.monotonic() < end:
        time.sleep(0.02)


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _remaining_length(len(body)) + body


def _string(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def _publish_once(port: int, client_id: str, topic: str, payload: bytes) -> None:
    """What `mosquitto_pub -t TOPIC -m PAYLOAD` does, by hand in MQTT 3.1.1: CONNECT, wait for
    the CONNACK, PUBLISH at QoS 0 and DISCONNECT, close, reading nothing else the broker sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        connect = _string("MQTT") + b"\x04\x02\x00\x3c" + _string(client_id)  # clean, 60 s
        sock.sendall(_packet(0x10, connect))
        assert sock.recv(4) == b"\x20\x02\x00\x00", "no CONNACK"
        sock.sendall(_packet(0x30, _string(topic) + payload) + b"\xe0\x00")


def test_1000_qos0_messages_each_from_its_own_connection_all_arrive_in_order(
    embedded: EmbeddedBroker,
) -> None:
    # The README's try-it-out: the coach and `mosquitto_sub` subscribed, the coach's retained
    # state on the broker, and `mosquitto_pub` publishing. amqtt 0.12.1 sent each publisher the
    # retained state it had not asked for; the publisher closed with it unread, the connection
    # was reset, and its message was lost (586 of 1,000 arrived here, out of order).
    got: list[bytes] = []
    watcher: list[bytes] = []
    coach = _subscriber(embedded.port, "dev/x", got, client_id="coach")
    coach.publish("sc/alex/state", b"{}", qos=1, retain=True).wait_for_publish(5)
    other = _subscriber(embedded.port, "sc/#", watcher, client_id="watcher")
    try:
        for n in range(1000):
            _publish_once(embedded.port, f"pub{n}", "dev/x", str(n).encode())
        _wait_for(lambda: len(got) >= 1000, 30)
        assert [int(p) for p in got] == list(range(1000))
    finally:
        for client in (coach, other):
            client.disconnect()
            client.loop_stop()


def test_a_client_gets_only_the_retained_messages_of_its_own_subscriptions(
    embedded: EmbeddedBroker,
) -> None:
    # amqtt 0.12.1 sent a connecting client the retained messages matching *any* client's
    # subscription: a device publishing on loopback got each person's retained state.
    watcher: list[bytes] = []
    other = _subscriber(embedded.port, "sc/#", watcher, client_id="watcher")
    other.publish("sc/alex/state", b"private", qos=1, retain=True).wait_for_publish(5)
    _wait_for(lambda: bool(watcher), 5)
    try:
        device: list[bytes] = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, "device", protocol=mqtt.MQTTv311)
        client.on_message = lambda _c, _u, msg: device.append(msg.payload)
        client.connect("127.0.0.1", embedded.port)
        client.loop_start()
        time.sleep(1.0)  # time for the broker to send what it would send
        client.disconnect()
        client.loop_stop()
        assert device == []
        late: list[bytes] = []
        sub = _subscriber(embedded.port, "sc/alex/state", late, client_id="late")
        _wait_for(lambda: bool(late), 5)
        sub.disconnect()
        sub.loop_stop()
        assert late == [b"private"]  # a subscriber of the topic still gets it
    finally:
        other.disconnect()
        other.loop_stop()


def test_a_subscription_made_while_a_client_takes_its_retained_messages_drops_no_one(
    embedded: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    # amqtt 0.12.1 walked its subscriptions while awaiting the sending of a returning client's
    # retained messages; a subscription made meanwhile raised "dictionary changed size during
    # iteration" there, and asyncio closed that client's connection (a publisher's message
    # with it). A client that does not read for a moment keeps that walk waiting.
    size, count = 1 << 20, 12
    coach = mqtt.Client(
        CallbackAPIVersion.VERSION2, "coach", protocol=mqtt.MQTTv311, clean_session=False
    )
    coach.username_pw_set("coach")  # a named, persistent session: its subscription is kept
    coach.connect("127.0.0.1", embedded.port)
    coach.loop_start()
    coach.subscribe("big/#", 0)
    for n in range(count):
        coach.publish(f"big/{n}", b"x" * size, qos=1, retain=True).wait_for_publish(10)
    coach.disconnect()
    coach.loop_stop()

    # The coach comes back on a small receive window, reading nothing yet.
    back = socket.socket()
    back.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    back.settimeout(10)
    back.connect(("127.0.0.1", embedded.port))
    connect = _string("MQTT") + b"\x04\x80\x00\x3c" + _string("coach") + _string("coach")
    back.sendall(_packet(0x10, connect))  # user name, persistent session, keepalive 60 s
    time.sleep(0.5)
    got: list[bytes] = []
    other = _subscriber(embedded.port, "new/#", got, client_id="other")
    try:
        received = 0
        while received < count * size:  # CONNACK, then the retained messages
            chunk = back.recv(65536)
            assert chunk, "the broker closed the returning client's connection"
            received += len(chunk)
        back.sendall(b"\xc0\x00")  # PINGREQ: the connection is still served
        tail = b""
        while not tail.endswith(b"\xd0\x00"):
            chunk = back.recv(65536)
            assert chunk, "the broker closed the returning client's connection"
            tail = (tail + chunk)[-2:]
        assert "dictionary changed size" not in caplog.text
    finally:
        back.sendall(b"\xe0\x00")
        back.close()
        other.disconnect()
        other.loop_stop()
