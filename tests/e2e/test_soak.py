"""A soak: 60 s of mixed load against the real `sleepcoach run` on a real Mosquitto.

What a house full of devices and a hostile publisher can send at once, interleaved: numbered
valid readings (heart rates and brews, with a `ts` now, a little ahead, or hours late, all inside
the time the coach accepts), garbage on every subscribed topic (random and binary bytes, broken
and wrongly shaped JSON, out-of-range values, deep nesting, 16 KiB payloads), floods of both,
clock games (a `ts` a day or a year ahead, decades or a month back, malformed, without an
offset), commands good and bad, and a broker restart half-way through.

It asserts that the coach never stops (alive throughout, exit 0 on SIGTERM, no traceback), that
its memory stays bounded (the resident set, read from /proc every half second, grows at most
80 MiB past its size after a 5 s warm-up while more than twice that goes through as payload),
and that every valid reading is
stored exactly once (the SQLite file, read after SIGTERM). Events dated outside the accepted
range are not valid and are not counted, whatever the coach makes of them.

`SLEEPCOACH_SOAK_S` sets the duration (60 by default); `bench/soak.py` runs it longer and prints
the figures, which the test prints too (`pytest -s`).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.broker import Broker
from tests.e2e.conftest import TZ, DaemonProcess, config_yaml, eventually

SOAK_S = float(os.environ.get("SLEEPCOACH_SOAK_S", "60"))
# The load, as long again and 2 minutes for the broker's acknowledgements, 3 for the coach.
pytestmark = [pytest.mark.mosquitto, pytest.mark.slow, pytest.mark.timeout(int(2 * SOAK_S) + 480)]
PREFIX = "sleepcoach"
HR_TOPIC, COFFEE_TOPIC, BED_TOPIC = "tracker/alex", "home/kitchen/coffee", "home/bedroom/bed"
COMMAND_TOPIC = f"{PREFIX}/alex/command"
TOPICS = [HR_TOPIC, COFFEE_TOPIC, BED_TOPIC, COMMAND_TOPIC]
# Valid readings carry their number in a value: bpm = 30 + n/1000 (below 190), caffeine_mg =
# 1 + n/1000 (below 500). Clock games use bpm from 200 up, so they are never counted as valid.
HR_BASE, HR_CLOCK_BASE, MG_BASE = 30.0, 200.0, 1.0
# The resident set may grow this much over its size after the warm-up: the load pushes several
# times as much payload through (asserted), so keeping a fraction of it, or one entry per
# message, fails here; caches that fill and stop do not.
RSS_HEADROOM_MIB = 80.0
# 16 KiB messages of random bytes keep the payload pushed at this pace whatever the machine's
# load: 180 MiB in a minute, beside everything else. (A coach that falls behind holds up to its
# MQTT 5 Receive Maximum, 2,000 QoS 1 messages, in hand: 31 MiB of these, within the ceiling.)
BIG = 16 * 1024
BIG_MIB_PER_S = 3.0
WARMUP_S = 5.0
RNG_SEED = 20261206


def _rss_mib(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


@dataclass
class Load:
    """What the publisher sent, by kind, and the numbers of the valid readings."""

    hr: list[int] = field(default_factory=list)
    brews: list[int] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    payload_bytes: int = 0
    big_bytes: int = 0


class Publisher:
    """A device side that publishes everything at QoS 1 or 0 and keeps the QoS 1 receipts."""

    def __init__(self, broker: Broker) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, "soak-devices", protocol=broker.protocol
        )
        self.client.max_queued_messages_set(0)  # keep everything while the broker restarts
        self._lock = threading.Lock()
        self.qos1 = 0
        self.acknowledged = 0  # PUBACKs, one per QoS 1 message, resent or not
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.load = Load()
        self.tz = ZoneInfo(TZ)
        self.rng = random.Random(RNG_SEED)

    def _on_publish(self, *_args: object) -> None:
        with self._lock:
            self.acknowledged += 1

    def send(self, kind: str, topic: str, payload: bytes, qos: int = 1) -> None:
        # A QoS 1 message given while paho has not yet seen the broker go says "no connection"
        # and is sent after the reconnect: its PUBACK is what counts.
        self.client.publish(topic, payload, qos=qos)
        self.qos1 += bool(qos)
        self.load.kinds[kind] += 1
        self.load.payload_bytes += len(payload)

    def now(self) -> datetime:
        return datetime.now(self.tz)

    # -- valid ---------------------------------------------------------------------------------

    def heart_rate(self) -> None:
        n = len(self.load.hr)
        # Now, a minute ahead, or up to a day late: all inside what the coach accepts.
        offset = self.rng.choice([timedelta(0), timedelta(minutes=1), -timedelta(hours=1)])
        offset -= timedelta(seconds=self.rng.uniform(0, 3600 * 20)) if n % 7 == 0 else timedelta()
        doc = {
            "event": "heart_rate",
            "bpm": HR_BASE + n / 1000,
            "ts": (self.now() + offset).isoformat(),
        }
        self.load.hr.append(n)
        self.send("valid", HR_TOPIC, json.dumps(doc).encode())

    def brew(self) -> None:
        n = len(self.load.brews)
        doc = {
            "event": "brew",
            "drink": "espresso",
            "caffeine_mg": MG_BASE + n / 1000,
            "ts": self.now().isoformat(),
        }
        self.load.brews.append(n)
        self.send("valid", COFFEE_TOPIC, json.dumps(doc).encode())

    # -- not valid -----------------------------------------------------------------------------

    def garbage(self) -> None:
        rng = self.rng
        topic = rng.choice(TOPICS)
        choices: list[Callable[[], bytes]] = [
            lambda: rng.randbytes(rng.randint(0, 300)),
            lambda: b"bad\x00byte" * rng.randint(1, 5),
            lambda: b'{"event": "brew", "drink":',
            lambda: b"\xff\xfe\xfd not utf-8",
            lambda: json.dumps(rng.choice([[], 1, "x", None, {"event": "nope"}])).encode(),
            lambda: b'{"event": "heart_rate", "bpm": 1e308}',
            lambda: b'{"event": "heart_rate", "bpm": "NaN"}',
            lambda: b'{"event": "heart_rate"}',
            lambda: b'{"event": "accel", "samples": [[1e308, -1e308, 1e308]], "rate_hz": 50}',
            lambda: b"[" * 10_000 + b"]" * 10_000,
            lambda: b'{"a": ' * 5_000 + b"1" + b"}" * 5_000,
            lambda: b'{"command": "snooze", "nudge_id": "x", "minutes": 99999}',
            lambda: b'{"command": "bedtime_tonight", "time": "25:99"}',
            lambda: json.dumps({"event": "brew", "drink": "x" * BIG}).encode(),
        ]
        self.send("garbage", topic, rng.choice(choices)(), qos=rng.choice([0, 1]))

    def big(self) -> None:
        self.send("big", self.rng.choice(TOPICS), self.rng.randbytes(BIG))
        self.load.big_bytes += BIG

    def clock_game(self) -> None:
        now = self.now()
        ts = self.rng.choice(
            [
                (now + timedelta(days=1)).isoformat(),
                (now + timedelta(days=365)).isoformat(),
                (now - timedelta(days=30)).isoformat(),
                "1970-01-01T00:00:00+00:00",
                "2000-02-30T25:61:00+01:00",
                now.replace(tzinfo=None).isoformat(),
                "9999-12-31T23:59:59+14:00",
                "not a time",
            ]
        )
        bpm = HR_CLOCK_BASE + self.load.kinds["clock"] / 1000
        self.send(
            "clock", HR_TOPIC, json.dumps({"event": "heart_rate", "bpm": bpm, "ts": ts}).encode()
        )
        if self.rng.random() < 0.3:
            doc = {"event": "brew", "drink": "coffee", "ts": ts}
            self.send("clock", COFFEE_TOPIC, json.dumps(doc).encode())

    def command(self) -> None:
        rng = self.rng
        doc: dict[str, Any] = rng.choice(
            [
                {"command": "ack", "nudge_id": f"caffeine.cutoff:alex:{rng.randint(0, 99)}"},
                {"command": "snooze", "nudge_id": "caffeine.cutoff:alex:x", "minutes": 5},
                {"command": "bedtime_tonight", "time": rng.choice(["22:30", "23:45", "00:15"])},
                {"command": "log", "what": rng.choice(["alcohol", "nicotine"])},
                {"command": "unknown"},
            ]
        )
        self.send("command", COMMAND_TOPIC, json.dumps(doc).encode())

    def flood(self) -> None:
        """A burst: 500 valid readings and 1,500 pieces of garbage, as fast as they go."""
        for i in range(2000):
            if i % 4 == 0:
                self.heart_rate()
            else:
                self.garbage()

    def all_acknowledged(self, timeout: float) -> bool:
        def done() -> bool:
            with self._lock:
                return self.acknowledged >= self.qos1

        return eventually(done, timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _valid_stored(db: Path) -> tuple[Counter[int], Counter[int]]:
    """How many times each numbered heart rate and brew was stored."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT kind, data FROM events WHERE kind IN ('HeartRateMeasured', 'CoffeeBrewed')"
        ).fetchall()
    hr: Counter[int] = Counter()
    brews: Counter[int] = Counter()
    for kind, data in rows:
        doc = json.loads(data)
        if kind == "HeartRateMeasured" and doc["bpm"] < HR_CLOCK_BASE - 10:
            hr[round((doc["bpm"] - HR_BASE) * 1000)] += 1
        elif kind == "CoffeeBrewed" and doc.get("drink") == "espresso" and doc.get("caffeine_mg"):
            brews[round((doc["caffeine_mg"] - MG_BASE) * 1000)] += 1
    return hr, brews


