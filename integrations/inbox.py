"""The daemon's inbox: the one queue every producer puts on, and what they put there.

paho's network thread hands over MQTT messages and PUBACKs, APScheduler's thread timers that came
due and the daily housekeeping, Home Assistant's button listener commands, a signal handler the
stop. Each only puts an item on the queue; the consumer (`integrations.consumer`) is the one that
acts on them.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from datetime import datetime

from coach.event import Event, Timer
from integrations.mqtt import Message


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

    def __init__(self) -> None:
        """An empty inbox."""
        self.queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self.stopping = threading.Event()

    def deliver(self, message: Message) -> None:
        """paho's network thread: hand a message over, nothing more."""
        self.queue.put(message)

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
