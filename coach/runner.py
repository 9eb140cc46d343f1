"""The one owner of the core's state: it decides events, keeps what a rollback needs, rolls back.

How it works. `decide()` changes the state it is given in place: copying the state for every
event would cost more than deciding it. So the state has one owner, a `Runner`, and the daemon
and the simulator both decide through it. The runner keeps a checkpoint (the state as JSON without
its duplicate keys, and those keys as they were then) and the journal of the decisions since:
each `(event, now)` that changed something, so a duplicate the core ignored is left out.

When `decide()` raises, the runner goes back to the checkpoint and decides the journal again;
`decide()` is deterministic, so that is exactly the state before the failing event. It then raises
`DecisionError` with the event and the cause; the caller reports it and goes on.

`checkpoint()` makes the current state the new starting point and returns it as JSON: the daemon
stores those bytes as its snapshot (its storage keeps the journal between snapshots, so a restart
replays it), the simulator takes one every so many events to bound a replay. Duplicate keys known
from elsewhere (the daemon stores each with its event and gives them back on start; it keeps the
key of an event that failed, since that event is stored too) come in through `remember_keys`,
which keeps them across rollbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from coach.action import Action
from coach.config import Config
from coach.engine import decide
from coach.error import ProjectError
from coach.event import Event
from coach.state import CoachState, dump_state, load_state, restore_seen, set_seen

#: The signature of `coach.engine.decide`; tests and benchmarks pass a wrapper (to fail, to record).
Decide = Callable[[CoachState, Event, datetime, Config], list[Action]]


class DecisionError(ProjectError):
    """`decide()` raised on an event; the state is as it was before that event."""

    def __init__(self, event: Event, now: datetime, skipped: Sequence[Event] = ()) -> None:
        """The failing event and its `now`; `skipped`: journal entries that failed to replay."""
        self.event = event
        self.now = now
        #: Decisions of the journal that raised when replayed (never, while decide() is
        #: deterministic); they are dropped from the journal and the state.
        self.skipped = tuple(skipped)
        super().__init__(f"decide() failed on {event!r}")


class Runner:
    """The core's state, the journal since the last checkpoint, and the rollback of a failure."""

    __slots__ = ("_base", "_base_seen", "_decide", "_journal", "config", "state")

    def __init__(
        self, config: Config, state: CoachState | None = None, *, decide: Decide = decide
    ) -> None:
        """Own `state` (a fresh one by default), with it as the first checkpoint."""
        self.config = config
        #: The state; a rollback replaces the object, so hold the runner, not the state.
        self.state = state if state is not None else CoachState()
        self._decide = decide
        self._journal: list[tuple[Event, datetime]] = []
        self._base = b""
        self._base_seen: dict[str, float] = {}
        self.checkpoint()

    @property
    def journal(self) -> Sequence[tuple[Event, datetime]]:
        """The decisions since the last checkpoint, in order: (event, now)."""
        return self._journal

    def is_duplicate(self, event: Event) -> bool:
        """Whether the core would ignore this event: its key was seen already."""
        key = event.key
        return key is not None and key in self.state.seen

    def decide(self, event: Event, now: datetime) -> list[Action]:
        """Decide one event; its actions. On a failure: roll back, then raise DecisionError."""
        state = self.state
        key = event.key
        duplicate = key is not None and key in state.seen
        try:
            actions = self._decide(state, event, now, self.config)
        except Exception as err:
            skipped = self._rollback()
            raise DecisionError(event, now, skipped) from err
        if not duplicate:  # a duplicate changed nothing; left out, a replay is exact
            self._journal.append((event, now))
        return actions

    def checkpoint(self) -> bytes:
        """Make the state as it is the point a rollback returns to; it as JSON, without the keys.

        The duplicate keys are left out of the JSON (the daemon stores them with their events)
        and kept aside as they are now.
        """
        self._base = dump_state(self.state, seen=False)
        self._base_seen = dict(self.state.seen)
        self._journal.clear()
        return self._base

    def remember_keys(self, keys: Iterable[tuple[str, float]]) -> None:
        """Duplicate keys known from elsewhere ((key, instant) pairs): kept across rollbacks.

        A key of an event in the journal is the replay's to learn again: the checkpoint's keys
        do not get it, or a rollback would take that event for a duplicate and lose it.
        """
        keys = list(keys)
        restore_seen(self.state, keys)
        learnt = {event.key for event, _ in self._journal}
        self._base_seen.update((key, t) for key, t in keys if key not in learnt)

    def _rollback(self) -> list[Event]:
        """Back to the checkpoint with the journal decided again; the entries that failed."""
        skipped: list[Event] = []
        journal = self._journal
        while True:
            state = load_state(self._base)
            set_seen(state, self._base_seen)
            for index, (event, now) in enumerate(journal):
                try:
                    self._decide(state, event, now, self.config)
                except Exception:  # it did not fail the first time; be safe all the same
                    skipped.append(event)
                    journal = journal[:index] + journal[index + 1 :]
                    break  # what it changed before raising goes with a fresh replay
            else:
                self.state = state
                self._journal = journal
                return skipped
