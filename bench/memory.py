"""Memory: the coach's RSS after 1,000,000 messages against its RSS after 100,000.
Target: within 20 %.

    .venv/bin/python bench/memory.py [--small 100000] [--large 1000000]

`sleepcoach run` runs as its own process against Mosquitto (shipped config); a publisher sends
QoS 1 readings from the fitness tracker and the bed sensor (no `ts`, as most sensors send them)
in blocks, and the coach's RSS is read (psutil) once it has stored each milestone.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import psutil
from broker import Coach, Mosquitto, client

BLOCK = 5_000


def send(port: int, start: int, count: int) -> None:
    """Publish `count` readings, a block at a time (paho keeps unacknowledged ones in memory)."""
    pub = client(port, "memory-publisher")
    try:
        for first in range(start, start + count, BLOCK):
            info = None
            for n in range(first, min(first + BLOCK, start + count)):
                if n % 2:
                    doc = {"event": "heart_rate", "bpm": 50 + n % 90}
                    info = pub.publish("tracker/alex", json.dumps(doc).encode(), qos=1)
                else:
                    doc = {"event": "movement", "intensity": (n % 100) / 100, "duration_s": 1.5}
                    info = pub.publish("home/bedroom/bed", json.dumps(doc).encode(), qos=1)
            if info is not None:
                info.wait_for_publish(60)
    finally:
        pub.disconnect()
        pub.loop_stop()


def wait_stored(coach: Coach, count: int) -> float:
    """Seconds until the coach stored `count` events."""
    start = time.perf_counter()
    while coach.stored() < count:
        time.sleep(0.2)
    return time.perf_counter() - start


def main() -> None:
    """Send the small milestone, read RSS, send up to the large one, read RSS again."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    broker = Mosquitto()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            # Bed movements count for the bed device, so the config gets one.
            coach = Coach(broker.port, workdir, bed=True)
            try:
                proc = psutil.Process(coach.proc.pid)
                began = time.perf_counter()
                send(broker.port, 0, args.small)
                wait_stored(coach, args.small)
                small = proc.memory_info().rss
                send(broker.port, args.small, args.large - args.small)
                wait_stored(coach, args.large)
                large = proc.memory_info().rss
                elapsed = time.perf_counter() - began
            finally:
                coach.close()
    finally:
        broker.close()
    growth = (large - small) / small
    print(f"memory of sleepcoach run, {args.large} QoS 1 messages in {elapsed:.0f} s:")
    print(f"  RSS after {args.small:>9,}: {small / 2**20:7.1f} MiB")
    print(f"  RSS after {args.large:>9,}: {large / 2**20:7.1f} MiB")
    verdict = "OK" if abs(growth) <= 0.2 else "ABOVE TARGET"
    print(f"  growth: {growth * 100:+.1f} % (target within 20 %) {verdict}")


if __name__ == "__main__":
    main()
