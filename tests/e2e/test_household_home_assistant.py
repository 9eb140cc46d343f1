"""A household through `sleepcoach run` and a real Home Assistant: two phones, one coffee maker.

The harness's Home Assistant (scripts/ha-test-server) has two notify services that stand for two
phones, `notify.mobile_app_alex_phone` and `notify.mobile_app_sam_phone` (notify groups that pass
each call on to a persistent notification: a phone needs the companion app). What the coach sends
to each is read from Home Assistant's own bus, the `call_service` event it fires for every service
call, so the test sees exactly what each phone would get. A button press is the
`mobile_app_notification_action` event a phone fires, with the action id the coach put on it.

Run with SLEEPCOACH_TEST_HA=1 (see tests/e2e/homeassistant.py).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from homeassistant_api import WebsocketClient
from homeassistant_api.models.websocket import FiredEvent

from integrations import discovery
from tests.e2e.conftest import DaemonProcess
from tests.e2e.homeassistant import HomeAssistantServer, wait_until

pytestmark = [pytest.mark.homeassistant, pytest.mark.timeout(180)]

TZ = "UTC"  # the harness's Home Assistant runs in UTC too
ALEX_PHONE = "mobile_app_alex_phone"
SAM_PHONE = "mobile_app_sam_phone"


class ServiceCalls:
    """Every `call_service` event on Home Assistant's bus while it is open: (service, data)."""

    def __init__(self, server: HomeAssistantServer) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._ws = WebsocketClient(server.ws_url, server.token)
        self._ws.__enter__()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        assert self._ready.wait(15), "could not subscribe to call_service"

    def _listen(self) -> None:
        try:
            with self._ws.listen_events("call_service") as events:
                self._ready.set()
                for fired in events:
                    if not isinstance(fired, FiredEvent):
                        continue
                    data = dict(fired.data)
                    name = f"{data.get('domain')}.{data.get('service')}"
                    with self._lock:
                        self.calls.append((name, dict(data.get("service_data") or {})))
        except Exception:  # closed by close(): the listening ends
            return

    def to(self, service: str) -> list[dict[str, Any]]:
        """The service data of every call to `notify.<service>`, in order."""
        with self._lock:
            return [data for name, data in self.calls if name == f"notify.{service}"]

    def close(self) -> None:
        try:
            self._ws._ws.close()
        finally:
            self._ws._session.close()
        self._thread.join(5)


@pytest.fixture
def service_calls(home_assistant: HomeAssistantServer) -> Iterator[ServiceCalls]:
    calls = ServiceCalls(home_assistant)
    yield calls
    calls.close()


def household_yaml(server: HomeAssistantServer, prefix: str, db: Path) -> str:
    now = datetime.now(ZoneInfo(TZ))

    def hhmm(delta: timedelta) -> str:
        return (now + delta).strftime("%H:%M")

    return f"""\
timezone: {TZ}
mqtt:
  url: mqtt://{server.mqtt_host}:{server.mqtt_port}
  topic_prefix: {prefix}
  client_id: {prefix}
storage:
  url: sqlite:///{db}
dashboard: {{enabled: false}}
homeassistant:
  url: {server.url}
  token_file: {server.token_file}
  notify: [notify.persistent_notification]
people:
  - id: alex
    bedtime: "{hhmm(timedelta(hours=2))}"
    wake: "{hhmm(timedelta(hours=10))}"
    notify: [notify.{ALEX_PHONE}]
  - id: sam
    name: Sam R
    bedtime: "{hhmm(timedelta(hours=2, minutes=30))}"
    wake: "{hhmm(timedelta(hours=10, minutes=30))}"
    notify: [notify.{SAM_PHONE}]
devices:
  - id: kitchen
    kind: coffee_maker
    topic: {prefix}_in/kitchen/coffee
    person: [alex, sam]
"""


def titled(calls: ServiceCalls, service: str, title: str) -> list[dict[str, Any]]:
    return [d for d in calls.to(service) if d.get("title") == title]


