"""A real Home Assistant for end-to-end tests: the `home_assistant` fixture and its marker.

Tests marked `@pytest.mark.homeassistant` run only with `SLEEPCOACH_TEST_HA=1`; otherwise they
are skipped with the reason. When enabled, Home Assistant is installed before the first test (once,
into `.ha/venv` or `$SLEEPCOACH_HA_DIR/venv`), and the session-scoped fixture starts it with its
own Mosquitto through `scripts/ha-test-server`, in a run directory under pytest's tmp path; a
start that fails fails the tests loudly, never skips them. The token is kept out of reprs so a
failing test never prints it.

This module is a pytest plugin, registered by `tests/conftest.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from homeassistant_api import Client, WebsocketClient
from homeassistant_api.errors import EndpointNotFoundError

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ha-test-server"
ENABLE_VARIABLE = "SLEEPCOACH_TEST_HA"
SKIP_REASON = (
    f"needs a real Home Assistant: set {ENABLE_VARIABLE}=1 to install (once, ~30-80 s, into "
    ".ha/) and start one; needs Python 3.13 under pyenv and mosquitto"
)
UP_TIMEOUT_S = 900.0  # covers an install when the collection-time install did not run
START_TIMEOUT_S = 300.0

T = TypeVar("T")

_install_error: str | None = None


def is_enabled() -> bool:
    """Tell whether the real-Home-Assistant tests should run in this session."""
    return os.environ.get(ENABLE_VARIABLE) == "1"


def run_script(
    command: str, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run `scripts/ha-test-server <command>` and return its completed process."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked `homeassistant` unless SLEEPCOACH_TEST_HA=1."""
    del config
    if is_enabled():
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if item.get_closest_marker("homeassistant"):
            item.add_marker(skip)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Install Home Assistant before the first test, so no test's timeout pays for it."""
    global _install_error  # noqa: PLW0603 - one install per session, remembered for the fixture
    if not is_enabled() or not any(i.get_closest_marker("homeassistant") for i in session.items):
        return
    capture = session.config.pluginmanager.getplugin("capturemanager")
    reporter = session.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("sleepcoach: checking the Home Assistant install for the e2e tests")
    started = time.monotonic()
    # Show the script's progress as it comes (a cold install takes half a minute or more) and
    # keep it for the fixture's failure message.
    lines: list[str] = []
    with (
        capture.global_and_fixture_disabled() if capture else nullcontext(),
        subprocess.Popen(
            [sys.executable, str(SCRIPT), "install"],
            stderr=subprocess.PIPE,
            text=True,
        ) as proc,
    ):
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            lines.append(line)
    if proc.returncode != 0:
        _install_error = f"installing Home Assistant failed (exit {proc.returncode}):\n" + "".join(
            lines[-30:]
        )
    elif reporter is not None and time.monotonic() - started > 5:
        reporter.write_line(
            f"sleepcoach: Home Assistant installed in {time.monotonic() - started:.0f} s"
        )


