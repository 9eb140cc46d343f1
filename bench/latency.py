"""Latency: event published -> nudge received, p50 and p99, QoS 1 through Mosquitto, with 100
messages/s of background load; and, in the same run, a bare paho echo (TCP_NODELAY on both ends)
as the baseline. Targets: p50 <= 2 ms, p99 <= 10 ms.

    .venv/bin/python bench/latency.py [--probes 200] [--seed-days 1] [--rounds 8]

The dashboard must not slow the coach: two coaches run side by side on the same broker, fed the
same seed and the same background load, one with the dashboard off, the other with it on and a
dashboard client connected (an event stream that receives the page's view after each nudge).
Their probes alternate, a round of each in turn, so both meet the same noise; the p50 of the one
with the client must stay within 10 % of the one without, printed side by side.

Before measuring, the coach is given a realistic state: a day of readings that carry their own
`ts` (three trackers, one a minute each: 4,320 messages), each of which the coach remembers for
48 hours to recognise a device repeating itself. Each probe is a coffee whose own `ts` is a
distinct earlier minute, so the coach answers every one with a new `caffeine.cutoff` nudge (the
nudge id carries the drink's minute). Probes go out every 20 ms, the load every 10 ms, from other
clients.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from broker import TZ, Coach, Mosquitto, client, free_port, percentile

ECHO = r"""
import socket, sys
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
c = mqtt.Client(CallbackAPIVersion.VERSION2, "echo", protocol=mqtt.MQTTv5)
c.on_socket_open = lambda c, u, s: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.on_message = lambda c, u, m: c.publish("bench/pong", m.payload, qos=1)
c.on_subscribe = lambda *a: print("ready", flush=True)
c.on_connect = lambda c, *a: c.subscribe("bench/ping", 1)
c.connect("127.0.0.1", int(sys.argv[1]))
c.loop_forever()
"""


class Load:
    """100 heart-rate readings a second on the tracker topic, from their own client."""

    def __init__(self, port: int) -> None:
        self.client = client(port, "load")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        n = 0
        next_at = time.perf_counter()
        while not self.stop.is_set():
            payload = json.dumps({"event": "heart_rate", "bpm": 60 + n % 40}).encode()
            self.client.publish("tracker/alex", payload, qos=1)
            n += 1
            next_at += 0.01
            time.sleep(max(0.0, next_at - time.perf_counter()))

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.client.loop_stop()


TRACKERS = ("tracker/alex", "tracker/alex/ring", "tracker/alex/band")


def seed(port: int, coaches: list[Coach], days: float) -> int:
    """Publish `days` of ts-bearing readings (three trackers, one a minute each); wait until every
    coach has stored them."""
    tz = ZoneInfo(TZ)
    end = datetime.now(tz).replace(second=0, microsecond=0)
    minutes = round(days * 24 * 60)
    pub = client(port, "seed")
    bases = [coach.stored() for coach in coaches]
    for i in range(minutes, 0, -1):
        at = (end - timedelta(minutes=i)).isoformat()
        for n, topic in enumerate(TRACKERS):
            doc = {"event": "heart_rate", "bpm": 55 + (i + n) % 15, "ts": at}
            pub.publish(topic, json.dumps(doc).encode(), qos=1)
    total = minutes * len(TRACKERS)
    deadline = time.monotonic() + 180
    for coach, base in zip(coaches, bases, strict=True):
        while coach.stored() - base < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"seeding: {coach.stored() - base} of {total} stored")
            time.sleep(0.05)
    pub.loop_stop()
    time.sleep(1.0)  # let the last commits and publications settle
    return total


def measure(
    port: int, probes: int, send_topic: str, recv_topic: str, payload_of: Any, key_of: Any
) -> list[float]:
    """Round trips in ms: `payload_of(i)` out on send_topic, matched by `key_of(msg)` back."""
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    done = threading.Event()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        now = time.perf_counter()
        key = key_of(msg.payload)
        if key in sent and key not in got:
            got[key] = now
            if len(got) == probes:
                done.set()

    rx = client(port, f"rx-{recv_topic}")
    rx.on_message = on_message
    rx.subscribe(recv_topic, 1)
    tx = client(port, f"tx-{send_topic}")
    time.sleep(0.5)
    for i in range(probes):
        key, payload = payload_of(i)
        sent[key] = time.perf_counter()
        tx.publish(send_topic, payload, qos=1)
        time.sleep(0.02)
    done.wait(10)
    rx.loop_stop()
    tx.loop_stop()
    return [(got[k] - sent[k]) * 1000 for k in got]


def coach_probes(
    port: int, probes: int, *, first_minute: int = 0, name: str = "sleepcoach"
) -> list[float]:
    """Coffee -> caffeine.cutoff nudge, for the coach whose topics carry `name`; each coffee is a
    distinct earlier minute, from `first_minute` on."""
    tz = ZoneInfo(TZ)
    base = datetime.now(tz).replace(second=0, microsecond=0) - timedelta(minutes=1 + first_minute)

    def payload_of(i: int) -> tuple[str, bytes]:
        at = base - timedelta(minutes=i)
        doc = {"event": "brew", "drink": "espresso", "ts": at.isoformat()}
        return at.isoformat(), json.dumps(doc).encode()

    def key_of(raw: bytes) -> str:
        drink_at = json.loads(raw).get("evidence", {}).get("drink_at")  # other rules: no key
        return datetime.fromisoformat(drink_at).astimezone(tz).isoformat() if drink_at else ""

    return measure(port, probes, coffee_topic(name), f"{name}/alex/nudge", payload_of, key_of)


def coffee_topic(name: str) -> str:
    """The coffee maker's topic of the coach called `name`."""
    return "home/kitchen/coffee" if name == "sleepcoach" else f"home/kitchen/coffee-{name}"


