"""End to end through a real Home Assistant and Mosquitto: nudges, entities, buttons, outages.

Each test runs a coach (`Coach` below) on the harness's Mosquitto: the real core (`decide`), the
real payload parser, the real discovery builders and the real `HomeAssistantBridge` with its
SQLite outbox, glued the way the daemon glues them (one inbox, one consumer thread). Each test uses
its own topic prefix and person, so their devices and notifications never mix.

Run with SLEEPCOACH_TEST_HA=1 (see tests/e2e/homeassistant.py).
"""

from __future__ import annotations

import gc
import json
import logging
import queue
import re
import sqlite3
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
import yaml

from coach.action import PublishNudge, ScheduleTimer, UpdateState
from coach.decode.decoder import Decoder
from coach.decode.refusal import PayloadError
from coach.engine import decide
from coach.event import CoachStarted, Event
from coach.state import CoachState
from integrations import discovery
from integrations.config_file import ConfigFile
from integrations.home_assistant import (
    DELIVERED,
    PENDING,
    Backoff,
    HomeAssistantBridge,
    Notifier,
    RestNotifier,
    read_token,
)
from integrations.storage import Storage
from tests.e2e.conftest import DaemonProcess
from tests.e2e.homeassistant import HomeAssistantServer, wait_until

pytestmark = pytest.mark.homeassistant

ROOT = Path(__file__).resolve().parents[2]
TZ = "UTC"  # the harness's Home Assistant runs in UTC too


def coach_config(
    server: HomeAssistantServer, prefix: str, people: tuple[str, ...], token: str | None = None
) -> ConfigFile:
    """A config whose bedtime is two hours from now, so a coffee now is past the cutoff."""
    now = datetime.now(ZoneInfo(TZ))
    bedtime = (now + timedelta(hours=2)).strftime("%H:%M")
    wake = (now + timedelta(hours=10)).strftime("%H:%M")
    return ConfigFile.model_validate(
        {
            "timezone": TZ,
            "mqtt": {
                "url": f"mqtt://{server.mqtt_host}:{server.mqtt_port}",
                "topic_prefix": prefix,
            },
            "homeassistant": {"url": server.url, "token": token or server.token},
            "people": [{"id": p, "bedtime": bedtime, "wake": wake} for p in people],
            "devices": [
                {
                    "id": f"coffee_{p}",
                    "kind": "coffee_maker",
                    "topic": f"{prefix}_in/{p}/coffee",
                    "person": p,
                }
                for p in people
            ],
            "rules": {"caffeine.daily_limit": {"enabled": False}},
        }
    )


class CountingNotifier:
    """The real REST notifier, counting the calls Home Assistant accepted, per nudge title."""

    def __init__(self, inner: RestNotifier) -> None:
        self.inner = inner
        self.accepted: list[dict[str, Any]] = []

    def call(self, service: str, data: dict[str, Any]) -> None:
        self.inner.call(service, data)
        self.accepted.append(data)

    def close(self) -> None:
        self.inner.close()


