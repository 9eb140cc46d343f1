"""`sleepcoach run`: the daemon. One inbox, one consumer, the core's `decide()` in between.

How it works. Three producers put items on one `queue.SimpleQueue`: paho's network thread (MQTT
messages), APScheduler's thread (a timer came due, the daily housekeeping) and, with Home
Assistant, its button listener (commands). Nothing else touches the core's state. The consumer
(`Coach.serve`, on the main thread) takes what is waiting, up to a batch:

1. each message is routed and parsed (natively, or by the device's profile) into an event or
   a refusal, by the step `sleepcoach simulate` shares (`coach.decode.decoder`); a refusal is
   logged and published on `<prefix>/errors` as `{"ts","topic","error"}`;
2. each event is decided by the core's `Runner` (which owns the state and calls `decide()`); its
   actions are carried out: timers are set or cancelled at once, nudges, states and errors are
   queued for after the commit;
3. the batch (events, refusals, nudges sent or dropped, night summaries, and the journal of its
   decisions) is written in one transaction; only then are the batch's QoS 1 messages acknowledged
   to the broker and the nudges published. A crash before the commit loses nothing: the broker sends
   the unacknowledged messages again. A redelivery of a message that was stored (its fingerprint is
   known) is acknowledged and skipped, and the core drops a duplicate that carries its own `ts`.
   Those duplicate keys are stored with their events, not in the state snapshot (with devices
   sending `ts`, 48 hours of keys were most of its bytes); on start the core gets back the keys of
   the last 49 hours from storage.

The core's state is written as a snapshot, not at every commit (it holds the day's nudge records,
and dumping and writing it cost ~1 ms a message): every `SNAPSHOT_EVERY_S` under load, after a
quiet `SNAPSHOT_IDLE_S`, every `SNAPSHOT_MAX_DECISIONS` and on stop; the snapshot replaces the
journal in the same transaction, and is the runner's checkpoint. On start the journal is replayed
on top of the snapshot.

A nudge is stored as unpublished in the batch and marked published when the broker confirms it
(PUBACK); on start, unpublished nudges of the last hour are sent again, under the same id.

When `decide()` raises, the runner puts the state back as it was before that event (the last
snapshot, replayed through the decisions since: decide is deterministic); the consumer logs the
event with the error, publishes an error record, and keeps the event's duplicate key (the event is
stored). The daemon keeps running.

Shutdown (SIGTERM, SIGINT): the consumer stops taking messages, finishes the batch in hand, writes
it, acknowledges it, and the link publishes `offline` and disconnects: well within 5 s. What was
still waiting in the inbox is not acknowledged, so the broker keeps it for the next start.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, Protocol

from pydantic import ValidationError

from coach import dashboard as view
from coach import engine
from coach.action import (
    Action,
    CancelTimer,
    DropNudge,
    PublishNudge,
    RecordNight,
    RefuseEvent,
    ScheduleTimer,
    UpdateState,
)
from coach.clock import local_iso
from coach.decode.decoder import Decoder, Profiled, wake_id
from coach.decode.refusal import PayloadError
from coach.engine import HOUSEKEEPING_EVERY_S, SEEN_KEEP_S
from coach.event import CoachStarted, Event, Timer, TimerFired, dump_event, load_event
from coach.runner import Decide, DecisionError, Runner
from coach.state import CoachState, PersonState, load_state
from integrations import discovery
from integrations.broker import BrokerChoice, choose_broker, start_broker
from integrations.config_file import EXAMPLE_CONFIG, ConfigError, ConfigFile, Problem, load_config
from integrations.data_dir import data_dir
from integrations.error import ProjectError
from integrations.mqtt import (
    CONNACK_TIMEOUT_S,
    BrokerLink,
    BrokerRefusedError,
    LinkSettings,
    Message,
    MqttError,
)
from integrations.scheduler import TimerService
from integrations.settings import DashboardSettings
from integrations.storage import Batch, Storage, StorageError, excerpt, fingerprint, safe_url
from integrations.subcommand import Command, SubParsers, say

if TYPE_CHECKING:  # the web server is imported only when the dashboard is on
    from integrations.dashboard import Dashboard

log = logging.getLogger("integrations.daemon")

#: Most items taken from the inbox before a commit: bounds a transaction and the ack delay.
MAX_BATCH: Final = 1000
#: Publication marks wait at most this long for a batch to go with.
MARKS_WAIT_S: Final = 1.0
#: The core's state is written as a snapshot at most this often while work keeps coming; the
#: commits in between store the journal of decisions instead (a few hundred bytes an event).
SNAPSHOT_EVERY_S: Final = 5.0
#: …or once this many decisions are journaled (bounds the replay on start and its memory).
SNAPSHOT_MAX_DECISIONS: Final = 5000
#: After this long with nothing in the inbox, the snapshot is written (while it is cheap).
SNAPSHOT_IDLE_S: Final = 1.0
#: Unpublished nudges younger than this are sent again on start.
REPUBLISH_WITHIN: Final = timedelta(hours=1)
#: Wait for storage to come back before retrying a write.
STORAGE_RETRY_S: Final = (0.2, 5.0)
SHUTDOWN_LINK_S: Final = 1.5


# -- inbox items -------------------------------------------------------------------------------


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


class Link(Protocol):
    """What the consumer needs from the broker connection."""

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        """Queue a publication; return its packet id."""
        ...

    def ack(self, message: Message) -> None:
        """Acknowledge a stored message."""
        ...


class Timers(Protocol):
    """What the consumer needs from the timer service."""

    def schedule(self, timer: Timer) -> None:
        """Set (or replace) a timer."""
        ...

    def cancel(self, timer_id: str) -> None:
        """Forget a timer."""
        ...

    def call_at(self, job_id: str, at: datetime, fn: Callable[[], None]) -> None:
        """Call `fn` at `at` (replacing a job with the same id); `fn` only enqueues."""
        ...


class NudgeSink(Protocol):
    """Where nudges go besides MQTT (Home Assistant)."""

    def deliver(self, nudge: dict[str, Any], expires_at: datetime | float | None = None) -> None:
        """Queue one nudge durably."""
        ...

    def discovery_messages(self) -> list[tuple[str, str, bool]]:
        """Home Assistant's MQTT discovery configs to (re)publish: (topic, payload, retain)."""
        ...


