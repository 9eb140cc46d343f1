"""The daemon's consumer without a network: a fake link and timers, a real SQLite file."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coach import engine
from coach.config import Config
from coach.event import Event, NudgeSnoozed, Timer
from coach.runner import Decide
from coach.state import CoachState, load_state
from integrations import consumer as consumer_module
from integrations import writer as writer_module
from integrations.config_file import ConfigError, config_from_yaml, with_env_overrides
from integrations.consumer import Consumer
from integrations.inbox import Inbox
from integrations.mqtt import Message
from integrations.storage import Batch, EventRow, JournalRow, Storage, StorageError

NOW = datetime(2026, 11, 24, 20, 5, tzinfo=UTC)  # 21:05 in Berlin, bedtime 22:30
CONFIG = config_from_yaml(
    """
timezone: Europe/Berlin
people: [{id: alex, bedtime: "22:30", wake: "06:30"}]
devices:
  - {id: coffee, kind: coffee_maker, topic: home/kitchen/coffee, person: alex}
"""
)


class FakeLink:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, bool]] = []
        self.acked: list[int] = []
        self.mid = 0

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        self.published.append((topic, payload, retain))
        self.mid += 1
        return self.mid

    def ack(self, message: Message) -> None:
        self.acked.append(message.mid)

    def on(self, topic: str) -> list[Any]:
        return [json.loads(p) for t, p, _r in self.published if t == topic]


class FakeTimers:
    def __init__(self) -> None:
        self.timers: dict[str, Timer] = {}

    def schedule(self, timer: Timer) -> None:
        self.timers[timer.id] = timer

    def cancel(self, timer_id: str) -> None:
        self.timers.pop(timer_id, None)

    def call_at(self, job_id: str, at: datetime, fn: Callable[[], None]) -> None:
        del job_id, at, fn


def _msg(
    mid: int, payload: bytes, topic: str = "home/kitchen/coffee", dup: bool = False
) -> Message:
    return Message(topic, payload, 1, mid, dup, False, NOW, 1)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    s = Storage.open(f"sqlite:///{tmp_path / 'c.db'}")
    yield s
    s.close()


def _consumer(
    storage: Storage, link: FakeLink | None = None, decide: Decide = engine.decide
) -> Consumer:
    return Consumer(
        CONFIG, storage, link or FakeLink(), FakeTimers(), clock=lambda: NOW, decide=decide
    )


def failing_on_cold_brew(state: CoachState, event: Event, now: datetime, config: Config) -> Any:
    """decide() with a bug: it changes the state, then raises, on a cold brew (the worst case)."""
    actions = engine.decide(state, event, now, config)
    if getattr(event, "drink", None) == "cold_brew":
        raise ZeroDivisionError("boom")
    return actions


def _serve(consumer: Consumer, *items: Message) -> None:
    for item in items:
        consumer.inbox.deliver(item)
    consumer.inbox.stop()
    consumer.serve()


def test_start_plans_timers_and_publishes_the_retained_state(storage: Storage) -> None:
    link = FakeLink()
    consumer = _consumer(storage, link)
    consumer.start()
    assert isinstance(consumer.timers, FakeTimers)
    assert any(t.startswith("winddown.stretch:alex") for t in consumer.timers.timers)
    states = [(t, r) for t, _p, r in link.published if t == "sleepcoach/alex/state"]
    assert states == [("sleepcoach/alex/state", True)]


def test_a_message_is_acknowledged_after_it_is_stored_and_its_nudge_is_published(
    storage: Storage,
) -> None:
    link = FakeLink()
    consumer = _consumer(storage, link)
    _serve(consumer, _msg(7, b'{"event": "brew", "drink": "espresso"}'))
    assert link.acked == [7]
    assert [n["rule"] for n in link.on("sleepcoach/alex/nudge")] == ["caffeine.cutoff"]
    assert storage.count("events") == 1
    assert [n.id for n in storage.unpublished_nudges()] == [
        link.on("sleepcoach/alex/nudge")[0]["id"]
    ]


def test_nothing_is_acknowledged_while_storage_fails_and_all_of_it_once_it_is_back(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = FakeLink()
    consumer = _consumer(storage, link)
    real_write = storage.write
    failures = {"left": 2}

    def flaky(batch: Batch) -> None:
        if failures["left"]:
            failures["left"] -= 1
            assert link.acked == []
            raise StorageError("disk full")
        real_write(batch)

    monkeypatch.setattr(storage, "write", flaky)
    monkeypatch.setattr(writer_module, "STORAGE_RETRY_S", (0.01, 0.02))
    consumer.inbox.deliver(_msg(1, b'{"event": "brew", "drink": "tea"}'))
    consumer.inbox.deliver(_msg(2, b'{"event": "brew", "drink": "tea", "volume_ml": 100}'))
    threading.Timer(0.3, consumer.inbox.stop).start()
    consumer.serve()
    assert link.acked == [1, 2]
    assert storage.count("events") == 2


def test_a_bug_in_decide_is_reported_and_the_state_stays_as_it_was(storage: Storage) -> None:
    link = FakeLink()
    consumer = _consumer(storage, link, decide=failing_on_cold_brew)
    first = b'{"event": "brew", "drink": "espresso"}'
    second = b'{"event": "brew", "drink": "cold_brew"}'
    _serve(consumer, _msg(1, first), _msg(2, second))
    errors = link.on("sleepcoach/errors")
    assert len(errors) == 1
    assert "internal error while deciding (ZeroDivisionError: boom)" in errors[0]["error"]
    assert errors[0]["topic"] == "home/kitchen/coffee"
    # The espresso (63 mg) counts, the cold brew that failed does not.
    assert consumer.state.people["alex"].caffeine_days == {"2026-11-24": 63.0}
    assert link.acked == [1, 2]  # acknowledged: a redelivery would fail the same way


def test_a_redelivered_message_that_was_stored_is_skipped(storage: Storage) -> None:
    link = FakeLink()
    payload = b'{"event": "brew", "drink": "tea"}'
    _serve(_consumer(storage, link), _msg(5, payload))
    again = FakeLink()
    consumer = _consumer(storage, again)
    _serve(consumer, _msg(5, payload, dup=True))
    assert again.acked == [5]
    assert storage.count("events") == 1


def test_a_redelivery_while_the_database_is_gone_is_held_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The redelivery check reads the database; that read failing stopped the daemon."""
    path = tmp_path / "c.db"
    storage = Storage.open(f"sqlite:///{path}")
    link = FakeLink()
    consumer = _consumer(storage, link)
    monkeypatch.setattr(writer_module, "STORAGE_RETRY_S", (0.01, 0.02))
    storage.engine.dispose()
    path.rename(tmp_path / "moved.db")  # the next connection finds an empty file: no tables
    consumer.inbox.deliver(_msg(5, b'{"event": "brew", "drink": "tea"}', dup=True))
    threading.Timer(0.3, consumer.inbox.stop).start()
    consumer.serve()  # returns on the stop; nothing raised
    assert link.acked == []  # held: the broker sends it again once the database is back
    storage.close()


