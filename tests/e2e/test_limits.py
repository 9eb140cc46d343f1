"""The coach's limits, through `sleepcoach run` on a real Mosquitto: device topics that would feed
the coach its own messages are refused at start, timestamps outside the time policy are refused,
refusals are rate-limited per topic (and counted), and accelerometer samples are bounded."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.broker import Broker
from tests.e2e.conftest import DaemonProcess, Recorder, config_yaml, eventually, publisher

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120)]

PREFIX = "sleepcoach"


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("topic", "says"),
    [
        pytest.param(f"{PREFIX}/errors", "overlaps sleepcoach/#", id="the coach's error topic"),
        pytest.param("+/alex/command", "overlaps sleepcoach/#", id="over the command topics"),
        pytest.param("'#'", "a bare # takes every message", id="a bare #"),
        pytest.param("$SYS/#", "are the broker's own", id="the broker's $SYS"),
    ],
)
def test_run_refuses_a_device_on_the_coachs_own_topics_naming_the_line(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
    topic: str,
    says: str,
) -> None:
    """A device on `<prefix>/errors` made an endless loop: each refusal published on the error
    topic came back as a message of the device, refused again (8,000 refusals in 10 s). `run`
    (and `check-config`) now refuse such a config at start, naming its YAML line."""
    rec = recorder_factory(broker, [f"{PREFIX}/#"])
    text = config_yaml(broker, f"sqlite:///{tmp_path / 'coach.db'}").replace(
        "topic: home/kitchen/coffee", f"topic: {topic}"
    )
    daemon = daemon_factory(text)
    daemon.start(wait=False)
    assert daemon.wait(30) == 1, daemon.log_text()
    line = _line_of(text, f"topic: {topic}")
    assert f"config.yaml:{line}: devices[1].topic: " in daemon.log_text()
    assert says in daemon.log_text()
    # It never got as far as the broker: nothing was published, so nothing can loop.
    dev = publisher(broker)
    dev.publish(f"{PREFIX}/errors", b"not json", qos=1).wait_for_publish(5)
    assert not eventually(lambda: len(rec.on(f"{PREFIX}/errors")) > 1, timeout=1.0)
    assert rec.on(f"{PREFIX}/status") == []
    dev.loop_stop()


def _rows(path: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute(query))


def test_a_ts_outside_the_time_policy_is_refused_naming_the_range_and_late_data_is_used(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    """A brew dated next year sent a cutoff nudge at once and an occupancy dated next year put
    the person in bed now; a message with a `ts` older than the 48 h duplicate window was counted
    again after a restart. Both ends are now refused with the accepted range; a late reading
    inside the window is used."""
    path = tmp_path / "coach.db"
    rec = recorder_factory(broker, [f"{PREFIX}/#"])
    daemon = daemon_factory(config_yaml(broker, f"sqlite:///{path}"))
    daemon.start()
    dev = publisher(broker)
    now = datetime.now(UTC)

    def send(topic: str, body: dict[str, object], ts: datetime) -> None:
        body = {**body, "ts": ts.isoformat()}
        dev.publish(topic, json.dumps(body).encode(), qos=1).wait_for_publish(5)

    espresso = {"event": "brew", "drink": "espresso", "caffeine_mg": 80}
    send("home/kitchen/coffee", espresso, now + timedelta(days=365))
    send("home/bedroom/bed", {"event": "occupancy", "occupied": True}, now + timedelta(days=365))
    send("home/kitchen/coffee", espresso, now - timedelta(days=3))
    send("tracker/alex", {"event": "heart_rate", "bpm": 61}, now - timedelta(hours=47))
    send("home/kitchen/coffee", espresso, now + timedelta(minutes=2))  # a clock a little ahead
    assert rec.wait_for(lambda: len(rec.on(f"{PREFIX}/errors")) >= 3), daemon.log_text()
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/alex/nudge")), daemon.log_text()
    errors = rec.json_on(f"{PREFIX}/errors")
    coffee, bed = "home/kitchen/coffee", "home/bedroom/bed"
    assert [e["topic"] for e in errors] == [coffee, bed, coffee]
    for error in errors[:2]:
        assert (
            " is in the future; a ts is accepted from 48 hours before the message arrives to "
            "5 minutes after it, here "
        ) in error["error"], error
    assert " is too old; a ts is accepted from 48 hours before" in errors[2]["error"]
    assert all("refused a message on" in daemon.log_text() for _ in errors)
    state = rec.json_on(f"{PREFIX}/alex/state")[-1]
    assert state["in_bed"] is False
    assert state["caffeine_mg_today"] == 80  # the espresso 2 minutes ahead, the others refused
    nudges = rec.json_on(f"{PREFIX}/alex/nudge")
    soon = now + timedelta(minutes=10)
    assert all(datetime.fromisoformat(n["ts"]) < soon for n in nudges), nudges
    daemon.signal(15)
    assert daemon.wait() == 0
    kinds = _rows(path, "SELECT kind FROM events ORDER BY id")
    assert [k for (k,) in kinds] == [
        *["refused"] * 3,
        "HeartRateMeasured",  # 47 hours late, inside the window: used
        "CoffeeBrewed",
    ]
    dev.loop_stop()


def test_a_flood_of_refusals_is_rate_limited_per_topic_and_counted(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    """Each refused message was a log line, an error record and a stored row: 20,000 junk
    messages grew the database by 98.5 MB in 30 s. Now a few a minute per topic are handled in
    full and the rest counted, and said once: nothing hidden, the disk bounded."""
    path = tmp_path / "coach.db"
    rec = recorder_factory(broker, [f"{PREFIX}/#"])
    daemon = daemon_factory(config_yaml(broker, f"sqlite:///{path}"))
    daemon.start()
    dev = publisher(broker)
    for i in range(2000):
        dev.publish("home/kitchen/coffee", b"junk %d " % i + b"x" * 400, qos=1)
    dev.publish("tracker/alex", b"also junk", qos=1)
    # A good message after them: once it is decided, the flood before it was taken in too.
    dev.publish("home/kitchen/coffee", b'{"event": "brew", "drink": "espresso"}', qos=1)
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/alex/nudge"), timeout=60), daemon.log_text()
    daemon.signal(15)  # a stop says what the minute counted so far
    assert daemon.wait() == 0
    errors = rec.json_on(f"{PREFIX}/errors")
    coffee = [e for e in errors if e["topic"] == "home/kitchen/coffee"]
    assert len(coffee) == 6, coffee  # 5 in full, then the count
    assert coffee[-1]["error"].startswith(
        "topic home/kitchen/coffee: 1,995 more refusals in the last minute, not logged or "
        "stored one by one (the last: "
    )
    assert [e["topic"] for e in errors if e["topic"] != "home/kitchen/coffee"] == ["tracker/alex"]
    log = daemon.log_text()
    assert log.count("refused a message on home/kitchen/coffee") == 5
    assert log.count("topic home/kitchen/coffee: 1,995 more refusals") == 1
    rows = _rows(path, "SELECT topic, length(data), error FROM events WHERE kind = 'refused'")
    assert len(rows) == 7
    assert sum(int(str(n)) for _, n, _ in rows) < 6 * 600
    dev.loop_stop()


def test_accelerometer_samples_beyond_16_g_are_refused_and_warnings_go_through_the_log(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    """Samples of ±1e308 g were accepted and numpy's overflow warnings went to stderr as bare
    lines, past the JSON log. Now a sample beyond ±16 g is refused naming it, and every line the
    daemon writes is one JSON object."""
    rec = recorder_factory(broker, [f"{PREFIX}/#"])
    daemon = daemon_factory(
        config_yaml(broker, f"sqlite:///{tmp_path / 'coach.db'}"), "--log-format", "json"
    )
    daemon.start()
    dev = publisher(broker)
    bed = "home/bedroom/bed"
    dev.publish(bed, b'{"event": "occupancy", "occupied": true}', qos=1)
    huge = [[1e308, -1e308, 1e308]] * 50
    for samples in (huge, [[0.0, 0.0, 1.0]] * 49 + [[0.0, -17.0, 1.0]]):
        doc = {"event": "accel", "rate_hz": 50, "samples": samples}
        dev.publish(bed, json.dumps(doc).encode(), qos=1).wait_for_publish(5)
    fine = {"event": "accel", "rate_hz": 50, "samples": [[0.01 * i, 0.0, 1.0] for i in range(50)]}
    dev.publish(bed, json.dumps(fine).encode(), qos=1).wait_for_publish(5)
    assert rec.wait_for(lambda: len(rec.on(f"{PREFIX}/errors")) >= 2), daemon.log_text()
    errors = [e["error"] for e in rec.json_on(f"{PREFIX}/errors")]
    assert errors[0].startswith("samples[0][0]: must be at most 16, got 1e+308; ")
    assert errors[0].endswith("; and 145 more problems")
    assert errors[1] == "samples[49][1]: must be at least -16, got -17.0"
    daemon.signal(15)
    assert daemon.wait() == 0
    lines = daemon.log_text().splitlines()
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line
    dev.loop_stop()