class DashboardClient:
    """A dashboard left open: reads the event stream of alex's page, as a browser tab would."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.request("GET", "/events/person/alex")
        self.response = self.conn.getresponse()
        if self.response.status != 200:
            raise RuntimeError(f"the dashboard answered {self.response.status}")
        self.views = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        try:
            while line := self.response.readline():
                if line.startswith(b"event: view"):
                    self.views += 1
        except (OSError, AttributeError, ValueError):
            return  # closed under the reader (http.client drops its file on close)

    def close(self) -> None:
        self.conn.close()


def echo_probes(port: int, probes: int) -> list[float]:
    """Ping -> a bare paho echo -> pong."""
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO, str(port)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    try:
        return measure(
            port,
            probes,
            "bench/ping",
            "bench/pong",
            lambda i: (str(i), str(i).encode()),
            lambda raw: raw.decode(),
        )
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    """The baseline, then the two coaches' probes in alternating rounds; print p50 and p99."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probes", type=int, default=200, help="per coach (default 200)")
    parser.add_argument(
        "--seed-days",
        type=float,
        default=1.0,
        help="days of ts-bearing tracker readings stored before measuring (default 1; 0: none)",
    )
    parser.add_argument(
        "--rounds", type=int, default=8, help="alternating rounds of probes per coach (default 8)"
    )
    args = parser.parse_args()
    if args.probes > 280:
        parser.error("at most 280 probes: each is a distinct minute after the caffeine cutoff")
    per_round = args.probes // args.rounds
    broker = Mosquitto()
    plain: list[float] = []
    watched: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            board_port = free_port()
            coaches = {}
            for name, dashboard in (("plain", None), ("watched", f"127.0.0.1:{board_port}")):
                workdir = Path(tmp) / name
                workdir.mkdir()
                coaches[name] = Coach(
                    broker.port,
                    workdir,
                    client_id=f"coach-{name}",
                    prefix=name,
                    coffee_topic=coffee_topic(name),
                    dashboard=dashboard,
                )
            seeded = seed(broker.port, list(coaches.values()), args.seed_days)
            viewer = DashboardClient(board_port)
            load = Load(broker.port)
            try:
                echo = echo_probes(broker.port, args.probes)
                for r in range(args.rounds):
                    first = r * per_round
                    plain += coach_probes(broker.port, per_round, first_minute=first, name="plain")
                    watched += coach_probes(
                        broker.port, per_round, first_minute=first, name="watched"
                    )
            finally:
                load.close()
                viewer.close()
                for coach in coaches.values():
                    coach.close()
    finally:
        broker.close()
    print(
        f"latency, QoS 1 through Mosquitto, 100 msg/s background load, {args.probes} probes per "
        f"coach in {args.rounds} alternating rounds, {seeded} ts-bearing readings seeded:"
    )
    for name, values in (
        ("bare paho echo (baseline)", echo),
        ("coffee -> nudge, no dashboard", plain),
        ("coffee -> nudge, dashboard open", watched),
    ):
        print(
            f"  {name:<32} p50 {percentile(values, 50):6.2f} ms"
            f"   p99 {percentile(values, 99):6.2f} ms   ({len(values)} answered)"
        )
    p50, p99 = percentile(plain, 50), percentile(plain, 99)
    ok = p50 <= 2 and p99 <= 10
    print(f"  targets p50 <= 2 ms, p99 <= 10 ms: {'OK' if ok else 'MISSED'}")
    ratio = percentile(watched, 50) / p50
    print(
        f"  dashboard client connected ({viewer.views} views received): p50 {ratio:.2f}x the run "
        f"without; target within 10 %: {'OK' if ratio <= 1.10 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
