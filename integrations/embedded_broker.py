"""The embedded MQTT broker for a first run: amqtt in a thread of the coach's own process.

How it works: `EmbeddedBroker.start()` runs an asyncio loop in a daemon thread and starts an
amqtt 0.12.1 broker on it, listening on 127.0.0.1 only. What was measured on amqtt (and checked
again for this module, see docs/daemon.md) decides the settings:

- It speaks MQTT 3.1.1 only (MQTT 5 is refused), so the coach connects to it with 3.1.1 and a
  persistent session (clean session off).
- Its default listener binds every interface; the listener here binds 127.0.0.1 explicitly.
- An anonymous persistent session loses what was published while it was away; a *named* client
  with the session database plugin keeps it. Devices may connect without a user name (a first
  run should not need accounts); `LoopbackAuthPlugin` marks only those anonymous, so the coach's
  named session is the one persisted (in SQLite next to the coach's data).
- `LoopbackBroker` works around two defects of amqtt 0.12.1's broker, each reproduced by a test
  in tests/integrations/test_embedded_broker.py:
  - it sent every connecting client the retained messages matching *any* client's subscription:
    a device got each person's retained state, and `mosquitto_pub`, which does not read what it
    did not ask for, closed its connection with those bytes unread; the kernel then resets the
    connection, and amqtt's reader (asyncio's) drops what it had received and not yet parsed: the
    message. The README's try-it-out (`mosquitto_sub` subscribed, `mosquitto_pub` publishing)
    showed nothing. A client now gets only the retained messages of its own subscriptions.
  - it walked its subscriptions while awaiting the sending of a returning client's retained
    messages; a subscription made or expired meanwhile raised "dictionary changed size during
    iteration", and asyncio closed that client's connection. The walk now runs over a copy.
- A client that closes its connection with unread bytes (a broker message it never read) still
  loses what amqtt had not parsed yet: the reset discards it. Mosquitto reads and handles what
  it received first.

It is meant for trying sleepcoach out where Mosquitto is not installed (~2,000 messages/s at QoS
0, ~1,200 at QoS 1 in the same process); it stops with the coach and loses what it had accepted
and not yet delivered. Where Mosquitto is installed the coach starts that instead
(`integrations.mosquitto`); docs/daemon.md compares the two.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.broker import Broker
from amqtt.contrib.persistence import SessionDBPlugin
from amqtt.plugins.authentication import BaseAuthPlugin

from integrations.broker import HOST, PORT, port_state
from integrations.data_dir import private_dir, private_sqlite
from integrations.error import ProjectError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
DATABASE = "embedded-broker.db"


class EmbeddedBrokerError(ProjectError):
    """The embedded broker could not start (most often: the port is taken)."""


class LoopbackAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Accept every client on the loopback listener; only those without a user name are anonymous.

    amqtt's own anonymous plugin marks every session anonymous, and its session database plugin
    does not persist anonymous sessions: the coach's queued messages would be lost on a restart.
    """

    async def authenticate(self, *, session: Any) -> bool:
        """Accept; remember whether the client named itself."""
        session.is_anonymous = not session.username
        return True

    @dataclass
    class Config:
        """No options."""


class SerialSessionDBPlugin(SessionDBPlugin):  # type: ignore[misc]
    """amqtt's session database, with the messages queued for an offline client stored in turn.

    amqtt 0.12.1 fires one task per queued message, and each reads the session's list of queued
    messages, appends one and writes the list back: concurrent tasks overwrite each other, and
    after a broker restart the coach got 2-4 of 20 messages sent while it was away (measured
    here). A lock around that read-modify-write keeps them all.
    """

    def __init__(self, context: Any) -> None:
        """Set up the plugin and its lock."""
        super().__init__(context)
        self._queue_lock = asyncio.Lock()

    async def on_broker_retained_message(
        self, *, client_id: str | None, retained_message: Any
    ) -> None:
        """Store one queued or retained message, one at a time."""
        async with self._queue_lock:
            await super().on_broker_retained_message(
                client_id=client_id, retained_message=retained_message
            )


