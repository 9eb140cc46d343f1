"""What a first run's broker loses when the coach restarts: readings streamed at QoS 1 while
`sleepcoach run` (and the broker it started for itself) is stopped with SIGTERM and started
again; how many the broker acknowledged, how many the coach stored. The embedded broker (amqtt)
against the baseline of the installed Mosquitto the coach starts, in the same run.

    .venv/bin/python bench/restart_loss.py [--runs 3] [--stream-s 2]

Each measurement runs on the real 127.0.0.1:1883 in a private network and mount namespace
(`unshare -rnm`, as tests/e2e/test_first_run.py does); for the embedded broker the namespace
hides the installed `mosquitto`, as on a machine without it. Needs Mosquitto and `unshare`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from broker import ROOT
from paho.mqtt.enums import CallbackAPIVersion

TOPIC = "tracker/alex"  # the example config's fitness tracker
STEP = timedelta(milliseconds=10)  # between the readings' own `ts`


def _in_namespace(kind: str, stream_s: float) -> dict[str, int]:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    script = f'{ip} link set lo up && exec "$@"'
    cmd = [sys.executable, __file__, "--inside", kind, "--stream-s", str(stream_s)]
    out = subprocess.run(
        ["unshare", "-rnm", "sh", "-c", script, "sh", *cmd],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    result: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return result


def _hide_mosquitto() -> None:
    sys.path.insert(0, str(ROOT))
    from integrations.mosquitto import mosquitto_binary  # noqa: PLC0415

    while (found := mosquitto_binary()) is not None:
        subprocess.run(["mount", "--bind", "/dev/null", found], check=True)


def _wait_listening(home: Path, count: int, proc: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + 30
    while (home / "coach.out").read_text().count("is listening") < count:
        if proc.poll() is not None or time.monotonic() > end:
            raise RuntimeError((home / "coach.log").read_text())
        time.sleep(0.05)


def _stored(home: Path) -> int:
    log = (home / "coach.log").read_text()
    url = next(x.split("storage: ", 1)[1] for x in log.splitlines() if "storage: sqlite:///" in x)
    with sqlite3.connect(url.strip().removeprefix("sqlite:///")) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM events WHERE topic = ? AND kind != 'refused'", (TOPIC,)
        ).fetchone()
    return int(count)


def inside(kind: str, stream_s: float) -> dict[str, int]:
    """One measurement, in the namespace: acknowledged and stored readings."""
    if kind == "embedded":
        _hide_mosquitto()
    home = Path(tempfile.mkdtemp(prefix="restart-loss-"))
    coach = _launch(home, 1)
    acked: list[int] = []
    stop = threading.Event()
    # MQTT 3.1.1 to amqtt (its only version), 5 to Mosquitto.
    protocol = mqtt.MQTTv311 if kind == "embedded" else mqtt.MQTTv5

    def stream() -> None:
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, "watch", protocol=protocol)
        pub.connect("127.0.0.1", 1883)
        pub.loop_start()
        start = datetime.now(UTC) - timedelta(hours=1)
        n = 0
        while not stop.is_set():
            doc = {"event": "heart_rate", "bpm": 60, "ts": (start + n * STEP).isoformat()}
            info = pub.publish(TOPIC, json.dumps(doc).encode(), qos=1)
            try:
                info.wait_for_publish(2)
            except RuntimeError:  # the broker went away with the coach
                break
            if not info.is_published():
                break
            acked.append(n)
            n += 1
        pub.loop_stop()

    thread = threading.Thread(target=stream)
    thread.start()
    time.sleep(stream_s)
    coach.send_signal(signal.SIGTERM)
    coach.wait(15)
    stop.set()
    thread.join(10)
    coach = _launch(home, 2)
    end = time.monotonic() + 20
    while _stored(home) < len(acked) and time.monotonic() < end:
        time.sleep(0.2)
    stored = _stored(home)
    coach.send_signal(signal.SIGTERM)
    coach.wait(15)
    return {"acked": len(acked), "stored": stored}


def _launch(home: Path, count: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, XDG_DATA_HOME=str(home / "data"), PYTHONPATH=str(ROOT))
    for name in ("SLEEPCOACH_CONFIG", "SLEEPCOACH_MQTT_URL", "SLEEPCOACH_STORAGE_URL"):
        env.pop(name, None)
    with (home / "coach.log").open("ab") as log, (home / "coach.out").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "integrations.cli", "run"],
            stdout=out,
            stderr=log,
            env=env,
            cwd=ROOT,
        )
    _wait_listening(home, count, proc)
    return proc


def main() -> None:
    """Run each broker `--runs` times, alternating; print acknowledged vs stored."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stream-s", type=float, default=2.0)
    parser.add_argument("--inside", choices=["mosquitto", "embedded"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(inside(args.inside, args.stream_s)))
        return
    print(f"{'run':>3}  {'broker':<28} {'acknowledged':>12} {'stored':>8} {'lost':>6}")
    for run in range(1, args.runs + 1):
        for kind, name in (("mosquitto", "Mosquitto (baseline)"), ("embedded", "embedded (amqtt)")):
            got = _in_namespace(kind, args.stream_s)
            lost = got["acked"] - got["stored"]
            print(f"{run:>3}  {name:<28} {got['acked']:>12,} {got['stored']:>8,} {lost:>6,}")


if __name__ == "__main__":
    main()