def test_each_phone_gets_only_its_persons_nudges_and_mine_answers(
    home_assistant: HomeAssistantServer,
    daemon_factory: Callable[..., DaemonProcess],
    service_calls: ServiceCalls,
    tmp_path: Path,
) -> None:
    prefix = f"schouse{uuid.uuid4().hex[:6]}"
    daemon = daemon_factory(household_yaml(home_assistant, prefix, tmp_path / "daemon.db"))
    daemon.start()
    node = discovery.slug(prefix)
    # Sam's device in Home Assistant carries Sam's display name.
    wait_until(
        lambda: any(
            d.get("name") == "Sleep coach Sam R"
            and any(node in ident for pair in d.get("identifiers", []) for ident in pair)
            for d in home_assistant.ws_command("config/device_registry/list")
        ),
        timeout=20,
        what=f"Sam's device\n{daemon.log_text()}",
    )

    maker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{prefix}-maker")
    maker.connect(home_assistant.mqtt_host, home_assistant.mqtt_port)
    maker.loop_start()
    try:
        at = datetime.now(ZoneInfo(TZ)).replace(microsecond=0)
        body = {"event": "brew", "drink": "espresso", "volume_ml": 60, "ts": at.isoformat()}
        maker.publish(f"{prefix}_in/kitchen/coffee", json.dumps(body), qos=1).wait_for_publish(10)
    finally:
        maker.loop_stop()
        maker.disconnect()

    alex_question = wait_until(
        lambda: titled(service_calls, ALEX_PHONE, "Alex: Whose espresso?") or None,
        timeout=20,
        what=f"Alex's question on Alex's phone\n{daemon.log_text()}",
    )[0]
    sam_question = wait_until(
        lambda: titled(service_calls, SAM_PHONE, "Sam R: Whose espresso?") or None,
        timeout=20,
        what=f"Sam's question on Sam's phone\n{daemon.log_text()}",
    )[0]
    sam_qid = f"household.whose:sam:{at.date().isoformat()}:{at:%H%M}"
    alex_qid = sam_qid.replace(":sam:", ":alex:")
    assert sam_question["data"]["tag"] == sam_qid
    assert sam_question["data"]["actions"] == [
        {"action": f"sleepcoach:mine:sam:{sam_qid}", "title": "Mine"}
    ]
    assert alex_question["data"]["actions"] == [
        {"action": f"sleepcoach:mine:alex:{alex_qid}", "title": "Mine"}
    ]

    # Sam presses Mine on Sam's phone.
    home_assistant.fire_event(
        "mobile_app_notification_action", {"action": sam_question["data"]["actions"][0]["action"]}
    )
    cutoff = wait_until(
        lambda: titled(service_calls, SAM_PHONE, "Sam R: No caffeine now") or None,
        timeout=20,
        what=f"Sam's cutoff on Sam's phone\n{daemon.log_text()}",
    )[0]
    # Its id names the brew's time (and the night it counts toward: its evening's date).
    assert cutoff["data"]["tag"].startswith("caffeine.cutoff:sam:")
    assert cutoff["data"]["tag"].endswith(f":{at:%H%M}")
    # Alex's question is cleared on Alex's phone by its tag.
    wait_until(
        lambda: (
            [
                d
                for d in service_calls.to(ALEX_PHONE)
                if d.get("message") == "clear_notification" and d["data"]["tag"] == alex_qid
            ]
            or None
        ),
        timeout=20,
        what=f"Alex's question cleared\n{daemon.log_text()}",
    )

    # Each phone got only its person's nudges; nothing went to the household default.
    alex_calls, sam_calls = service_calls.to(ALEX_PHONE), service_calls.to(SAM_PHONE)
    assert all(
        d.get("title", "").startswith("Alex: ") or d["message"] == "clear_notification"
        for d in alex_calls
    ), alex_calls
    assert all(d.get("title", "").startswith("Sam R: ") for d in sam_calls), sam_calls
    assert not [d for d in alex_calls if "caffeine" in d.get("title", "").lower()]
    direct = [
        str((d.get("data") or {}).get("notification_id", ""))
        for d in service_calls.to("persistent_notification")
    ]
    assert not [
        n for n in direct if n.startswith("sleepcoach_") and (":alex:" in n or ":sam:" in n)
    ]
