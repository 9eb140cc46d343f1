"""The MQTT adapter: one paho-mqtt 2 client, its network thread, and nothing else.

How it works: `BrokerLink` owns a paho client and a thread of its own that connects, runs paho's
`loop()`, and reconnects after a loss with capped exponential backoff and jitter. paho objects
stay in this module: a received message is handed over as a `Message` (topic, bytes, packet id,
the connection it came on) to a callback that only puts it on the daemon's inbox.

Settings that were measured to matter (see docs/daemon.md):

- MQTT 5 with clean start off and a session expiry of at least a day: the broker queues what
  devices publish while the coach is away. (Expiry 0, the default, silently drops it all.)
- Manual acknowledgement: a QoS 1 message is acknowledged only when the daemon has stored it
  (`ack`), so a crash between receipt and storage loses nothing; the broker sends it again.
  An acknowledgement is only sent on the connection the message arrived on: after a reconnect
  the broker resends unacknowledged messages (DUP set, same packet id) and the old ids may
  already name other messages.
- TCP_NODELAY on the socket: paho never sets it and Nagle's algorithm then holds small packets
  (a nudge, a PUBACK) back for tens of milliseconds.
- Last will `<prefix>/status = offline` (retained); `online` is published once subscribed.
- A connection counts as up only after a successful CONNACK; a refusal is reported with the
  broker's reason code. The state is logged once per transition, not per retry.
- One client id, one coach. A second client connecting with our client id takes our session
  (MQTT 5 tells us: DISCONNECT with reason 0x8E, session taken over; MQTT 3.1.1 just closes the
  connection). A coach whose session is taken after it had held it for `TAKEOVER_GRACE_S` takes
  it back once at once and says so; one whose session is taken within that time of connecting
  (the newcomer, when the other takes it back), or whose connection the broker closed right
  after accepting it `QUICK_DROPS` times in a row without giving a reason (a DISCONNECT with
  another reason, such as a packet too large, is not this), stops and says why
  (`SessionTakenError`): the two never fight over the session silently, and the coach that was
  there first goes on.

Writes from other threads (publish, ack) are queued by paho and written by the network thread:
registering a no-op `on_socket_register_write` stops paho from writing on the caller's thread,
which would race with the network thread on the same socket.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from integrations.error import ProjectError

log = logging.getLogger(__name__)

# Reconnect backoff: 0.5 s doubling to 30 s, each wait drawn from [d/2, d] ("equal jitter"), so
# a house full of clients does not hammer a restarted broker in lockstep.
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
# The broker may send this many unacknowledged QoS 1 messages at once (MQTT 5 Receive Maximum).
# Acknowledgements wait for a storage commit, so the window must cover a whole batch.
RECEIVE_MAXIMUM = 2000

# CONNACK reason codes (MQTT 5 §3.2.2.2) that no retry will fix: wrong credentials, a banned or
# malformed client id, a protocol the broker does not speak.
UNSUPPORTED_PROTOCOL = 0x84
# A broker that accepted the TCP connection but sent no CONNACK within this is given up on.
CONNACK_TIMEOUT_S = 5.0
FATAL_CONNACK = frozenset({0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C, 0x8F})
# MQTT 5 DISCONNECT reason: another client connected with our client id.
SESSION_TAKEN_OVER = 0x8E
# A session taken within this many seconds of our CONNACK was taken back by a client that holds
# on to it; so was one whose connection ended this soon, QUICK_DROPS times in a row (MQTT 3.1.1,
# and brokers such as Mosquitto 2.0.11 that close the old connection without a reason). Two
# clients taking a session back and forth hold it for the reconnect delay each (0.25-0.5 s).
TAKEOVER_GRACE_S = 5.0
QUICK_DROPS = 3
# paho's log lines for a failed socket read. A TLS alert from the broker (it wants a client
# certificate, or does not trust ours) arrives this way: paho logs it at ERROR on every retry and
# reports only "connection lost". The link puts it in its own "broker unavailable" line instead,
# once per transition, and keeps paho's line at debug.
SOCKET_ERRORS = ("failed to receive on socket", "timeout on socket")


class MqttError(ProjectError):
    """Talking to the broker failed."""


class BrokerRefusedError(MqttError):
    """The broker answered CONNECT with a failure reason code."""

    def __init__(self, code: int, reason: str, where: str) -> None:
        """Keep the broker's reason code."""
        super().__init__(
            f"the broker at {where} refused the connection: {reason} (reason code {code})"
        )
        self.code = code
        self.reason = reason


