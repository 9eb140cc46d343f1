"""The daemon's inbox: the one queue every producer puts on, and what they put there.

paho's network thread hands over MQTT messages and PUBACKs, APScheduler's thread timers that came
due and the daily housekeeping, Home Assistant's button listener commands, a signal handler the
stop. Each only puts an item on the queue; the consumer (`integrations.consumer`) is the one that
acts on them.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from coach.event import Event, Timer
from integrations.mqtt import Message

#: How many QoS 0 messages, and how many of their payload bytes, may wait for the consumer. At
#: ingest rates of a few thousand messages a second this is seconds of backlog; past it a QoS 0
#: message is dropped and counted (QoS 1 ones are bounded by the broker's Receive Maximum).
MAX_WAITING_QOS0: Final = 10_000
MAX_WAITING_QOS0_BYTES: Final = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TimerDue:
    """A core timer came due (APScheduler's thread put it here)."""

    timer: Timer


@dataclass(frozen=True, slots=True)
class ProfileTick:
    """A device profile asked to be woken (a brew held below its stop power, …)."""

    device_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Published:
    """The broker confirmed a QoS 1 publication (PUBACK) with this packet id."""

    mid: int


@dataclass(frozen=True, slots=True)
class External:
    """An event from outside MQTT (a Home Assistant button press)."""

    event: Event


@dataclass(frozen=True, slots=True)
class Housekeeping:
    """Time for the daily retention purge."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop after the batch in hand."""


Item = Message | TimerDue | ProfileTick | Published | External | Housekeeping | Stop


class Inbox:
    """The one queue every producer puts on; safe from any thread and from a signal handler."""

    def __init__(
        self,
        max_waiting_qos0: int = MAX_WAITING_QOS0,
        max_waiting_qos0_bytes: int = MAX_WAITING_QOS0_BYTES,
    ) -> None:
        """An empty inbox."""
        self.queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.max_waiting_qos0 = max_waiting_qos0
        self.max_waiting_qos0_bytes = max_waiting_qos0_bytes
        self._lock = threading.Lock()
        self._waiting_qos0 = 0
        self._waiting_qos0_bytes = 0
        self._dropped: Counter[str] = Counter()

    def deliver(self, message: Message) -> None:
        """paho's network thread: hand a message over, nothing more.

        QoS 1 messages are bounded by the broker (it sends at most Receive Maximum unacknowledged
        ones); QoS 0 messages are not, so a publisher faster than the coach would grow the queue
        without end. Past `max_waiting_qos0` messages or `max_waiting_qos0_bytes` of payload
        waiting, a QoS 0 message is dropped and counted (`take_dropped`), never queued.
        """
        if message.qos == 0:
            size = len(message.payload)
            with self._lock:
                if (
                    self._waiting_qos0 >= self.max_waiting_qos0
                    or self._waiting_qos0_bytes + size > self.max_waiting_qos0_bytes
                ):
                    self._dropped[message.topic] += 1
                    return
                self._waiting_qos0 += 1
                self._waiting_qos0_bytes += size
        self.queue.put(message)

    def taken(self, message: Message) -> None:
        """The consumer: a message left the queue (a QoS 0 one frees its place)."""
        if message.qos == 0:
            with self._lock:
                self._waiting_qos0 -= 1
                self._waiting_qos0_bytes -= len(message.payload)

    def take_dropped(self) -> dict[str, int]:
        """The QoS 0 messages dropped since the last call, per topic."""
        with self._lock:
            dropped, self._dropped = dict(self._dropped), Counter()
        return dropped

    def timer_due(self, timer: Timer) -> None:
        """APScheduler's thread: a core timer came due."""
        self.queue.put(TimerDue(timer))

    def profile_tick(self, device_id: str, at: datetime) -> None:
        """APScheduler's thread: a device profile's wake-up came due."""
        self.queue.put(ProfileTick(device_id, at))

    def published(self, mid: int) -> None:
        """paho's network thread: a publication was confirmed."""
        self.queue.put(Published(mid))

    def external(self, event: Event) -> None:
        """Another adapter's thread (Home Assistant buttons): an event for the core."""
        self.queue.put(External(event))

    def housekeeping(self) -> None:
        """APScheduler's thread: time for the daily purge."""
        self.queue.put(Housekeeping())

    def stop(self) -> None:
        """Stop after the batch in hand."""
        self.stopping.set()
        self.queue.put(Stop())