def test_bad_input_is_refused_once_on_errors_and_stored_as_refused(storage: Storage) -> None:
    link = FakeLink()
    _serve(
        _consumer(storage, link),
        _msg(1, b"\xff\x00"),
        _msg(2, b'{"command": "ack", "nudge_id": "x"}', topic="sleepcoach/nobody/command"),
        _msg(3, b'{"event": "brew"}', topic="not/ours"),
    )
    errors = link.on("sleepcoach/errors")
    assert [e["topic"] for e in errors] == ["home/kitchen/coffee", "sleepcoach/nobody/command"]
    assert "not UTF-8" in errors[0]["error"]
    assert link.acked == [1, 2, 3]
    assert [e.kind for e in storage.events()] == ["refused", "refused"]


def test_an_unconfirmed_nudge_is_sent_again_on_start_under_the_same_id(storage: Storage) -> None:
    link = FakeLink()
    _serve(_consumer(storage, link), _msg(1, b'{"event": "brew", "drink": "espresso"}'))
    (first,) = link.on("sleepcoach/alex/nudge")
    again = FakeLink()
    _consumer(storage, again).start()
    assert [n["id"] for n in again.on("sleepcoach/alex/nudge")] == [first["id"]]


class FakeSink:
    def __init__(self) -> None:
        self.delivered: list[tuple[dict[str, Any], datetime | float | None]] = []

    def deliver(self, nudge: dict[str, Any], expires_at: datetime | float | None = None) -> None:
        self.delivered.append((nudge, expires_at))

    def discovery_messages(self) -> list[tuple[str, str, bool]]:
        return []


