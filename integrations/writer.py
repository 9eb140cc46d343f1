"""The daemon's storage writer: a batch of typed rows, one commit per batch, the state's snapshot.

How it works. The consumer adds rows as it goes: an event it accepted or a message it refused
(`EventRow`), a nudge sent or dropped (`NudgeRow`), a night's summary (`NightRow`), a day's
check-in answers (`CheckinRow`), each decision
for the journal (`JournalRow`), a nudge the broker confirmed. `commit` writes them in one
transaction and, while storage is down, waits and tries again ("storage unavailable" is logged
once, "available again" once) until it succeeds or a stop is asked for: nothing is acknowledged
before it is stored.

The core's state is written as a snapshot, not at every commit (it holds the day's nudge records,
and dumping and writing it cost ~1 ms a message): every `SNAPSHOT_EVERY_S` under load, every
`SNAPSHOT_MAX_DECISIONS` decisions, and when the consumer asks (a quiet inbox, the stop). The
snapshot is the runner's checkpoint, and replaces the journal in the same transaction; the
commits between store the journal rows of their decisions.

`sleepcoach simulate --storage` writes its history through this same writer (`keep_state=False`:
events, refusals, nudges, nights; the core's state of a replay is not the daemon's to restore).

`restore` is the way back on start: the snapshot, the journal decided again on top of it (the core
is deterministic, so the state is the one the coach had when it stopped or was killed), and the
duplicate keys, which are stored with their events rather than in the snapshot (with devices
sending `ts`, 48 hours of keys were most of its bytes).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Final

from coach.action import DropNudge, RecordCheckin, RecordNight
from coach.config import Config
from coach.engine import HOUSEKEEPING_EVERY_S, SEEN_KEEP_S
from coach.event import Event, dump_event, load_event
from coach.nudge import Nudge
from coach.runner import Decide, DecisionError, Runner
from coach.state import load_state
from integrations.storage import (
    Batch,
    CheckinRow,
    EventRow,
    JournalRow,
    NightRow,
    NudgeRow,
    Storage,
    StorageError,
    StoredNudge,
    excerpt,
)

log = logging.getLogger(__name__)

#: The core's state is written as a snapshot at most this often while work keeps coming; the
#: commits in between store the journal of decisions instead (a few hundred bytes an event).
SNAPSHOT_EVERY_S: Final = 5.0
#: …or once this many decisions are journaled (bounds the replay on start and its memory).
SNAPSHOT_MAX_DECISIONS: Final = 5000
#: Wait for storage to come back before retrying a write: from the first delay, doubling to the
#: second.
STORAGE_RETRY_S: Final = (0.2, 5.0)

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


def keep_key(runner: Runner, event: Event) -> None:
    """An event the core failed on is stored with its key all the same: a repeat of it is a
    duplicate, live as after a restart."""
    if event.key is not None:
        runner.remember_keys([(event.key, event.ts.timestamp())])


class StorageWriter:
    """The consumer's batch of rows, its commit, the snapshot of the state and its restore."""

    def __init__(
        self, storage: Storage, stopping: threading.Event, *, keep_state: bool = True
    ) -> None:
        """Write to `storage`; a retry stops waiting when `stopping` is set. Without
        `keep_state` (the simulator's history) no snapshot of the state is ever written."""
        self.storage = storage
        self._stopping = stopping
        self._keep_state = keep_state
        self._batch = Batch()
        #: Fingerprints of the batch's messages, not yet in storage.
        self._fingerprints: set[str] = set()
        self._profiles: dict[str, dict[str, Any]] = {}
        self._profiles_changed = False
        self._snapshot_at = time.monotonic()
        self._down = False

    # -- the way back -----------------------------------------------------------------------------

    def restore(self, config: Config, now: datetime, decide: Decide) -> Runner:
        """The core's state as stored, with the decisions since the snapshot decided again."""
        raw = self.storage.load_state()
        runner = Runner(config, None if raw is None else load_state(raw), decide=decide)
        self._replay_journal(runner)
        # Horizon: an hour more than the core's 48 hours, as its housekeeping runs hourly, so
        # every key the core still held comes back; the next housekeeping trims the rest.
        last = min(runner.state.clock or now.timestamp(), now.timestamp())
        since = datetime.fromtimestamp(last - SEEN_KEEP_S - HOUSEKEEPING_EVERY_S, tz=UTC)
        runner.remember_keys(self.storage.dedup_keys(since))
        self._snapshot_at = time.monotonic()
        return runner

    def _replay_journal(self, runner: Runner) -> None:
        """Decide again what was decided after the snapshot.

        What those decisions did outside (nudges, night summaries) was stored with them and is
        not done again; timers are planned afresh at start. A row that cannot be read or decided
        (a newer or older sleepcoach wrote it) is logged and skipped.
        """
        rows = self.storage.load_journal()
        if not rows:
            return
        for row in rows:
            try:
                event = load_event(row.kind, row.event)
            except ValueError as err:
                log.error("skipped a journal entry that cannot be read (%s): %s", row.kind, err)
                continue
            try:
                runner.decide(event, datetime.fromtimestamp(row.now, tz=UTC))
            except DecisionError:
                log.exception("replaying %r failed; it is skipped", event)
                keep_key(runner, event)
        log.info("replayed %d decisions made after the last stored state", len(runner.journal))

    # -- rows ---------------------------------------------------------------------------------

    def event(self, event: Event, topic: str, fingerprint: str | None, arrived: datetime) -> None:
        """An event the core is about to decide, from `topic`."""
        self._batch.events.append(
            EventRow(
                ts=event.ts.timestamp(),
                received_at=arrived.timestamp(),
                person=event.person,
                kind=type(event).__name__,
                source=event.source,
                topic=topic,
                data=event_data(event),
                fingerprint=fingerprint,
                dedup_key=event.key,
            )
        )
        if fingerprint is not None:
            self._fingerprints.add(fingerprint)

    def refused(
        self, topic: str, payload: bytes, error: str, at: datetime, fingerprint: str | None
    ) -> None:
        """A message refused: an excerpt of it, and why."""
        self._batch.events.append(
            EventRow(
                ts=at.timestamp(),
                received_at=at.timestamp(),
                person=None,
                kind="refused",
                source="",
                topic=topic,
                data=excerpt(payload),
                error=error,
                fingerprint=fingerprint,
            )
        )
        if fingerprint is not None:
            self._fingerprints.add(fingerprint)

    def decision(self, event: Event, now: datetime) -> None:
        """A decision, for the journal."""
        row = JournalRow(now.timestamp(), type(event).__name__, dump_event(event).decode())
        self._batch.journal.append(row)

    def nudge(self, nudge: Nudge, payload: dict[str, Any]) -> None:
        """A nudge sent, as published; unpublished until the broker confirms it."""
        self._batch.nudges.append(
            NudgeRow(
                id=nudge.id,
                person=nudge.person,
                rule=nudge.rule,
                ts=nudge.ts.timestamp(),
                severity=nudge.severity,
                payload=json.dumps(payload, ensure_ascii=False),
            )
        )

    def dropped(self, drop: DropNudge) -> None:
        """A nudge that was not sent, and why; its payload holds only the title it would have had
        and the night it belonged to, for the report."""
        known = {k: v for k, v in (("title", drop.title), ("night", drop.night)) if v}
        payload = json.dumps(known, ensure_ascii=False) if known else None
        self._batch.nudges.append(
            NudgeRow(
                id=drop.nudge_id,
                person=drop.person,
                rule=drop.rule,
                ts=drop.ts.timestamp(),
                severity=None,
                payload=payload,
                dropped=drop.reason,
            )
        )

    def night(self, record: RecordNight) -> None:
        """A night's summary; a later one of the same night in the batch replaces it."""
        self._batch.nights[(record.person, record.night)] = NightRow(
            person=record.person,
            night=record.night,
            ts=record.ts.timestamp(),
            summary=json.dumps(record.summary, default=str),
        )

    def checkin(self, record: RecordCheckin) -> None:
        """A day's check-in answers; a later one of the same day in the batch replaces it."""
        self._batch.checkins[(record.person, record.day)] = CheckinRow(
            person=record.person,
            day=record.day,
            ts=record.ts.timestamp(),
            rested=record.rested,
            daytime_twitching=record.daytime_twitching,
            rls=json.dumps(record.rls, sort_keys=True),
        )

    def published(self, nudge_id: str) -> None:
        """The broker confirmed a nudge's publication."""
        self._batch.published.append(nudge_id)

    def unconfirmed_nudges(self, since: datetime) -> list[StoredNudge]:
        """The nudges sent from `since` on whose publication the broker never confirmed."""
        return self.storage.unpublished_nudges(since=since)

    def purge(self, now: datetime) -> None:
        """Delete the history past its retention (a failure is logged: it is tried again the
        next day)."""
        try:
            self.storage.purge(now)
        except StorageError as err:
            log.error("retention purge failed: %s", err)

    def load_profile_states(self) -> dict[str, dict[str, Any]]:
        """The device profiles' states as stored, by device id: this very dict is written again
        with a batch after `profiles_changed`."""
        self._profiles = self.storage.load_profile_states()
        return self._profiles

    def profiles_changed(self) -> None:
        """A profile's state changed: store the states with the batch."""
        self._profiles_changed = True

    def was_stored(self, fingerprint: str) -> bool:
        """Whether a message with this fingerprint is stored, or in the batch to be."""
        if fingerprint in self._fingerprints:
            return True
        try:
            return self.storage.has_fingerprint(fingerprint)
        except StorageError:
            return False

    def has_marks(self) -> bool:
        """Whether the batch holds confirmed publications."""
        return bool(self._batch.published)

    def has_rows(self) -> bool:
        """Whether the batch holds anything but confirmed publications."""
        batch = self._batch
        return bool(
            self._profiles_changed
            or batch.events
            or batch.nudges
            or batch.nights
            or batch.checkins
            or batch.journal
        )

    # -- the commit ---------------------------------------------------------------------------

    def snapshot_due(self, runner: Runner) -> bool:
        """Whether the state is due to be written: decisions wait, and long enough or many."""
        journal = runner.journal
        return bool(journal) and (
            len(journal) >= SNAPSHOT_MAX_DECISIONS
            or time.monotonic() - self._snapshot_at >= SNAPSHOT_EVERY_S
        )

    def commit(
        self, runner: Runner, *, snapshot: bool = False, give_up_on_stop: bool = False
    ) -> bool:
        """Store the batch (with a snapshot of the state when asked or due); False: gave up.

        While storage fails, wait and try again; `give_up_on_stop` gives up at once, else a
        stop asked for meanwhile ends the waiting.
        """
        batch = self._batch
        snapshot = self._keep_state and (
            (snapshot and bool(runner.journal)) or self.snapshot_due(runner)
        )
        # The runner's checkpoint is the snapshot: a later failure rolls back to what is stored.
        batch.state = runner.checkpoint() if snapshot else None
        if self._profiles_changed:
            batch.profile_states = json.dumps(self._profiles).encode()
        delay = STORAGE_RETRY_S[0]
        while True:
            try:
                self.storage.write(batch)
                break
            except StorageError as err:
                if not self._down:
                    log.error("storage unavailable: %s; holding acknowledgements", err)
                    self._down = True
                if give_up_on_stop or self._stopping.wait(delay):
                    return False
                delay = min(delay * 2, STORAGE_RETRY_S[1])
        if self._down:
            log.info("storage available again")
            self._down = False
        if snapshot:
            self._snapshot_at = time.monotonic()
        self._batch = Batch()
        self._fingerprints = set()
        self._profiles_changed = False
        return True
