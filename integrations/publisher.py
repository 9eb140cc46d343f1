"""What the daemon sends out, and only once the batch that owes it is stored.

The consumer hands over, as it decides, what a batch owes the outside world: the broker's acks of
its QoS 1 messages, its nudges, each person's latest state, its error records. `send` carries them
out after the commit: acks first, then each nudge on `<prefix>/<person>/nudge` (QoS 1) and to the
Home Assistant sink (its durable outbox), the states retained on `<prefix>/<person>/state`, the
error records on `<prefix>/errors`. A nudge's packet id is kept until the broker's PUBACK names it
(`confirmed`), so the consumer can mark it published; one never confirmed is sent again on start.
Home Assistant's discovery configs go out at once (`discovery`), at start and when Home Assistant
announces itself.

The live dashboard (a `Viewer`) is fed here too, after the commit and never waited for: each night
as stored in the batch, then, for each person whose state was published, a detached copy of what
its page reads (`coach.dashboard.snapshot`; the core goes on changing its own state).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from coach import dashboard as view
from coach.clock import local_iso
from coach.state import CoachState, PersonState
from integrations.error import ProjectError
from integrations.mqtt import Message

log = logging.getLogger(__name__)


class Link(Protocol):
    """What the publisher needs from the broker connection."""

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        """Queue a publication; return its packet id."""
        ...

    def ack(self, message: Message) -> None:
        """Acknowledge a stored message."""
        ...


class NudgeSink(Protocol):
    """Where nudges go besides MQTT (Home Assistant)."""

    def deliver(self, nudge: dict[str, Any], expires_at: datetime | float | None = None) -> None:
        """Queue one nudge durably."""
        ...

    def discovery_messages(self) -> list[tuple[str, str, bool]]:
        """Home Assistant's MQTT discovery configs to (re)publish: (topic, payload, retain)."""
        ...

    def withdraw(self, person: str, nudge_id: str) -> None:
        """Take back a nudge that no longer applies (clear its notification), durably queued."""
        ...


class Viewer(Protocol):
    """Where the consumer hands over what it stored and published (the live dashboard)."""

    def publish(self, person_id: str, ps: PersonState) -> None:
        """A detached copy of a person's state after a batch that changed it."""
        ...

    def record_night(self, person_id: str, summary: dict[str, Any]) -> None:
        """A night as it was stored."""
        ...


@dataclass(slots=True)
class _Owed:
    """What one batch owes the outside world once it is stored."""

    acks: list[Message] = field(default_factory=list)
    nudges: list[tuple[str, dict[str, Any], float | None]] = field(default_factory=list)
    withdrawn: list[tuple[str, str]] = field(default_factory=list)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    nights: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.acks or self.nudges or self.withdrawn or self.states or self.errors)


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


class Publisher:
    """Acks, nudges, states and error records of a batch, sent once it is stored."""

    def __init__(
        self,
        link: Link,
        prefix: str,
        tz: ZoneInfo,
        sink: NudgeSink | None = None,
        viewer: Viewer | None = None,
    ) -> None:
        """Publish under the topic `prefix`, dating error records in `tz`."""
        self.link = link
        self.prefix = prefix
        self.errors_topic = f"{prefix}/errors"
        self.tz = tz
        self.sink = sink
        self.viewer = viewer
        self._owed = _Owed()
        self._nudge_mids: dict[int, str] = {}
        #: The packet ids of the nudges of the last batch sent.
        self._last_mids: list[int] = []

    def owes(self) -> bool:
        """Whether anything waits for the commit."""
        return bool(self._owed)

    def ack(self, message: Message) -> None:
        """Acknowledge `message` to the broker once the batch is stored."""
        self._owed.acks.append(message)

    def nudge(self, nudge_id: str, payload: dict[str, Any], expires_at: float | None) -> None:
        """Publish a nudge (its contract payload) and hand it to the sink."""
        self._owed.nudges.append((nudge_id, payload, expires_at))

    def withdraw(self, person: str, nudge_id: str) -> None:
        """Take a nudge back from the sink (MQTT says it through the person's state)."""
        self._owed.withdrawn.append((person, nudge_id))

    def state(self, person: str, doc: dict[str, Any]) -> None:
        """Publish a person's state, retained; the batch's last one for a person wins."""
        self._owed.states[person] = doc

    def error(self, at: datetime, topic: str, text: str) -> None:
        """Publish an error record `{"ts", "topic", "error"}`."""
        self._owed.errors.append({"ts": local_iso(at, self.tz), "topic": topic, "error": text})

    def night(self, person: str, summary: dict[str, Any]) -> None:
        """Show a night stored with the batch on the dashboard."""
        if self.viewer is not None:
            self._owed.nights.append((person, summary))

    def send(self, state: CoachState) -> None:
        """The batch is stored: carry out what it owes, acks first; `state` is the core's now."""
        owed, self._owed = self._owed, _Owed()
        for msg in owed.acks:
            self.link.ack(msg)
        self._last_mids = []
        for nudge_id, payload, expires in owed.nudges:
            topic = f"{self.prefix}/{payload['person']}/nudge"
            mid = self.link.publish(topic, _json(payload), qos=1)
            self._nudge_mids[mid] = nudge_id
            self._last_mids.append(mid)
            if self.sink is not None:
                try:
                    self.sink.deliver(payload, expires)
                except ProjectError as err:
                    log.error("could not queue nudge %s for Home Assistant: %s", nudge_id, err)
        for person, nudge_id in owed.withdrawn:
            if self.sink is not None:
                try:
                    self.sink.withdraw(person, nudge_id)
                except ProjectError as err:
                    log.error("could not queue clearing %s in Home Assistant: %s", nudge_id, err)
        for person, doc in owed.states.items():
            self.link.publish(f"{self.prefix}/{person}/state", _json(doc), qos=1, retain=True)
        for record in owed.errors:
            self.link.publish(self.errors_topic, _json(record), qos=1)
        if self.viewer is not None:
            for person, summary in owed.nights:
                self.viewer.record_night(person, summary)
            for person in owed.states:
                self.viewer.publish(person, view.snapshot(state, person))

    def confirmed(self, mid: int) -> str | None:
        """The nudge whose publication the broker just confirmed (PUBACK `mid`), if any."""
        return self._nudge_mids.pop(mid, None)

    def awaiting_last(self) -> bool:
        """Whether a nudge of the last batch sent waits for the broker's confirmation."""
        return any(mid in self._nudge_mids for mid in self._last_mids)

    def discovery(self) -> None:
        """Publish Home Assistant's discovery configs now (retained as each says)."""
        if self.sink is None:
            return
        for topic, body, retain in self.sink.discovery_messages():
            self.link.publish(topic, body.encode(), qos=1, retain=retain)
