"""`sleepcoach run` against a real broker: nudges, restarts of the broker and of the coach, bad
input, authentication, shutdown. The daemon runs as a subprocess, as it does in production."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from coach.config import Device
from coach.decode.native import parse_command, parse_device_message
from coach.state import load_state
from integrations.storage import Batch, JournalRow, Storage
from tests.broker import Broker, broker_kind, free_port, make_workdir
from tests.e2e.conftest import (
    EXIT_DEADLINE_S,
    TZ,
    DaemonProcess,
    Recorder,
    config_yaml,
    eventually,
    publisher,
)

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120)]

PREFIX = "sleepcoach"


def _db(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "coach.db"
    return f"sqlite:///{path}", path


def _count(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def _heart_rates(path: Path) -> Counter[int]:
    """How many times each numbered heart-rate message was stored (its `n` is in the bpm)."""
    rows = _count(path, "SELECT data FROM events WHERE kind = 'HeartRateMeasured'")
    return Counter(round(json.loads(r[0])["bpm"] * 10) - 600 for r in rows)  # type: ignore[arg-type]


#: The instant of reading 0 when readings carry a ts: an hour ago (inside the time policy's 48 h),
#: fixed for the session so a reading sent again is the same message.
_FIRST_TS = datetime.now(ZoneInfo(TZ)).replace(microsecond=0) - timedelta(hours=1)


def _numbered(n: int, *, with_ts: bool) -> bytes:
    doc: dict[str, object] = {"event": "heart_rate", "bpm": 60 + n / 10}
    if with_ts:
        ts = _FIRST_TS + timedelta(seconds=n)
        doc["ts"] = ts.isoformat()
    return json.dumps(doc).encode()


def test_a_coffee_now_with_bedtime_in_3_hours_gets_the_cutoff_nudge_and_the_state_shows_it(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    db_url, _ = _db(tmp_path)
    rec = recorder_factory(broker, [f"{PREFIX}/#"])
    daemon = daemon_factory(config_yaml(broker, db_url))
    daemon.start()
    assert rec.wait_for(lambda: b"online" in rec.on(f"{PREFIX}/status"))

    dev = publisher(broker)
    dev.publish(
        "home/kitchen/coffee", b'{"event": "brew", "drink": "coffee", "volume_ml": 240}', qos=1
    )
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/alex/nudge")), daemon.log_text()
    nudge = rec.json_on(f"{PREFIX}/alex/nudge")[0]
    assert nudge["rule"] == "caffeine.cutoff"
    assert nudge["person"] == "alex"
    assert nudge["evidence"]["dose_mg"] == 95.0
    assert set(nudge) >= {"id", "ts", "severity", "title", "message", "evidence", "actions"}
    assert rec.wait_for(
        lambda: any(s["caffeine_mg_now"] > 90 for s in rec.json_on(f"{PREFIX}/alex/state"))
    )
    dev.loop_stop()

    # The state is retained: a client arriving later sees it at once.
    late = recorder_factory(broker, [f"{PREFIX}/alex/state"], client_id="late")
    assert late.wait_for(lambda: late.on(f"{PREFIX}/alex/state"), 5)
    assert json.loads(late.on(f"{PREFIX}/alex/state")[-1])["caffeine_mg_now"] > 90


def test_a_broker_restart_mid_stream_loses_nothing_and_counts_nothing_twice(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    if broker.kind != "mosquitto":
        pytest.skip(
            "needs Mosquitto: its persistence saves every QoS 1 message it acknowledged when "
            "SIGTERMed; amqtt acknowledges one and can lose it in the shutdown (measured here: "
            "the message published just before the restart, #150, missing under load)"
        )
    db_url, path = _db(tmp_path)
    daemon = daemon_factory(config_yaml(broker, db_url))
    daemon.start()
    dev = publisher(broker, "tracker")
    total = 300
    for n in range(total):
        dev.publish("tracker/alex", _numbered(n, with_ts=True), qos=1)
        if n == total // 2:
            broker.restart()  # SIGTERM: Mosquitto saves its queue (persistence true)
        time.sleep(0.002)
    end = time.monotonic() + 30
    while time.monotonic() < end and len(_heart_rates(path)) < total:
        time.sleep(0.1)
    counts = _heart_rates(path)
    dev.loop_stop()
    assert sorted(counts) == list(range(total)), daemon.log_text()
    assert max(counts.values()) == 1
    log = daemon.log_text()
    assert log.count("broker unavailable") == 1, log
    assert log.count("reconnected") == 1, log


@pytest.mark.parametrize("with_ts", [True, False], ids=["payloads with ts", "payloads without ts"])
def test_the_coach_killed_mid_stream_loses_nothing_and_counts_nothing_twice(
    with_ts: bool,
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    if broker.kind != "mosquitto":
        pytest.skip(
            "needs Mosquitto: amqtt 0.12.1 does not always redeliver the QoS 1 messages in flight "
            "to a SIGKILLed client when its session resumes (measured here: #136-#150 of 400 lost)"
        )
    db_url, path = _db(tmp_path)
    rec = recorder_factory(broker, [f"{PREFIX}/alex/nudge"])
    daemon = daemon_factory(config_yaml(broker, db_url))
    daemon.start()
    dev = publisher(broker, "tracker")
    dev.publish("home/kitchen/coffee", b'{"event": "brew", "drink": "espresso"}', qos=1)
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/alex/nudge")), daemon.log_text()
    total = 400
    for n in range(total):
        dev.publish("tracker/alex", _numbered(n, with_ts=with_ts), qos=1)
        if n == 150:
            time.sleep(0.05)
            daemon.signal(signal.SIGKILL)
            daemon.wait()
    daemon.start()
    end = time.monotonic() + 30
    while time.monotonic() < end and len(_heart_rates(path)) < total:
        time.sleep(0.1)
    counts = _heart_rates(path)
    dev.loop_stop()
    assert sorted(counts) == list(range(total)), daemon.log_text()
    assert max(counts.values()) == 1, [n for n, c in counts.items() if c > 1]
    time.sleep(0.5)
    # Nudges go out at least once: the one decision is one nudge, which arrives again, the same
    # document under the same id, when the kill came before its confirmation was stored.
    nudges = rec.json_on(f"{PREFIX}/alex/nudge")
    assert 1 <= len(nudges) <= 2, nudges
    assert all(n == nudges[0] for n in nudges), nudges


class SignalOnFirstNudge:
    """A nudge subscriber that signals the coach the moment the first nudge reaches it: the
    broker has the nudge, the coach has not yet stored that the broker confirmed it."""

    def __init__(self, broker: Broker, topic: str, sig: int = signal.SIGKILL) -> None:
        self.pid: int | None = None
        self.sig = sig
        self.nudges: list[bytes] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, "nudge-killer", protocol=broker.protocol
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._ready.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, 1)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self._ready.wait(5), "the subscriber could not subscribe"

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.nudges.append(bytes(msg.payload))
            pid, self.pid = self.pid, None
        if pid is not None:
            os.kill(pid, self.sig)

    def copies(self) -> list[dict[str, object]]:
        with self._lock:
            return [json.loads(p) for p in self.nudges]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_nudge_the_coach_was_killed_sending_arrives_again_under_the_same_id(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """Nudges go out at least once: after a crash one may arrive twice, always under its id."""
    topic = f"{PREFIX}/alex/nudge"
    for attempt in range(3):
        path = tmp_path / f"coach{attempt}.db"
        sub = SignalOnFirstNudge(broker, topic)
        daemon = daemon_factory(config_yaml(broker, f"sqlite:///{path}"))
        daemon.start()
        assert daemon.proc is not None
        sub.pid = daemon.proc.pid
        dev = publisher(broker, f"coffee-maker-{attempt}")
        dev.publish("home/kitchen/coffee", b'{"event": "brew", "drink": "espresso"}', qos=1)
        assert daemon.wait(20) == -signal.SIGKILL, daemon.log_text()
        dev.loop_stop()
        before = _count(path, "SELECT id FROM nudges WHERE dropped IS NULL AND NOT published")
        # The worst moment: a subscriber has the nudge, and the coach had not yet stored the
        # broker's confirmation (it waits for the next commit). Rarely, on a loaded machine, the
        # kill comes later: then it is tried again on a new database.
        if before:
            break
        sub.close()
    else:
        pytest.fail("the kill never came before the coach stored the broker's confirmation")
    unconfirmed = [str(nudge_id) for (nudge_id,) in before]
    try:
        assert [c["id"] for c in sub.copies()] == unconfirmed[:1]
        daemon.start()

        def stored() -> dict[str, dict[str, object]]:
            rows = _count(path, "SELECT id, payload FROM nudges WHERE dropped IS NULL")
            return {str(nudge_id): json.loads(str(payload)) for nudge_id, payload in rows}

        def copies_of(nudge_id: str) -> int:
            return sum(c["id"] == nudge_id for c in sub.copies())

        # Every nudge arrives; one the broker had delivered before the crash comes again.
        assert eventually(lambda: all(copies_of(n) == 2 for n in unconfirmed), 20), (
            daemon.log_text()
        )
        for nudge_id in unconfirmed:
            assert f"sending nudge {nudge_id} again" in daemon.log_text()
        # Once the broker confirms the second sending, each nudge is published for good.
        assert eventually(
            lambda: (
                not _count(path, "SELECT id FROM nudges WHERE dropped IS NULL AND NOT published")
            ),
            10,
        ), daemon.log_text()
        # Each copy is the very document stored, under its id: what a consumer dedupes on.
        by_id = stored()
        for copy in sub.copies():
            assert copy == by_id[str(copy["id"])]
        assert all(1 <= copies_of(n) <= 2 for n in by_id)
    finally:
        sub.close()


def test_a_clean_stop_right_after_a_nudge_stores_its_confirmation_and_sends_it_once(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    path = tmp_path / "coach.db"
    sub = SignalOnFirstNudge(broker, f"{PREFIX}/alex/nudge", signal.SIGTERM)
    try:
        daemon = daemon_factory(config_yaml(broker, f"sqlite:///{path}"))
        daemon.start()
        assert daemon.proc is not None
        sub.pid = daemon.proc.pid
        dev = publisher(broker, "coffee-maker")
        dev.publish("home/kitchen/coffee", b'{"event": "brew", "drink": "espresso"}', qos=1)
        assert daemon.wait(20) == 0, daemon.log_text()
        dev.loop_stop()
        assert len(sub.copies()) == 1
        # The stop stored the broker's confirmation: the next start has nothing to send again.
        assert _count(path, "SELECT published FROM nudges WHERE dropped IS NULL") == [(1,)]
        daemon.start()
        assert "again: the broker never confirmed it" not in daemon.log_text()
    finally:
        sub.close()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    bad=st.lists(
        st.one_of(
            st.binary(min_size=1, max_size=64),
            st.sampled_from(
                [
                    b'{"event": "brew", "drink": 7}',
                    b'{"event": "heart_rate", "bpm": "fast"}',
                    b'{"event": "movement", "intensity": 1.7, "duration_s": 1}',
                    b'{"command": "snooze", "nudge_id": 5}',
                    b"[1, 2, 3]",
                    b"null",
                    b"\xff\xfe\x00",
                ]
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_bad_input_on_every_topic_is_reported_once_and_good_input_around_it_still_counts(
    bad: list[bytes],
    running: tuple[Broker, DaemonProcess, Recorder, Path],
) -> None:
    broker, daemon, rec, path = running
    topics = ["home/bedroom/bed", "home/kitchen/coffee", "tracker/alex", f"{PREFIX}/alex/command"]
    before_errors = len(rec.on(f"{PREFIX}/errors"))
    before_good = sum(_heart_rates(path).values())
    dev = publisher(broker, "fuzzer")
    expected_errors = 0
    for payload in bad:
        for topic in topics:
            if _is_valid(topic, payload):
                continue
            dev.publish(topic, payload, qos=1)
            expected_errors += 1
        dev.publish("tracker/alex", _numbered(before_good % 500, with_ts=False), qos=1)
    dev.publish("home/kitchen/coffee", b"x" * 70_000, qos=1)  # a huge payload
    expected_errors += 1
    want = before_errors + expected_errors
    assert rec.wait_for(lambda: len(rec.on(f"{PREFIX}/errors")) >= want, 15), daemon.log_text()
    time.sleep(0.2)
    assert len(rec.on(f"{PREFIX}/errors")) == want
    assert daemon.proc is not None
    assert daemon.proc.poll() is None
    for record in rec.json_on(f"{PREFIX}/errors")[before_errors:]:
        assert set(record) == {"ts", "topic", "error"}
    end = time.monotonic() + 10
    while sum(_heart_rates(path).values()) < before_good + len(bad) and time.monotonic() < end:
        time.sleep(0.05)
    assert sum(_heart_rates(path).values()) == before_good + len(bad)
    dev.loop_stop()


def _is_valid(topic: str, payload: bytes) -> bool:
    """Random bytes are almost never a valid payload; skip the rare one that is."""
    now = datetime.now(ZoneInfo(TZ))
    kinds = {"home/bedroom/bed": "bed_motion", "home/kitchen/coffee": "coffee_maker"}
    if topic.endswith("/command"):
        return not hasattr(parse_command("alex", payload, now), "error")
    kind = kinds.get(topic, "fitness_tracker")
    device = Device(id="d", kind=kind, topic=topic, person="alex")  # type: ignore[arg-type]
    return not hasattr(parse_device_message(device, payload, now), "error")


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory,
) -> object:
    """One broker and one daemon shared by the examples of the property test."""
    home = tmp_path_factory.mktemp("fuzz")
    b = Broker(broker_kind(), free_port(), make_workdir())
    b.start()
    db_path = home / "coach.db"
    cfg = home / "config.yaml"
    # Every refusal in full, however many a minute: the limit has its own test (test_limits).
    extra = "  refusals_per_minute: 10000\n"
    cfg.write_text(config_yaml(b, f"sqlite:///{db_path}", extra_mqtt=extra))
    d = DaemonProcess(cfg, home)
    rec = Recorder(b, [f"{PREFIX}/errors"], client_id="errors")
    d.start()
    yield b, d, rec, db_path
    rec.close()
    d.stop()
    b.stop()


def test_a_wrong_password_is_refused_with_the_broker_reason_and_the_coach_says_so(
    auth_broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    db_url, _ = _db(tmp_path)
    cfg = config_yaml(auth_broker, db_url, extra_mqtt="  username: coach\n")
    daemon = daemon_factory(cfg, env={"SLEEPCOACH_MQTT_PASSWORD": "wrong-password"})
    daemon.start(wait=False)
    assert daemon.wait(EXIT_DEADLINE_S) == 1
    log = daemon.log_text()
    assert "refused the connection" in log
    assert "reason code 134" in log or "reason code 135" in log, log
    assert "wrong-password" not in log
    assert "connected to the broker" not in log

    good = daemon_factory(cfg, env={"SLEEPCOACH_MQTT_PASSWORD": "right-password"})
    good.start()
    assert "right-password" not in good.log_text()


def test_sigterm_stops_within_5_s_with_exit_0_and_offline_published(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    db_url, _ = _db(tmp_path)
    rec = recorder_factory(broker, [f"{PREFIX}/status"])
    daemon = daemon_factory(config_yaml(broker, db_url))
    daemon.start()
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/status")[-1:] == [b"online"])
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(10) == 0
    assert time.monotonic() - started < 5
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/status")[-1:] == [b"offline"], 5)


def test_a_killed_coach_leaves_offline_as_its_last_will(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    db_url, _ = _db(tmp_path)
    rec = recorder_factory(broker, [f"{PREFIX}/status"])
    daemon = daemon_factory(config_yaml(broker, db_url))
    daemon.start()
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/status")[-1:] == [b"online"])
    daemon.signal(signal.SIGKILL)
    daemon.wait()
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/status")[-1:] == [b"offline"], 5)


def test_check_reports_config_storage_and_broker(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    db_url, _ = _db(tmp_path)
    ok = daemon_factory(config_yaml(broker, db_url), "--check")
    ok.start(wait=False)
    assert ok.wait(EXIT_DEADLINE_S) == 0, ok.log_text()
    out = ok.out.read_text()
    assert "storage: OK" in out
    assert f"broker: OK (mqtt://127.0.0.1:{broker.port})" in out

    broker.stop()
    down = daemon_factory(config_yaml(broker, db_url), "--check")
    down.start(wait=False)
    assert down.wait(EXIT_DEADLINE_S) == 1
    assert "broker: FAILED" in down.out.read_text()


def test_json_logs_are_one_object_per_line_with_one_line_per_decision_at_debug(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    db_url, _ = _db(tmp_path)
    rec = recorder_factory(broker, [f"{PREFIX}/alex/nudge"])
    daemon = daemon_factory(
        config_yaml(broker, db_url), "--log-format", "json", "--log-level", "debug"
    )
    daemon.start()
    dev = publisher(broker)
    dev.publish("home/kitchen/coffee", b'{"event": "brew", "drink": "espresso"}', qos=1)
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/alex/nudge"))
    dev.loop_stop()
    daemon.signal(signal.SIGTERM)
    daemon.wait()
    lines = [json.loads(line) for line in daemon.log_text().splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "message"} <= set(doc) for doc in lines)
    decisions = [d for d in lines if d["message"].startswith("decided CoffeeBrewed")]
    assert len(decisions) == 1
    assert "nudge caffeine.cutoff:alex:" in decisions[0]["message"]


def test_a_stored_decision_the_core_fails_on_is_rolled_back_on_start_and_the_rest_replayed(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    """A journal row on which decide() raises when it is replayed (a `ts` without an offset, as a
    hand-edited or damaged database may hold): the coach logs it, puts the state back as it was
    before it, replays the rest, and runs on."""
    db_url, path = _db(tmp_path)
    now = datetime.now(ZoneInfo(TZ)).replace(microsecond=0)

    def row(seconds_ago: int, drink: str, ts: str) -> JournalRow:
        event = {"person": "alex", "ts": ts, "source": "coffee", "drink": drink}
        at = now - timedelta(seconds=seconds_ago)
        return JournalRow(at.timestamp(), "CoffeeBrewed", json.dumps(event))

    naive = (now - timedelta(seconds=20)).replace(tzinfo=None).isoformat()
    storage = Storage.open(db_url)
    storage.write(
        Batch(
            journal=[
                row(30, "espresso", (now - timedelta(seconds=30)).isoformat()),
                row(20, "cold_brew", naive),
                row(10, "tea", (now - timedelta(seconds=10)).isoformat()),
            ]
        )
    )
    storage.close()
    rec = recorder_factory(broker, [f"{PREFIX}/alex/state"])
    daemon = daemon_factory(config_yaml(broker, db_url))
    daemon.start()
    assert rec.wait_for(lambda: rec.json_on(f"{PREFIX}/alex/state")), daemon.log_text()
    log = daemon.log_text()
    assert "replaying CoffeeBrewed(" in log
    assert "TypeError" in log
    dev = publisher(broker, "coffee-maker")
    dev.publish("home/kitchen/coffee", b'{"event": "brew", "drink": "coffee"}', qos=1)
    assert rec.wait_for(lambda: len(rec.json_on(f"{PREFIX}/alex/state")) >= 2), daemon.log_text()
    dev.loop_stop()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(10) == 0
    storage = Storage.open(db_url)
    raw = storage.load_state()
    storage.close()
    assert raw is not None
    # The espresso (63 mg), the tea (47) and the coffee sent after the start (95) count, on
    # whichever day each fell; the cold brew the core failed on does not.
    assert sum(load_state(raw).people["alex"].caffeine_days.values()) == 63.0 + 47.0 + 95.0
    assert _count(path, "SELECT COUNT(*) FROM journal") == [(0,)]  # folded into the snapshot