def test_a_nudge_sent_again_is_the_same_document_with_the_same_expiry(storage: Storage) -> None:
    link, sink = FakeLink(), FakeSink()
    first = Consumer(CONFIG, storage, link, FakeTimers(), clock=lambda: NOW, sink=sink)
    _serve(first, _msg(1, b'{"event": "brew", "drink": "espresso"}'))
    ((sent, expires),) = sink.delivered
    assert isinstance(expires, float)
    again, resink = FakeLink(), FakeSink()
    Consumer(CONFIG, storage, again, FakeTimers(), clock=lambda: NOW, sink=resink).start()
    assert again.on("sleepcoach/alex/nudge") == link.on("sleepcoach/alex/nudge") == [sent]
    assert resink.delivered == [(sent, expires)]


class ConfirmingLink(FakeLink):
    """A link whose broker confirms each publication as soon as it is sent."""

    def __init__(self, inbox: Inbox) -> None:
        super().__init__()
        self.inbox = inbox

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int:
        mid = super().publish(topic, payload, qos=qos, retain=retain)
        self.inbox.published(mid)
        return mid


def test_a_stop_stores_the_confirmation_of_a_nudge_its_last_batch_sent(storage: Storage) -> None:
    inbox = Inbox()
    link = ConfirmingLink(inbox)
    consumer = Consumer(CONFIG, storage, link, FakeTimers(), clock=lambda: NOW, inbox=inbox)
    # The coffee and the stop in one batch: the nudge goes out after the stop was taken, and the
    # broker's confirmation arrives behind it.
    _serve(consumer, _msg(1, b'{"event": "brew", "drink": "espresso"}'))
    assert [n["rule"] for n in link.on("sleepcoach/alex/nudge")] == ["caffeine.cutoff"]
    assert storage.unpublished_nudges() == []
    again = FakeLink()
    _consumer(storage, again).start()
    assert again.on("sleepcoach/alex/nudge") == []


def test_a_confirmed_nudge_is_not_sent_again(storage: Storage) -> None:
    link = FakeLink()
    consumer = _consumer(storage, link)
    consumer.inbox.deliver(_msg(1, b'{"event": "brew", "drink": "espresso"}'))
    consumer.inbox.stop()
    consumer.serve()
    nudge_mid = next(
        mid for mid, (t, _p, _r) in enumerate(link.published, 1) if t.endswith("/nudge")
    )
    consumer.inbox.published(nudge_mid)
    consumer.inbox.stop()
    consumer.serve()
    again = FakeLink()
    _consumer(storage, again).start()
    assert again.on("sleepcoach/alex/nudge") == []


def test_environment_overrides_the_broker_and_database_urls() -> None:
    config = with_env_overrides(
        CONFIG,
        {
            "SLEEPCOACH_MQTT_URL": "mqtt://mosquitto:1883",
            "SLEEPCOACH_STORAGE_URL": "sqlite:///x.db",
        },
    )
    assert config.mqtt.url == "mqtt://mosquitto:1883"
    assert config.storage.url == "sqlite:///x.db"
    assert with_env_overrides(CONFIG, {}) is CONFIG


def test_environment_overrides_the_dashboards_address_and_checks_it() -> None:
    config = with_env_overrides(CONFIG, {"SLEEPCOACH_DASHBOARD_LISTEN": "0.0.0.0:8099"})
    assert config.dashboard.address == ("0.0.0.0", 8099)
    assert not config.dashboard.is_loopback
    assert config.dashboard.enabled
    with pytest.raises(ConfigError) as refused:
        with_env_overrides(CONFIG, {"SLEEPCOACH_DASHBOARD_LISTEN": "8099"})
    (problem,) = refused.value.problems
    assert str(problem).startswith("SLEEPCOACH_DASHBOARD_LISTEN: expected host:port")


def test_a_timer_firing_reaches_the_core(storage: Storage) -> None:
    link = FakeLink()
    consumer = _consumer(storage, link)
    consumer.start()
    assert isinstance(consumer.timers, FakeTimers)
    timer = next(t for t in consumer.timers.timers.values() if t.kind == "winddown.stretch")
    consumer.clock = lambda: timer.at + timedelta(seconds=1)
    consumer.inbox.timer_due(timer)
    consumer.inbox.stop()
    consumer.serve()
    assert [n["rule"] for n in link.on("sleepcoach/alex/nudge")] == ["winddown.stretch"]


