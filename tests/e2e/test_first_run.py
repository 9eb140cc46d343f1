"""The first run needs nothing: `sleepcoach run` with no config, no broker and no database, on the
real port 127.0.0.1:1883, the one a first run finds or takes.

Port 1883 of this machine (and of CI) belongs to a system Mosquitto, so each scenario runs in a
private network namespace (`unshare -rnm`: its own loopback with nothing on it, and its own
mounts, so a scenario can hide the installed `mosquitto` as on a machine without it) and the
tests skip when one cannot be made. Checked there:

- nothing on 1883, Mosquitto installed: the coach starts it as a child process (loopback only,
  its data in the coach's data directory) and coaches through it: the state, a nudge, an error;
  SIGTERM stops both within 5 s; messages the broker accepted while the coach was stopped are
  all stored after a restart;
- nothing on 1883, no Mosquitto: the coach runs config/example.yaml, starts the embedded broker on
  1883 and says so, prints the topics; a brew from the example's coffee maker reaches the
  retained state, a 450 mg brew gets `caffeine.daily_limit` (the example's one nudge that comes
  at any hour), a malformed payload is reported once on `sleepcoach/errors`, SIGTERM ends it with
  0 within 5 s;
- the README's try-it-out on each of those brokers: `mosquitto_sub -t 'sleepcoach/#' -v` in one
  terminal, `mosquitto_pub` in another, and the state shows every coffee;
- 1883 held by a plain TCP server: it exits 1 and names the port;
- a Mosquitto on 1883: the coach uses it and starts no broker of its own.

The scenarios run in a child process inside the namespace: this module itself, run as
`python -m tests.e2e.test_first_run <scenario> <home> [args]`. It prints what it saw as one JSON
document, and the tests check that.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from integrations.config_file import EXAMPLE_CONFIG
from integrations.identity import default_database, derived_client_id
from tests.broker import ROOT, Broker, mosquitto_or_skip, wait_port
from tests.e2e.conftest import DaemonProcess, Recorder, publisher

pytestmark = pytest.mark.timeout(60)

PREFIX = "sleepcoach"
# The example config's identity on this host: its client id and its database in the data dir.
CLIENT_ID = derived_client_id(socket.gethostname(), EXAMPLE_CONFIG)
DATABASE = f"sleepcoach/{default_database(EXAMPLE_CONFIG, Path()).name}"
PERSON = "alex"  # the person of the coffee maker in config/example.yaml
COFFEE_TOPIC = "home/kitchen/coffee"  # the example's coffee maker
ESPRESSO = b'{"event": "brew", "drink": "espresso"}'  # 63 mg (coach/caffeine.py)
MALFORMED = b'{"event": "brew", "drink":'
# More than the example's 400 mg a day on its own: `caffeine.daily_limit` answers the drink at any
# hour (quiet hours hold back only scheduled nudges), even when midnight falls between two brews.
BIG_BREW = b'{"event": "brew", "drink": "coffee", "caffeine_mg": 450}'
PORT_TAKEN = "port 1883 on 127.0.0.1 is taken by a program that is not an MQTT broker"
EMBEDDED = "starting the embedded broker"
CHILD = "starting Mosquitto"
NO_MOSQUITTO = "no broker answers on 127.0.0.1:1883 and Mosquitto is not installed"
USING = "using the MQTT broker that already answers on 127.0.0.1:1883"
RUN_TIMEOUT_S = 45.0
HEART_RATES = 200  # readings sent while the coach is stopped, in the restart scenario


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
            [unshare, "-rnm", ip, "link", "set", "lo", "up"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"`unshare -rnm` does not work here: {err}"
    if probe.returncode != 0:
        return f"`unshare -rnm` does not work here: {probe.stderr.strip() or probe.returncode}"
    return None


def _in_namespace(
    scenario: str,
    home: Path,
    *extra: str,
    module: str = "tests.e2e.test_first_run",
    timeout: float = RUN_TIMEOUT_S,
) -> dict[str, Any]:
    """Run one scenario of `module` (this one by default) in a fresh network namespace; what it
    saw."""
    problem = _namespace_problem()
    if problem is not None:
        pytest.skip(problem)
    unshare, ip = _tools()
    assert unshare is not None
    assert ip is not None
    script = f'{shlex.quote(ip)} link set lo up && exec "$@"'
    driver = [sys.executable, "-m", module, scenario, str(home), *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # A session of its own, so that a hung scenario is ended with the daemon and broker it started.
    proc = subprocess.Popen(
        [unshare, "-rnm", "sh", "-c", script, "sh", *driver],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the {scenario} scenario hung:\n{err.decode(errors='replace')}")
    stderr = err.decode(errors="replace")
    assert proc.returncode == 0, f"the {scenario} scenario failed:\n{stderr}"
    seen: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return seen


# -- the tests -----------------------------------------------------------------------------------


def _assert_coached(seen: dict[str, Any]) -> None:
    """What every first run does, whichever broker it started: the example config coached."""
    log, out = seen["log"], seen["out"]
    assert seen["port_before"] == "free"
    assert "no --config given: running the example config" in log, log
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

    # In $XDG_DATA_HOME/sleepcoach, the example config's own database; said at start-up with the
    # client id, both derived from this install (the host and the config's path).
    assert DATABASE in seen["data"], seen["data"]
    assert f"client id: {CLIENT_ID} (derived from host {socket.gethostname()}" in log, log
    # Health data: the directories owner-only, each file (databases, the broker's) too.
    modes = seen["modes"]
    dirs = {"sleepcoach", "sleepcoach/mosquitto"} & set(modes)
    files = set(modes) - dirs
    assert {p: modes[p] for p in dirs} == dict.fromkeys(dirs, "700"), modes
    assert {p: modes[p] for p in files} == dict.fromkeys(files, "600"), modes
    assert seen["exit"] == 0, log
    assert seen["stop_s"] < 5.0, log
    assert seen["port_after"] == "free", "the broker the coach started outlived it"


def test_with_nothing_on_1883_and_no_mosquitto_the_coach_starts_its_embedded_broker(
    tmp_path: Path,
) -> None:
    seen = _in_namespace("nothing", tmp_path, "embedded")
    assert f"{NO_MOSQUITTO}: {EMBEDDED}" in seen["log"], seen["log"]
    assert CHILD not in seen["log"]
    _assert_coached(seen)
    assert "sleepcoach/embedded-broker.db" in seen["data"]
    assert seen["listening"] == ["127.0.0.1:1883"], "the embedded broker listens beyond loopback"


@pytest.mark.mosquitto
def test_with_nothing_on_1883_the_coach_starts_the_installed_mosquitto_for_itself(
    tmp_path: Path,
) -> None:
    mosquitto_or_skip("needs an installed Mosquitto for the coach to start")
    seen = _in_namespace("nothing", tmp_path, "mosquitto")
    log = seen["log"]
    assert "no broker answers on 127.0.0.1:1883: starting Mosquitto (" in log, log
    assert EMBEDDED not in log
    _assert_coached(seen)
    assert seen["listening"] == ["127.0.0.1:1883"], "the coach's Mosquitto listens beyond loopback"
    # Its persistence and config in the coach's data directory, nothing of amqtt.
    assert {"sleepcoach/mosquitto/mosquitto.db", "sleepcoach/mosquitto/mosquitto.conf"} <= set(
        seen["data"]
    ), seen["data"]
    assert "sleepcoach/embedded-broker.db" not in seen["data"]
    # Nothing from Mosquitto but, as the namespace makes the coach root, that it runs as root.
    said = [line for line in log.splitlines() if "integrations.mosquitto: mosquitto:" in line]
    assert all("should not be run as root" in line for line in said), said


@pytest.mark.mosquitto
def test_what_the_coachs_mosquitto_accepted_while_the_coach_was_stopped_is_stored_after_a_restart(
    tmp_path: Path,
) -> None:
    mosquitto_or_skip("needs an installed Mosquitto for the coach to start")
    seen = _in_namespace("restart", tmp_path)
    assert seen["exits"] == [0, 0], seen["log"]
    # The coach was stopped (SIGSTOP) while the readings came, and told to stop (SIGTERM) as it
    # woke: most of them were still with the broker, in its session, when both stopped.
    assert seen["stored_before_restart"] < HEART_RATES, seen
    assert seen["stored_after_restart"] == HEART_RATES, seen


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
def test_the_readmes_try_it_out_shows_every_coffee(tmp_path: Path, broker: str) -> None:
    clients = [shutil.which(c) for c in ("mosquitto_sub", "mosquitto_pub")]
    if None in clients:
        mosquitto_or_skip("")  # fails where Mosquitto is required
        pytest.skip("needs mosquitto_sub and mosquitto_pub (the README's commands)")
    if broker == "mosquitto":
        mosquitto_or_skip("needs an installed Mosquitto for the coach to start")
    seen = _in_namespace("readme", tmp_path, broker)
    assert (CHILD if broker == "mosquitto" else EMBEDDED) in seen["log"], seen["log"]
    # `mosquitto_sub -v` prints "topic payload"; three espressos of 63 mg each, all seen.
    assert seen["caffeine_mg_today"][-1:] == [189.0], seen["sub"]
    assert seen["exit"] == 0, seen["log"]


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
    assert DATABASE in seen["data"], seen["data"]
    assert "sleepcoach/embedded-broker.db" not in seen["data"]
    assert seen["state"] is not None, f"no state with the espresso:\n{log}"
    assert seen["state"]["caffeine_mg_today"] == 63.0
    assert f" as {CLIENT_ID} " in seen["mosquitto_log"], seen["mosquitto_log"]
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


def _data_modes(home: Path) -> dict[str, str]:
    """The mode of everything in the coach's data directory, and of that directory, in octal."""
    data = home / "run" / "data"
    mine = [data / "sleepcoach", *(data / "sleepcoach").rglob("*")]
    return {str(p.relative_to(data)): f"{stat.S_IMODE(p.stat().st_mode):o}" for p in mine}


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


