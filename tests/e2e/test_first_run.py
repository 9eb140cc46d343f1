"""The first run needs nothing: `sleepcoach run` with no config, no broker and no database, on the
real port 127.0.0.1:1883, the one a first run finds or takes.

Port 1883 of this machine (and of CI) belongs to a system Mosquitto, so each scenario runs in a
private network namespace (`unshare -rn`, its own loopback with nothing on it) and the tests skip
when one cannot be made. Checked there:

- nothing on 1883: the coach runs config/example.yaml, starts the embedded broker on 1883 and
  says so, prints the topics; a brew from the example's coffee maker reaches the retained state,
  a 450 mg brew gets `caffeine.daily_limit` (the example's one nudge that comes at any hour), a
  malformed payload is reported once on `sleepcoach/errors`, SIGTERM ends it with 0 within 5 s;
- 1883 held by a plain TCP server: it exits 1 and names the port;
- a Mosquitto on 1883: the coach uses it and starts no broker of its own.

The scenarios run in a child process inside the namespace: this module itself, run as
`python -m tests.e2e.test_first_run <scenario> <home> [mosquitto]`. It prints what it saw as one
JSON document, and the tests check that.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.broker import ROOT, Broker, mosquitto_or_skip, wait_port
from tests.e2e.conftest import DaemonProcess, Recorder, publisher

pytestmark = pytest.mark.timeout(60)

PREFIX = "sleepcoach"
PERSON = "alex"  # the person of the coffee maker in config/example.yaml
COFFEE_TOPIC = "home/kitchen/coffee"  # the example's coffee maker
ESPRESSO = b'{"event": "brew", "drink": "espresso"}'  # 63 mg (coach/caffeine.py)
MALFORMED = b'{"event": "brew", "drink":'
# More than the example's 400 mg a day on its own: `caffeine.daily_limit` answers the drink at any
# hour (quiet hours hold back only scheduled nudges), even when midnight falls between two brews.
BIG_BREW = b'{"event": "brew", "drink": "coffee", "caffeine_mg": 450}'
PORT_TAKEN = "port 1883 on 127.0.0.1 is taken by a program that is not an MQTT broker"
EMBEDDED = "starting the embedded broker"
USING = "using the MQTT broker that already answers on 127.0.0.1:1883"
RUN_TIMEOUT_S = 45.0


# -- the namespace -------------------------------------------------------------------------------


def _tools() -> tuple[str | None, str | None]:
    """`unshare` and `ip`, also where Debian puts `ip` outside a normal user's PATH."""
    ip = shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip") if Path(p).exists()), None
    )
    return shutil.which("unshare"), ip


