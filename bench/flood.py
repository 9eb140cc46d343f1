"""Flood: memory and disk of `sleepcoach run` under a flood of distinct-ts messages, good and bad.
Targets: RSS flat within 20 % after the first 100,000 messages; the database grows by the
accepted events only (refusals are bounded by the rate limit, whatever the flood).

    .venv/bin/python bench/flood.py [--count 1000000] [--step 100000] [--garbage 0.5]

`sleepcoach run` runs as its own process against Mosquitto (shipped config). A publisher sends
QoS 1 messages in blocks: heart-rate readings that carry their own `ts`, each a distinct instant
inside the last 47 hours (each gets a duplicate key, as in the flood that grew memory without
bound), and, as `--garbage` of them, junk on three device topics: not JSON, a wrong field, a
`ts` next year, bytes that are not UTF-8. After each `--step` messages (once the coach has
stored the block's last reading) it prints the coach's RSS (psutil), the database's size (with
its WAL) and its rows. The baseline is the first step, in the same run.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from broker import Coach, Mosquitto, client

BLOCK = 5_000
#: RSS is compared with its value after this many messages.
BASELINE = 100_000
TOPICS = ("tracker/alex", "home/kitchen/coffee", "home/bedroom/bed")


def junk(n: int) -> tuple[str, bytes]:
    """A refused message, one of four kinds, on one of three topics."""
    topic = TOPICS[n % 3]
    kind = (n // 3) % 4
    if kind == 0:
        return topic, b"not json %d" % n
    if kind == 1:
        return "tracker/alex", b'{"event": "heart_rate", "bpm": %d}' % (1000 + n)
    if kind == 2:
        ts = (datetime.now(UTC) + timedelta(days=365, seconds=n)).isoformat()
        return "tracker/alex", json.dumps({"event": "heart_rate", "bpm": 60, "ts": ts}).encode()
    return topic, b"\xff\xfe%d" % n


class Flood:
    """The publisher: readings with distinct `ts` and junk, in the given proportion."""

    def __init__(self, port: int, garbage: float, count: int) -> None:
        self.pub = client(port, "flood-publisher")
        self.garbage = garbage
        # Distinct instants, all inside the time policy's 48 hours when they arrive.
        self.first = datetime.now(UTC) - timedelta(hours=47)
        self.spacing = timedelta(hours=46) / max(count, 1)
        self.sent = 0
        self.good = 0
        self._debt = 0.0

    def send(self, count: int) -> None:
        """Publish `count` messages, a block at a time; the last one is always a reading."""
        for first in range(0, count, BLOCK):
            info = None
            size = min(BLOCK, count - first)
            for i in range(size):
                self._debt += self.garbage
                if self._debt >= 1 and i != size - 1:
                    self._debt -= 1
                    topic, payload = junk(self.sent)
                else:
                    ts = self.first + self.sent * self.spacing
                    doc = {"event": "heart_rate", "bpm": 50 + self.sent % 90, "ts": ts.isoformat()}
                    topic, payload = "tracker/alex", json.dumps(doc).encode()
                    self.good += 1
                info = self.pub.publish(topic, payload, qos=1)
                self.sent += 1
            if info is not None:
                info.wait_for_publish(120)

    def close(self) -> None:
        """Disconnect."""
        self.pub.disconnect()
        self.pub.loop_stop()


def rows(db: Path) -> tuple[int, int, int]:
    """Accepted events, refused rows, and the bytes the refused rows keep (excerpt and error)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        accepted = conn.execute("SELECT count(*) FROM events WHERE kind != 'refused'").fetchone()
        refused = conn.execute(
            "SELECT count(*), coalesce(sum(length(data) + length(error) + length(topic)), 0) "
            "FROM events WHERE kind = 'refused'"
        ).fetchone()
    return int(accepted[0]), int(refused[0]), int(refused[1])


def db_bytes(db: Path) -> int:
    """The database with its write-ahead log."""
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def main() -> None:
    """Flood the coach step by step; print RSS and database growth per step, then the verdicts."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--step", type=int, default=100_000)
    parser.add_argument("--garbage", type=float, default=0.5, help="share of junk (0-1)")
    args = parser.parse_args()
    broker = Mosquitto()
    table: list[tuple[int, float, int, int, int, int]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            coach = Coach(broker.port, workdir, bed=True)
            flood = Flood(broker.port, args.garbage, args.count)
            try:
                proc = psutil.Process(coach.proc.pid)
                start_db = db_bytes(coach.db)
                began = time.perf_counter()
                print(
                    f"flood of sleepcoach run: {args.count:,} QoS 1 messages, "
                    f"{args.garbage:.0%} junk, the rest readings with distinct ts"
                )
                print(
                    f"{'messages':>10} {'RSS MiB':>8} {'DB MB':>8} {'accepted':>9} "
                    f"{'refused rows':>12} {'s':>6}"
                )
                while flood.sent < args.count:
                    flood.send(min(args.step, args.count - flood.sent))
                    while rows(coach.db)[0] < flood.good:
                        time.sleep(0.2)
                    accepted, refused, refused_bytes = rows(coach.db)
                    rss = proc.memory_info().rss
                    size = db_bytes(coach.db) - start_db
                    table.append((flood.sent, rss, size, accepted, refused, refused_bytes))
                    print(
                        f"{flood.sent:>10,} {rss / 2**20:8.1f} {size / 1e6:8.1f} "
                        f"{accepted:>9,} {refused:>12,} {time.perf_counter() - began:6.0f}",
                        flush=True,
                    )
            finally:
                flood.close()
                coach.close()
    finally:
        broker.close()
    report(table)


def report(table: list[tuple[int, float, int, int, int, int]]) -> None:
    """RSS against its baseline, and what the database grew by per accepted event."""
    # The baseline: the first step at or past 100,000 messages (the target's "after the first
    # 100,000"), or the first step when the run is shorter.
    base = next((i for i, r in enumerate(table) if r[0] >= BASELINE), 0)
    if len(table) - base < 2:
        return
    first, last = table[base], table[-1]
    peak = max(r[1] for r in table[base + 1 :])
    growth = (peak - first[1]) / first[1]
    verdict = "OK" if growth <= 0.2 else "ABOVE TARGET"
    print(
        f"RSS: {first[1] / 2**20:.1f} MiB after {first[0]:,}, at most {peak / 2**20:.1f} MiB "
        f"after that: {growth * 100:+.1f} % (target within 20 %) {verdict}"
    )
    per_event = (last[2] - first[2]) / max(last[3] - first[3], 1)
    print(
        f"database: +{(last[2] - first[2]) / 1e6:.1f} MB for {last[3] - first[3]:,} more "
        f"accepted events after {first[0]:,} ({per_event:.0f} bytes each); refused rows "
        f"{last[4]:,} in all, keeping {last[5] / 1e3:.1f} kB "
        f"({last[5] / max(last[2], 1) * 100:.2f} % of the database)"
    )


if __name__ == "__main__":
    main()