def test_a_minute_of_mixed_load_with_a_broker_restart_stores_every_valid_event_once(
    broker: Broker, daemon_factory: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    if broker.kind != "mosquitto":
        pytest.skip("needs Mosquitto: amqtt loses messages it accepted across its own restart")
    db = tmp_path / "soak.db"
    daemon = daemon_factory(config_yaml(broker, f"sqlite:///{db}"))
    daemon.start()
    assert daemon.proc is not None
    pid = daemon.proc.pid

    samples: list[tuple[float, float]] = []
    sampling = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not sampling.is_set():
            rss = _rss_mib(pid)
            if rss is not None:
                samples.append((time.monotonic() - started, rss))
            sampling.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    dev = Publisher(broker)
    started = time.monotonic()
    restarted = False
    tick = 0
    try:
        while (elapsed := time.monotonic() - started) < SOAK_S:
            tick += 1
            for _ in range(8):
                dev.heart_rate()
            if tick % 10 == 0:
                dev.brew()
            for _ in range(10):
                dev.garbage()
            dev.clock_game()
            if tick % 5 == 0:
                dev.command()
            while dev.load.big_bytes < BIG_MIB_PER_S * 2**20 * elapsed:
                dev.big()
            if tick % 150 == 0:
                dev.flood()
            if not restarted and elapsed >= SOAK_S / 2:
                broker.restart()  # SIGTERM: Mosquitto saves its sessions and queues
                restarted = True
                # What paho is given while it is not connected, it refuses (it resends only
                # what it had sent): the devices wait for their broker, as real ones do.
                assert eventually(dev.client.is_connected, 60), "the devices did not reconnect"
            assert daemon.proc.poll() is None, daemon.log_text()[-5000:]
            time.sleep(0.05)

        # Every QoS 1 message reached the broker; then the coach has stored every valid one.
        assert dev.all_acknowledged(120 + SOAK_S), (dev.acknowledged, dev.qos1)
        load = dev.load

        def all_stored() -> bool:
            hr, brews = _valid_stored(db)
            return len(hr) == len(load.hr) and len(brews) == len(load.brews)

        assert eventually(all_stored, 180), daemon.log_text()[-5000:]
        assert daemon.proc.poll() is None, daemon.log_text()[-5000:]
    finally:
        dev.close()
        sampling.set()
        sampler.join(5)

    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, daemon.log_text()[-5000:]
    log = daemon.log_text()
    assert "Traceback" not in log, log[-5000:]
    assert restarted
    assert "reconnected to the broker" in log

    hr, brews = _valid_stored(db)
    assert sorted(hr) == load.hr, "a valid heart rate lost"
    assert set(hr.values()) == {1}, "a valid heart rate stored twice"
    assert sorted(brews) == load.brews, "a valid brew lost"
    assert set(brews.values()) == {1}, "a valid brew stored twice"

    warm = [rss for at, rss in samples if at >= WARMUP_S]
    assert warm, samples
    baseline, peak = warm[0], max(warm)
    pushed_mib = load.payload_bytes / 2**20
    print(  # the figures bench/soak.py reports
        f"\nsoak: {SOAK_S:g} s, {sum(load.kinds.values())} messages "
        f"({', '.join(f'{k} {v}' for k, v in sorted(load.kinds.items()))}), "
        f"{pushed_mib:.0f} MiB of payload; valid stored once: {len(hr)} heart rates, "
        f"{len(brews)} brews; RSS after warm-up {baseline:.0f} MiB, peak {peak:.0f} MiB, "
        f"at the end {warm[-1]:.0f} MiB; database {db.stat().st_size / 2**20:.1f} MiB"
    )
    assert pushed_mib > 2 * RSS_HEADROOM_MIB, "the load is too light to tell growth from noise"
    assert peak <= baseline + RSS_HEADROOM_MIB, samples