class Viewer(Protocol):
    """Where the consumer hands over what it stored and published (the live dashboard)."""

    def publish(self, person_id: str, ps: PersonState) -> None:
        """A detached copy of a person's state after a batch that changed it."""
        ...

    def record_night(self, person_id: str, summary: dict[str, Any]) -> None:
        """A night as it was stored."""
        ...


# -- event rows ---------------------------------------------------------------------------------

_SKIP_FIELDS: Final = frozenset({"person", "ts", "source", "key"})
_FIELDS: dict[type[Event], tuple[str, ...]] = {}


def event_data(event: Event) -> str:
    """The event's own fields as JSON (what the report reads back)."""
    names = _FIELDS.get(type(event))
    if names is None:
        names = _FIELDS[type(event)] = tuple(
            f.name for f in fields(event) if f.name not in _SKIP_FIELDS
        )
    return json.dumps({n: getattr(event, n) for n in names}, default=str)


@dataclass(slots=True)
class _Pending:
    """What one batch owes the outside world once it is stored."""

    acks: list[Message] = field(default_factory=list)
    nudges: list[tuple[str, dict[str, Any], float | None]] = field(default_factory=list)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    fingerprints: set[str] = field(default_factory=set)
    nights: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class Coach:
    """The single consumer: inbox in, `decide()`, storage, then acks and publications."""

    def __init__(
        self,
        config: ConfigFile,
        storage: Storage,
        link: Link,
        timers: Timers,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sink: NudgeSink | None = None,
        inbox: Inbox | None = None,
        viewer: Viewer | None = None,
        decide: Decide = engine.decide,
    ) -> None:
        """Load the state from storage (or start fresh); `decide` is the core's unless a test
        passes a wrapper."""
        #: The whole file, for the shell's settings.
        self.file = config
        #: What `decide()` is given: the coaching config alone, no broker settings or secrets.
        self.config = config.core
        self.tz = config.tz
        self.storage = storage
        self.link = link
        self.timers = timers
        self.sink = sink
        self.viewer = viewer
        self.clock = clock
        self.inbox = inbox or Inbox()
        prefix = config.mqtt.topic_prefix
        self.errors_topic = f"{prefix}/errors"
        self.prefix = prefix
        self.birth_topic = discovery.birth_topic(config) if config.homeassistant else None
        raw = storage.load_state()
        #: The core's state, its checkpoint (the stored snapshot) and the decisions since.
        self.runner = Runner(self.config, None if raw is None else load_state(raw), decide=decide)
        self._replay_journal()
        self._restore_seen()
        self._snapshot_at = time.monotonic()
        self.profile_states: dict[str, dict[str, Any]] = storage.load_profile_states()
        self.ingest = Decoder(
            self.config, prefix, self.profile_states
        )  # keeps profile_states up to date
        self._batch = Batch()
        self._pending = _Pending()
        self._profiles_dirty = False
        self._nudge_mids: dict[int, str] = {}
        self._storage_down = False
        self.processed = 0  # messages and timers taken from the inbox (for tests and benches)

    def _replay_journal(self) -> None:
        """Bring the stored snapshot up to date: decide again what was decided after it.

        The core is deterministic, so the same events at the same `now`s give the same state.
        What those decisions did outside (nudges, night summaries) was stored with them and is
        not done again; timers are planned afresh by `start`. A row that cannot be read or
        decided (a newer or older sleepcoach wrote it) is logged and skipped.
        """
        rows = self.storage.load_journal()
        if not rows:
            return
        for now, kind, raw in rows:
            try:
                event = load_event(kind, raw)
            except ValueError as err:
                log.error("skipped a journal entry that cannot be read (%s): %s", kind, err)
                continue
            try:
                self.runner.decide(event, now)
            except DecisionError:
                log.exception("replaying %r failed; it is skipped", event)
                self._keep_key(event)
        log.info("replayed %d decisions made after the last stored state", len(self.runner.journal))

    def _restore_seen(self) -> None:
        """Give the core back its duplicate keys: they are stored with the events, not the state.

        The horizon is an hour wider than the core's 48 hours because its housekeeping runs
        hourly: every key the core still held before the restart comes back, and one it had just
        forgotten is a true duplicate all the same. The next housekeeping trims the rest.
        """
        now = self.clock().timestamp()
        last = min(self.state.clock or now, now)
        since = datetime.fromtimestamp(last - SEEN_KEEP_S - HOUSEKEEPING_EVERY_S, tz=UTC)
        self.runner.remember_keys(self.storage.dedup_keys(since))

    @property
    def state(self) -> CoachState:
        """The core's state as it is now."""
        return self.runner.state

    def _keep_key(self, event: Event) -> None:
        """An event that failed is stored with its key all the same: a repeat is a duplicate,
        live as after a restart."""
        if event.key is not None:
            self.runner.remember_keys([(event.key, event.ts.timestamp())])

    # -- the consumer ---------------------------------------------------------------------------

    def start(self) -> None:
        """Send again what was decided but never confirmed, then plan the timers."""
        since = self.clock() - REPUBLISH_WITHIN
        for nudge in self.storage.unpublished_nudges(since=since):
            if nudge.payload is not None:
                log.info("sending nudge %s again: the broker never confirmed it", nudge.id)
                self._pending.nudges.append((nudge.id, nudge.payload, None))
        now = self.clock()
        self._decide(CoachStarted(person="*", ts=now), now, "<start>")
        self._flush(snapshot=True)  # the replayed journal, if any, is folded into the state

    def serve(self) -> None:
        """Consume the inbox until a `Stop`; every batch is stored before it is acknowledged."""
        inbox = self.inbox.queue
        while True:
            # Publication marks alone wait (up to a second) for a batch with real work, so a
            # PUBACK does not cost a commit of its own; decisions not yet in a snapshot wait
            # for a quiet second, and then the snapshot is written.
            timeout = None
            if self._batch.published:
                timeout = MARKS_WAIT_S
            elif self.runner.journal:
                timeout = SNAPSHOT_IDLE_S
            try:
                first = inbox.get(timeout=timeout)
            except queue.Empty:
                self._flush(snapshot=True)
                continue
            items = [first]
            while len(items) < MAX_BATCH:
                try:
                    items.append(inbox.get_nowait())
                except queue.Empty:
                    break
            stopping = False
            for item in items:
                if isinstance(item, Stop):
                    stopping = True
                    break
                self._handle(item)
            if not stopping and self._only_marks():
                continue
            if not self._flush(give_up_on_stop=stopping, snapshot=stopping) or stopping:
                return

    def _only_marks(self) -> bool:
        """Nothing in hand but publication marks (nothing to ack, publish or decide on)."""
        batch, pending = self._batch, self._pending
        return (
            not self._profiles_dirty
            and not batch.events
            and not batch.nudges
            and not batch.nights
            and not batch.journal
            and not pending.acks
            and not pending.nudges
            and not pending.states
            and not pending.errors
        )

    def _handle(self, item: Item) -> None:
        if isinstance(item, Message):
            self.processed += 1
            self._on_message(item)
        elif isinstance(item, TimerDue):
            self.processed += 1
            timer = item.timer
            event = TimerFired(person=timer.person, ts=timer.at, timer=timer)
            self._decide(event, self.clock(), f"timer:{timer.id}")
        elif isinstance(item, Published):
            nudge_id = self._nudge_mids.pop(item.mid, None)
            if nudge_id is not None:
                self._batch.published.append(nudge_id)
        elif isinstance(item, ProfileTick):
            self._on_tick(item)
        elif isinstance(item, External):
            self._accept(item.event, self.clock(), item.event.source or "external", None)
        elif isinstance(item, Housekeeping):
            self._purge()

    def _on_message(self, msg: Message) -> None:
        if msg.topic == self.birth_topic:
            self._pending.acks.append(msg)
            self._on_birth(msg.payload)
            return
        fp = fingerprint(msg.mid, msg.topic, msg.payload) if msg.qos else None
        if msg.dup and fp is not None and self._was_stored(fp):
            log.debug("skipped a redelivered message on %s (already stored)", msg.topic)
            self._pending.acks.append(msg)
            return
        self._pending.acks.append(msg)
        parsed = self.ingest.message(msg.topic, msg.payload, msg.received_at)
        if parsed is None:
            # Not a topic of ours (a broker that leaks retained messages, a stale subscription).
            log.debug("ignored a message on %s: no device or command topic", msg.topic)
            return
        if isinstance(parsed, Profiled):
            self._on_profiled(parsed, msg, fp)
            return
        if isinstance(parsed, PayloadError):
            self._refuse(msg.topic, msg.payload, parsed.error, msg.received_at, fp)
            return
        self._accept(parsed, self.clock(), msg.topic, fp, msg.received_at)

    def _on_birth(self, payload: bytes) -> None:
        """Home Assistant (re)started: send the discovery configs again (its broker may be new)."""
        if self.sink is None or not discovery.is_birth(self.file, self.birth_topic or "", payload):
            return
        log.info("Home Assistant is online: publishing its discovery configs again")
        for topic, body, retain in self.sink.discovery_messages():
            self.link.publish(topic, body.encode(), qos=1, retain=retain)

    def _on_profiled(self, done: Profiled, msg: Message, fp: str | None) -> None:
        result = done.result
        self._profiles_dirty = True
        if result.error is not None:
            self._refuse(msg.topic, msg.payload, result.error, msg.received_at, fp)
            fp = None
        for event in result.events:
            self._accept(event, self.clock(), msg.topic, fp, msg.received_at)
            fp = None  # one fingerprint per message
        if result.wake_at is not None:
            self._wake_profile(done.device.id, result.wake_at)

    def _on_tick(self, tick: ProfileTick) -> None:
        done = self.ingest.tick(tick.device_id, tick.at)
        if done is None:
            return
        device, result = done.device, done.result
        self._profiles_dirty = True
        if result.error is not None:
            self._refuse(device.topic, b"", result.error, tick.at, None)
        for event in result.events:
            self._accept(event, self.clock(), device.topic, None, tick.at)
        if result.wake_at is not None:
            self._wake_profile(device.id, result.wake_at)

    def _wake_profile(self, device_id: str, at: datetime) -> None:
        self.timers.call_at(
            wake_id(device_id), at, lambda: self.inbox.queue.put(ProfileTick(device_id, at))
        )

    def _was_stored(self, fp: str) -> bool:
        if fp in self._pending.fingerprints:
            return True
        try:
            return self.storage.has_fingerprint(fp)
        except StorageError:
            return False

    def _accept(
        self,
        event: Event,
        now: datetime,
        topic: str,
        fp: str | None,
        received_at: datetime | None = None,
    ) -> None:
        if self.runner.is_duplicate(event):
            # The same fact again (a device repeating itself, a redelivery): the core ignores it,
            # and it is not stored twice.
            log.debug("ignored a duplicate %s from %s", type(event).__name__, topic)
            return
        arrived = received_at or now
        self._batch.events.append(
            {
                "ts": event.ts.timestamp(),
                "received_at": arrived.timestamp(),
                "person": event.person,
                "kind": type(event).__name__,
                "source": event.source,
                "topic": topic,
                "data": event_data(event),
                "error": None,
                "fingerprint": fp,
                "dedup_key": event.key,
            }
        )
        if fp is not None:
            self._pending.fingerprints.add(fp)
        self._decide(event, now, topic)

    def _refuse(self, topic: str, payload: bytes, error: str, at: datetime, fp: str | None) -> None:
        log.warning("refused a message on %s: %s", topic, error)
        self._batch.events.append(
            {
                "ts": at.timestamp(),
                "received_at": at.timestamp(),
                "person": None,
                "kind": "refused",
                "source": "",
                "topic": topic,
                "data": excerpt(payload),
                "error": error,
                "fingerprint": fp,
                "dedup_key": None,
            }
        )
        if fp is not None:
            self._pending.fingerprints.add(fp)
        self._pending.errors.append({"ts": local_iso(at, self.tz), "topic": topic, "error": error})

    def _decide(self, event: Event, now: datetime, origin: str) -> None:
        try:
            actions = self.runner.decide(event, now)
        except DecisionError as failure:
            # A bug in the core: say which event, keep the state as it was, keep running.
            err = failure.__cause__
            log.exception(
                "decide() failed on %r from %s; the state is left as it was", event, origin
            )
            for lost in failure.skipped:
                log.error("replaying %r failed; it is left out of the state", lost)
            self._keep_key(event)
            self._pending.errors.append(
                {
                    "ts": local_iso(now, self.tz),
                    "topic": origin,
                    "error": f"internal error while deciding ({type(err).__name__}: {err})",
                }
            )
            return
        self._batch.journal.append(
            {
                "now": now.timestamp(),
                "kind": type(event).__name__,
                "event": dump_event(event).decode(),
            }
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "decided %s for %s from %s: %s",
                type(event).__name__,
                event.person,
                origin,
                ", ".join(_describe(a) for a in actions) or "nothing to do",
            )
        for action in actions:
            self._carry_out(action, now, origin)

    def _carry_out(self, action: Action, now: datetime, origin: str) -> None:
        if isinstance(action, ScheduleTimer):
            self.timers.schedule(action.timer)
        elif isinstance(action, CancelTimer):
            self.timers.cancel(action.timer_id)
        elif isinstance(action, PublishNudge):
            nudge = action.nudge
            payload = nudge.to_payload(self.tz)
            self._batch.nudges.append(
                {
                    "id": nudge.id,
                    "person": nudge.person,
                    "rule": nudge.rule,
                    "ts": nudge.ts.timestamp(),
                    "severity": nudge.severity,
                    "payload": json.dumps(payload, ensure_ascii=False),
                    "dropped": None,
                    "published": False,
                }
            )
            expires = None if nudge.expires is None else nudge.expires.timestamp()
            self._pending.nudges.append((nudge.id, payload, expires))
            log.info("nudge %s (%s) for %s", nudge.id, nudge.severity, nudge.person)
        elif isinstance(action, UpdateState):
            self._pending.states[action.person] = action.state
        elif isinstance(action, RecordNight):
            self._batch.nights[(action.person, action.night)] = {
                "person": action.person,
                "night": action.night,
                "ts": action.ts.timestamp(),
                "summary": json.dumps(action.summary, default=str),
            }
            self._pending.nights.append((action.person, action.summary))
        elif isinstance(action, DropNudge):
            self._batch.nudges.append(
                {
                    "id": action.nudge_id,
                    "person": action.person,
                    "rule": action.rule,
                    "ts": action.ts.timestamp(),
                    "severity": None,
                    "payload": None,
                    "dropped": action.reason,
                    "published": False,
                }
            )
            log.info("dropped nudge %s: %s", action.nudge_id, action.reason)
        elif isinstance(action, RefuseEvent):
            log.warning("refused an event from %s: %s", origin, action.reason)
            self._pending.errors.append(
                {"ts": local_iso(now, self.tz), "topic": origin, "error": action.reason}
            )

    def _purge(self) -> None:
        try:
            self.storage.purge(self.clock())
        except StorageError as err:
            log.error("retention purge failed: %s", err)

    def _snapshot_due(self) -> bool:
        journal = self.runner.journal
        return bool(journal) and (
            len(journal) >= SNAPSHOT_MAX_DECISIONS
            or time.monotonic() - self._snapshot_at >= SNAPSHOT_EVERY_S
        )

    def _flush(self, *, give_up_on_stop: bool = False, snapshot: bool = False) -> bool:
        """Store the batch, then acknowledge and publish what it owes. False: gave up (stop).

        The batch carries the journal of its decisions; the state itself is written when a
        snapshot is asked for or due, and then replaces the journal.
        """
        batch, pending = self._batch, self._pending
        snapshot = (snapshot and bool(self.runner.journal)) or self._snapshot_due()
        # The runner's checkpoint is the snapshot: a later failure rolls back to what is stored.
        state_bytes = self.runner.checkpoint() if snapshot else None
        batch.state = state_bytes
        if self._profiles_dirty:
            batch.profile_states = json.dumps(self.profile_states).encode()
        delay = STORAGE_RETRY_S[0]
        while True:
            try:
                self.storage.write(batch)
                break
            except StorageError as err:
                if not self._storage_down:
                    log.error("storage unavailable: %s; holding acknowledgements", err)
                    self._storage_down = True
                if give_up_on_stop or self._stop_waiting(delay):
                    return False
                delay = min(delay * 2, STORAGE_RETRY_S[1])
        if self._storage_down:
            log.info("storage available again")
            self._storage_down = False
        if state_bytes is not None:
            self._snapshot_at = time.monotonic()
        self._profiles_dirty = False
        self._batch = Batch()
        self._pending = _Pending()
        for msg in pending.acks:
            self.link.ack(msg)
        for nudge_id, payload, expires in pending.nudges:
            topic = f"{self.prefix}/{payload['person']}/nudge"
            mid = self.link.publish(topic, _json(payload), qos=1)
            self._nudge_mids[mid] = nudge_id
            if self.sink is not None:
                try:
                    self.sink.deliver(payload, expires)
                except ProjectError as err:
                    log.error("could not queue nudge %s for Home Assistant: %s", nudge_id, err)
        for person, doc in pending.states.items():
            self.link.publish(f"{self.prefix}/{person}/state", _json(doc), qos=1, retain=True)
        for record in pending.errors:
            self.link.publish(self.errors_topic, _json(record), qos=1)
        if self.viewer is not None:
            # The dashboard gets what was stored and published: each night as stored, then a
            # detached copy of each changed person's state (the core goes on mutating its own).
            for person, summary in pending.nights:
                self.viewer.record_night(person, summary)
            for person in pending.states:
                self.viewer.publish(person, view.snapshot(self.state, person))
        return True

    def _stop_waiting(self, delay: float) -> bool:
        """Sleep before a storage retry; True when a stop was asked for meanwhile."""
        return self.inbox.stopping.wait(delay)


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def _describe(action: Action) -> str:
    if isinstance(action, PublishNudge):
        return f"nudge {action.nudge.id}"
    if isinstance(action, ScheduleTimer):
        return f"timer {action.timer.id} at {action.timer.at.isoformat()}"
    if isinstance(action, CancelTimer):
        return f"cancel {action.timer_id}"
    if isinstance(action, UpdateState):
        return f"state of {action.person}"
    if isinstance(action, DropNudge):
        return f"drop {action.nudge_id} ({action.reason})"
    if isinstance(action, RecordNight):
        return f"night {action.night} of {action.person}"
    return f"refuse ({action.reason})"


