"""The dashboard's web server over real HTTP on a free loopback port, fed as the consumer feeds it.

The views it serves are `coach.dashboard`'s (tested in tests/core); here: the URLs and their
answers, the event stream and its hand-off from another thread, the limits, the host check, the
headers, and that no secret of the config ever reaches a response. The page in a real browser,
fed by a real `sleepcoach run`, is tests/e2e/test_dashboard_browser.py.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coach.config import Config
from coach.dashboard import snapshot
from coach.engine import decide
from coach.event import CoffeeBrewed
from coach.state import CoachState
from integrations import dashboard as dashboard_module
from integrations.config_file import load_config
from integrations.dashboard import Dashboard, DashboardError
from integrations.settings import DashboardSettings, parse_listen
from tests.broker import free_port

CONFIG_TEXT = """\
timezone: Europe/Berlin
people:
  - {id: alex, bedtime: "22:30", wake: "06:30"}
  - {id: sam, name: "Sam <b>&</b>", bedtime: "23:00", wake: "07:00"}
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_TEXT)
    return load_config(path)


@pytest.fixture
def server(config: Config) -> Iterator[Dashboard]:
    board = Dashboard(config, DashboardSettings(listen=f"127.0.0.1:{free_port()}"))
    board.start()
    yield board
    board.stop()


def port_of(board: Dashboard) -> int:
    return parse_listen(board.url.removeprefix("http://").rstrip("/"))[1]


def get(
    board: Dashboard, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port_of(board), timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


class Stream:
    """An open event stream: reads `view` events as they come."""

    def __init__(self, board: Dashboard, path: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port_of(board), timeout=5)
        self.conn.request("GET", path)
        self.response = self.conn.getresponse()

    def next_view(self, timeout: float = 5.0) -> dict[str, Any]:
        assert self.response.fp is not None
        sock = self.conn.sock
        assert sock is not None
        sock.settimeout(timeout)
        data = None
        while True:
            line = self.response.fp.readline()
            if not line:
                msg = "the stream ended"
                raise EOFError(msg)
            if line.startswith(b"data: "):
                data = line[6:]
            elif line == b"\n" and data is not None:
                return json.loads(data)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.conn.close()


def coffee_state(config: Config, mg: float, at: datetime) -> CoachState:
    state = CoachState()
    event = CoffeeBrewed(person="alex", ts=at, drink="espresso", caffeine_mg=mg)
    decide(state, event, at, config)
    return state


# -- the URLs -------------------------------------------------------------------------------------


def test_the_page_and_its_data_are_served_for_a_person_in_the_config(server: Dashboard) -> None:
    status, headers, body = get(server, "/person/alex")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert b'id="caffeine-chart"' in body
    status, headers, body = get(server, "/api/person/alex")
    assert status == 200
    assert headers["content-type"] == "application/json"
    view = json.loads(body)
    assert view["person"] == {"id": "alex", "name": "Alex"}
    assert [p["id"] for p in view["people"]] == ["alex", "sam"]
    assert view["caffeine"]["points"]  # an empty state still has today's (flat) curve
    assert view["last_night"] is None


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/person/bob", id="the page of someone not in the config"),
        pytest.param("/api/person/bob", id="their data"),
        pytest.param("/events/person/bob", id="their event stream"),
        pytest.param("/person/%3Cscript%3E", id="an id that is no id at all"),
        pytest.param("/nothing/here", id="a path the dashboard does not have"),
        pytest.param("/static/../dashboard.py", id="a path out of the static folder"),
    ],
)
def test_unknown_answers_404_without_repeating_what_was_asked(server: Dashboard, path: str) -> None:
    status, _headers, body = get(server, path)
    assert status == 404
    assert b"bob" not in body
    assert b"<script" not in body.lower()