ESPRESSO_WITH_TS = b'{"event": "brew", "drink": "espresso", "ts": "2026-11-24T21:00:00+01:00"}'


def test_a_restart_rebuilds_duplicate_detection_from_the_stored_events(db_url: str) -> None:
    storage = Storage.open(db_url)
    link = FakeLink()
    _serve(_consumer(storage, link), _msg(1, ESPRESSO_WITH_TS))
    assert len(link.on("sleepcoach/alex/nudge")) == 1
    raw = storage.load_state()
    assert raw is not None
    assert load_state(raw).seen == {}  # the key is stored with its event, not in the state
    storage.close()
    storage = Storage.open(db_url)  # as a restarted process
    again = FakeLink()
    consumer = _consumer(storage, again)
    # The device sends the same reading again, as a new message (not a broker redelivery).
    _serve(consumer, _msg(7, ESPRESSO_WITH_TS))
    assert again.acked == [7]
    assert storage.count("events") == 1
    assert again.on("sleepcoach/alex/nudge") == []
    assert consumer.state.people["alex"].caffeine_days == {"2026-11-24": 63.0}
    storage.close()


def test_keys_the_core_had_forgotten_are_not_rebuilt(storage: Storage) -> None:
    # The core keeps keys 48 h and forgets them hourly: a key up to 49 h old may still be held.
    old, kept = NOW - timedelta(hours=50), NOW - timedelta(hours=48, minutes=30)
    readings = [
        b'{"event": "brew", "drink": "tea", "ts": "%s"}' % at.isoformat().encode()
        for at in (old, kept)
    ]
    # Each arrived at its own time (the time policy refuses a ts older than 48 h on arrival).
    arrived = [
        dataclasses.replace(_msg(i + 1, r), received_at=at)
        for i, (r, at) in enumerate(zip(readings, (old, kept), strict=True))
    ]
    _serve(_consumer(storage), *arrived)
    assert storage.count("events") == 2
    assert list(_consumer(storage).state.seen.values()) == [kept.timestamp()]


def test_a_bug_in_decide_keeps_the_duplicate_keys_of_the_batch(storage: Storage) -> None:
    link = FakeLink()
    consumer = _consumer(storage, link, decide=failing_on_cold_brew)
    cold_brew = b'{"event": "brew", "drink": "cold_brew", "ts": "2026-11-24T21:01:00+01:00"}'
    _serve(consumer, _msg(1, ESPRESSO_WITH_TS), _msg(2, cold_brew))
    _serve(consumer, _msg(3, ESPRESSO_WITH_TS), _msg(4, cold_brew))
    # Both were stored once; their repeats are duplicates, and the espresso counts once.
    assert storage.count("events") == 2
    assert len(link.on("sleepcoach/errors")) == 1
    assert consumer.state.people["alex"].caffeine_days == {"2026-11-24": 63.0}
    assert link.acked == [1, 2, 3, 4]


# -- the journal: the state is a snapshot every few seconds, the decisions since are replayed ----


def _same(a: CoachState, b: CoachState) -> bool:
    """The same state; the keys' order flag aside (a restart sorts them back into time order)."""
    names = [f.name for f in dataclasses.fields(CoachState) if f.name != "seen_in_order"]
    return all(getattr(a, n) == getattr(b, n) for n in names)


def _serving(consumer: Consumer) -> threading.Thread:
    """The consumer on a thread of its own, as in the daemon (stop it with `inbox.stop()`)."""
    thread = threading.Thread(target=consumer.serve, daemon=True)
    thread.start()
    return thread


def _wait_processed(consumer: Consumer, n: int, storage: Storage, events: int) -> None:
    deadline = time.monotonic() + 10
    while consumer.processed < n or storage.count("events") < events:
        assert time.monotonic() < deadline, "the consumer did not get through its inbox"
        time.sleep(0.01)
    time.sleep(0.05)  # the acks and publications after the commit


TEA_AT_2030 = b'{"event": "brew", "drink": "tea", "ts": "2026-11-24T20:30:00+01:00"}'