# -- the command ----------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: ts, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as JSON."""
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(level: str, fmt: str) -> None:
    """Logs to stderr: text for people, JSON (`--log-format json`) for collectors."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # paho logs every packet at debug, amqtt its plugins at info, homeassistant_api every
    # websocket message at info: keep them to warnings.
    for noisy in (
        "integrations.mqtt.paho",
        "amqtt",
        "transitions",
        "apscheduler",
        "homeassistant_api",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def link_settings(config: ConfigFile, choice: BrokerChoice, *, probe: bool = False) -> LinkSettings:
    """The link's settings for a config and a broker choice."""
    mqtt = config.mqtt
    prefix = mqtt.topic_prefix
    topics = list(dict.fromkeys([*(d.topic for d in config.devices), f"{prefix}/+/command"]))
    if config.homeassistant is not None:
        topics.append(discovery.birth_topic(config))  # re-send discovery when HA comes online
    username = mqtt.username
    if choice.embedded and username is None:
        # amqtt persists only named sessions (an anonymous one loses what was queued).
        username = mqtt.client_id
    password = mqtt.password.get_secret_value() if mqtt.password is not None else None
    return LinkSettings(
        host=choice.host,
        port=choice.port,
        tls=choice.tls,
        client_id=f"{mqtt.client_id}-check" if probe else mqtt.client_id,
        status_topic=f"{prefix}/status",
        subscriptions=[] if probe else topics,
        ca_file=mqtt.ca_file,
        cert_file=mqtt.cert_file,
        key_file=mqtt.key_file,
        username=username,
        password=password,
        keepalive_s=mqtt.keepalive_s,
        session_expiry_s=mqtt.session_expiry_s,
        mqtt5=not choice.embedded,
        probe=probe,
    )