def _hide_mosquitto() -> None:
    """Make this namespace a machine without Mosquitto: /dev/null over each `mosquitto` found."""
    from integrations.mosquitto import mosquitto_binary  # noqa: PLC0415

    for _ in range(10):
        found = mosquitto_binary()
        if found is None:
            return
        subprocess.run(["mount", "--bind", "/dev/null", found], check=True)
    msg = "cannot hide the installed mosquitto"
    raise RuntimeError(msg)


def _listening(port: int) -> list[str]:
    """The addresses listening on `port` in this namespace (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                continue
            if len(address) == 8:  # IPv4, little-endian
                found.append(".".join(str(b) for b in bytes.fromhex(address)[::-1]) + f":{port}")
            else:
                found.append(f"[{address}]:{port}")
    return sorted(found)


def _nothing(home: Path, kind: str) -> dict[str, Any]:
    """Nothing on 1883; the coach starts `kind` ("mosquitto" or "embedded": none installed)."""
    if kind == "embedded":
        _hide_mosquitto()
    seen: dict[str, Any] = {"port_before": _port_state()}
    daemon = _daemon(home)
    broker = Broker(kind, 1883, home)  # the test clients speak what that broker speaks
    rec: Recorder | None = None
    try:
        daemon.start()
        seen["listening"] = _listening(1883)
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
        seen["modes"] = _data_modes(home)
        return seen
    finally:
        if rec is not None:
            rec.close()
        daemon.stop()
        seen["log"], seen["out"] = daemon.log_text(), daemon.output()


def _readme(home: Path, kind: str) -> dict[str, Any]:
    """The README's try-it-out, its very commands, against the broker the coach starts."""
    if kind == "embedded":
        _hide_mosquitto()
    seen: dict[str, Any] = {}
    daemon = _daemon(home)
    sub_out = home / "mosquitto_sub.out"
    sub: subprocess.Popen[bytes] | None = None

    def states() -> list[float]:
        lines = sub_out.read_text(errors="replace").splitlines() if sub_out.exists() else []
        prefix = f"{PREFIX}/{PERSON}/state "
        return [
            json.loads(line.removeprefix(prefix))["caffeine_mg_today"]
            for line in lines
            if line.startswith(prefix)
        ]

    def wait(check: Callable[[], bool]) -> None:
        end = time.monotonic() + 10
        while not check() and time.monotonic() < end:
            time.sleep(0.05)

    try:
        daemon.start()
        with sub_out.open("wb") as out:
            sub = subprocess.Popen(
                ["mosquitto_sub", "-t", "sleepcoach/#", "-v"], stdout=out, stderr=out
            )
        # Subscribed once the retained status has come.
        wait(lambda: f"{PREFIX}/status online" in sub_out.read_text(errors="replace"))
        for _ in range(3):
            subprocess.run(
                [
                    "mosquitto_pub",
                    "-t",
                    COFFEE_TOPIC,
                    "-m",
                    '{"event": "brew", "drink": "espresso"}',
                ],
                check=True,
                timeout=10,
            )
        wait(lambda: 189.0 in states())
        seen["caffeine_mg_today"] = states()
        seen["exit"], seen["stop_s"] = daemon.sigterm()
        return seen
    finally:
        if sub is not None:
            sub.terminate()
            sub.wait(5)
        daemon.stop()
        seen["log"] = daemon.log_text()
        seen["sub"] = sub_out.read_text(errors="replace") if sub_out.exists() else ""