def test_a_crash_between_snapshots_loses_no_decision(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "SNAPSHOT_EVERY_S", 3600.0)
    monkeypatch.setattr(consumer_module, "SNAPSHOT_IDLE_S", 3600.0)
    live_link = FakeLink()
    live = _consumer(storage, live_link)
    live.start()
    serving = _serving(live)
    for mid, payload in enumerate(
        [ESPRESSO_WITH_TS, b'{"event": "brew", "drink": "coffee"}', TEA_AT_2030], start=1
    ):
        live.inbox.deliver(_msg(mid, payload))
    _wait_processed(live, 3, storage, 3)
    nudge = live_link.on("sleepcoach/alex/nudge")[0]["id"]
    live.inbox.external(
        NudgeSnoozed(person="alex", ts=NOW, source="test", nudge_id=nudge, minutes=10)
    )
    _wait_processed(live, 3, storage, 4)
    assert live_link.acked == [1, 2, 3]
    # Nothing was written as a snapshot since the start: the decisions are in the journal.
    assert [row.kind for row in storage.load_journal()] == [
        "CoffeeBrewed",
        "CoffeeBrewed",
        "CoffeeBrewed",
        "NudgeSnoozed",
    ]
    # The process dies here (SIGKILL): a new one on the same database has the same state.
    restarted = _consumer(storage, FakeLink())
    assert _same(restarted.state, live.state)
    assert restarted.state.people["alex"].nudges[nudge].snooze_until is not None
    restarted.start()
    assert storage.load_journal() == []  # folded into the state the start wrote
    raw = storage.load_state()
    assert raw is not None
    assert load_state(raw).people == live.state.people
    live.inbox.stop()
    serving.join(5)


def test_the_state_is_written_once_the_inbox_is_quiet(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "SNAPSHOT_EVERY_S", 3600.0)
    monkeypatch.setattr(consumer_module, "SNAPSHOT_IDLE_S", 0.05)
    consumer = _consumer(storage)
    consumer.start()
    serving = _serving(consumer)
    consumer.inbox.deliver(_msg(1, ESPRESSO_WITH_TS))
    deadline = time.monotonic() + 10
    # Events first: the batch writes them with its journal in one transaction, so once they are
    # there an empty journal means the snapshot replaced it (read the other way round, the
    # commit could land between the two reads).
    while storage.count("events") == 0 or storage.load_journal():
        assert time.monotonic() < deadline, "no snapshot after a quiet inbox"
        time.sleep(0.01)
    raw = storage.load_state()
    assert raw is not None
    assert load_state(raw).people["alex"].caffeine_days == {"2026-11-24": 63.0}
    consumer.inbox.stop()
    serving.join(5)


def test_a_snapshot_is_written_after_so_many_decisions_under_load(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "SNAPSHOT_EVERY_S", 3600.0)
    monkeypatch.setattr(writer_module, "SNAPSHOT_MAX_DECISIONS", 3)
    consumer = _consumer(storage)
    consumer.start()
    teas = [
        b'{"event": "brew", "drink": "tea", "ts": "2026-11-24T1%d:00:00+01:00"}' % h
        for h in range(5)
    ]
    for mid, payload in enumerate(teas, start=1):
        consumer.inbox.deliver(_msg(mid, payload))
        consumer.handle(consumer.inbox.queue.get_nowait())
        consumer.commit()  # one commit each, as under steady load
    # Decisions 1-3 went into a snapshot at the third commit; 4 and 5 are journaled.
    assert [json.loads(row.event)["ts"][11:16] for row in storage.load_journal()] == [
        "13:00",
        "14:00",
    ]
    assert _same(_consumer(storage).state, consumer.state)


def test_a_bug_in_decide_after_a_replay_keeps_what_was_replayed(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "SNAPSHOT_EVERY_S", 3600.0)
    first = _consumer(storage)
    first.start()
    first.inbox.deliver(_msg(1, ESPRESSO_WITH_TS))
    first.handle(first.inbox.queue.get_nowait())
    first.commit()  # stored and journaled, no snapshot: then the process dies
    link = FakeLink()
    consumer = _consumer(storage, link, decide=failing_on_cold_brew)  # replays the espresso
    cold_brew = b'{"event": "brew", "drink": "cold_brew", "ts": "2026-11-24T21:01:00+01:00"}'
    _serve(consumer, _msg(2, cold_brew), _msg(3, ESPRESSO_WITH_TS))
    assert len(link.on("sleepcoach/errors")) == 1
    # The espresso decided before the crash is still counted, once; its repeat is a duplicate.
    assert consumer.state.people["alex"].caffeine_days == {"2026-11-24": 63.0}
    assert storage.count("events") == 2