def _load(args: argparse.Namespace) -> ConfigFile:
    path = args.config
    if path is None:
        env = os.environ.get("SLEEPCOACH_CONFIG")
        path = env or str(EXAMPLE_CONFIG)
        if env is None:
            log.info("no --config given: running the example config %s", EXAMPLE_CONFIG)
    return with_env_overrides(load_config(path), os.environ)


def with_env_overrides(config: ConfigFile, env: Mapping[str, str]) -> ConfigFile:
    """`SLEEPCOACH_MQTT_URL` and `SLEEPCOACH_STORAGE_URL` replace the file's URLs, and
    `SLEEPCOACH_DASHBOARD_LISTEN` the dashboard's address.

    For containers and service managers, where the broker's and the database's addresses and the
    dashboard's belong to the deployment (docker-compose.yml sets the first and the last), not to
    the coaching config.
    """
    mqtt_url = env.get("SLEEPCOACH_MQTT_URL")
    storage_url = env.get("SLEEPCOACH_STORAGE_URL")
    listen = env.get("SLEEPCOACH_DASHBOARD_LISTEN")
    if mqtt_url:
        config = config.model_copy(
            update={"mqtt": config.mqtt.model_copy(update={"url": mqtt_url})}
        )
    if storage_url:
        storage = config.storage.model_copy(update={"url": storage_url})
        config = config.model_copy(update={"storage": storage})
    if listen:
        # Validated like the file's value: a bad address is a config error, not a crash.
        try:
            dashboard = DashboardSettings.model_validate(
                {**config.dashboard.model_dump(), "listen": listen}
            )
        except ValidationError as err:
            why = err.errors()[0]["msg"].removeprefix("Value error, ")
            raise ConfigError([Problem("SLEEPCOACH_DASHBOARD_LISTEN", None, "", why)]) from err
        config = config.model_copy(update={"dashboard": dashboard})
    return config


