"""The live dashboard the way a person meets it: `sleepcoach run` on a real Mosquitto, a night and a
coffee published by devices, the page open in Debian's headless Chromium.

The page is opened through a proxy that serves it under a sub-path (as nginx or Home Assistant's
ingress would). It must show the person's caffeine curve and last night (its timeline read back
from storage after a restart), follow a coffee within a second, and log no error. The same daemon
answers 404 for someone not in the config, never shows a secret, listens only where it is told,
and keeps coaching when it cannot have its port or is switched off.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.broker import ROOT, Broker, free_port
from tests.browser import Browser, SubPathProxy
from tests.e2e.conftest import TZ, DaemonProcess, Recorder, config_yaml, publisher

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(180)]

PREFIX = "sleepcoach"
BED = "home/bedroom/bed"
COFFEE = "home/kitchen/coffee"


def _hhmm(instant: datetime) -> str:
    return instant.astimezone(ZoneInfo(TZ)).strftime("%H:%M")


def synth_night(home: Path, start: datetime) -> list[dict[str, Any]]:
    """One synthetic night from `sleepcoach synth`, as scenario lines."""
    code = "import sys; from integrations.cli import main; sys.exit(main(sys.argv[1:]))"
    out = home / "night.jsonl"
    made = subprocess.run(
        [sys.executable, "-c", code, "synth", "--out", str(out), "--nights", "1", "--seed", "11",
         "--start", start.isoformat(), "--plm-index", "30", "--hypnic-jerks", "1", "--topic", BED],
        capture_output=True, text=True, timeout=120, cwd=home, check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(home)},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def get(port: int, path: str, host: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def first_event(port: int, path: str) -> bytes:
    """The first event of a stream, raw."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == 200
        lines = []
        while (line := response.readline()) not in (b"\n", b""):
            lines.append(line)
        return b"".join(lines)
    finally:
        conn.close()


def test_a_live_coach_shows_last_night_and_todays_caffeine_and_follows_a_coffee_within_a_second(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    browser: Browser,
    tmp_path: Path,
) -> None:
    # A night that began 20 h ago; bedtime half an hour in, wake half an hour after the last
    # time the sleeper got up, so getting up ends the night.
    start = (datetime.now(ZoneInfo(TZ)) - timedelta(hours=20)).replace(second=0, microsecond=0)
    lines = synth_night(tmp_path, start)
    exits = [
        datetime.fromisoformat(line["ts"])
        for line in lines
        if line["payload"]["event"] == "occupancy" and not line["payload"]["occupied"]
    ]
    board = free_port()
    config = config_yaml(
        broker,
        f"sqlite:///{tmp_path / 'coach.db'}",
        bedtime=_hhmm(start + timedelta(minutes=30)),
        wake=_hhmm(max(exits) + timedelta(minutes=30)),
        dashboard=f"{{listen: '127.0.0.1:{board}'}}",
    )
    rec = recorder_factory(broker, [f"{PREFIX}/alex/state"])
    daemon = daemon_factory(config)
    daemon.start()
    assert f"http://127.0.0.1:{board}/" in daemon.out.read_text()

    bed = publisher(broker, "bed")
    for line in lines:
        bed.publish(BED, json.dumps(line["payload"]).encode(), qos=1).wait_for_publish(5)

    def last_night() -> dict[str, Any] | None:
        docs = [s["last_night"] for s in rec.json_on(f"{PREFIX}/alex/state")]
        return next((d for d in reversed(docs) if d and d["status"] == "ok"), None)

    assert rec.wait_for(lambda: last_night() is not None, 60), daemon.log_text()
    night = last_night()
    assert night is not None
    # A restart: the night's timeline comes back from storage, not from memory.
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.log_text()
    daemon.start()

    proxy = SubPathProxy(board)
    try:
        tab = browser.open(proxy.url + "person/alex")
        page = tab.page
        expect(page.locator("#live")).to_have_class("live on", timeout=5000)
        # Today's caffeine curve, with bedtime on it (no drink yet).
        expect(page.locator("#caffeine-chart path.caffeine.curve")).to_have_count(1)
        expect(page.locator("#caffeine-chart g.mark.bedtime")).to_have_count(1)
        expect(page.locator("#caffeine-chart circle.dose")).to_have_count(0)
        # Last night, with the figures the coach published and its movements on a timeline.
        expect(page.locator('[data-figure="hypnic_jerks"]')).to_have_text(
            str(night["hypnic_jerks"])
        )
        expect(page.locator('[data-figure="plm_index"]')).to_have_text(
            f"{round(night['plm_index'], 1):g} /h"
        )
        expect(page.locator("#night-chart .series rect")).to_have_count(night["series"])
        assert page.locator("#night-chart .movements line").count() > 10
        expect(page.locator("#night-chart path.jerk")).to_have_count(night["hypnic_jerks"])

        coffee = publisher(broker, "coffee")
        sent = time.monotonic()
        coffee.publish(COFFEE, b'{"event": "brew", "drink": "espresso"}', qos=1)
        expect(page.locator("#caffeine-chart circle.dose")).to_have_count(1, timeout=1000)
        took = time.monotonic() - sent
        coffee.loop_stop()
        assert took < 1.0
        assert page.locator('[data-figure="now"]').inner_text() == "63 mg"
        assert tab.errors == [], tab.errors
    finally:
        proxy.close()
    bed.loop_stop()