def _stored_readings(daemon: FirstRun) -> int:
    """How many readings of the example's tracker for alex the coach has stored."""
    url = next(
        line.split("storage: ", 1)[1].strip()
        for line in daemon.log_text().splitlines()
        if "storage: sqlite:///" in line
    )
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM events WHERE topic = 'tracker/alex' AND kind != 'refused'"
        ).fetchone()
    return int(count)


def _restart(home: Path) -> dict[str, Any]:
    """Readings accepted by the coach's Mosquitto while the coach is stopped, then a restart of
    both: every reading is stored once the coach is back."""
    seen: dict[str, Any] = {"exits": []}
    daemon = _daemon(home)
    broker = Broker("mosquitto", 1883, home)
    try:
        daemon.start()
        daemon.signal(signal.SIGSTOP)  # connected, its session open, taking nothing
        watch = publisher(broker, "watch")
        start = datetime.now(UTC) - timedelta(seconds=HEART_RATES)
        for n in range(HEART_RATES):
            ts = (start + timedelta(seconds=n)).isoformat()
            reading = {"event": "heart_rate", "bpm": 60, "ts": ts}
            watch.publish("tracker/alex", json.dumps(reading), qos=1).wait_for_publish(5)
        watch.disconnect()
        watch.loop_stop()
        daemon.signal(signal.SIGTERM)  # pending until it runs again: it stops as it wakes
        daemon.signal(signal.SIGCONT)
        seen["exits"].append(daemon.wait(10))
        seen["stored_before_restart"] = _stored_readings(daemon)
        daemon.start()
        end = time.monotonic() + 15
        while _stored_readings(daemon) < HEART_RATES and time.monotonic() < end:
            time.sleep(0.1)
        seen["stored_after_restart"] = _stored_readings(daemon)
        seen["exits"].append(daemon.sigterm()[0])
        return seen
    finally:
        daemon.stop()
        seen["log"] = daemon.log_text()


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
    "readme": _readme,
    "restart": _restart,
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