def _print_topics(config: ConfigFile, dashboard: Dashboard | None = None) -> None:
    prefix = config.mqtt.topic_prefix
    say("sleepcoach is listening. Devices publish to:")
    for device in config.devices:
        say(f"  {device.topic:<32} {device.kind} ({device.profile}) for {device.person}")
    for person in config.people:
        say(f"  {prefix + '/' + person.id + '/command':<32} commands from {person.id}")
    say(
        f"Nudges: {prefix}/<person>/nudge, state: {prefix}/<person>/state (retained), "
        f"errors: {prefix}/errors, status: {prefix}/status"
    )
    if dashboard is not None:
        say(f"Dashboard: {dashboard.url}")


def run_daemon(config: ConfigFile) -> int:
    """Run until SIGTERM/SIGINT; 0 on a clean stop, 1 when the broker refused us."""
    storage = Storage.open(config.storage.url, config.storage.keep_days)
    log.info("storage: %s", safe_url(storage.url))
    choice, broker = start_broker(config, choose_broker(config), data_dir())
    bridge = None
    link: BrokerLink | None = None
    timers: TimerService | None = None
    dashboard: Dashboard | None = None
    try:
        inbox = Inbox()
        settings = link_settings(config, choice)
        link = BrokerLink(settings, deliver=inbox.deliver, on_published=inbox.published)
        timers = TimerService(config.tz, fire=inbox.timer_due, housekeeping=inbox.housekeeping)
        if config.homeassistant is not None:
            from integrations.home_assistant import HomeAssistantBridge  # noqa: PLC0415

            bridge = HomeAssistantBridge(config, inbox.external, storage.engine)
        dashboard = _start_dashboard(config, storage)
        coach = Coach(config, storage, link, timers, sink=bridge, inbox=inbox, viewer=dashboard)
        _install_signals(coach)
        storage.purge(coach.clock())
        timers.start()
        link.start()
        try:
            if not link.wait_up(10.0, cancel=inbox.stopping):
                if inbox.stopping.is_set():  # SIGTERM while the broker does not answer
                    log.info("stopped")
                    return 0
                log.warning("not connected to the broker yet; messages wait until it is")
        except BrokerRefusedError as err:
            log.error("%s", err)
            say(f"error: {err}", err=True)
            return 1
        if bridge is not None:
            for topic, payload, retain in bridge.discovery_messages():
                link.publish(topic, payload.encode(), qos=1, retain=retain)
            bridge.start()
        coach.start()
        _print_topics(config, dashboard)
        coach.serve()
        log.info("stopped")
        return 0
    finally:
        _shutdown(timers, bridge, link, storage, broker, dashboard=dashboard)


