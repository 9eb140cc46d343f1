"""The runner: one owner of the state, its journal since the checkpoint, and the rollback."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coach.action import Action
from coach.config import Config
from coach.engine import decide
from coach.error import ProjectError
from coach.event import CoachStarted, CoffeeBrewed, Event, HeartRateMeasured, SunlightLogged
from coach.runner import DecisionError, Runner
from coach.state import CoachState, dump_state, load_state
from tests.core.conftest import CONFIG, coffee, t

START = t("06:00")


def _event(kind: int, minute: int, keyed: int) -> Event:
    """A reading, coffee or daylight log `minute` minutes after START; `keyed` > 0 gives it a
    duplicate key (equal `keyed` values are the same message again)."""
    ts = START + timedelta(minutes=minute)
    key = f"dev|{keyed}" if keyed else None
    if kind == 0:
        return HeartRateMeasured(person="alex", ts=ts, bpm=60 + minute % 90, key=key)
    if kind == 1:
        return CoffeeBrewed(person="alex", ts=ts, drink="espresso", key=key)
    return SunlightLogged(person="alex", ts=ts, minutes=5, key=key)


def failing_on(bad: Callable[[Event], bool]) -> Callable[..., list[Action]]:
    """decide() with a bug: for the events `bad` picks it changes the state, then raises."""

    def buggy(state: CoachState, event: Event, now: datetime, config: Config) -> list[Action]:
        actions = decide(state, event, now, config)
        if bad(event):
            state.dropped["bug"] = 1  # more harm on the way out
            msg = "boom"
            raise RuntimeError(msg)
        return actions

    return buggy


def _same(a: CoachState, b: CoachState) -> bool:
    """The same state: the same duplicate keys (their order aside) and the same rest."""
    return a.seen == b.seen and dump_state(a, seen=False) == dump_state(b, seen=False)


def test_deciding_through_the_runner_is_deciding() -> None:
    runner = Runner(CONFIG)
    state = CoachState()
    for event in [CoachStarted(person="*", ts=START), coffee("09:00"), coffee("16:05")]:
        assert runner.decide(event, event.ts) == decide(state, event, event.ts, CONFIG)
    assert _same(runner.state, state)


def test_a_failing_event_leaves_the_state_as_it_was_and_says_which_event_and_why() -> None:
    espresso, cold_brew = coffee("09:00"), coffee("10:00", "cold_brew")
    runner = Runner(CONFIG, decide=failing_on(lambda e: e is cold_brew))
    runner.decide(espresso, espresso.ts)
    before = load_state(dump_state(runner.state))
    with pytest.raises(DecisionError) as caught:
        runner.decide(cold_brew, cold_brew.ts)
    assert isinstance(caught.value, ProjectError)
    assert caught.value.event is cold_brew
    assert caught.value.now == cold_brew.ts
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert caught.value.skipped == ()
    assert _same(runner.state, before)
    assert [e for e, _ in runner.journal] == [espresso]  # the failed one is not in it


def test_the_journal_holds_the_decisions_since_the_checkpoint_but_no_duplicate() -> None:
    first = _event(1, 60, 7)
    runner = Runner(CONFIG)
    runner.decide(first, first.ts)
    runner.decide(first, first.ts + timedelta(minutes=1))  # the same message again: ignored
    assert list(runner.journal) == [(first, first.ts)]
    raw = runner.checkpoint()
    assert runner.journal == []
    assert load_state(raw).seen == {}  # the keys are not in the JSON: the daemon stores them
    assert runner.is_duplicate(first)


def test_keys_remembered_from_elsewhere_survive_a_rollback() -> None:
    stored = _event(1, 30, 1)
    bad = _event(2, 90, 0)
    runner = Runner(CONFIG, decide=failing_on(lambda e: e is bad))
    runner.remember_keys([("dev|1", stored.ts.timestamp())])
    with pytest.raises(DecisionError):
        runner.decide(bad, bad.ts)
    assert runner.is_duplicate(stored)


def test_a_key_the_journal_learns_is_not_taken_for_a_duplicate_by_a_rollback() -> None:
    """The daemon replays its journal on start, then gives back every stored key, the journal's
    among them: a rollback after that must decide the journal's events again, not skip them."""
    espresso = _event(1, 60, 1)
    bad = _event(1, 120, 2)
    runner = Runner(CONFIG, decide=failing_on(lambda e: e is bad))
    runner.decide(espresso, espresso.ts)  # replayed from the journal
    runner.remember_keys([("dev|1", espresso.ts.timestamp())])  # given back from storage
    with pytest.raises(DecisionError):
        runner.decide(bad, bad.ts)
    assert runner.state.people["alex"].caffeine_days == {"2026-11-24": 63.0}


def test_a_journal_entry_that_fails_when_replayed_is_left_out_and_named() -> None:
    """decide() is deterministic; should it ever not be, the rollback still ends."""
    first, second, third = coffee("09:00"), coffee("10:00", "tea"), coffee("11:00", "coffee")
    calls = {"second": 0}

    def flaky(event: Event) -> bool:
        if event is second:
            calls["second"] += 1
            return calls["second"] > 1  # fails on its replay only
        return event is third

    runner = Runner(CONFIG, decide=failing_on(flaky))
    runner.decide(first, first.ts)
    runner.decide(second, second.ts)
    with pytest.raises(DecisionError) as caught:
        runner.decide(third, third.ts)
    assert caught.value.skipped == (second,)
    assert [e for e, _ in runner.journal] == [first]
    assert runner.state.people["alex"].caffeine_days == {"2026-11-24": 63.0}


# One step of a run: (kind, minutes after START, duplicate key or 0, fails, checkpoint after).
Step = tuple[int, int, int, bool, bool]
steps = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.integers(0, 4 * 24 * 60),  # four days: keys expire, housekeeping runs
        st.integers(0, 6),
        st.booleans(),
        st.booleans(),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_a_run_with_failures_ends_as_the_run_without_the_failed_events(run: Sequence[Step]) -> None:
    """Whatever fails where, and wherever the checkpoints fall: each decision and the final
    state are those of a run in which the failed events never happened."""
    events: list[tuple[Event, datetime, bool, bool]] = []
    now = START
    for kind, minute, keyed, fails, checkpoint in run:
        event = _event(kind, minute, keyed)
        now = max(now, event.ts)  # a late reading is decided at the clock's time
        events.append((event, now, fails, checkpoint))
    failing = {id(e) for e, _, fails, _ in events if fails}
    runner = Runner(CONFIG, decide=failing_on(lambda e: id(e) in failing))
    clean = CoachState()
    for event, at, fails, checkpoint in events:
        if fails:
            with pytest.raises(DecisionError):
                runner.decide(event, at)
        else:
            got: Any = runner.decide(event, at)
            assert got == failing_on(lambda _e: False)(clean, event, at, CONFIG)
        if checkpoint:
            runner.checkpoint()
    assert _same(runner.state, clean)
