"""Home Assistant latency: event published -> notification visible in Home Assistant, p50 and p99,
for `sleepcoach run` and, in the same run on the same servers, for the peer baseline: a plain Home
Assistant automation (MQTT trigger -> notify.persistent_notification).

    .venv/bin/python bench/home_assistant.py [--samples 200] [--env RUN_DIR/env]

Without `--env` it starts its own Home Assistant and Mosquitto with `scripts/ha-test-server up`
in a temporary run directory (and stops them at the end); with `--env` it uses a running harness.

The path measured for the coach: a device publishes a coffee on MQTT (QoS 1) -> the daemon
decides and commits (SQLite, synchronous=FULL) -> the nudge goes into the Home Assistant outbox
(another commit) -> the delivery thread calls `notify.persistent_notification` over REST -> Home
Assistant creates the notification. For the automation: the same publish -> Home Assistant's MQTT
trigger -> `notify.persistent_notification`. "Visible" is the moment the websocket subscription
`persistent_notification/subscribe` (what the frontend uses) reports it, read by this script.
Samples alternate between the two paths, one at a time, so both see the same machine.

Mosquitto's `set_tcp_nodelay` matters here: the harness's broker runs with Mosquitto's default
(false), where Nagle's algorithm and delayed ACKs stall the coach's QoS 1 exchanges by ~40 ms;
`config/mosquitto.conf` sets it true. The script says which one it measured.

Each coffee carries its own `ts`, a distinct earlier minute, so the coach answers each with a new
`caffeine.cutoff` nudge (the nudge id carries the drink's minute).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from homeassistant_api import Client
from paho.mqtt.enums import CallbackAPIVersion
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "ha-test-server"
TZ = "UTC"
AUTOMATION_TOPIC = "bench/automation"

AUTOMATIONS_YAML = f"""\
- id: sleepcoach_bench_baseline
  alias: sleepcoach bench baseline
  mode: parallel
  max: 100
  triggers:
    - trigger: mqtt
      topic: {AUTOMATION_TOPIC}
  actions:
    - action: notify.persistent_notification
      data:
        title: "No caffeine now"
        message: "{{{{ trigger.payload_json.message }}}}"
        data:
          notification_id: "{{{{ trigger.payload_json.id }}}}"
"""


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


class Harness:
    """A Home Assistant + Mosquitto from scripts/ha-test-server, started here or already up."""

    def __init__(self, env_file: Path | None) -> None:
        self.own_dir: Path | None = None
        if env_file is None:
            self.own_dir = Path(tempfile.mkdtemp(prefix="sleepcoach-ha-bench-"))
            self._script("up")
            env_file = self.own_dir / "env"
        values = dict(
            line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line
        )
        self.url = values["SLEEPCOACH_HA_URL"]
        self.ws_url = values["SLEEPCOACH_HA_WS_URL"]
        self.mqtt_port = int(values["SLEEPCOACH_HA_MQTT_PORT"])
        self.token_file = Path(values["SLEEPCOACH_HA_TOKEN_FILE"])
        self.run_dir = Path(values["SLEEPCOACH_HA_RUN_DIR"])
        self.token = self.token_file.read_text().strip()

    def _script(self, command: str) -> None:
        assert self.own_dir is not None
        env = {**os.environ, "SLEEPCOACH_HA_RUN_DIR": str(self.own_dir)}
        subprocess.run([sys.executable, str(SCRIPT), command], env=env, check=True, timeout=900)

    def add_baseline_automation(self) -> None:
        """Write the MQTT -> notify automation and load it (automation.reload rereads the YAML)."""
        config_dir = self.run_dir / "config"
        configuration = config_dir / "configuration.yaml"
        text = configuration.read_text()
        if "automations.yaml" not in text:
            configuration.write_text(text + "\nautomation: !include automations.yaml\n")
        (config_dir / "automations.yaml").write_text(AUTOMATIONS_YAML)
        with Client(f"{self.url}/api", self.token) as rest:
            rest.trigger_service("automation", "reload")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if any(s.entity_id.startswith("automation.") for s in rest.get_states()):
                    return
                time.sleep(0.2)
        msg = "the baseline automation did not load"
        raise RuntimeError(msg)

    def close(self) -> None:
        """Stop what this script started."""
        if self.own_dir is not None:
            self._script("down")


class NotificationWatcher:
    """Records when each persistent notification first shows up on Home Assistant's websocket."""

    def __init__(self, ws_url: str, token: str) -> None:
        self.seen: dict[str, float] = {}
        self._cond = threading.Condition()
        self._ws = connect(ws_url, max_size=2**24)
        assert json.loads(self._ws.recv())["type"] == "auth_required"
        self._ws.send(json.dumps({"type": "auth", "access_token": token}))
        assert json.loads(self._ws.recv())["type"] == "auth_ok"
        self._ws.send(json.dumps({"id": 1, "type": "persistent_notification/subscribe"}))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for raw in self._ws:
                now = time.perf_counter()
                message = json.loads(raw)
                event = message.get("event") or {}
                if message.get("type") != "event" or event.get("type") not in ("added", "updated"):
                    continue
                with self._cond:
                    for notification_id in event.get("notifications", {}):
                        self.seen.setdefault(notification_id, now)
                    self._cond.notify_all()
        except Exception:  # closed at the end of the run
            return

    def wait(self, prefix: str, suffix: str = "", timeout: float = 30.0) -> float:
        """The perf_counter time a notification whose id matches appeared; raises after timeout."""

        def found() -> float | None:
            for notification_id, at in self.seen.items():
                if notification_id.startswith(prefix) and notification_id.endswith(suffix):
                    return at
            return None

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                msg = f"no notification {prefix}…{suffix} within {timeout} s"
                raise TimeoutError(msg)
            at = found()
            assert at is not None
            return at

    def close(self) -> None:
        """Close the websocket."""
        self._ws.close()