def _start_dashboard(config: ConfigFile, storage: Storage) -> Dashboard | None:
    """The live dashboard, fed the stored nights of its trends; None when off or it cannot listen.

    A dashboard that cannot have its address is logged and left out: the coaching goes on.
    """
    if not config.dashboard.enabled:
        return None
    from integrations.dashboard import Dashboard, DashboardError  # noqa: PLC0415

    dashboard = Dashboard(config.core, config.dashboard)
    try:
        dashboard.start()
    except DashboardError as err:
        log.error("%s; the coach runs on without its dashboard", err)
        return None
    since = (datetime.now(config.tz).date() - timedelta(days=view.TREND_DAYS + 1)).isoformat()
    try:
        for night in storage.nights(since=since):
            dashboard.record_night(night.person, night.summary)
    except StorageError as err:
        log.error("the dashboard could not read the stored nights: %s", err)
    return dashboard


def _shutdown(
    timers: TimerService | None,
    bridge: Any,
    link: BrokerLink | None,
    storage: Storage,
    broker: Any,
    *,
    dashboard: Dashboard | None = None,
) -> None:
    """Stop everything the daemon started, in order, within the 5 s a service manager allows."""
    started = time.monotonic()
    if dashboard is not None:
        dashboard.stop(timeout=1.0)
    if timers is not None:
        timers.stop()
    if bridge is not None:
        bridge.stop(timeout=1.0)
    if link is not None:
        link.stop(timeout=SHUTDOWN_LINK_S)
    storage.close()
    if broker is not None:
        broker.stop(timeout=2.0)
    log.debug("shutdown took %.2f s", time.monotonic() - started)