class SessionTakenError(MqttError):
    """Another client connects with our client id and holds on to the session."""

    def __init__(self, client_id: str, where: str, how: str) -> None:
        """Say what happened (`how`), whose session and the cure."""
        super().__init__(
            f"{how}: another client, most likely a second coach, connects to {where} with the "
            f"same client id {client_id!r} and takes this coach's MQTT session and the messages "
            "queued for it. This coach stops rather than fight over the session: give each "
            "coach its own mqtt.client_id, or leave it unset for one derived from the host and "
            "the config file"
        )
        self.client_id = client_id


@dataclass(frozen=True, slots=True)
class Message:
    """A message as the network thread hands it over."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    dup: bool
    retain: bool
    received_at: datetime
    connection: int  # which connection it came on; acks go only to that one


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Everything the link needs to know about the broker and the session."""

    host: str
    port: int
    client_id: str
    status_topic: str
    subscriptions: Sequence[str]
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    mqtt5: bool = True
    # A probe (`run --check`): a clean session of its own, no last will, no `online`.
    probe: bool = False

    @property
    def where(self) -> str:
        """host:port, for messages (never the credentials)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_url(url: str) -> tuple[str, int, bool]:
    """Host, port and TLS from `mqtt://host:port` or `mqtts://host:port`."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        msg = f"mqtt.url {url!r}: expected mqtt://host:port, mqtts://host:port or embedded"
        raise MqttError(msg)
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as err:
        raise MqttError(f"mqtt.url {url!r}: the port is not a number") from err
    if not parts.hostname:
        raise MqttError(f"mqtt.url {url!r}: no host name")
    return parts.hostname, port, tls


class _PahoLog(logging.LoggerAdapter[logging.Logger]):
    """paho's logger for one link: socket errors go to the link, at debug to the log."""

    def __init__(self, link: BrokerLink) -> None:
        super().__init__(logging.getLogger("integrations.mqtt.paho"))
        self._link = link

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        """What paho's `_easy_log` calls for every line."""
        if level >= logging.ERROR and isinstance(msg, str) and msg.startswith(SOCKET_ERRORS):
            self._link._socket_error = msg % args
            level = logging.DEBUG
        elif self._link._taken_over:  # paho's complaints about the closed socket: said already
            level = min(level, logging.DEBUG)
        super().log(level, msg, *args, **kwargs)