def daemon_config(harness: Harness, prefix: str, db: Path) -> str:
    """The coach's config: the harness's broker and Home Assistant, bedtime in two hours."""
    now = datetime.now(ZoneInfo(TZ))
    bed = (now + timedelta(hours=2)).strftime("%H:%M")
    wake = (now + timedelta(hours=10)).strftime("%H:%M")
    return f"""\
timezone: {TZ}
mqtt:
  url: mqtt://127.0.0.1:{harness.mqtt_port}
  topic_prefix: {prefix}
  client_id: {prefix}
storage:
  url: sqlite:///{db}
homeassistant:
  url: {harness.url}
  token_file: {harness.token_file}
  discovery: false
people:
  - id: bench
    bedtime: "{bed}"
    wake: "{wake}"
devices:
  - id: coffee
    kind: coffee_maker
    topic: {prefix}/in/coffee
    person: bench
rules:
  caffeine.daily_limit: {{enabled: false}}
"""


def start_daemon(workdir: Path, config: Path) -> subprocess.Popen[bytes]:
    """`sleepcoach run` as a subprocess; returns once it is listening."""
    code = "import sys; from integrations.cli import main; sys.exit(main(sys.argv[1:]))"
    out = workdir / "daemon.out"
    env = {**os.environ, "XDG_DATA_HOME": str(workdir / "data"), "PYTHONPATH": str(ROOT)}
    with out.open("wb") as stdout, (workdir / "daemon.log").open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "run", "--config", str(config)],
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=workdir,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "is listening" in out.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    msg = f"the daemon did not start:\n{(workdir / 'daemon.log').read_text(errors='replace')}"
    raise RuntimeError(msg)