class Coach:
    """The daemon's glue, in small: MQTT in, `decide`, nudges and state out, Home Assistant bridge.

    One inbox (a queue), one consumer thread; paho's thread and the bridge's listener only put
    events in the inbox, as the daemon's rule says.
    """

    def __init__(
        self,
        config: ConfigFile,
        db: Path,
        *,
        backoff: Backoff | None = None,
        wrap: Callable[[RestNotifier], Notifier] | None = None,
    ) -> None:
        self.config = config
        self.tz = config.tz
        self.prefix = config.mqtt.topic_prefix
        self.state = CoachState()
        self.inbox: queue.Queue[Event | None] = queue.Queue()
        self.timers: dict[str, ScheduleTimer] = {}
        self.published_states: dict[str, dict[str, Any]] = {}
        self.errors: list[str] = []
        self.processed = 0
        self.storage = Storage.open(f"sqlite:///{db}")
        ha = config.homeassistant
        assert ha is not None
        token = read_token(ha)
        assert token is not None
        notifier: Notifier = RestNotifier(ha.url, token)
        if wrap is not None:
            notifier = wrap(notifier)  # type: ignore[arg-type]
        self.notifier = notifier
        self.bridge = HomeAssistantBridge(
            config,
            self.inbox.put,
            self.storage,
            notifier=notifier,
            backoff=backoff or Backoff(initial_s=0.5, maximum_s=2.0, token_rejected_s=1.0),
        )
        self.decoder = Decoder(config.core, config.mqtt.topic_prefix)
        self._connected = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"coach-{uuid.uuid4().hex[:8]}"
        )
        self.client.will_set(f"{self.prefix}/status", "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._consumer = threading.Thread(target=self._consume, daemon=True)
        self._stopped = False

    def start(self) -> None:
        """Connect, announce, start the bridge and the consumer."""
        host, port = ha_url_port(self.config)
        self._consumer.start()
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._connected.wait(10)
        self.bridge.start()
        self.inbox.put(CoachStarted(person="*", ts=datetime.now(self.tz)))

    def stop(self) -> None:
        """Stop everything (status goes offline through the clean disconnect path); idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.bridge.stop()
        self.inbox.put(None)
        self._consumer.join(5)
        self.client.publish(
            f"{self.prefix}/status", "offline", qos=1, retain=True
        ).wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()
        self.storage.close()

    def publish(self, topic: str, payload: dict[str, Any] | str, *, retain: bool = False) -> None:
        """Publish as a device would."""
        body = payload if isinstance(payload, str) else json.dumps(payload)
        self.client.publish(topic, body, qos=1, retain=retain).wait_for_publish(10)

    def wait_processed(self, count: int, timeout: float = 10.0) -> None:
        """Wait until the consumer has applied `count` events."""
        wait_until(lambda: self.processed >= count, timeout=timeout, what=f"{count} events")

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any = None) -> None:
        if rc.is_failure:
            return
        topics = [d.topic for d in self.config.devices] + [f"{self.prefix}/+/command"]
        topics.append(discovery.birth_topic(self.config))
        for topic in topics:
            client.subscribe(topic, qos=1)
        client.publish(f"{self.prefix}/status", "online", qos=1, retain=True)
        for topic, payload, retain in self.bridge.discovery_messages():
            client.publish(topic, payload, qos=1, retain=retain)
        self._connected.set()

    def _on_message(self, client: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == discovery.birth_topic(self.config):
            if discovery.is_birth(self.config, msg.topic, msg.payload):
                for topic, payload, retain in self.bridge.discovery_messages():
                    client.publish(topic, payload, qos=1, retain=retain)
            return
        parsed = self.decoder.message(msg.topic, msg.payload, datetime.now(self.tz))
        if isinstance(parsed, PayloadError):
            self.errors.append(parsed.error)
        elif isinstance(parsed, Event):
            self.inbox.put(parsed)

    def _consume(self) -> None:
        while (event := self.inbox.get()) is not None:
            actions = decide(self.state, event, datetime.now(self.tz), self.config.core)
            for action in actions:
                if isinstance(action, PublishNudge):
                    payload = action.nudge.to_payload(self.tz)
                    self.client.publish(
                        f"{self.prefix}/{action.nudge.person}/nudge", json.dumps(payload), qos=1
                    )
                    record = self.state.person(action.nudge.person).nudges.get(
                        str(payload.get("evidence", {}).get("original_id") or payload["id"])
                    )
                    self.bridge.deliver(payload, record.expires_at if record else None)
                elif isinstance(action, UpdateState):
                    self.published_states[action.person] = action.state
                    self.client.publish(
                        f"{self.prefix}/{action.person}/state",
                        json.dumps(action.state),
                        qos=1,
                        retain=True,
                    )
                elif isinstance(action, ScheduleTimer):
                    self.timers[action.timer.id] = action
            self.processed += 1


def ha_url_port(config: ConfigFile) -> tuple[str, int]:
    """The broker host and port of a config's mqtt:// URL."""
    assert config.mqtt.url is not None
    host, _, port = config.mqtt.url.removeprefix("mqtt://").partition(":")
    return host, int(port)


@pytest.fixture
def run_coach(
    home_assistant: HomeAssistantServer, tmp_path: Path
) -> Iterator[Callable[..., Coach]]:
    """Start coaches for a test; all are stopped afterwards."""
    coaches: list[Coach] = []

    def start(config: ConfigFile, db: str | None = None, **kw: Any) -> Coach:
        coach = Coach(config, tmp_path / (db or f"coach{len(coaches)}.db"), **kw)
        coach.start()
        coaches.append(coach)
        return coach

    yield start
    for coach in coaches:
        coach.stop()
    gc.collect()  # an unclosed socket warns here, in the test that leaked it


def unique(name: str) -> str:
    """A fresh topic prefix for one test."""
    return f"sc{name}{uuid.uuid4().hex[:6]}"


def our_notifications(server: HomeAssistantServer, person: str) -> list[dict[str, Any]]:
    """Persistent notifications that carry a nudge of this person."""
    return [
        n
        for n in server.persistent_notifications()
        if n["notification_id"].startswith(f"sleepcoach_caffeine.cutoff:{person}:")
    ]


def brew(coach: Coach, person: str, minutes_ago: int = 0) -> None:
    """A double espresso on the person's coffee maker (`ts` makes a distinct nudge per minute)."""
    ts = datetime.now(coach.tz).replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago)
    coach.publish(
        f"{coach.prefix}_in/{person}/coffee",
        {"event": "brew", "drink": "espresso", "volume_ml": 60, "ts": ts.isoformat()},
    )