def test_the_dashboard_of_a_running_coach_shows_no_secret_and_nobody_not_in_the_config(
    auth_broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    board = free_port()
    config = config_yaml(
        auth_broker,
        f"sqlite:///{tmp_path / 'coach.db'}",
        extra_mqtt="  username: coach\n",
        dashboard=f"{{listen: '127.0.0.1:{board}'}}",
    )
    daemon = daemon_factory(config, env={"SLEEPCOACH_MQTT_PASSWORD": "right-password"})
    daemon.start()
    bodies = []
    for path in ("/", "/person/alex", "/api/person/alex", "/static/dashboard.js"):
        status, body = get(board, path)
        assert status in (200, 302), path
        bodies.append(body)
    bodies.append(first_event(board, "/events/person/alex"))
    for body in bodies:
        assert b"right-password" not in body
        assert b"password" not in body.lower()
    for path in ("/person/bob", "/api/person/bob", "/events/person/bob"):
        assert get(board, path)[0] == 404, path
    # Served on loopback, for loopback names only.
    assert get(board, "/api/person/alex", host=f"attacker.example:{board}")[0] == 400


def test_the_coach_coaches_on_when_its_dashboard_port_is_taken(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = config_yaml(
            broker,
            f"sqlite:///{tmp_path / 'coach.db'}",
            bedtime_in=timedelta(hours=2),
            dashboard=f"{{listen: '127.0.0.1:{port}'}}",
        )
        rec = recorder_factory(broker, [f"{PREFIX}/alex/nudge"])
        daemon = daemon_factory(config)
        daemon.start()
        publisher(broker).publish(COFFEE, b'{"event": "brew", "drink": "espresso"}', qos=1)
        assert rec.wait_for(lambda: rec.on(f"{PREFIX}/alex/nudge")), daemon.log_text()
    assert f"cannot listen on 127.0.0.1:{port}" in daemon.log_text()


@pytest.mark.parametrize(
    ("setting", "listening", "warned"),
    [
        pytest.param(
            "{enabled: false, listen: '127.0.0.1:PORT'}",
            False,
            False,
            id="switched off: nothing listens",
        ),
        pytest.param(
            "{listen: '0.0.0.0:PORT'}", True, True, id="off loopback: it listens and warns"
        ),
    ],
)
def test_the_dashboard_listens_only_as_the_config_says(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
    setting: str,
    listening: bool,
    warned: bool,
) -> None:
    port = free_port()
    setting = setting.replace("PORT", str(port))
    config = config_yaml(broker, f"sqlite:///{tmp_path / 'coach.db'}", dashboard=setting)
    daemon = daemon_factory(config)
    daemon.start()
    if not listening:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), 1)
    else:
        assert get(port, "/api/person/alex", host="coach.home.arpa")[0] == 200
    assert ("beyond this machine" in daemon.log_text()) is warned
