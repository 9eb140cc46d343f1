"""Benchmark: microseconds per message through the payload parser, per payload kind.

Run `python bench/parse.py [-n N]`. Each kind is timed through `parse_device_message` (or
`parse_command`) and, in the same run, through a bare `json.loads` of the same bytes, so the
figures can be compared across machines by their ratio. The `routed` rows go through the whole
decode step the daemon calls (`Decoder.message`: the topic router, then the parser), for an exact
topic and a wildcard one; the `profiled` row through a Zigbee vibration sensor's profile. The
budget: a year of one household (~1.5 M messages) replayed in well under 30 s, so parsing should
stay under ~8 µs.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from coach.config import Config, Device
from coach.decode.decoder import Decoder
from coach.decode.native import parse_command, parse_device_message
from coach.decode.refusal import PayloadError

RECEIVED = datetime(2026, 11, 24, 21, 5, tzinfo=UTC)
BED = Device(id="bed", kind="bed_motion", topic="home/bedroom/bed", person="alex")
COFFEE = Device(id="coffee", kind="coffee_maker", topic="home/kitchen/coffee", person="alex")
WATCH = Device(id="watch", kind="fitness_tracker", topic="tracker/alex", person="alex")

CONFIG = Config.model_validate(
    {
        "timezone": "Europe/Berlin",
        "people": [{"id": "alex", "bedtime": "22:30", "wake": "06:30"}],
        "devices": [
            BED.model_dump(),
            COFFEE.model_dump(),
            WATCH.model_dump(),
            # A wildcard filter, matched after the exact topics.
            {"id": "zb", "kind": "fitness_tracker", "topic": "zigbee/+/watch", "person": "alex"},
            {
                "id": "vibration",
                "kind": "bed_motion",
                "topic": "zigbee2mqtt/bed",
                "person": "alex",
                "profile": "zigbee2mqtt_vibration",
            },
        ],
    }
)

_ACCEL = json.dumps(
    {"event": "accel", "rate_hz": 50, "samples": [[0.01, -0.02, 0.98]] * 50}
).encode()

# (name, device or None for a command, payload)
CASES: list[tuple[str, Device | None, bytes]] = [
    ("movement", BED, b'{"event": "movement", "intensity": 0.42, "duration_s": 0.8}'),
    (
        "movement+ts",
        BED,
        b'{"event": "movement", "intensity": 0.42, "duration_s": 0.8, '
        b'"ts": "2026-11-24T23:41:07+01:00"}',
    ),
    ("occupancy", BED, b'{"event": "occupancy", "occupied": true}'),
    ("accel (50 samples)", BED, _ACCEL),
    ("brew", COFFEE, b'{"event": "brew", "drink": "espresso", "volume_ml": 40}'),
    (
        "workout_start",
        WATCH,
        b'{"event": "workout_start", "activity": "running", "intensity": "vigorous"}',
    ),
    ("workout_end", WATCH, b'{"event": "workout_end"}'),
    ("heart_rate", WATCH, b'{"event": "heart_rate", "bpm": 72}'),
    (
        "heart_rate+ts",
        WATCH,
        b'{"event": "heart_rate", "bpm": 72, "ts": "2026-11-24T21:05:00+01:00"}',
    ),
    ("stress", WATCH, b'{"event": "stress", "level": 35}'),
    ("sunlight", WATCH, b'{"event": "sunlight", "minutes": 12}'),
    ("command snooze", None, b'{"command": "snooze", "nudge_id": "winddown:alex:2026-11-24"}'),
    ("command log", None, b'{"command": "log", "what": "caffeine", "caffeine_mg": 80}'),
    ("refused (range)", BED, b'{"event": "movement", "intensity": 1.7, "duration_s": 0.8}'),
    ("refused (not JSON)", BED, b"movement 0.4"),
]


def _per_message_us(fn: Callable[[], object], n: int) -> float:
    """Best of three runs of `n` calls, in microseconds per call."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def main() -> None:
    """Print µs/message for each payload kind next to a bare json.loads baseline."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=50_000, help="messages per kind (default 50000)")
    args = parser.parse_args()
    n: int = args.n

    print(f"{'payload':<22} {'parse µs':>9} {'json.loads µs':>14} {'ratio':>6}  result")
    total_parse = total_json = 0.0
    for name, device, payload in CASES:
        parse: Callable[[], object]
        if device is None:
            parse = partial(parse_command, "alex", payload, RECEIVED)
        else:
            parse = partial(parse_device_message, device, payload, RECEIVED)

        def baseline(payload: bytes = payload) -> object:
            try:
                return json.loads(payload)
            except ValueError:
                return None

        result = parse()
        kind = "refused" if isinstance(result, PayloadError) else type(result).__name__
        us = _per_message_us(parse, n)
        base = _per_message_us(baseline, n)
        total_parse += us
        total_json += base
        print(f"{name:<22} {us:>9.2f} {base:>14.2f} {us / base:>6.1f}  {kind}")
    decoder = Decoder(CONFIG, "sleepcoach")
    heart = b'{"event": "heart_rate", "bpm": 72}'
    for topic in ("tracker/alex", "zigbee/sam/watch"):
        routed = partial(decoder.message, topic, heart, RECEIVED)
        us = _per_message_us(routed, n)
        base = _per_message_us(partial(json.loads, heart), n)
        print(f"{'routed ' + topic:<22} {us:>9.2f} {base:>14.2f} {us / base:>6.1f}  via Decoder")
    vibration = b'{"action": "vibration", "strength": 30, "battery": 100, "linkquality": 128}'
    profiled = partial(decoder.message, "zigbee2mqtt/bed", vibration, RECEIVED)
    us = _per_message_us(profiled, n)
    base = _per_message_us(partial(json.loads, vibration), n)
    print(
        f"{'profiled zigbee2mqtt':<22} {us:>9.2f} {base:>14.2f} {us / base:>6.1f}  "
        "via Decoder, zigbee2mqtt_vibration"
    )
    k = len(CASES)
    print(
        f"{'mean of the kinds':<22} {total_parse / k:>9.2f} {total_json / k:>14.2f} "
        f"{total_parse / total_json:>6.1f}"
    )
    print(f"1.5 M messages at the mean: {1.5e6 * total_parse / k / 1e6:.1f} s of parsing")


if __name__ == "__main__":
    main()
