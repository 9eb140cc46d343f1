"""Smoke tests of the real-Home-Assistant harness: each check goes through the real servers.

They prove what later e2e tests of the coach rely on: notify reaches a persistent notification,
MQTT discovery through the harness's Mosquitto creates entities with units, an MQTT notify
entity publishes what Home Assistant is told to send, and Home Assistant can be stopped and
started again with the same token. Every run uses fresh random values, so a pass means fresh data
made the round trip.
"""

from __future__ import annotations

import json
import queue
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from tests.e2e.homeassistant import HomeAssistantServer, wait_until

pytestmark = pytest.mark.homeassistant


class Broker:
    """A paho client on the harness's Mosquitto that records what it receives."""

    def __init__(self, host: str, port: int) -> None:
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"sleepcoach-test-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = lambda *_: self._connected.set()
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.received.put((msg.topic, msg.payload))
        self.client.connect(host, port)
        self.client.loop_start()
        assert self._connected.wait(10), "no CONNACK from the harness's Mosquitto"

    def publish(self, topic: str, payload: str | dict[str, Any], *, retain: bool = True) -> None:
        """Publish at QoS 1 and wait until the broker has it."""
        body = payload if isinstance(payload, str) else json.dumps(payload)
        self.client.publish(topic, body, qos=1, retain=retain).wait_for_publish(10)

    def subscribe(self, topic: str) -> None:
        """Subscribe and wait for the SUBACK, so nothing published afterwards is missed."""
        self._subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self._subscribed.wait(10), f"no SUBACK for {topic}"

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(home_assistant: HomeAssistantServer) -> Iterator[Broker]:
    """A paho client connected to the harness's Mosquitto."""
    client = Broker(home_assistant.mqtt_host, home_assistant.mqtt_port)
    yield client
    client.close()


@pytest.fixture
def tag() -> str:
    """A fresh random tag, so every run checks data it made itself."""
    return uuid.uuid4().hex[:8]


def device(tag: str) -> dict[str, Any]:
    """Return the discovery `device` block of a throwaway test device."""
    return {
        "identifiers": [f"sleepcoach_test_{tag}"],
        "name": f"Sleep Coach Test {tag}",
        "manufacturer": "SleepCoach",
        "model": "harness smoke test",
    }


def publish_twitch_sensor(broker: Broker, tag: str, value: int) -> tuple[str, str]:
    """Publish a discovery config and a state for a sensor; return (config topic, unique id)."""
    unique_id = f"sleepcoach_test_{tag}_twitches"
    config_topic = f"homeassistant/sensor/sleepcoach_test_{tag}/twitches/config"
    state_topic = f"sleepcoach/test_{tag}/twitches"
    broker.publish(
        config_topic,
        {
            "name": "Twitches",
            "state_topic": state_topic,
            "unique_id": unique_id,
            "unit_of_measurement": "count",
            "state_class": "measurement",
            "device": device(tag),
        },
    )
    broker.publish(state_topic, str(value))
    return config_topic, unique_id


def test_notify_reaches_a_persistent_notification_read_over_the_websocket(
    home_assistant: HomeAssistantServer, tag: str
) -> None:
    notification_id = f"sleepcoach_{tag}"
    home_assistant.call_service(
        "notify",
        "persistent_notification",
        title="Sleep coach",
        message=f"Time to wind down ({tag})",
        data={"notification_id": notification_id},
    )
    try:
        found = wait_until(
            lambda: next(
                (
                    n
                    for n in home_assistant.persistent_notifications()
                    if n["notification_id"] == notification_id
                ),
                None,
            ),
            what=f"persistent notification {notification_id}",
        )
        assert found["title"] == "Sleep coach"
        assert found["message"] == f"Time to wind down ({tag})"
    finally:
        home_assistant.call_service(
            "persistent_notification", "dismiss", notification_id=notification_id
        )


def test_an_mqtt_discovery_sensor_appears_in_the_states_with_its_unit(
    home_assistant: HomeAssistantServer, broker: Broker, tag: str
) -> None:
    value = int(tag, 16) % 1000
    config_topic, unique_id = publish_twitch_sensor(broker, tag, value)
    try:
        entity_id = wait_until(
            lambda: home_assistant.entity_id_for_unique_id(unique_id), what=f"entity {unique_id}"
        )
        state = wait_until(
            lambda: (s := home_assistant.state(entity_id)) and s["state"] == str(value) and s,
            what=f"{entity_id} = {value}",
        )
        assert state["attributes"]["unit_of_measurement"] == "count"
        assert state["attributes"]["state_class"] == "measurement"
        assert entity_id in {s["entity_id"] for s in home_assistant.states()}
    finally:
        broker.publish(config_topic, "")  # an empty retained config removes the entity


def test_an_mqtt_notify_entity_publishes_what_home_assistant_sends(
    home_assistant: HomeAssistantServer, broker: Broker, tag: str
) -> None:
    unique_id = f"sleepcoach_test_{tag}_nudge"
    config_topic = f"homeassistant/notify/sleepcoach_test_{tag}/nudge/config"
    command_topic = f"sleepcoach/test_{tag}/nudge"
    broker.publish(
        config_topic,
        {
            "name": "Nudge",
            "command_topic": command_topic,
            "unique_id": unique_id,
            "device": device(tag),
        },
    )
    try:
        entity_id = wait_until(
            lambda: home_assistant.entity_id_for_unique_id(unique_id), what=f"entity {unique_id}"
        )
        assert entity_id.startswith("notify.")
        broker.subscribe(command_topic)
        home_assistant.call_service(
            "notify", "send_message", entity_id=entity_id, message=f"Put the phone away ({tag})"
        )
        topic, payload = broker.received.get(timeout=10)
        assert (topic, payload.decode()) == (command_topic, f"Put the phone away ({tag})")
    finally:
        broker.publish(config_topic, "")


def test_home_assistant_stops_and_starts_again_with_the_same_token(
    home_assistant: HomeAssistantServer, broker: Broker, tag: str
) -> None:
    value = int(tag, 16) % 1000
    config_topic, unique_id = publish_twitch_sensor(broker, tag, value)
    try:
        entity_id = wait_until(
            lambda: home_assistant.entity_id_for_unique_id(unique_id), what=f"entity {unique_id}"
        )
        home_assistant.stop()
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{home_assistant.url}/api/onboarding", timeout=2)
        home_assistant.start()
        assert home_assistant.token_file.read_text().strip() == home_assistant.token
        # The token still works, and the MQTT entry reconnected: the retained state is back.
        state = wait_until(
            lambda: (s := home_assistant.state(entity_id)) and s["state"] == str(value) and s,
            what=f"{entity_id} = {value} after the restart",
        )
        assert state["attributes"]["unit_of_measurement"] == "count"
    finally:
        broker.publish(config_topic, "")