def wait_until(check: Callable[[], T | None], *, timeout: float = 10.0, what: str = "") -> T:
    """Poll `check` until it returns something other than None or False; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what or check}")
        time.sleep(0.1)


@dataclass
class HomeAssistantServer:
    """A running Home Assistant with its Mosquitto, and helpers to look inside it."""

    url: str
    ws_url: str
    mqtt_host: str
    mqtt_port: int
    token_file: Path
    run_dir: Path
    token: str = field(repr=False)  # never in a repr, so never in a failure report
    _env: dict[str, str] = field(repr=False)

    @classmethod
    def from_env_file(cls, env_file: Path, script_env: dict[str, str]) -> HomeAssistantServer:
        """Build the handle from the env file that `ha-test-server up` writes."""
        values = dict(
            line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line
        )
        token_file = Path(values["SLEEPCOACH_HA_TOKEN_FILE"])
        return cls(
            url=values["SLEEPCOACH_HA_URL"],
            ws_url=values["SLEEPCOACH_HA_WS_URL"],
            mqtt_host=values["SLEEPCOACH_HA_MQTT_HOST"],
            mqtt_port=int(values["SLEEPCOACH_HA_MQTT_PORT"]),
            token_file=token_file,
            run_dir=Path(values["SLEEPCOACH_HA_RUN_DIR"]),
            token=token_file.read_text().strip(),
            _env=script_env,
        )

    # --- REST ---------------------------------------------------------------------------------

    def client(self) -> Client:
        """Return a homeassistant_api REST client; use it as a context manager."""
        return Client(f"{self.url}/api", self.token)

    def states(self) -> list[dict[str, Any]]:
        """Return every state (GET /api/states) as plain JSON objects."""
        with self.client() as client:
            states: list[dict[str, Any]] = client.request("states")
        return states

    def state(self, entity_id: str) -> dict[str, Any] | None:
        """Return one state (GET /api/states/<entity_id>), or None when there is no such entity."""
        with self.client() as client:
            try:
                state: dict[str, Any] = client.request(f"states/{entity_id}")
            except EndpointNotFoundError:
                return None
        return state

    def call_service(self, domain: str, service: str, **data: Any) -> None:
        """Call a service (POST /api/services/<domain>/<service>)."""
        with self.client() as client:
            client.trigger_service(domain, service, **data)

    def fire_event(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        """Fire an event on Home Assistant's bus (POST /api/events/<event_type>)."""
        with self.client() as client:
            client.fire_event(event_type, **(data or {}))

    # --- websocket ----------------------------------------------------------------------------

    def ws_command(self, command: str, **data: Any) -> Any:
        """Send one websocket command and return its result."""
        with WebsocketClient(self.ws_url, self.token) as ws:
            return ws.recv_result(ws.send(command, **data)).result

    def persistent_notifications(self) -> list[dict[str, Any]]:
        """Return the persistent notifications (they are not states since Home Assistant 2023.6)."""
        notifications: list[dict[str, Any]] = self.ws_command("persistent_notification/get")
        return notifications

    def entity_id_for_unique_id(self, unique_id: str, platform: str = "mqtt") -> str | None:
        """Return the entity id registered for a unique id, or None when there is none yet."""
        for entry in self.ws_command("config/entity_registry/list"):
            if entry.get("unique_id") == unique_id and entry.get("platform") == platform:
                return str(entry["entity_id"])
        return None

    # --- life cycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop Home Assistant (Mosquitto keeps running); `start()` brings it back."""
        self._script("stop")

    def start(self) -> None:
        """Start Home Assistant again with the same config, port and token; wait for MQTT."""
        self._script("start")

    def log_tail(self, lines: int = 40) -> str:
        """Return the end of Home Assistant's log, for failure messages."""
        log = self.run_dir / "home-assistant.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def _script(self, command: str) -> None:
        result = run_script(command, self._env, START_TIMEOUT_S)
        if result.returncode != 0:
            pytest.fail(
                f"ha-test-server {command} failed (exit {result.returncode}):\n{result.stderr}",
                pytrace=False,
            )


@pytest.fixture(scope="session")
def home_assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HomeAssistantServer]:
    """A real Home Assistant and Mosquitto on free loopback ports, for the whole session."""
    if not is_enabled():
        pytest.skip(SKIP_REASON)
    if _install_error:
        pytest.fail(_install_error, pytrace=False)
    run_dir = tmp_path_factory.mktemp("home-assistant")
    env = {**os.environ, "SLEEPCOACH_HA_RUN_DIR": str(run_dir)}
    result = run_script("up", env, UP_TIMEOUT_S)
    try:
        if result.returncode != 0:
            pytest.fail(
                f"Home Assistant did not start (exit {result.returncode}):\n{result.stderr}",
                pytrace=False,
            )
        yield HomeAssistantServer.from_env_file(run_dir / "env", env)
    finally:
        down = run_script("down", env, START_TIMEOUT_S)
        if down.returncode != 0:
            sys.stderr.write(f"ha-test-server down failed:\n{down.stderr}")