def _nodelay(_client: Any, _userdata: Any, sock: Any) -> None:
    """Disable Nagle's algorithm: a nudge or an ack is sent at once, not ~40 ms later."""
    # Not a TCP socket (a test double, a unix socket): nothing to tune.
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class BrokerLink:
    """A paho client on its own network thread: connect, subscribe, hand over, reconnect."""

    def __init__(
        self,
        settings: LinkSettings,
        deliver: Callable[[Message], None],
        on_published: Callable[[int], None] | None = None,
        on_session_lost: Callable[[SessionTakenError], None] | None = None,
    ) -> None:
        """Prepare the client; `deliver` gets every message (on the network thread),
        `on_session_lost` the reason when another client took our session for good (the link
        has stopped then)."""
        self.settings = settings
        self._deliver = deliver
        self._on_published = on_published
        self._on_session_lost = on_session_lost
        self._session_lost: SessionTakenError | None = None
        self._taken_over = False  # an MQTT 5 DISCONNECT 0x8E on this connection
        self._server_reason = False  # another reason the broker gave for closing this one
        self._connected_at: float | None = None  # when this connection's CONNACK accepted us
        self._quick_drops = 0
        self._stop = threading.Event()
        self._up = threading.Event()
        self._lock = threading.Lock()
        self._connection = 0  # increases on every accepted CONNACK
        self._refused: BrokerRefusedError | None = None
        self._ever_up = False
        self._down_logged = False
        self._up_since_connect = False
        self._downgrade = False
        self._connack = False
        self._socket_error: str | None = None  # paho's last failed read on this connection
        self._last_error: str | None = None  # why the last attempt failed, until one succeeds
        self._thread: threading.Thread | None = None
        self._client = self._make_client()

    def _make_client(self) -> paho.Client:
        s = self.settings
        protocol = MQTTProtocolVersion.MQTTv5 if s.mqtt5 else MQTTProtocolVersion.MQTTv311
        kwargs: dict[str, Any] = {}
        if not s.mqtt5:
            kwargs["clean_session"] = s.probe  # MQTT 3.1.1's persistent session unless probing
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=protocol,
            manual_ack=True,
            **kwargs,
        )
        # paho only calls `.log(level, fmt, *args)` on it, which the adapter has.
        client.enable_logger(cast(logging.Logger, _PahoLog(self)))
        client.on_socket_open = _nodelay
        # Writes happen on the network thread only (see the module docstring).
        client.on_socket_register_write = lambda *_args: None
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        if not s.probe:
            client.will_set(s.status_topic, b"offline", qos=1, retain=True)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            files = [
                (f"mqtt.{option}", path)
                for option, path in (
                    ("ca_file", s.ca_file),
                    ("cert_file", s.cert_file),
                    ("key_file", s.key_file),
                )
                if path is not None
            ]
            for option, path in files:
                if not Path(path).is_file():
                    msg = f"cannot set up TLS for {s.where}: {option} {path}: no such file"
                    raise MqttError(msg)
            try:
                client.tls_set(ca_certs=s.ca_file, certfile=s.cert_file, keyfile=s.key_file)
            except (OSError, ssl.SSLError, ValueError) as err:
                named = ", ".join(f"{option} {path}" for option, path in files) or "system CAs"
                raise MqttError(f"cannot set up TLS for {s.where} ({named}): {err}") from err
        return client

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the network thread; it connects and keeps reconnecting until `stop`."""
        self._thread = threading.Thread(target=self._run, name="mqtt-network", daemon=True)
        self._thread.start()

    def wait_up(self, timeout: float, cancel: threading.Event | None = None) -> bool:
        """Wait until connected and subscribed, or until `cancel` is set (a SIGTERM at start);
        raise when the broker refused us for good."""
        end = time.monotonic() + timeout
        while True:
            refused = self._refused
            if refused is not None and refused.code in FATAL_CONNACK:
                raise refused
            if self._session_lost is not None:
                raise self._session_lost
            left = end - time.monotonic()
            if left <= 0 or (cancel is not None and cancel.is_set()):
                return self._up.is_set()
            if self._up.wait(min(0.05, left)):
                return True

    @property
    def is_up(self) -> bool:
        """Connected, subscribed and announced online."""
        return self._up.is_set()

    @property
    def last_error(self) -> str | None:
        """Why the link is not up (cannot connect, connection lost), when it is not."""
        return None if self._up.is_set() else self._last_error

    @property
    def session_lost(self) -> SessionTakenError | None:
        """Why the link gave up: another client holds our session (None while it has not)."""
        return self._session_lost

    @property
    def refused(self) -> BrokerRefusedError | None:
        """The last refusal, when the broker refused the connection."""
        return self._refused

    def stop(self, timeout: float = 2.0) -> None:
        """Publish `offline`, disconnect cleanly (no last will), stop the thread."""
        if self._up.is_set() and not self.settings.probe:
            info = self._client.publish(self.settings.status_topic, b"offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=min(timeout, 1.0))
        self._stop.set()
        try:
            self._client.disconnect()
        except Exception:  # shutting down: nothing useful to do with it
            log.debug("disconnect failed", exc_info=True)
        if self._thread is not None:
            self._thread.join(timeout)
        self._up.clear()

    # -- the network thread -------------------------------------------------------------------

    def _run(self) -> None:
        delay = BACKOFF_MIN_S
        first = True
        while not self._stop.is_set():
            try:
                self._connect(first)
                first = False
            except (OSError, ssl.SSLError) as err:
                self._went_down(f"cannot connect: {err}")
                self._sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            rc = MQTTErrorCode.MQTT_ERR_SUCCESS
            self._connack = False
            self._connected_at = None
            self._taken_over = False
            self._server_reason = False
            self._socket_error = None
            asked = time.monotonic()
            while not self._stop.is_set() and rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = self._client.loop(timeout=0.5)
                if not self._connack and time.monotonic() - asked > CONNACK_TIMEOUT_S:
                    self._client.disconnect()
                    rc = MQTTErrorCode.MQTT_ERR_CONN_LOST
            if self._stop.is_set():
                break
            failed = self._socket_error
            if not self._connack and self.settings.mqtt5 and not self._ever_up and not failed:
                # amqtt 0.12.1 chokes on an MQTT 5 CONNECT with a will and never answers.
                # (A failed read, such as a TLS alert, is an answer: no protocol to blame.)
                log.warning(
                    "no answer to an MQTT 5 CONNECT from %s: trying MQTT 3.1.1",
                    self.settings.where,
                )
                self._downgrade = True
            if self._downgrade:
                self._downgrade = False
                self.settings = replace(self.settings, mqtt5=False)
                self._client = self._make_client()
                first = True
                continue
            lost = self._session_taken()
            if lost is not None:
                self._give_up(lost)
                return
            if self._taken_over:  # it was ours for a while: take it back at once (said)
                self._up.clear()
                self._last_error = "the session was taken over by another client"
                delay = BACKOFF_MIN_S
                continue
            if self._refused is None:
                self._went_down(f"connection lost ({failed or paho.error_string(rc)})")
            if self._was_up_recently():
                delay = BACKOFF_MIN_S
            self._sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    def _session_taken(self) -> SessionTakenError | None:
        """After a connection ended: whether another client holds on to our session."""
        if self._connected_at is None:  # never accepted: a refusal or a broker going away
            return None
        held = time.monotonic() - self._connected_at
        s = self.settings
        if self._taken_over:
            if held < TAKEOVER_GRACE_S:
                how = (
                    f"the broker handed this coach's session to another client {held:.1f} s "
                    "after this coach connected (MQTT 5 disconnect reason 0x8E, session taken "
                    "over)"
                )
                return SessionTakenError(s.client_id, s.where, how)
            log.warning(
                "another client connected to %s with this coach's client id %r and took its "
                "session (MQTT 5 disconnect reason 0x8E, session taken over): taking it back; "
                "a second coach with the same client id stops when it sees this",
                s.where,
                s.client_id,
            )
            self._quick_drops = 0
            return None
        if held >= TAKEOVER_GRACE_S or self._server_reason:
            self._quick_drops = 0
            return None
        self._quick_drops += 1
        if self._quick_drops < QUICK_DROPS:
            return None
        how = (
            f"the broker at {s.where} closed this coach's connection right after accepting it "
            f"{self._quick_drops} times in a row (within {TAKEOVER_GRACE_S:g} s each)"
        )
        return SessionTakenError(s.client_id, s.where, how)

    def _give_up(self, lost: SessionTakenError) -> None:
        """Stop for good: another client holds our session."""
        self._session_lost = lost
        self._up.clear()
        log.error("%s", lost)
        if self._on_session_lost is not None:
            self._on_session_lost(lost)

    def _was_up_recently(self) -> bool:
        with self._lock:
            up = self._up_since_connect
            self._up_since_connect = False
        return up

    def _connect(self, first: bool) -> None:
        s = self.settings
        if first:
            if s.mqtt5:
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = 0 if s.probe else s.session_expiry_s
                props.ReceiveMaximum = RECEIVE_MAXIMUM
                self._client.connect(
                    s.host, s.port, s.keepalive_s, clean_start=s.probe, properties=props
                )
            else:
                self._client.connect(s.host, s.port, s.keepalive_s)
        else:
            self._client.reconnect()

    def _sleep(self, delay: float) -> None:
        self._stop.wait(random.uniform(delay / 2, delay))

    def _went_down(self, why: str) -> None:
        self._last_error = why
        was_up = self._up.is_set()
        self._up.clear()
        if was_up or not self._down_logged:
            log.warning("broker unavailable at %s: %s; retrying", self.settings.where, why)
            self._down_logged = True

    # -- paho callbacks (network thread) ------------------------------------------------------

    def _on_connect(
        self, client: paho.Client, _u: Any, flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        self._connack = True
        if reason.is_failure and reason.value == UNSUPPORTED_PROTOCOL and self.settings.mqtt5:
            # An MQTT 3.1.1-only broker (amqtt, old Mosquitto): its persistent session is
            # clean_session=false, which keeps what was queued as well (no expiry to set).
            log.warning(
                "the broker at %s does not speak MQTT 5: using MQTT 3.1.1", self.settings.where
            )
            self._downgrade = True
            return
        if reason.is_failure:
            refused = BrokerRefusedError(reason.value, str(reason), self.settings.where)
            if self._refused is None or self._refused.code != refused.code:
                log.error("%s", refused)
            self._refused = refused
            self._up.clear()
            return
        self._refused = None
        self._connected_at = time.monotonic()
        with self._lock:
            self._connection += 1
        if self.settings.probe:
            self._up.set()
            return
        if not getattr(flags, "session_present", False):
            log.info("the broker has no session of ours yet: a new persistent session starts")
        topics = list(self.settings.subscriptions)
        if not topics:
            self._announce()
            return
        if self.settings.mqtt5:
            # Retained messages only for a subscription the session did not have already, so
            # a reconnect does not replay them.
            opts = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            client.subscribe([(t, opts) for t in topics])
        else:
            client.subscribe([(t, 1) for t in topics])

    def _on_subscribe(
        self, _client: paho.Client, _u: Any, _mid: int, codes: list[ReasonCode], _props: Any
    ) -> None:
        failed = [
            (t, str(c))
            for t, c in zip(self.settings.subscriptions, codes, strict=False)
            if c.is_failure
        ]
        for topic, why in failed:
            log.error("the broker refused the subscription to %s: %s", topic, why)
        self._announce()

    def _announce(self) -> None:
        self._client.publish(self.settings.status_topic, b"online", qos=1, retain=True)
        with self._lock:
            self._up_since_connect = True
        if self._ever_up:
            if self._down_logged:
                log.info("reconnected to the broker at %s", self.settings.where)
        else:
            log.info("connected to the broker at %s", self.settings.where)
        self._ever_up = True
        self._down_logged = False
        self._up.set()

    def _on_disconnect(
        self, _client: paho.Client, _u: Any, flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if self.settings.mqtt5 and reason.value == SESSION_TAKEN_OVER:
            self._taken_over = True  # the network thread says what it does about it
            return
        if getattr(flags, "is_disconnect_packet_from_server", False):
            self._server_reason = True  # a reason of its own: not a session taken over
        if not self._stop.is_set() and self._up.is_set():
            self._went_down(f"disconnected ({reason})")

    def _on_message(self, _client: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers check this; be safe anyway
            log.warning("dropped a message whose topic is not UTF-8")
            return
        self._deliver(
            Message(
                topic=topic,
                payload=bytes(msg.payload),
                qos=msg.qos,
                mid=msg.mid,
                dup=bool(msg.dup),
                retain=bool(msg.retain),
                received_at=datetime.now(UTC),
                connection=self._connection,
            )
        )

    def _on_publish(
        self, _client: paho.Client, _u: Any, mid: int, _reason: Any, _props: Any
    ) -> None:
        if self._on_published is not None:
            self._on_published(mid)

    # -- used by the consumer -----------------------------------------------------------------

    def ack(self, message: Message) -> None:
        """Acknowledge a stored message, if it came on the current connection."""
        if message.qos == 0 or message.connection != self._connection or not self._up.is_set():
            return
        self._client.ack(message.mid, message.qos)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        """Queue a message; paho sends it now or after a reconnect. Returns its packet id."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            log.warning("could not queue a message for %s: %s", topic, paho.error_string(info.rc))
        return int(info.mid)
