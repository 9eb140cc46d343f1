"""The daemon's single consumer: inbox in, the core's decisions, the batch stored, then sent.

How it works. The consumer (`Consumer.serve`, on the main thread) is the only one that touches
the core's state. It takes what is waiting in the inbox (`integrations.inbox`), up to a batch:

1. each message is decoded (`coach.decode`: the topic's device, its profile, the native parser)
   into events or a refusal; a refusal is logged and published on `<prefix>/errors` as
   `{"ts","topic","error"}`;
2. each event is decided by the core's `Runner` (which owns the state and calls `decide()`); the
   actions are carried out: timers are set or cancelled at once, nudges, states and errors go to
   the publisher, rows to the storage writer;
3. the writer stores the batch (events, refusals, nudges sent or dropped, night summaries,
   check-ins, the journal of its decisions or a snapshot of the state) in one transaction; only
   then does the publisher acknowledge the batch's QoS 1 messages to the broker and publish. A
   crash before the commit loses nothing: the broker sends the unacknowledged messages again. A
   redelivery of a message that was stored (its fingerprint is known) is acknowledged and
   skipped, and the core drops a duplicate that carries its own `ts`.

A nudge is stored as unpublished and marked published when the broker confirms it (PUBACK); on
start, unpublished nudges of the last hour are sent again, as stored, under the same id. Delivery
is therefore at least once: a crash after the broker took a nudge but before its confirmation was
stored sends it twice, both times the same document under the same id (what consumers dedupe on).

When `decide()` raises, the runner puts the state back as it was before that event (the last
snapshot, replayed through the decisions since: decide is deterministic); the consumer logs the
event with the error, publishes an error record, and keeps the event's duplicate key (the event is
stored). It keeps running.

On a `Stop` the consumer finishes the batch in hand, stores it with a snapshot of the state, sends
what it owes, stores the broker's confirmations of the nudges sent (waiting up to a second for
those of that last batch) and returns. What was still waiting in the inbox is not acknowledged,
so the broker keeps it for the next start.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from coach import engine
from coach.action import (
    Action,
    CancelTimer,
    DropNudge,
    PublishNudge,
    RecordCheckin,
    RecordDrink,
    RecordNight,
    RefuseEvent,
    ScheduleTimer,
    UpdateState,
    WithdrawNudge,
)
from coach.decode.decoder import Decoder, Profiled, wake_id
from coach.decode.refusal import PayloadError
from coach.event import CoachStarted, Event, Timer, TimerFired
from coach.runner import Decide, DecisionError, Runner
from coach.state import CoachState
from integrations import discovery
from integrations.config_file import ConfigFile
from integrations.inbox import (
    External,
    Housekeeping,
    Inbox,
    Item,
    ProfileTick,
    Published,
    Stop,
    TimerDue,
)
from integrations.mqtt import Message
from integrations.publisher import Link, NudgeSink, Publisher, Viewer
from integrations.refusals import RefusalLimit
from integrations.storage import Storage, StoredNudge, fingerprint
from integrations.writer import StorageWriter, keep_key

log = logging.getLogger(__name__)

#: Most items taken from the inbox before a commit: bounds a transaction and the ack delay.
MAX_BATCH: Final = 1000
#: Publication marks wait at most this long for a batch to go with.
MARKS_WAIT_S: Final = 1.0
#: After this long with nothing in the inbox, the snapshot is written (while it is cheap).
SNAPSHOT_IDLE_S: Final = 1.0
#: On stop, the broker's confirmations of the last batch's nudges are waited for this long.
STOP_CONFIRM_WAIT_S: Final = 1.0
#: Unpublished nudges younger than this are sent again on start.
REPUBLISH_WITHIN: Final = timedelta(hours=1)


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


class Consumer:
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
        #: What `decide()` is given: the coaching config alone, no broker settings or secrets.
        self.config = config.core
        self.file = config
        self.timers = timers
        self.clock = clock
        self.inbox = inbox or Inbox()
        prefix = config.mqtt.topic_prefix
        self.birth_topic = discovery.birth_topic(config) if config.homeassistant else None
        self.writer = StorageWriter(storage, self.inbox.stopping)
        #: The core's state, its checkpoint (the stored snapshot) and the decisions since.
        self.runner: Runner = self.writer.restore(self.config, clock(), decide)
        self.publisher = Publisher(link, prefix, config.tz, sink, viewer)
        #: Topic to events; it keeps the device profiles' states in the writer's dict.
        self.decoder = Decoder(self.config, prefix, self.writer.load_profile_states())
        self.processed = 0  # messages and timers taken from the inbox (for tests and benches)
        #: A few refusals a minute are handled in full; the rest are counted and summed up.
        self.refusals = RefusalLimit(config.mqtt.refusals_per_minute)

    @property
    def state(self) -> CoachState:
        """The core's state as it is now."""
        return self.runner.state

    def start(self) -> None:
        """Send again what was decided but never confirmed, then plan the timers."""
        for nudge in self.writer.unconfirmed_nudges(since=self.clock() - REPUBLISH_WITHIN):
            if nudge.payload is not None:
                # At least once: the broker may have delivered it before a crash. It goes out
                # again as stored, under its id, with the expiry the core gave it.
                log.info("sending nudge %s again: the broker never confirmed it", nudge.id)
                self.publisher.nudge(nudge.id, nudge.payload, self._expires_at(nudge))
        now = self.clock()
        self._decide(CoachStarted(person="*", ts=now), now, "<start>")
        self.commit(snapshot=True)  # the replayed journal, if any, is folded into the state

    def _expires_at(self, nudge: StoredNudge) -> float | None:
        """When a stored nudge stops being worth sending, from the core's record of it (a snoozed
        repeat's is its original's); None when the core no longer remembers it."""
        ps = self.runner.state.people.get(nudge.person)
        evidence = (nudge.payload or {}).get("evidence")
        original = evidence.get("original_id") if isinstance(evidence, dict) else None
        record = None if ps is None else ps.nudges.get(str(original or nudge.id))
        return None if record is None else record.expires_at

    def serve(self) -> None:
        """Consume the inbox until a `Stop`; every batch is stored before it is acknowledged."""
        inbox = self.inbox.queue
        while True:
            # Publication marks alone wait (up to a second) for a batch with real work, so a
            # PUBACK does not cost a commit of its own; decisions not yet in a snapshot wait
            # for a quiet second, and then the snapshot is written.
            timeout = None
            if self.writer.has_marks():
                timeout = MARKS_WAIT_S
            elif self.runner.journal:
                timeout = SNAPSHOT_IDLE_S
            summaries_at = self.refusals.next_due()
            if summaries_at is not None:
                wait = max(0.0, summaries_at - self.clock().timestamp())
                timeout = wait if timeout is None else min(timeout, wait)
            try:
                first = inbox.get(timeout=timeout)
            except queue.Empty:
                self._summarise_refusals()
                self.commit(snapshot=True)
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
                self.handle(item)
            self._report_dropped()
            self._summarise_refusals(force=stopping)
            if not stopping and not self.writer.has_rows() and not self.publisher.owes():
                continue  # nothing in hand but publication marks: they wait for real work
            if not self.commit(give_up_on_stop=stopping, snapshot=stopping):
                return
            if stopping:
                self._store_confirmations()
                return

    def _store_confirmations(self) -> None:
        """Stopping: store the broker's confirmations of the nudges sent so far, waiting a moment
        for those of the last batch, so a clean restart does not send them again."""
        deadline = time.monotonic() + STOP_CONFIRM_WAIT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                if self.publisher.awaiting_last():
                    item = self.inbox.queue.get(timeout=left)
                else:
                    item = self.inbox.queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Published):
                self.handle(item)
            # Anything else waits for the next start: its messages were not acknowledged.
        if self.writer.has_marks():
            self.writer.commit(self.runner, give_up_on_stop=True)

    def commit(self, *, snapshot: bool = False, give_up_on_stop: bool = False) -> bool:
        """Store the batch, then send what it owes; False when it gave up (a stop)."""
        if not self.writer.commit(self.runner, snapshot=snapshot, give_up_on_stop=give_up_on_stop):
            return False
        self.publisher.send(self.runner.state)
        return True

    def handle(self, item: Item) -> None:
        """Act on one inbox item (nothing is stored or sent before the commit)."""
        if isinstance(item, Message):
            self.processed += 1
            self.inbox.taken(item)
            self._on_message(item)
        elif isinstance(item, TimerDue):
            self.processed += 1
            timer = item.timer
            event = TimerFired(person=timer.person, ts=timer.at, timer=timer)
            self._decide(event, self.clock(), f"timer:{timer.id}")
        elif isinstance(item, Published):
            nudge_id = self.publisher.confirmed(item.mid)
            if nudge_id is not None:
                self.writer.published(nudge_id)
        elif isinstance(item, ProfileTick):
            self._on_tick(item)
        elif isinstance(item, External):
            self._accept(item.event, self.clock(), item.event.source or "external", None)
        elif isinstance(item, Housekeeping):
            self.writer.purge(self.clock())

    # -- messages -------------------------------------------------------------------------------

    def _on_message(self, msg: Message) -> None:
        self.publisher.ack(msg)  # once the batch is stored: a refusal is not sent again either
        if msg.topic == self.birth_topic:
            self._on_birth(msg.payload)
            return
        fp = fingerprint(msg.mid, msg.topic, msg.payload) if msg.qos else None
        if msg.dup and fp is not None and self.writer.was_stored(fp):
            log.debug("skipped a redelivered message on %s (already stored)", msg.topic)
            return
        decoded = self.decoder.message(msg.topic, msg.payload, msg.received_at)
        if decoded is None:
            # Not a topic of ours (a broker that leaks retained messages, a stale subscription).
            log.debug("ignored a message on %s: no device or command topic", msg.topic)
            return
        if isinstance(decoded, Profiled):
            self._on_profiled(decoded, msg, fp)
            return
        if isinstance(decoded, PayloadError):
            self._refuse(msg.topic, msg.payload, decoded.error, msg.received_at, fp)
            return
        self._accept(decoded, self.clock(), msg.topic, fp, msg.received_at)

    def _on_birth(self, payload: bytes) -> None:
        """Home Assistant (re)started: send the discovery configs again (its broker may be new)."""
        if discovery.is_birth(self.file, self.birth_topic or "", payload):
            log.info("Home Assistant is online: publishing its discovery configs again")
            self.publisher.discovery()

    def _on_profiled(self, done: Profiled, msg: Message, fp: str | None) -> None:
        result = done.result
        self.writer.profiles_changed()
        if result.error is not None:
            self._refuse(msg.topic, msg.payload, result.error, msg.received_at, fp)
            fp = None
        for event in result.events:
            self._accept(event, self.clock(), msg.topic, fp, msg.received_at)
            fp = None  # one fingerprint per message
        if result.wake_at is not None:
            self._wake_profile(done.device.id, result.wake_at)

    def _on_tick(self, tick: ProfileTick) -> None:
        done = self.decoder.tick(tick.device_id, tick.at)
        if done is None:
            return
        device, result = done.device, done.result
        self.writer.profiles_changed()
        if result.error is not None:
            self._refuse(device.topic, b"", result.error, tick.at, None)
        for event in result.events:
            self._accept(event, self.clock(), device.topic, None, tick.at)
        if result.wake_at is not None:
            self._wake_profile(device.id, result.wake_at)

    def _wake_profile(self, device_id: str, at: datetime) -> None:
        self.timers.call_at(wake_id(device_id), at, lambda: self.inbox.profile_tick(device_id, at))

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
        self.writer.event(event, topic, fp, received_at or now)
        self._decide(event, now, topic)

    def _refuse(self, topic: str, payload: bytes, error: str, at: datetime, fp: str | None) -> None:
        if not self._admit(topic, error, at):
            return  # counted: said in the minute's summary
        log.warning("refused a message on %s: %s", topic, error)
        self.writer.refused(topic, payload, error, at, fp)
        self.publisher.error(at, topic, error)

    def _report_dropped(self) -> None:
        """QoS 0 messages the inbox had no room for: refusals of their topic (so rate-limited and
        counted like any other), each saying how many."""
        now = self.clock()
        for topic, count in self.inbox.take_dropped().items():
            plural = "message" if count == 1 else "messages"
            text = (
                f"{count:,} QoS 0 {plural} dropped unread: more were waiting than the coach "
                f"keeps ({self.inbox.max_waiting_qos0:,}); a device that publishes this fast "
                f"should use QoS 1, which the broker holds until the coach takes it"
            )
            self._refuse(topic, b"", text, now, None)

    def _admit(self, topic: str, error: str, at: datetime) -> bool:
        """Whether a refusal is handled in full; the summaries of a minute that ended go first."""
        self._summarise_refusals(at)
        return self.refusals.admit(topic, error, at.timestamp())

    def _summarise_refusals(self, now: datetime | None = None, *, force: bool = False) -> None:
        """Say, once per topic, how many refusals of a minute that ended were only counted."""
        now = now or self.clock()
        for summary in self.refusals.due(now.timestamp(), force=force):
            text = summary.text
            log.warning("%s", text)
            self.writer.refused(summary.topic, b"", text, now, None)
            self.publisher.error(now, summary.topic, text)

    # -- the core -----------------------------------------------------------------------------

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
            keep_key(self.runner, event)
            text = f"internal error while deciding ({type(err).__name__}: {err})"
            self.publisher.error(now, origin, text)
            return
        self.writer.decision(event, now)
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
            payload = nudge.to_payload(self.config.tz)
            self.writer.nudge(nudge, payload)
            expires = None if nudge.expires is None else nudge.expires.timestamp()
            self.publisher.nudge(nudge.id, payload, expires)
            log.info("nudge %s (%s) for %s", nudge.id, nudge.severity, nudge.person)
        elif isinstance(action, UpdateState):
            self.publisher.state(action.person, action.state)
        elif isinstance(action, RecordNight):
            self.writer.night(action)
            self.publisher.night(action.person, action.summary)
        elif isinstance(action, RecordCheckin):
            self.writer.checkin(action)
        elif isinstance(action, DropNudge):
            self.writer.dropped(action)
            log.info("dropped nudge %s: %s", action.nudge_id, action.reason)
        elif isinstance(action, RecordDrink):
            # The history (the report) reads it as the person's own brew, at brew time.
            self.writer.event(action.drink, origin, None, now)
        elif isinstance(action, WithdrawNudge):
            self.publisher.withdraw(action.person, action.nudge_id)
            log.info("withdrew nudge %s of %s", action.nudge_id, action.person)
        elif isinstance(action, RefuseEvent) and self._admit(origin, action.reason, now):
            log.warning("refused an event from %s: %s", origin, action.reason)
            self.publisher.error(now, origin, action.reason)


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
    if isinstance(action, RecordCheckin):
        return f"check-in {action.day} of {action.person}"
    if isinstance(action, WithdrawNudge):
        return f"withdraw {action.nudge_id}"
    if isinstance(action, RecordDrink):
        return f"drink of {action.drink.person}"
    return f"refuse ({action.reason})"
