"""Two coaches on one broker, as two real `sleepcoach run` processes on a real Mosquitto.

With the same client id (set by hand in both configs) the second one's arrival is detected and
named: the broker hands the session over (Mosquitto 2.0 closes the older connection, newer ones
send MQTT 5's reason 0x8E first), the coach that held it takes it back, and the newcomer, whose
connection ends each time right after it was accepted, stops with an error naming the client id
and the cure, exit status 78: neither fights over the session silently and the first goes on
coaching. With two configs and nothing set, each gets a client id and a database of its own,
shown by `run --check` and at start-up, and both run side by side on the same data directory.
The same detection over MQTT 3.1.1 runs with two links on the same Mosquitto.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from integrations.daemon import EXIT_SESSION_TAKEN
from integrations.mqtt import (
    QUICK_DROPS,
    TAKEOVER_GRACE_S,
    BrokerLink,
    LinkSettings,
    SessionTakenError,
)
from tests.broker import Broker
from tests.e2e.conftest import (
    CLIENT_ID,
    DaemonProcess,
    Recorder,
    config_yaml,
    eventually,
    publisher,
)

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120)]

PREFIX = "sleepcoach"
COFFEE = b'{"event": "brew", "drink": "espresso"}'
NAMED = (
    "another client, most likely a second coach, connects to {url} with the same client id "
    f"{CLIENT_ID!r} and takes this coach's MQTT session and the messages queued for it. This "
    "coach stops rather than fight over the session: give each coach its own mqtt.client_id, or "
    "leave it unset for one derived from the host and the config file"
)


HOW = (
    r"the broker at mqtt://127\.0\.0\.1:\d+ closed this coach's connection right after "
    rf"accepting it {QUICK_DROPS} times in a row \(within {TAKEOVER_GRACE_S:g} s each\)"
)
HOW_5 = (
    r"the broker handed this coach's session to another client [\d.]+ s after this coach "
    r"connected \(MQTT 5 disconnect reason 0x8E, session taken over\)"
)


def _coffees(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE kind = 'CoffeeBrewed'").fetchone()
    return int(row[0])


def _mosquitto_only(broker: Broker) -> None:
    if broker.kind != "mosquitto":
        pytest.skip("the embedded broker speaks MQTT 3.1.1 only: no session-taken-over reason")


def test_a_second_coach_with_the_same_client_id_is_named_and_stops_the_first_goes_on(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    _mosquitto_only(broker)
    first_db, second_db = tmp_path / "first.db", tmp_path / "second.db"
    first = daemon_factory(config_yaml(broker, f"sqlite:///{first_db}"))
    second = daemon_factory(config_yaml(broker, f"sqlite:///{second_db}"))
    first.start()
    time.sleep(TAKEOVER_GRACE_S)  # the first has held its session a while: it is the one there

    second.start(wait=False)
    assert second.wait(60) == EXIT_SESSION_TAKEN, second.log_text()
    said = second.log_text()
    assert f"client id: {CLIENT_ID} (mqtt.client_id in the config)" in said
    # Named: what happened, whose session, who most likely took it, and the cure; on the
    # terminal too.
    assert NAMED.format(url=broker.url) in said, said
    assert re.search(rf"ERROR integrations\.mqtt: ({HOW}|{HOW_5}): another client", said), said
    assert re.search(rf"^error: ({HOW}|{HOW_5})", said, re.M), said
    assert "Traceback" not in said

    # The first goes on: `online` is what its status says, and a coffee is stored there, once.
    assert first.proc is not None
    assert first.proc.poll() is None, first.log_text()
    rec = recorder_factory(broker, [f"{PREFIX}/status"], client_id="status-watch")
    assert rec.wait_for(lambda: rec.on(f"{PREFIX}/status")[-1:] == [b"online"])
    dev = publisher(broker)
    dev.publish("home/kitchen/coffee", COFFEE, qos=1).wait_for_publish(5)
    assert eventually(lambda: _coffees(first_db) == 1, 15), first.log_text()
    dev.disconnect()
    first.stop()
    assert first.proc.returncode == 0, first.log_text()
    assert _coffees(first_db) == 1
    assert "ERROR" not in first.log_text()
    assert "Traceback" not in first.log_text()
    # It lost the session only to each of the newcomer's few attempts: no fight.
    assert first.log_text().count("reconnected to the broker") <= QUICK_DROPS, first.log_text()


def test_two_configs_get_their_own_client_ids_and_databases_and_both_run(
    broker: Broker, daemon_factory: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    shared = {"XDG_DATA_HOME": str(tmp_path / "xdg")}  # one user: one data directory
    text = config_yaml(broker, "unused").replace("storage:\n  url: unused\n", "")
    text = text.replace(f"  client_id: {CLIENT_ID}\n", "")
    if broker.kind == "embedded":  # a user name per coach, as the daemon's own embedded broker
        text = text.replace(f"  username: {CLIENT_ID}\n", "")
    coaches = [daemon_factory(text, env=shared) for _ in range(2)]
    ids = []
    for coach in coaches:
        check = subprocess.run(
            coach.command("--check"),
            env=coach.environment(),
            cwd=coach.home,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        found = re.search(
            r"^client id: (sleepcoach-\S+-[0-9a-f]{8}) \(derived from host ", check.stdout, re.M
        )
        assert found, check.stdout
        assert f"and config {coach.config.resolve()};" in check.stdout
        ids.append(found.group(1))
    assert ids[0] != ids[1]

    for coach in coaches:
        coach.start()
    dev = publisher(broker)
    dev.publish("home/kitchen/coffee", COFFEE, qos=1).wait_for_publish(5)
    data = tmp_path / "xdg" / "sleepcoach"
    databases = lambda: sorted(data.glob("sleepcoach-*.db"))  # noqa: E731
    assert eventually(lambda: len(databases()) == 2), sorted(data.iterdir())
    assert eventually(lambda: all(_coffees(db) == 1 for db in databases()), 15), [
        c.log_text() for c in coaches
    ]
    dev.disconnect()
    for coach, client_id in zip(coaches, ids, strict=True):
        assert coach.proc is not None
        assert coach.proc.poll() is None, coach.log_text()
        coach.stop()
        assert coach.proc.returncode == 0, coach.log_text()
        assert f"client id: {client_id} (derived from host " in coach.log_text()
        assert "session taken over" not in coach.log_text()
    assert not (data / "sleepcoach.db").exists()


def _link(broker: Broker, client_id: str) -> tuple[BrokerLink, list[SessionTakenError]]:
    lost: list[SessionTakenError] = []
    settings = LinkSettings(
        host="127.0.0.1",
        port=broker.port,
        client_id=client_id,
        status_topic=f"{client_id}/status",
        subscriptions=[f"{client_id}/in"],
        mqtt5=False,
    )
    return BrokerLink(settings, deliver=lambda _m: None, on_session_lost=lost.append), lost


def test_over_mqtt_3_1_1_repeated_drops_right_after_connecting_name_the_second_client(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    first, first_lost = _link(broker, "coach-311")
    second, second_lost = _link(broker, "coach-311")
    first.start()
    try:
        assert first.wait_up(10)
        time.sleep(TAKEOVER_GRACE_S)  # the first has held its session a while
        second.start()
        # The newcomer gives up after a few drops within seconds of connecting; the first goes on.
        assert eventually(lambda: bool(second_lost), 60), caplog.text
        assert "closed this coach's connection right after accepting it 3 times in a row" in str(
            second_lost[0]
        )
        assert "same client id 'coach-311'" in str(second_lost[0])
        assert second.session_lost is second_lost[0]
        with pytest.raises(SessionTakenError):
            second.wait_up(0.1)
        assert first.wait_up(15)
        assert not first_lost
    finally:
        second.stop(timeout=1.0)
        first.stop(timeout=1.0)