def _install_signals(coach: Coach) -> None:
    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        coach.inbox.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def check(config: ConfigFile) -> int:
    """`run --check`: config, storage and broker, each said in one line; exit 1 on a failure."""
    failed = False
    try:
        storage = Storage.open(config.storage.url, config.storage.keep_days)
        say(
            f"storage: OK ({safe_url(storage.url)}, schema {storage.schema_version()}, "
            f"{storage.count()} events)"
        )
        storage.close()
    except StorageError as err:
        say(f"storage: FAILED: {err}")
        failed = True
    try:
        choice = choose_broker(config)
    except MqttError as err:
        say(f"broker: FAILED: {err}")
        return 1
    if choice.start is not None:
        say(f"broker: OK ({choice.why}; {choice.starts()})")
        return 1 if failed else 0
    link = BrokerLink(link_settings(config, choice, probe=True), deliver=lambda _m: None)
    link.start()
    # Long enough for the MQTT 3.1.1 retry after an unanswered MQTT 5 CONNECT (amqtt answers
    # none with properties): 5 s more than that wait, else an amqtt broker always "FAILED".
    wait_s = CONNACK_TIMEOUT_S + 5.0
    try:
        if link.wait_up(wait_s):
            say(f"broker: OK ({link.settings.where})")
        else:
            # Why it could not connect (a TLS or socket error), else that nothing answered.
            why = link.last_error or f"no answer within {wait_s:g} s"
            say(f"broker: FAILED: {link.settings.where}: {why}")
            failed = True
    except BrokerRefusedError as err:
        say(f"broker: FAILED: {err}")
        failed = True
    finally:
        link.stop(timeout=1.0)
    return 1 if failed else 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the YAML config (default: $SLEEPCOACH_CONFIG, else the example config)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="validate the config, the storage and the broker connection, then exit",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("SLEEPCOACH_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="debug logs one line per decision (default: info, transitions only)",
    )
    parser.add_argument(
        "--log-format",
        default=os.environ.get("SLEEPCOACH_LOG_FORMAT", "text"),
        choices=["text", "json"],
        help="text for people, json for log collectors",
    )


def run_command(args: argparse.Namespace) -> int:
    """`sleepcoach run`: the daemon (or `--check`)."""
    setup_logging(args.log_level, args.log_format)
    try:
        config = _load(args)
    except ConfigError as err:
        for problem in err.problems:
            say(problem, err=True)
        return 1
    try:
        return check(config) if args.check else run_daemon(config)
    except ProjectError as err:
        log.error("%s", err)
        say(f"error: {err}", err=True)
        return 1


COMMAND: Final = Command(
    "run",
    "the daemon: MQTT in, nudges out (a broker and storage are found or started when not set)",
    _arguments,
    run_command,
)


def register(subparsers: SubParsers) -> None:
    """Add `sleepcoach run` to the command line."""
    COMMAND.register(subparsers)