def test_an_unreadable_journal_entry_is_skipped_with_an_error(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = _consumer(storage)
    consumer.start()
    storage.write(
        Batch(
            journal=[
                JournalRow(NOW.timestamp(), "Sneezed", "{}"),
                JournalRow(
                    NOW.timestamp(),
                    "CoffeeBrewed",
                    json.dumps({"person": "alex", "ts": NOW.isoformat(), "drink": "espresso"}),
                ),
            ]
        )
    )
    restarted = _consumer(storage)
    assert "unknown event kind 'Sneezed'" in caplog.text
    assert restarted.state.people["alex"].caffeine_days == {"2026-11-24": 63.0}


def test_a_journal_entry_that_fails_to_replay_is_skipped_and_the_rest_replayed(
    storage: Storage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(writer_module, "SNAPSHOT_EVERY_S", 3600.0)
    first = _consumer(storage)
    first.start()
    cold_brew = b'{"event": "brew", "drink": "cold_brew", "ts": "2026-11-24T21:01:00+01:00"}'
    for mid, payload in enumerate([ESPRESSO_WITH_TS, cold_brew, TEA_AT_2030], start=1):
        first.inbox.deliver(_msg(mid, payload))
        first.handle(first.inbox.queue.get_nowait())
    first.commit()  # journaled, no snapshot: then the process dies
    # As a newer sleepcoach with a bug might: it changes the state, then raises.
    restarted = _consumer(storage, decide=failing_on_cold_brew)
    assert "replaying" in caplog.text
    assert "ZeroDivisionError" in caplog.text
    # The espresso (63 mg) and the tea after the failing entry count; the cold brew does not.
    days = restarted.state.people["alex"].caffeine_days
    assert days == {"2026-11-24": 63.0 + 47.0}
    # Its key is known all the same (it was stored): a repeat of it is a duplicate.
    assert any("21:01:00" in key for key in restarted.state.seen)


def test_the_daily_housekeeping_purges_history_past_its_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    storage = Storage.open(f"sqlite:///{tmp_path / 'kept.db'}", keep_days=30)
    old = (NOW - timedelta(days=40)).timestamp()
    storage.write(Batch(events=[EventRow(old, old, "alex", "CoffeeBrewed", "coffee", "t", "{}")]))
    consumer = _consumer(storage)
    consumer.inbox.deliver(_msg(1, b'{"event": "brew", "drink": "espresso"}'))
    consumer.inbox.housekeeping()
    _serve(consumer)
    assert [e.data.get("drink") for e in storage.events()] == ["espresso"]

    # Storage failing then is said, and the consumer goes on.
    def failing(now: datetime) -> int:
        raise StorageError("cannot purge: disk I/O error")

    monkeypatch.setattr(storage, "purge", failing)
    consumer.inbox.housekeeping()
    _serve(consumer, _msg(2, b'{"event": "brew", "drink": "latte"}'))
    assert "retention purge failed: cannot purge: disk I/O error" in caplog.text
    assert storage.count("events") == 2
    storage.close()


def test_qos0_messages_the_inbox_had_no_room_for_are_reported_as_refusals(
    storage: Storage,
) -> None:
    """A publisher faster than the coach at QoS 0: what fits is used, the rest is said, once."""
    link = FakeLink()
    consumer = _consumer(storage, link)
    consumer.inbox.max_waiting_qos0 = 2
    for mid in range(5):
        drink = b'{"event": "brew", "drink": "tea", "volume_ml": %d}' % (100 + mid)
        consumer.inbox.deliver(dataclasses.replace(_msg(mid, drink), qos=0))
    _serve(consumer)
    assert consumer.state.people["alex"].caffeine_days == {
        "2026-11-24": pytest.approx(47.0 * 201 / 240)
    }
    assert storage.count("events") == 3  # the two teas and the refusal that says the rest
    errors = link.on("sleepcoach/errors")
    assert [e["topic"] for e in errors] == ["home/kitchen/coffee"]
    assert errors[0]["error"].startswith("3 QoS 0 messages dropped unread: more were waiting")
    assert "should use QoS 1" in errors[0]["error"]