def test_one_person_redirects_to_their_page_with_a_relative_url(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(
        'timezone: Europe/Berlin\npeople: [{id: alex, bedtime: "22:30", wake: "06:30"}]\n'
    )
    board = Dashboard(load_config(path), DashboardSettings(listen=f"127.0.0.1:{free_port()}"))
    board.start()
    try:
        status, headers, _body = get(board, "/")
        assert status == 302
        assert headers["location"] == "person/alex"
    finally:
        board.stop()


def test_several_people_are_listed_with_relative_links_and_their_names_escaped(
    server: Dashboard,
) -> None:
    status, _headers, body = get(server, "/")
    assert status == 200
    assert b'href="person/alex"' in body
    assert b"Sam &lt;b&gt;&amp;&lt;/b&gt;" in body
    assert b"<b>" not in body


def test_every_url_the_page_uses_is_relative(server: Dashboard) -> None:
    """Under a reverse proxy's sub-path or Home Assistant's ingress, an absolute path would miss."""
    _status, _headers, page = get(server, "/person/alex")
    refs = re.findall(rb'(?:src|href)="([^"]*)"', page)
    assert refs
    assert all(not ref.startswith((b"/", b"http:", b"https:")) for ref in refs), refs
    for asset in ("dashboard.js", "chart.js", "dashboard.css"):
        status, _headers, body = get(server, f"/static/{asset}")
        assert status == 200
        assert b"://" not in body.replace(b"http://www.w3.org/2000/svg", b""), asset
        assert not re.search(rb"""(?:fetch|EventSource)\(\s*["'`]/""", body), asset


def test_every_response_carries_the_security_headers(server: Dashboard) -> None:
    for path in ("/", "/person/alex", "/api/person/alex", "/static/dashboard.js", "/person/bob"):
        _status, headers, _body = get(server, path)
        assert headers["content-security-policy"].startswith("default-src 'self'"), path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path


# -- secrets and hosts ----------------------------------------------------------------------------


def test_no_secret_of_the_config_reaches_any_response(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "ha_token"
    secret_file.write_text("ha-token-do-not-show\n")
    path = tmp_path / "secrets.yaml"
    path.write_text(
        CONFIG_TEXT + f"mqtt: {{username: coach}}\nhomeassistant: {{token_file: {secret_file}}}\n"
    )
    monkeypatch.setenv("SLEEPCOACH_MQTT_PASSWORD", "mqtt-password-do-not-show")
    config = load_config(path)
    board = Dashboard(config, DashboardSettings(listen=f"127.0.0.1:{free_port()}"))
    board.start()
    now = datetime.now(UTC)
    board.publish("alex", snapshot(coffee_state(config, 80, now - timedelta(hours=1)), "alex"))
    try:
        bodies = [get(board, p)[2] for p in ("/", "/person/alex", "/api/person/alex")]
        stream = Stream(board, "/events/person/alex")
        bodies.append(json.dumps(stream.next_view()).encode())
        stream.close()
    finally:
        board.stop()
    for body in bodies:
        assert b"do-not-show" not in body
        assert b"password" not in body.lower()
        assert b"token" not in body.lower()


@pytest.mark.parametrize(
    ("host", "status"),
    [
        pytest.param("localhost", 200, id="localhost is served"),
        pytest.param("127.0.0.1", 200, id="the loopback address is served"),
        pytest.param("[::1]", 200, id="the IPv6 loopback address is served"),
        pytest.param("proxy.home.arpa", 200, id="a host named in dashboard.hosts is served"),
        pytest.param("rebound.example.com", 400, id="any other name is refused (DNS rebinding)"),
    ],
)
def test_on_loopback_only_loopback_names_and_the_configured_hosts_are_served(
    config: Config, host: str, status: int
) -> None:
    settings = DashboardSettings(listen=f"127.0.0.1:{free_port()}", hosts=["proxy.home.arpa"])
    board = Dashboard(config, settings)
    board.start()
    try:
        got, _headers, _body = get(board, "/api/person/alex", {"Host": f"{host}:8099"})
    finally:
        board.stop()
    assert got == status


def test_off_loopback_it_warns_and_serves_any_host_name(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    board = Dashboard(config, DashboardSettings(listen=f"0.0.0.0:{free_port()}"))
    with caplog.at_level(logging.WARNING, logger="integrations.dashboard"):
        board.start()
    try:
        status, _headers, _body = get(board, "/api/person/alex", {"Host": "coach.home.arpa"})
    finally:
        board.stop()
    assert status == 200
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "beyond this machine" in warning.getMessage()
    assert "without a password" in warning.getMessage()


@pytest.mark.parametrize(
    ("listen", "error"),
    [
        pytest.param("8099", "expected host:port", id="a port alone"),
        pytest.param("127.0.0.1:0", "port 1-65535", id="port 0"),
        pytest.param("127.0.0.1:70000", "port 1-65535", id="a port too large"),
        pytest.param("127.0.0.1:http", "expected host:port", id="a port by name"),
        pytest.param(":8099", "expected host:port", id="no host"),
    ],
)
def test_a_bad_listen_address_is_refused_with_what_is_expected(listen: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        DashboardSettings(listen=listen)


def test_the_defaults_are_on_and_loopback() -> None:
    settings = DashboardSettings()
    assert settings.enabled
    assert settings.address == ("127.0.0.1", 8099)
    assert settings.is_loopback
    assert DashboardSettings(listen="[::1]:8099").address == ("::1", 8099)
    assert DashboardSettings(listen="[::1]:8099").is_loopback
    assert DashboardSettings(listen="localhost:8099").is_loopback
    assert not DashboardSettings(listen="192.0.2.10:8099").is_loopback


def test_a_port_already_taken_is_a_clear_error(config: Config) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        board = Dashboard(config, DashboardSettings(listen=f"127.0.0.1:{port}"))
        with pytest.raises(DashboardError, match=f"cannot listen on 127.0.0.1:{port}"):
            board.start()


# -- the live feed --------------------------------------------------------------------------------


def test_a_stream_gets_the_view_at_once_and_again_after_each_hand_over(
    server: Dashboard, config: Config
) -> None:
    stream = Stream(server, "/events/person/alex")
    try:
        first = stream.next_view()
        assert first["caffeine"]["doses"] == []
        now = datetime.now(UTC)
        state = coffee_state(config, 100, now - timedelta(minutes=10))
        handed = time.monotonic()
        # From another thread, as the consumer does: only the hand-off crosses.
        threading.Thread(target=server.publish, args=("alex", snapshot(state, "alex"))).start()
        second = stream.next_view(timeout=2.0)
        took = time.monotonic() - handed
    finally:
        stream.close()
    assert [d["mg"] for d in second["caffeine"]["doses"]] == [100.0]
    assert second["caffeine"]["now_mg"] > 90
    assert took < 1.0


def test_a_stored_night_handed_over_is_last_night_with_its_timeline(
    server: Dashboard, config: Config
) -> None:
    stream = Stream(server, "/events/person/alex")
    try:
        assert stream.next_view()["last_night"] is None
        start = datetime(2026, 11, 24, 21, 0, tzinfo=config.tz)
        night = {
            "night": "2026-11-24",
            "status": "ok",
            "night_start": start.isoformat(),
            "night_end": (start + timedelta(hours=9)).isoformat(),
            "time_in_bed_min": 480,
            "plm_index": 4.0,
            "hypnic_jerks": 0,
            "timeline": {
                "stays": [[5400.0, 34200.0]],
                "movements": [[7200.0, 2.0, 0.3, 0]],
                "series": [],
                "omitted": 0,
            },
        }
        server.record_night("alex", night)
        view = stream.next_view(timeout=2.0)
    finally:
        stream.close()
    shown = view["last_night"]
    assert shown["night"] == "2026-11-24"
    assert shown["timeline"]["in_bed"] == [
        [round((start.timestamp() + 5400) * 1000), round((start.timestamp() + 34200) * 1000)]
    ]
    assert shown["timeline"]["movements"] == [
        [round((start.timestamp() + 7200) * 1000), 2.0, "limb"]
    ]


def test_a_burst_of_hand_overs_ends_with_the_latest_and_never_goes_back(
    server: Dashboard, config: Config
) -> None:
    """50 states handed over at once: the stream shows the last, and never an older after a newer.

    The views in between are coalesced (the stream renders whatever is latest when it wakes); how
    many it skips depends on when the loop runs, so only what holds on a busy machine is asserted.
    """
    stream = Stream(server, "/events/person/alex")
    shown: list[float] = []
    try:
        stream.next_view()
        now = datetime.now(UTC)
        for mg in range(1, 51):
            state = coffee_state(config, float(mg), now - timedelta(minutes=10))
            server.publish("alex", snapshot(state, "alex"))
        while not shown or shown[-1] != 50.0:
            view = stream.next_view(timeout=30.0)
            [dose] = view["caffeine"]["doses"]
            shown.append(dose["mg"])
        with pytest.raises(TimeoutError):
            stream.next_view(timeout=0.5)  # nothing after the latest
    finally:
        stream.close()
    assert shown == sorted(set(shown)), shown


def test_another_persons_hand_over_does_not_wake_this_stream(
    server: Dashboard, config: Config
) -> None:
    stream = Stream(server, "/events/person/sam")
    try:
        stream.next_view()
        state = coffee_state(config, 100, datetime.now(UTC))
        server.publish("alex", snapshot(state, "alex"))
        with pytest.raises(TimeoutError):
            stream.next_view(timeout=0.5)
    finally:
        stream.close()


def test_open_streams_are_capped(server: Dashboard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard_module, "MAX_STREAMS", 2)
    streams = [Stream(server, "/events/person/alex"), Stream(server, "/events/person/sam")]
    try:
        for stream in streams:
            stream.next_view()
        status, _headers, _body = get(server, "/events/person/alex")
        assert status == 503
        streams.pop().close()
        # The server notices the closed connection and makes room for another stream.
        deadline = time.monotonic() + 5
        while True:
            probe = Stream(server, "/events/person/alex")
            status = probe.response.status
            probe.close()
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 200
    finally:
        for stream in streams:
            stream.close()


def test_stop_ends_open_streams_and_returns_promptly(config: Config) -> None:
    board = Dashboard(config, DashboardSettings(listen=f"127.0.0.1:{free_port()}"))
    board.start()
    stream = Stream(board, "/events/person/alex")
    stream.next_view()
    started = time.monotonic()
    board.stop(timeout=3.0)
    took = time.monotonic() - started
    with pytest.raises(EOFError):
        stream.next_view(timeout=2.0)
    stream.close()
    assert took < 2.0
    board.publish("alex", snapshot(CoachState(), "alex"))  # after stop: ignored, no error
