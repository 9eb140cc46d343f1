"""The retained state as a person reads it from `sleepcoach run`: tonight's bedtime and the next,
the last nudge under the id it was sent with, and every time in the config's zone."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.broker import Broker
from tests.e2e.conftest import TZ, DaemonProcess, Recorder, config_yaml, publisher

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(180)]

PREFIX = "sleepcoach"
ZONE = ZoneInfo(TZ)
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _instants(value: Any, path: str = "") -> list[tuple[str, datetime]]:
    """Every ISO date-time string in a JSON document, with its path."""
    if isinstance(value, dict):
        return [i for k, v in value.items() for i in _instants(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [i for n, v in enumerate(value) for i in _instants(v, f"{path}[{n}]")]
    if isinstance(value, str) and _INSTANT.match(value):
        return [(path, datetime.fromisoformat(value))]
    return []


def test_the_retained_state_says_tonights_bedtime_the_last_nudge_as_sent_and_local_times(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    """Last night in bed (the sensor's buffered messages, with their times), a coffee now with
    bedtime in 20 minutes, its nudge snoozed for a minute: a client arriving afterwards reads a
    state whose bedtimes are ahead, whose last nudge is the repeat `<id>:snooze1`, and whose
    every time, last night's end included, is Berlin time."""
    now = datetime.now(ZONE)
    config = config_yaml(
        broker, f"sqlite:///{tmp_path / 'coach.db'}", bedtime_in=timedelta(minutes=20)
    )
    bedtime = (now + timedelta(minutes=20)).replace(second=0, microsecond=0)
    rec = recorder_factory(broker, [f"{PREFIX}/#"])
    daemon = daemon_factory(config)
    daemon.start()
    assert rec.wait_for(lambda: b"online" in rec.on(f"{PREFIX}/status"))

    dev = publisher(broker)
    # Last night, as a bed sensor that buffered it sends it: in bed ten minutes after bedtime,
    # a few movements, up ten minutes after wake.
    last_bedtime = bedtime - timedelta(days=1)
    got_in = last_bedtime + timedelta(minutes=10)
    got_up = last_bedtime + timedelta(hours=8, minutes=10)
    night = [{"event": "occupancy", "occupied": True, "ts": got_in.isoformat()}]
    night += [
        {
            "event": "movement",
            "intensity": 0.3,
            "duration_s": 1.5,
            "ts": (got_in + timedelta(hours=1, seconds=25 * i)).isoformat(),
        }
        for i in range(6)
    ]
    night.append({"event": "occupancy", "occupied": False, "ts": got_up.isoformat()})
    for doc in night:
        dev.publish("home/bedroom/bed", json.dumps(doc).encode(), qos=1)
    dev.publish(
        "home/kitchen/coffee", b'{"event": "brew", "drink": "coffee", "volume_ml": 240}', qos=1
    )
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/alex/nudge")), daemon.log_text()
    (nudge,) = rec.json_on(f"{PREFIX}/alex/nudge")
    assert nudge["rule"] == "caffeine.cutoff"
    command = {"command": "snooze", "nudge_id": nudge["id"], "minutes": 1}
    dev.publish(f"{PREFIX}/alex/command", json.dumps(command).encode(), qos=1)
    repeat = f"{nudge['id']}:snooze1"
    assert rec.wait_for(
        lambda: any(n["id"] == repeat for n in rec.json_on(f"{PREFIX}/alex/nudge")), 90
    ), daemon.log_text()
    assert rec.wait_for(
        lambda: any(
            (s.get("last_nudge") or {}).get("id") == repeat
            for s in rec.json_on(f"{PREFIX}/alex/state")
        )
    )
    dev.loop_stop()

    late = recorder_factory(broker, [f"{PREFIX}/alex/state"], client_id="late")
    assert late.wait_for(lambda: late.on(f"{PREFIX}/alex/state"), 5)
    state = json.loads(late.on(f"{PREFIX}/alex/state")[-1])
    assert state["last_nudge"]["id"] == repeat
    assert datetime.fromisoformat(state["tonight_bedtime"]) == bedtime
    assert datetime.fromisoformat(state["next_bedtime"]) == bedtime
    assert datetime.fromisoformat(state["next_bedtime"]) > datetime.now(ZONE)
    last_night = state["last_night"]
    assert last_night is not None, state
    assert datetime.fromisoformat(last_night["night_end"]) <= got_up
    found = _instants(state)
    assert {".tonight_bedtime", ".next_bedtime", ".last_night.night_end"} <= {p for p, _ in found}
    for path, instant in found:
        assert instant.utcoffset() == instant.astimezone(ZONE).utcoffset(), (path, instant)
