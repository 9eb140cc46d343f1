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