# --- the tests ----------------------------------------------------------------------------------


def test_a_late_coffee_becomes_a_persistent_notification(
    home_assistant: HomeAssistantServer, run_coach: Callable[..., Coach]
) -> None:
    coach = run_coach(coach_config(home_assistant, unique("notify"), ("ana",)))
    brew(coach, "ana")
    found = wait_until(
        lambda: our_notifications(home_assistant, "ana") or None,
        timeout=15,
        what="the notification",
    )
    assert len(found) == 1
    assert found[0]["title"] == "No caffeine now"
    assert "espresso" in found[0]["message"]
    assert coach.bridge.outbox.counts()[DELIVERED] == 1


def test_entities_show_the_coachs_state_with_units(
    home_assistant: HomeAssistantServer, run_coach: Callable[..., Coach]
) -> None:
    prefix = unique("entities")
    coach = run_coach(coach_config(home_assistant, prefix, ("ben",)))
    brew(coach, "ben")
    doc = wait_until(
        lambda: (s := coach.published_states.get("ben")) and s["caffeine_mg_today"] > 0 and s,
        timeout=10,
        what="ben's state",
    )
    node = discovery.node_id(coach.config)

    def entity(key: str, *, known: bool = True) -> dict[str, Any]:
        entity_id = wait_until(
            lambda: home_assistant.entity_id_for_unique_id(f"{node}_ben_{key}"),
            timeout=15,
            what=f"entity {key}",
        )
        return wait_until(
            lambda: (
                (s := home_assistant.state(entity_id))
                and s["state"] != "unavailable"
                and (s["state"] != "unknown" or not known)
                and s
            ),
            timeout=15,
            what=f"state of {entity_id}",
        )

    now = entity("caffeine_now")
    assert now["attributes"]["unit_of_measurement"] == "mg"
    assert now["attributes"]["state_class"] == "measurement"
    assert float(now["state"]) == pytest.approx(doc["caffeine_mg_now"], abs=0.1)
    assert float(entity("caffeine_today")["state"]) == pytest.approx(doc["caffeine_mg_today"])
    bedtime = entity("next_bedtime")
    assert bedtime["attributes"]["device_class"] == "timestamp"
    assert datetime.fromisoformat(bedtime["state"]) == datetime.fromisoformat(doc["next_bedtime"])
    assert entity("caffeine_cutoff_passed")["state"] == "on"
    last = entity("last_nudge")
    assert last["state"] == "No caffeine now"
    assert last["attributes"]["rule"] == "caffeine.cutoff"
    time_in_bed = entity("time_in_bed", known=False)  # no night recorded yet
    assert time_in_bed["state"] == "unknown"
    assert time_in_bed["attributes"]["unit_of_measurement"] == "min"
    device_name = "sleep_coach_ben"
    assert home_assistant.entity_id_for_unique_id(f"{node}_ben_caffeine_now") == (
        f"sensor.{device_name}_caffeine_now"
    )

    # The coach going offline makes its entities unavailable (its last will says so).
    coach.publish(f"{prefix}/status", "offline", retain=True)
    wait_until(
        lambda: (
            home_assistant.state(f"sensor.{device_name}_caffeine_now")["state"]  # type: ignore[index]
            == "unavailable"
        ),
        timeout=10,
        what="unavailable",
    )
    coach.publish(f"{prefix}/status", "online", retain=True)