def measure(samples: int, harness: Harness) -> dict[str, list[float]]:
    """Alternate coach and automation samples; return the latencies in ms per path."""
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    workdir = Path(tempfile.mkdtemp(prefix="sleepcoach-ha-bench-daemon-"))
    config = workdir / "config.yaml"
    config.write_text(daemon_config(harness, prefix, workdir / "coach.db"))
    daemon = start_daemon(workdir, config)
    watcher = NotificationWatcher(harness.ws_url, harness.token)
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-device")
    # Without TCP_NODELAY the device's own socket adds a delayed-ACK stall (~40 ms) to whichever
    # path publishes right after the other: a property of the test client, not of either path.
    device.on_socket_open = lambda _c, _u, sock: sock.setsockopt(
        socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
    )
    nudged: dict[str, float] = {}
    nudge_cond = threading.Condition()

    def on_nudge(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with nudge_cond:
            nudged[json.loads(msg.payload)["id"]] = time.perf_counter()
            nudge_cond.notify_all()

    subscribed = threading.Event()
    device.on_message = on_nudge
    device.on_subscribe = lambda *_: subscribed.set()
    device.connect("127.0.0.1", harness.mqtt_port)
    device.subscribe(f"{prefix}/bench/nudge", qos=1)
    device.loop_start()
    subscribed.wait(10)
    results: dict[str, list[float]] = {"sleepcoach": [], "nudge_on_mqtt": [], "automation": []}
    base = datetime.now(ZoneInfo(TZ)).replace(second=0, microsecond=0)
    try:
        for i in range(samples):
            ts = base - timedelta(minutes=samples - i)
            coffee = {"event": "brew", "drink": "espresso", "volume_ml": 30, "ts": ts.isoformat()}
            started = time.perf_counter()
            device.publish(f"{prefix}/in/coffee", json.dumps(coffee), qos=1)
            seen = watcher.wait("sleepcoach_caffeine.cutoff:bench:", f":{ts:%H%M}")
            results["sleepcoach"].append((seen - started) * 1000)
            suffix = f":{ts:%H%M}"
            with nudge_cond:
                nudge_cond.wait_for(lambda s=suffix: any(k.endswith(s) for k in nudged), 10)
                at = next(v for k, v in nudged.items() if k.endswith(suffix))
            results["nudge_on_mqtt"].append((at - started) * 1000)

            baseline_id = f"bench_{prefix}_{i}"
            body = {"id": baseline_id, "message": "That espresso came late."}
            started = time.perf_counter()
            device.publish(AUTOMATION_TOPIC, json.dumps(body), qos=1)
            results["automation"].append((watcher.wait(baseline_id) - started) * 1000)
    finally:
        device.loop_stop()
        device.disconnect()
        watcher.close()
        daemon.terminate()
        daemon.wait(10)
    return results


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="samples per path")
    parser.add_argument("--env", type=Path, help="env file of a running ha-test-server")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.samples > 300:
        parser.error("at most 300 samples (each coffee needs its own minute within the cutoff)")
    harness = Harness(args.env)
    try:
        harness.add_baseline_automation()
        results = measure(args.samples, harness)
    finally:
        harness.close()
    conf = harness.run_dir / "mosquitto.conf"
    nodelay = conf.exists() and "set_tcp_nodelay true" in conf.read_text()
    figures: dict[str, Any] = {"samples": args.samples, "broker_tcp_nodelay": nodelay}
    print(f"event published -> notification visible in Home Assistant, {args.samples} samples")
    print(
        "broker: "
        + (
            "set_tcp_nodelay true (as config/mosquitto.conf ships)"
            if nodelay
            else "Mosquitto's default set_tcp_nodelay false (Nagle + delayed ACK: ~40 ms stalls)"
        )
    )
    print(f"{'path':<24}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'max ms':>9}")
    for name, label in (
        ("sleepcoach", "sleepcoach run"),
        ("nudge_on_mqtt", "  (its MQTT nudge)"),
        ("automation", "HA automation"),
    ):
        values = results[name]
        row = {
            "p50": percentile(values, 50),
            "p99": percentile(values, 99),
            "mean": sum(values) / len(values),
            "max": max(values),
        }
        figures[name] = row
        print(
            f"{label:<24}{row['p50']:>9.1f}{row['p99']:>9.1f}{row['mean']:>9.1f}{row['max']:>9.1f}"
        )
    ratio50 = figures["sleepcoach"]["p50"] / figures["automation"]["p50"]
    ratio99 = figures["sleepcoach"]["p99"] / figures["automation"]["p99"]
    figures["ratio"] = {"p50": ratio50, "p99": ratio99}
    print(f"sleepcoach / automation: p50 x{ratio50:.1f}, p99 x{ratio99:.1f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