class _CopyIteratedDict(dict[str, Any]):
    """A dict whose iteration runs over a copy, so the dict may change while a loop awaits."""

    def __iter__(self) -> Iterator[str]:
        """The keys as they are now."""
        return iter(list(super().keys()))

    def items(self) -> Any:
        """The items as they are now (a list, not a live view)."""
        return list(super().items())


class LoopbackBroker(Broker):  # type: ignore[misc]
    """amqtt's broker with the defects listed in this module's docstring worked around."""

    def __init__(self, config: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        """amqtt's broker, its subscriptions in a dict that iterates over a copy."""
        super().__init__(config, loop=loop)
        self._subscriptions = _CopyIteratedDict()

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        """amqtt's, and the connection closed when its handling ends, however it ends."""
        try:
            await super().stream_connected(reader, writer, listener_name)
        finally:
            # amqtt closes it only after a successful flush: a connection the client had reset
            # stayed open (socket and transport) until garbage collection.
            writer.close()

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Any
    ) -> None:
        """Send the retained messages of a subscription, if it is the session's own."""
        topic_filter = subscription[0]
        mine = self._subscriptions.get(topic_filter, ())
        if any(sub.client_id == session.client_id for sub, _qos in mine):
            await super()._publish_retained_messages_for_subscription(subscription, session)


class EmbeddedBroker:
    """amqtt on 127.0.0.1, in its own thread and event loop."""

    def __init__(self, data_dir: Path, host: str = HOST, port: int = PORT) -> None:
        """Prepare; the session database goes into `data_dir`."""
        self.host = host
        self.port = port
        self.data_dir = data_dir
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    def config(self) -> dict[str, Any]:
        """amqtt's configuration: one loopback listener, our auth, the session database."""
        db = self.data_dir / DATABASE
        return {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self.port}"},
            },
            "plugins": {
                "integrations.embedded_broker.LoopbackAuthPlugin": {},
                "integrations.embedded_broker.SerialSessionDBPlugin": {
                    "connection": f"sqlite+aiosqlite:///{db}",
                    "clear_on_shutdown": False,
                },
            },
        }

    def start(self) -> None:
        """Start and wait until it listens; a clear error when the port is taken."""
        if port_state(self.host, self.port, timeout=0.5) != "free":
            msg = (
                f"cannot start the embedded MQTT broker: port {self.port} on {self.host} is "
                "taken by another program; stop it, or set mqtt.url to a broker"
            )
            raise EmbeddedBrokerError(msg)
        private_dir(self.data_dir)
        private_sqlite(self.data_dir / DATABASE)  # its sessions and queued messages: owner-only
        self._loop = asyncio.new_event_loop()
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="embedded-broker", daemon=True
        )
        self._thread.start()
        try:
            ready.result(timeout=START_TIMEOUT_S)
        except OSError as err:
            msg = f"cannot start the embedded MQTT broker on {self.host}:{self.port}: {err}"
            raise EmbeddedBrokerError(msg) from err
        except Exception as err:
            raise EmbeddedBrokerError(f"the embedded MQTT broker failed to start: {err}") from err
        log.info(
            "embedded MQTT broker (amqtt, MQTT 3.1.1) listening on %s:%d", self.host, self.port
        )

    def _serve(self, ready: Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            with warnings.catch_warnings():
                # amqtt 0.12.1 warns about its own deprecated internals at start.
                warnings.simplefilter("ignore", DeprecationWarning)
                self._broker = LoopbackBroker(self.config(), loop=loop)
                loop.run_until_complete(self._broker.start())
        except BaseException as err:
            ready.set_exception(err)
            loop.close()
            return
        ready.set_result(None)
        loop.run_forever()
        # What amqtt left running (its plugins' database sessions, client handlers) is cancelled
        # and let finish, so that it closes its connections and files before the loop closes.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def stop(self, timeout: float = 3.0) -> None:
        """Shut the broker down (its session database keeps queued messages)."""
        loop, broker = self._loop, self._broker
        if loop is None or broker is None or not loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)
        try:
            future.result(timeout)
        except Exception:
            log.warning("the embedded broker did not shut down cleanly", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
