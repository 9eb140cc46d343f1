"""Shared by the daemon benchmarks: a Mosquitto with the shipped config, the coach as a process,
and MQTT clients. Not a benchmark itself."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
TZ = "Europe/Berlin"


# free_port, wait_port and Mosquitto below overlap tests/broker.py on purpose: the benchmarks run
# as plain scripts (`python bench/latency.py`, with only bench/ on sys.path) and must not need
# pytest, which tests/broker.py imports, nor reach into the test suite; and a benchmark wants
# Mosquitto or nothing, never the tests' embedded-broker fallback.


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Wait until 127.0.0.1:port accepts connections."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(port)


class Mosquitto:
    """Mosquitto in the foreground with config/mosquitto.conf (listener and data dir changed)."""

    def __init__(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            sys.exit("the benchmarks need Mosquitto (apt-get install mosquitto)")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sleepcoach-bench-"))
        self.dir.chmod(0o755)
        data = self.dir / "data"
        data.mkdir()
        data.chmod(0o777)  # Mosquitto drops root to its own user
        # Each line in its place: the access lines below the listener belong to it.
        lines = []
        for line in (ROOT / "config" / "mosquitto.conf").read_text().splitlines():
            if line.startswith("listener "):
                lines.append(f"listener {self.port} 127.0.0.1")
            elif line.startswith("persistence_location "):
                lines.append(f"persistence_location {data}/")
            else:
                lines.append(line)
        conf = self.dir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port)

    def close(self) -> None:
        """Stop it and remove its files."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def config_text(
    port: int,
    db: Path,
    client_id: str = "coach-bench",
    *,
    bed: bool = False,
    prefix: str = "sleepcoach",
    coffee_topic: str = "home/kitchen/coffee",
    dashboard: str | None = None,
) -> str:
    """A config: one person (bedtime 3 hours from now), a coffee maker and three trackers.

    The dashboard is off unless `dashboard` gives the address it listens on.
    """
    now = datetime.now(ZoneInfo(TZ))
    bedtime = (now + timedelta(hours=3)).strftime("%H:%M")
    wake = (now + timedelta(hours=11)).strftime("%H:%M")
    board = f"{{listen: '{dashboard}'}}" if dashboard else "{enabled: false}"
    return f"""\
timezone: {TZ}
mqtt: {{url: "mqtt://127.0.0.1:{port}", client_id: {client_id}, topic_prefix: {prefix}}}
storage: {{url: "sqlite:///{db}"}}
dashboard: {board}
people: [{{id: alex, bedtime: "{bedtime}", wake: "{wake}"}}]
devices:
  - {{id: coffee, kind: coffee_maker, topic: {coffee_topic}, person: alex}}
  - {{id: watch, kind: fitness_tracker, topic: tracker/alex, person: alex}}
  - {{id: ring, kind: fitness_tracker, topic: tracker/alex/ring, person: alex}}
  - {{id: band, kind: fitness_tracker, topic: tracker/alex/band, person: alex}}
""" + ("  - {id: bed, kind: bed_motion, topic: home/bedroom/bed, person: alex}\n" if bed else "")


class Coach:
    """`sleepcoach run` as a subprocess, as in production."""

    def __init__(self, port: int, workdir: Path, *, bed: bool = False, **config: Any) -> None:
        self.db = workdir / "coach.db"
        cfg = workdir / "config.yaml"
        cfg.write_text(config_text(port, self.db, bed=bed, **config))
        env = dict(os.environ, XDG_DATA_HOME=str(workdir / "data"), PYTHONPATH=str(ROOT))
        code = "import sys; from integrations.cli import main; sys.exit(main(sys.argv[1:]))"
        self.out = (workdir / "coach.out").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, "run", "--config", str(cfg), "--log-level", "warning"],
            stdout=self.out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
        end = time.monotonic() + 20
        while b"is listening" not in (workdir / "coach.out").read_bytes():
            if time.monotonic() > end or self.proc.poll() is not None:
                raise RuntimeError((workdir / "coach.out").read_text())
            time.sleep(0.05)

    def stored(self) -> int:
        """Events stored so far (a read-only connection; WAL lets it read beside the writer)."""
        import sqlite3  # noqa: PLC0415

        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self) -> None:
        """SIGTERM, as a service manager would."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        self.out.close()


def client(port: int, client_id: str, **kwargs: Any) -> mqtt.Client:
    """A connected MQTT 5 client with TCP_NODELAY, on its own network thread."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5, **kwargs)
    c.on_socket_open = lambda _c, _u, sock: sock.setsockopt(
        socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
    )
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))
    return ordered[index]
