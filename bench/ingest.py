"""Ingest: messages/s through Mosquitto into the coach (validated, decided, stored, acknowledged)
against a bare paho subscriber that only counts, in the same run. Target: ratio >= 0.5.

    .venv/bin/python bench/ingest.py [--count 20000]

Both subscribers run as their own process with the same session settings (MQTT 5, QoS 1,
TCP_NODELAY); the publisher sends QoS 1 heart-rate readings as fast as Mosquitto takes them. Each
rate is messages / (first publish -> last message counted, or stored by the coach).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from broker import Coach, Mosquitto, client

BARE = r"""
import socket, sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
port, total = int(sys.argv[1]), int(sys.argv[2])
count = 0
def on_message(c, u, m):
    global count
    count += 1
    if count == total:
        print("done", flush=True)
c = mqtt.Client(CallbackAPIVersion.VERSION2, "bare", protocol=mqtt.MQTTv5)
c.on_socket_open = lambda c, u, s: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.on_message = on_message
c.on_subscribe = lambda *a: print("ready", flush=True)
c.on_connect = lambda c, *a: c.subscribe("tracker/alex", 1)
props = Properties(PacketTypes.CONNECT)
props.SessionExpiryInterval = 3600
c.connect("127.0.0.1", port, clean_start=False, properties=props)
c.loop_forever()
"""


def publish_all(port: int, total: int) -> float:
    """Publish `total` QoS 1 readings; return the start time."""
    pub = client(port, "publisher")
    payloads = [
        json.dumps({"event": "heart_rate", "bpm": 50 + (n % 1000) / 10}).encode()
        for n in range(total)
    ]
    time.sleep(0.2)
    start = time.perf_counter()
    for payload in payloads:
        pub.publish("tracker/alex", payload, qos=1)
    pub.publish_done = True  # type: ignore[attr-defined]
    return start


def bare_rate(port: int, total: int) -> float:
    """Messages/s of a paho subscriber that only counts."""
    proc = subprocess.Popen(
        [sys.executable, "-c", BARE, str(port), str(total)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    start = publish_all(port, total)
    assert proc.stdout.readline().strip() == "done"
    elapsed = time.perf_counter() - start
    proc.terminate()
    proc.wait()
    return total / elapsed


def coach_rate(port: int, total: int, workdir: Path) -> float:
    """Messages/s stored by `sleepcoach run`."""
    coach = Coach(port, workdir)
    try:
        base = coach.stored()
        start = publish_all(port, total)
        while coach.stored() - base < total:
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
    finally:
        coach.close()
    return total / elapsed


def main() -> None:
    """Run both and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bare: list[float] = []
    coach: list[float] = []
    for _ in range(args.rounds):
        # A fresh broker for each: a session left behind would make Mosquitto queue (and save)
        # every message of the other run for it.
        broker = Mosquitto()
        try:
            bare.append(bare_rate(broker.port, args.count))
        finally:
            broker.close()
        broker = Mosquitto()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                coach.append(coach_rate(broker.port, args.count, Path(tmp)))
        finally:
            broker.close()
    b, c = sorted(bare)[len(bare) // 2], sorted(coach)[len(coach) // 2]
    print(f"ingest, {args.count} QoS 1 messages through Mosquitto, median of {args.rounds}:")
    print(f"  bare paho subscriber (counts only): {b:8.0f} msg/s")
    print(f"  sleepcoach (validate, decide, store, ack): {c:8.0f} msg/s")
    print(f"  ratio: {c / b:.2f} (target >= 0.5) {'OK' if c / b >= 0.5 else 'BELOW TARGET'}")


if __name__ == "__main__":
    main()