def test_a_removed_person_loses_their_entities(
    home_assistant: HomeAssistantServer, run_coach: Callable[..., Coach], tmp_path: Path
) -> None:
    prefix = unique("removal")
    first = run_coach(coach_config(home_assistant, prefix, ("cam", "dee")), db="same.db")
    node = discovery.node_id(first.config)
    wait_until(
        lambda: home_assistant.entity_id_for_unique_id(f"{node}_dee_next_bedtime"),
        timeout=15,
        what="dee's entity",
    )
    first.stop()
    run_coach(coach_config(home_assistant, prefix, ("cam",)), db="same.db")
    wait_until(
        lambda: home_assistant.entity_id_for_unique_id(f"{node}_dee_next_bedtime") is None,
        timeout=15,
        what="dee's entity to go",
    )
    assert home_assistant.entity_id_for_unique_id(f"{node}_cam_next_bedtime") is not None


def test_the_phones_snooze_button_snoozes_the_nudge(
    home_assistant: HomeAssistantServer, run_coach: Callable[..., Coach]
) -> None:
    coach = run_coach(coach_config(home_assistant, unique("snooze"), ("eli",)))
    assert coach.bridge.listening.wait(15), "the websocket listener did not subscribe"
    brew(coach, "eli")
    notification = wait_until(
        lambda: our_notifications(home_assistant, "eli") or None, timeout=15, what="the nudge"
    )[0]
    nudge_id = notification["notification_id"].removeprefix("sleepcoach_")
    before = coach.processed
    fired_at = datetime.now(coach.tz)
    home_assistant.fire_event(
        "mobile_app_notification_action", {"action": f"sleepcoach:snooze:eli:{nudge_id}"}
    )
    coach.wait_processed(before + 1, timeout=10)
    record = coach.state.person("eli").nudges[nudge_id]
    assert record.snooze_until is not None
    due = datetime.fromtimestamp(record.snooze_until, coach.tz)
    assert timedelta(minutes=29) < due - fired_at < timedelta(minutes=31)
    assert f"snooze:eli:{record.night}:{nudge_id}" in coach.timers


def test_the_done_button_entity_acks_the_last_nudge(
    home_assistant: HomeAssistantServer, run_coach: Callable[..., Coach]
) -> None:
    coach = run_coach(coach_config(home_assistant, unique("done"), ("fay",)))
    brew(coach, "fay")
    wait_until(
        lambda: our_notifications(home_assistant, "fay") or None, timeout=15, what="the nudge"
    )
    wait_until(
        lambda: (
            (s := home_assistant.state("button.sleep_coach_fay_done"))
            and s["attributes"].get("nudge_id")
        ),
        timeout=15,
        what="the Done button with the nudge id",
    )
    home_assistant.call_service("button", "press", entity_id="button.sleep_coach_fay_done")
    wait_until(
        lambda: any(r.acked for r in coach.state.person("fay").nudges.values()),
        timeout=10,
        what="the nudge to be acked",
    )


