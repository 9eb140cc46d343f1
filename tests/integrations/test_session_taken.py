"""The link's answer to MQTT 5's DISCONNECT 0x8E (session taken over).

Mosquitto 2.0, the broker the other tests run, closes the older connection without a reason
(tests/e2e/test_two_coaches.py covers that, with two real coaches); brokers from Mosquitto 2.0.12
on, EMQX and HiveMQ send 0x8E first. This test plays such a broker's part over a real socket, a
packet at a time: held a while, the session taken is taken back once, and said; taken again
right after, the link stops with the reason, naming the client id. A broker that closes each
connection right after accepting it with a reason of its own (server busy) is retried, not taken
for a second coach.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest

from integrations import mqtt
from integrations.mqtt import BrokerLink, LinkSettings, SessionTakenError
from tests.e2e.conftest import eventually

CONNACK = bytes([0x20, 0x03, 0x00, 0x00, 0x00])  # accepted, no session, no properties
TAKEN_OVER = 0x8E  # the DISCONNECT reason: session taken over
SERVER_BUSY = 0x89


def _read_packet(conn: socket.socket) -> tuple[int, bytes]:
    """One MQTT packet: its first byte and its body."""
    first = conn.recv(1)
    if not first:
        raise ConnectionError
    length, shift = 0, 0
    while True:
        byte = conn.recv(1)[0]
        length += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            raise ConnectionError
        body += chunk
    return first[0], body


class TakingBroker:
    """Accepts connections, answers CONNECT, SUBSCRIBE and QoS 1 PUBLISH as MQTT 5 says, and
    on each connection sends DISCONNECT with `reason` when the test sets `take` (or, `always`,
    as soon as the link said `online`)."""

    def __init__(self, reason: int = TAKEN_OVER, *, always: bool = False) -> None:
        self.reason = reason
        self.always = always
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.online = threading.Event()  # the link said `online` on the current connection
        self.take = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self.server.accept()
            except OSError:
                return
            self.connections += 1
            self.online.clear()
            self.take.clear()
            try:
                self._session(conn)
            except (ConnectionError, OSError, IndexError):
                pass
            finally:
                conn.close()

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        while True:
            if self.take.is_set():
                conn.sendall(bytes([0xE0, 0x02, self.reason, 0x00]))  # no properties
                return
            try:
                kind, body = _read_packet(conn)
            except TimeoutError:
                continue
            if kind >> 4 == 1:  # CONNECT
                conn.sendall(CONNACK)
            elif kind >> 4 == 8:  # SUBSCRIBE: granted QoS 1 for the one topic the link asks
                conn.sendall(bytes([0x90, 0x04]) + body[:2] + bytes([0x00, 0x01]))
            elif kind >> 4 == 3:  # PUBLISH, QoS 1: PUBACK with its packet id
                topic_len = int.from_bytes(body[:2], "big")
                conn.sendall(bytes([0x40, 0x02]) + body[2 + topic_len : 4 + topic_len])
                self.online.set()
                if self.always:
                    self.take.set()
            elif kind >> 4 == 12:  # PINGREQ
                conn.sendall(bytes([0xD0, 0x00]))

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def taking_broker() -> Iterator[TakingBroker]:
    b = TakingBroker()
    yield b
    b.close()


def test_a_session_taken_after_a_while_is_taken_back_once_and_taken_again_the_link_stops(
    taking_broker: TakingBroker, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mqtt, "TAKEOVER_GRACE_S", 0.5)  # "a while", shortened for the test
    lost: list[SessionTakenError] = []
    settings = LinkSettings(
        host="127.0.0.1",
        port=taking_broker.port,
        client_id="coach-kitchen",
        status_topic="sc/status",
        subscriptions=["home/kitchen/coffee"],
    )
    link = BrokerLink(settings, deliver=lambda _m: None, on_session_lost=lost.append)
    caplog.set_level(logging.INFO, "integrations.mqtt")
    link.start()
    try:
        assert link.wait_up(10)
        assert taking_broker.online.wait(5)
        threading.Event().wait(0.6)  # held longer than the grace: this coach was there first
        taking_broker.take.set()
        # Taken back at once, and said.
        assert eventually(lambda: taking_broker.connections == 2 and taking_broker.online.is_set())
        assert (
            "another client connected to mqtt://127.0.0.1:"
            f"{taking_broker.port} with this coach's client id 'coach-kitchen' and took its "
            "session (MQTT 5 disconnect reason 0x8E, session taken over): taking it back"
        ) in caplog.text
        assert not lost
        # Taken again right after: the other holds on to it; the link stops and says why.
        taking_broker.take.set()
        assert eventually(lambda: bool(lost))
        assert str(lost[0]).startswith("the broker handed this coach's session to another client ")
        assert (
            "s after this coach connected (MQTT 5 disconnect reason 0x8E, session taken over): "
            f"another client, most likely a second coach, connects to mqtt://127.0.0.1:"
            f"{taking_broker.port} with the same client id 'coach-kitchen'"
        ) in str(lost[0])
        assert link.session_lost is lost[0]
        assert not link.is_up
        with pytest.raises(SessionTakenError):
            link.wait_up(0.1)
        assert taking_broker.connections == 2  # it did not come back
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [str(lost[0])]
    finally:
        link.stop(timeout=1.0)


def test_a_broker_closing_with_a_reason_of_its_own_is_retried_not_taken_for_a_second_coach(
    caplog: pytest.LogCaptureFixture,
) -> None:
    busy = TakingBroker(SERVER_BUSY, always=True)  # DISCONNECT 0x89 right after each connect
    lost: list[SessionTakenError] = []
    settings = LinkSettings(
        host="127.0.0.1",
        port=busy.port,
        client_id="coach-kitchen",
        status_topic="sc/status",
        subscriptions=["home/kitchen/coffee"],
    )
    link = BrokerLink(settings, deliver=lambda _m: None, on_session_lost=lost.append)
    caplog.set_level(logging.INFO, "integrations.mqtt")
    link.start()
    try:
        assert eventually(lambda: busy.connections > mqtt.QUICK_DROPS + 1, 30), caplog.text
        assert not lost
        assert link.session_lost is None
        assert "Server busy" in caplog.text
    finally:
        link.stop(timeout=1.0)
        busy.close()