@functools.cache
def _namespace_problem() -> str | None:
    """Why no private network namespace can be made here (None: it can), probed once."""
    unshare, ip = _tools()
    if unshare is None or ip is None:
        return f"needs `unshare` and `ip` for a private network namespace ({unshare=}, {ip=})"
    try:
        probe = subprocess.run(
            [unshare, "-rn", ip, "link", "set", "lo", "up"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"`unshare -rn` does not work here: {err}"
    if probe.returncode != 0:
        return f"`unshare -rn` does not work here: {probe.stderr.strip() or probe.returncode}"
    return None


def _in_namespace(scenario: str, home: Path, *extra: str) -> dict[str, Any]:
    """Run one scenario of this module in a fresh network namespace; what it saw."""
    problem = _namespace_problem()
    if problem is not None:
        pytest.skip(problem)
    unshare, ip = _tools()
    assert unshare is not None
    assert ip is not None
    script = f'{shlex.quote(ip)} link set lo up && exec "$@"'
    driver = [sys.executable, "-m", "tests.e2e.test_first_run", scenario, str(home), *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # A session of its own, so that a hung scenario is ended with the daemon and broker it started.
    proc = subprocess.Popen(
        [unshare, "-rn", "sh", "-c", script, "sh", *driver],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the {scenario} scenario hung:\n{err.decode(errors='replace')}")
    stderr = err.decode(errors="replace")
    assert proc.returncode == 0, f"the {scenario} scenario failed:\n{stderr}"
    seen: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return seen


# -- the tests -----------------------------------------------------------------------------------


def test_with_nothing_on_1883_and_no_config_the_coach_starts_its_broker_and_coaches(
    tmp_path: Path,
) -> None:
    seen = _in_namespace("nothing", tmp_path)
    log, out = seen["log"], seen["out"]
    assert seen["port_before"] == "free"
    assert "no --config given: running the example config" in log, log
    assert f"no broker answers on 127.0.0.1:1883: {EMBEDDED}" in log, log
    assert "sleepcoach is listening. Devices publish to:" in out, out
    assert COFFEE_TOPIC in out
    assert f"{PREFIX}/{PERSON}/command" in out
    assert f"{PREFIX}/<person>/state (retained)" in out

    state = seen["state"]
    assert state is not None, f"no state with the espresso:\n{log}"
    assert state["person"] == PERSON
    assert state["caffeine_mg_today"] == 63.0
    assert 60.0 < state["caffeine_mg_now"] <= 63.0
    # A client that subscribes later gets it at once: it is retained.
    # (amqtt may also forward a later publication flagged retained: only the first one counts.)
    assert seen["late_state"][:1] == [{"retained": True, "caffeine_mg_today": 63.0}]

    # The one nudge of the example that comes at any hour of the day.
    assert len(seen["daily_limit"]) == 1, (seen["nudges"], log)
    nudge = seen["daily_limit"][0]
    assert nudge["person"] == PERSON
    assert nudge["evidence"]["total_mg_today"] >= 450.0
    assert set(nudge) >= {"id", "ts", "severity", "title", "message", "evidence", "actions"}

    errors = [e for e in seen["errors"] if e["topic"] == COFFEE_TOPIC]
    assert len(errors) == 1, seen["errors"]
    assert set(errors[0]) == {"ts", "topic", "error"}
    assert errors[0]["error"]

    # Everything it keeps is in the user's data directory ($XDG_DATA_HOME/sleepcoach).
    assert {"sleepcoach/sleepcoach.db", "sleepcoach/embedded-broker.db"} <= set(seen["data"])
    assert seen["exit"] == 0, log
    assert seen["stop_s"] < 5.0, log
    assert seen["port_after"] == "free", "the embedded broker outlived the coach"


def test_with_1883_taken_by_a_program_that_is_not_mqtt_the_coach_exits_1_naming_the_port(
    tmp_path: Path,
) -> None:
    seen = _in_namespace("taken", tmp_path)
    assert seen["exit"] == 1, seen["log"]
    assert f"error: {PORT_TAKEN}" in seen["log"], seen["log"]
    assert EMBEDDED not in seen["log"]
    assert "is listening" not in seen["out"]
    assert seen["probed"], "the coach never looked at the port"


@pytest.mark.mosquitto
def test_with_a_broker_on_1883_the_coach_uses_it_and_starts_none_of_its_own(
    tmp_path: Path,
) -> None:
    mosquitto = mosquitto_or_skip(
        "needs Mosquitto to answer on 127.0.0.1:1883 before the coach starts"
    )
    seen = _in_namespace("mosquitto", tmp_path, mosquitto)
    log = seen["log"]
    assert seen["port_before"] == "mqtt"
    assert USING in log, log
    assert EMBEDDED not in log, log
    assert "sleepcoach/sleepcoach.db" in seen["data"]
    assert "sleepcoach/embedded-broker.db" not in seen["data"]
    assert seen["state"] is not None, f"no state with the espresso:\n{log}"
    assert seen["state"]["caffeine_mg_today"] == 63.0
    assert " as sleepcoach " in seen["mosquitto_log"], seen["mosquitto_log"]
    assert seen["exit"] == 0, log
    assert seen["stop_s"] < 5.0, log


# -- the scenarios, run inside the namespace -----------------------------------------------------


@dataclass
class FirstRun(DaemonProcess):
    """`sleepcoach run` as a first run types it: no --config, none of the settings' variables."""

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "integrations.cli", "run", *args]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        for name in ("SLEEPCOACH_CONFIG", "SLEEPCOACH_MQTT_URL", "SLEEPCOACH_STORAGE_URL"):
            env.pop(name, None)
        return env

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def sigterm(self) -> tuple[int | None, float]:
        """SIGTERM; the exit code (None: still running after 10 s) and how long it took."""
        started = time.monotonic()
        self.signal(signal.SIGTERM)
        try:
            code: int | None = self.wait(10)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - started


def _port_state() -> str:
    from integrations.broker import port_state  # noqa: PLC0415

    return port_state("127.0.0.1", 1883)


def _daemon(home: Path) -> FirstRun:
    (home / "run").mkdir()
    return FirstRun(config=home / "never-read.yaml", home=home / "run")  # no --config is passed


def _data_files(home: Path) -> list[str]:
    data = home / "run" / "data"
    return sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())


def _publish(broker: Broker, payload: bytes) -> None:
    """One message from the example's coffee maker, acknowledged by the broker."""
    dev = publisher(broker, "coffee-maker")
    dev.publish(COFFEE_TOPIC, payload, qos=1).wait_for_publish(5)
    dev.disconnect()
    dev.loop_stop()


def _espresso_state(broker: Broker, rec: Recorder) -> dict[str, Any] | None:
    """Brew an espresso on the example's coffee maker; the first state that shows it."""
    _publish(broker, ESPRESSO)

    def with_espresso() -> list[dict[str, Any]]:
        states = rec.json_on(f"{PREFIX}/{PERSON}/state")
        return [s for s in states if s["caffeine_mg_today"] > 0]

    rec.wait_for(lambda: bool(with_espresso()), 10)
    found = with_espresso()
    return found[0] if found else None


def _late_state(broker: Broker) -> list[dict[str, Any]]:
    """The states a client subscribing to the state now gets at once."""
    topic = f"{PREFIX}/{PERSON}/state"
    late = Recorder(broker, [topic], client_id="late")
    try:
        late.wait_for(lambda: bool(late.on(topic)), 5)
        # amqtt also sends retained messages of other topics: only this one's count.
        return [
            {"retained": retained, "caffeine_mg_today": json.loads(payload)["caffeine_mg_today"]}
            for t, payload, retained in late.messages
            if t == topic
        ]
    finally:
        late.close()


def _nothing(home: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {"port_before": _port_state()}
    daemon = _daemon(home)
    broker = Broker("embedded", 1883, home)  # what the coach starts: MQTT 3.1.1 clients
    rec: Recorder | None = None
    try:
        daemon.start()
        rec = Recorder(broker, [f"{PREFIX}/#"], client_id="first-run-recorder")
        seen["state"] = _espresso_state(broker, rec)
        seen["late_state"] = _late_state(broker)

        _publish(broker, BIG_BREW)
        nudge_topic = f"{PREFIX}/{PERSON}/nudge"

        def daily_limit() -> list[dict[str, Any]]:
            return [n for n in rec.json_on(nudge_topic) if n["rule"] == "caffeine.daily_limit"]

        rec.wait_for(lambda: bool(daily_limit()), 10)
        seen["daily_limit"] = daily_limit()

        _publish(broker, MALFORMED)
        rec.wait_for(lambda: bool(rec.on(f"{PREFIX}/errors")), 10)
        time.sleep(1.0)  # time for a second report, if there were one
        seen["errors"] = rec.json_on(f"{PREFIX}/errors")
        seen["nudges"] = rec.json_on(nudge_topic)

        seen["exit"], seen["stop_s"] = daemon.sigterm()
        seen["port_after"] = _port_state()
        seen["data"] = _data_files(home)
        return seen
    finally:
        if rec is not None:
            rec.close()
        daemon.stop()
        seen["log"], seen["out"] = daemon.log_text(), daemon.output()


def _taken(home: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {"probed": False}
    server = socket.create_server(("127.0.0.1", 1883))

    def answer() -> None:  # an HTTP server, say: it answers, but not MQTT
        while True:
            try:
                conn, _addr = server.accept()
            except OSError:
                return
            seen["probed"] = True
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    daemon = _daemon(home)
    try:
        daemon.start(wait=False)
        try:
            seen["exit"] = daemon.wait(20)
        except subprocess.TimeoutExpired:
            seen["exit"] = None
        return seen
    finally:
        daemon.stop()
        server.close()
        seen["log"], seen["out"] = daemon.log_text(), daemon.output()


def _mosquitto(home: Path, binary: str) -> dict[str, Any]:
    conf = home / "mosquitto.conf"
    # `user root`: in the namespace the test is root without the right to set groups, so
    # Mosquitto must not drop to its own user (it would exit: "Error setting groups").
    conf.write_text("listener 1883 127.0.0.1\nallow_anonymous true\nuser root\n")
    mosquitto_log = home / "mosquitto.log"
    with mosquitto_log.open("wb") as out:
        broker_proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT
        )
    seen: dict[str, Any] = {}
    daemon = _daemon(home)
    try:
        wait_port(1883)
        seen["port_before"] = _port_state()
        daemon.start()
        broker = Broker("mosquitto", 1883, home)  # MQTT 5 clients, as to any Mosquitto
        rec = Recorder(broker, [f"{PREFIX}/#"], client_id="first-run-recorder")
        seen["state"] = _espresso_state(broker, rec)
        rec.close()
        seen["exit"], seen["stop_s"] = daemon.sigterm()
        seen["data"] = _data_files(home)
        return seen
    finally:
        daemon.stop()
        broker_proc.terminate()
        broker_proc.wait(10)
        seen["log"], seen["out"] = daemon.log_text(), daemon.output()
        seen["mosquitto_log"] = mosquitto_log.read_text(errors="replace")


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "nothing": _nothing,
    "taken": _taken,
    "mosquitto": _mosquitto,
}


def main(argv: list[str]) -> int:
    """Run one scenario (in a namespace: see `_in_namespace`); print what it saw as JSON."""
    scenario, home, *extra = argv
    print(json.dumps(SCENARIOS[scenario](Path(home), *extra)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