def test_home_assistant_away_for_a_while_loses_and_doubles_nothing(
    home_assistant: HomeAssistantServer, run_coach: Callable[..., Coach]
) -> None:
    counting: list[CountingNotifier] = []

    def wrap(inner: RestNotifier) -> CountingNotifier:
        counting.append(CountingNotifier(inner))
        return counting[0]

    coach = run_coach(coach_config(home_assistant, unique("outage"), ("gus",)), wrap=wrap)
    brew(coach, "gus", minutes_ago=3)
    wait_until(lambda: len(our_notifications(home_assistant, "gus")) == 1, timeout=15, what="1st")
    home_assistant.stop()
    try:
        for minutes_ago in (2, 1, 0):
            brew(coach, "gus", minutes_ago=minutes_ago)
        wait_until(lambda: coach.bridge.outbox.counts()[PENDING] == 3, timeout=10, what="3 queued")
        time.sleep(3)  # a few failed retries while Home Assistant is away
        assert coach.bridge.outbox.counts()[PENDING] == 3
    finally:
        home_assistant.start()
    assert coach.bridge.wait_idle(30), "the queue was not delivered after Home Assistant returned"
    # Persistent notifications live in Home Assistant's memory: the first one went with the
    # restart; the three queued during the outage are there, each once.
    found = wait_until(
        lambda: len(n := our_notifications(home_assistant, "gus")) == 3 and n,
        timeout=15,
        what="the three queued notifications",
    )
    ids = [a["data"]["notification_id"] for a in counting[0].accepted]
    assert len(ids) == 4
    assert len(set(ids)) == 4, "a nudge was delivered twice"
    assert {n["notification_id"] for n in found} == set(ids[1:])
    assert coach.bridge.outbox.counts() == {"pending": 0, "delivered": 4, "expired": 0}


def test_a_wrong_token_is_reported_once_and_the_coach_keeps_running(
    home_assistant: HomeAssistantServer,
    run_coach: Callable[..., Coach],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-token-" + uuid.uuid4().hex
    coach = run_coach(
        coach_config(home_assistant, unique("token"), ("hal",), token=wrong),
        backoff=Backoff(initial_s=0.2, maximum_s=0.5, token_rejected_s=0.5),
    )
    brew(coach, "hal", minutes_ago=1)
    time.sleep(3)  # several slow retries of the outbox and of the websocket
    brew(coach, "hal", minutes_ago=0)  # the coach still takes messages in and decides
    wait_until(
        lambda: (s := coach.published_states.get("hal")) and s["caffeine_mg_today"] > 130,
        timeout=10,
        what="the second coffee to count",
    )
    assert coach.bridge.outbox.counts()[PENDING] == 2
    rejected = [r for r in caplog.records if "token rejected" in r.getMessage()]
    assert len(rejected) == 1, [r.getMessage() for r in rejected]
    assert wrong not in caplog.text
    assert home_assistant.token not in caplog.text
    assert our_notifications(home_assistant, "hal") == []


# --- the real daemon ----------------------------------------------------------------------------


def daemon_yaml(server: HomeAssistantServer, prefix: str, db: Path) -> str:
    """`sleepcoach run`'s config: the harness's broker and Home Assistant, bedtime in 2 h."""
    now = datetime.now(ZoneInfo(TZ))
    bed = (now + timedelta(hours=2)).strftime("%H:%M")
    wake = (now + timedelta(hours=10)).strftime("%H:%M")
    return f"""\
timezone: {TZ}
mqtt:
  url: mqtt://{server.mqtt_host}:{server.mqtt_port}
  topic_prefix: {prefix}
  client_id: {prefix}
storage:
  url: sqlite:///{db}
homeassistant:
  url: {server.url}
  token_file: {server.token_file}
people:
  - id: ivy
    bedtime: "{bed}"
    wake: "{wake}"
devices:
  - id: coffee
    kind: coffee_maker
    topic: {prefix}_in/kitchen/coffee
    person: ivy
"""


def test_sleepcoach_run_notifies_shows_entities_and_hears_the_phone(
    home_assistant: HomeAssistantServer,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    prefix = unique("daemon")
    db = tmp_path / "daemon.db"
    daemon = daemon_factory(daemon_yaml(home_assistant, prefix, db))
    daemon.start()
    node = discovery.slug(prefix)
    entity_id = wait_until(
        lambda: home_assistant.entity_id_for_unique_id(f"{node}_ivy_caffeine_now"),
        timeout=15,
        what="the daemon's discovery",
    )
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{prefix}-device")
    device.connect(home_assistant.mqtt_host, home_assistant.mqtt_port)
    device.loop_start()
    try:
        device.publish(
            f"{prefix}_in/kitchen/coffee",
            json.dumps({"event": "brew", "drink": "coffee", "volume_ml": 240}),
            qos=1,
        ).wait_for_publish(10)
        found = wait_until(
            lambda: our_notifications(home_assistant, "ivy") or None,
            timeout=15,
            what=f"the daemon's notification\n{daemon.log_text()}",
        )
        assert found[0]["title"] == "No caffeine now"
        wait_until(
            lambda: (s := home_assistant.state(entity_id)) and s["state"] not in ("unknown", "0.0"),
            timeout=10,
            what="the caffeine sensor",
        )

        # The phone's snooze button reaches the daemon's consumer as a NudgeSnoozed.
        nudge_id = found[0]["notification_id"].removeprefix("sleepcoach_")
        home_assistant.fire_event(
            "mobile_app_notification_action", {"action": f"sleepcoach:snooze:ivy:{nudge_id}"}
        )

        def snoozed() -> bool:
            with sqlite3.connect(db) as conn:
                rows = conn.execute(
                    "SELECT data FROM events WHERE kind = 'NudgeSnoozed'"
                ).fetchall()
            return any(nudge_id in row[0] for row in rows)

        wait_until(snoozed, timeout=15, what=f"the snooze in storage\n{daemon.log_text()}")

        # Home Assistant announcing itself makes the daemon publish discovery again.
        config_topic = f"homeassistant/sensor/{node}/ivy_caffeine_now/config"
        device.publish(config_topic, b"", qos=1, retain=True).wait_for_publish(10)
        wait_until(
            lambda: home_assistant.entity_id_for_unique_id(f"{node}_ivy_caffeine_now") is None,
            timeout=10,
            what="the entity to go",
        )
        device.publish("homeassistant/status", b"online", qos=1).wait_for_publish(10)
        wait_until(
            lambda: home_assistant.entity_id_for_unique_id(f"{node}_ivy_caffeine_now"),
            timeout=10,
            what=f"the entity to come back\n{daemon.log_text()}",
        )
    finally:
        device.loop_stop()
        device.disconnect()


def test_every_entity_of_the_dashboard_exists_in_home_assistant(
    home_assistant: HomeAssistantServer, run_coach: Callable[..., Coach]
) -> None:
    dashboard = yaml.safe_load((ROOT / "config" / "dashboard.yaml").read_text())
    wanted = sorted(
        set(
            re.findall(
                r"\b(?:sensor|binary_sensor|button|event)\.sleep_coach_alex_\w+",
                json.dumps(dashboard),
            )
        )
    )
    assert len(wanted) >= 15
    run_coach(coach_config(home_assistant, unique("dashboard"), ("alex",)))

    def missing() -> list[str] | None:
        present = {s["entity_id"] for s in home_assistant.states()}
        gone = [e for e in wanted if e not in present]
        return None if gone else []

    wait_until(missing, timeout=20, what=f"the dashboard's entities {wanted}")


def test_sleepcoach_run_with_a_wrong_token_says_so_once_and_keeps_coaching(
    home_assistant: HomeAssistantServer,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    prefix = unique("daemontoken")
    wrong = "wrong-" + uuid.uuid4().hex
    token_file = tmp_path / "wrong-token"
    token_file.write_text(wrong)
    text = daemon_yaml(home_assistant, prefix, tmp_path / "daemon.db").replace(
        str(home_assistant.token_file), str(token_file)
    )
    daemon = daemon_factory(text.replace("ivy", "jo"), "--log-level", "debug")
    daemon.start()
    node = discovery.slug(prefix)
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{prefix}-device")
    device.connect(home_assistant.mqtt_host, home_assistant.mqtt_port)
    device.loop_start()
    try:
        for _ in range(2):
            device.publish(
                f"{prefix}_in/kitchen/coffee",
                json.dumps({"event": "brew", "drink": "coffee", "volume_ml": 240}),
                qos=1,
            ).wait_for_publish(10)
            time.sleep(2)
        # Discovery and the state go over MQTT: Home Assistant still shows both coffees.
        entity_id = wait_until(
            lambda: home_assistant.entity_id_for_unique_id(f"{node}_jo_caffeine_today"),
            timeout=15,
            what="the daemon's discovery",
        )
        wait_until(
            lambda: (s := home_assistant.state(entity_id)) and s["state"] == "190.0",
            timeout=10,
            what=f"two coffees counted\n{daemon.log_text()}",
        )
    finally:
        device.loop_stop()
        device.disconnect()
    assert daemon.proc is not None
    assert daemon.proc.poll() is None, "the daemon stopped"
    log = daemon.log_text()
    assert log.count("Home Assistant token rejected") == 1, log
    assert wrong not in log
    assert our_notifications(home_assistant, "jo") == []


def non_admin_token(server: HomeAssistantServer) -> str:
    """Create a user who is not an administrator and log in as them: an access token (30 min)."""
    name = f"coach{uuid.uuid4().hex[:6]}"
    password = uuid.uuid4().hex
    user = server.ws_command("config/auth/create", name=name, group_ids=["system-users"])
    server.ws_command(
        "config/auth_provider/homeassistant/create",
        user_id=user["user"]["id"],
        username=name,
        password=password,
    )
    client_id = f"{server.url}/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def post(path: str, body: dict[str, Any], *, form: bool = False) -> dict[str, Any]:
        data = urllib.parse.urlencode(body).encode() if form else json.dumps(body).encode()
        kind = "application/x-www-form-urlencoded" if form else "application/json"
        request = urllib.request.Request(
            f"{server.url}{path}", data=data, headers={"Content-Type": kind}, method="POST"
        )
        with opener.open(request, timeout=10) as response:
            result: dict[str, Any] = json.load(response)
        return result

    flow = post(
        "/auth/login_flow",
        {"client_id": client_id, "handler": ["homeassistant", None], "redirect_uri": client_id},
    )
    done = post(
        f"/auth/login_flow/{flow['flow_id']}",
        {"client_id": client_id, "username": name, "password": password},
    )
    tokens = post(
        "/auth/token",
        {"grant_type": "authorization_code", "code": done["result"], "client_id": client_id},
        form=True,
    )
    return str(tokens["access_token"])


def test_a_non_admin_token_notifies_and_says_once_that_buttons_need_an_admin(
    home_assistant: HomeAssistantServer,
    run_coach: Callable[..., Coach],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="integrations.home_assistant")
    token = non_admin_token(home_assistant)
    coach = run_coach(
        coach_config(home_assistant, unique("nonadmin"), ("kai",), token=token),
        backoff=Backoff(initial_s=0.2, maximum_s=0.5, token_rejected_s=0.5),
    )
    brew(coach, "kai")
    found = wait_until(
        lambda: our_notifications(home_assistant, "kai") or None, timeout=15, what="the nudge"
    )
    assert found[0]["title"] == "No caffeine now"
    time.sleep(2)  # several refused subscriptions
    told = [r for r in caplog.records if "must be an administrator" in r.getMessage()]
    assert len(told) == 1
    assert not any("unavailable" in r.getMessage() for r in caplog.records)
    assert not coach.bridge.listening.is_set()


def test_the_phones_rested_button_answers_the_check_in_through_the_daemon(
    home_assistant: HomeAssistantServer,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    prefix = unique("checkin")
    db = tmp_path / "daemon.db"
    daemon = daemon_factory(daemon_yaml(home_assistant, prefix, db))
    daemon.start()
    node = discovery.slug(prefix)
    wait_until(
        lambda: home_assistant.entity_id_for_unique_id(f"{node}_ivy_caffeine_now"),
        timeout=15,
        what="the daemon's discovery",
    )

    def stored() -> list[tuple[str, int | None]]:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT person, rested FROM checkins").fetchall()

    # The daemon listens once discovery is out; a press before that is lost, so press until
    # the answer is stored (one answer a day: pressing twice stores one row).
    def pressed_and_stored() -> bool:
        home_assistant.fire_event(
            "mobile_app_notification_action", {"action": "sleepcoach:rested:ivy:2"}
        )
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if stored():
                return True
            time.sleep(0.1)
        return False

    wait_until(pressed_and_stored, timeout=30, what=f"the check-in stored\n{daemon.log_text()}")
    assert stored() == [("ivy", 2)]
