"""Snapshot tests of the Home Assistant MQTT discovery configs, and of their life cycle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from integrations import discovery
from integrations.config_file import ConfigFile
from integrations.discovery import discovery_messages

DEVICE_ALEX = {
    "identifiers": ["sleepcoach_alex"],
    "name": "Sleep coach Alex",
    "manufacturer": "sleepcoach",
    "model": "Sleep coach",
    "sw_version": "1.2.3",
}
AVAILABILITY = {
    "availability": [{"topic": "sleepcoach/status"}],
    "payload_available": "online",
    "payload_not_available": "offline",
}
ORIGIN = {"origin": {"name": "sleepcoach", "sw_version": "1.2.3"}}


def make_config(
    people: tuple[str, ...] = ("alex",), *, discovery_on: bool = True, ha: bool = True, **mqtt: Any
) -> ConfigFile:
    """A configuration with these people and a Home Assistant block."""
    raw: dict[str, Any] = {
        "timezone": "Europe/Berlin",
        "mqtt": mqtt,
        "people": [{"id": p, "bedtime": "22:30", "wake": "06:30"} for p in people],
    }
    if ha:
        raw["homeassistant"] = {"discovery": discovery_on}
    return ConfigFile.model_validate(raw)


def configs(config: ConfigFile) -> dict[str, dict[str, Any]]:
    """The discovery messages as {topic: parsed payload}; every one retained."""
    out = {}
    for topic, payload, retain in discovery_messages(config, "1.2.3"):
        assert retain is True
        out[topic] = json.loads(payload)
    return out


def test_caffeine_now_sensor_is_exactly_this() -> None:
    topic = "homeassistant/sensor/sleepcoach/alex_caffeine_now/config"
    assert configs(make_config())[topic] == {
        "name": "Caffeine now",
        "unique_id": "sleepcoach_alex_caffeine_now",
        **AVAILABILITY,
        "device": DEVICE_ALEX,
        **ORIGIN,
        "state_topic": "sleepcoach/alex/state",
        "unit_of_measurement": "mg",
        "device_class": "weight",
        "state_class": "measurement",
        "suggested_display_precision": 0,
        "icon": "mdi:coffee",
        "value_template": (
            "{{ value_json.caffeine_mg_now if value_json.caffeine_mg_now is not none else 'None' }}"
        ),
    }


def test_time_in_bed_reads_last_night_and_is_a_duration() -> None:
    topic = "homeassistant/sensor/sleepcoach/alex_time_in_bed/config"
    assert configs(make_config())[topic] == {
        "name": "Time in bed",
        "unique_id": "sleepcoach_alex_time_in_bed",
        **AVAILABILITY,
        "device": DEVICE_ALEX,
        **ORIGIN,
        "state_topic": "sleepcoach/alex/state",
        "unit_of_measurement": "min",
        "device_class": "duration",
        "state_class": "measurement",
        "suggested_display_precision": 0,
        "icon": "mdi:bed",
        "value_template": (
            "{{ value_json.last_night.time_in_bed_min if value_json.last_night and "
            "value_json.last_night.time_in_bed_min is not none else 'None' }}"
        ),
    }


def test_wind_down_binary_sensor_is_exactly_this() -> None:
    topic = "homeassistant/binary_sensor/sleepcoach/alex_winddown/config"
    assert configs(make_config())[topic] == {
        "name": "Wind-down",
        "unique_id": "sleepcoach_alex_winddown",
        **AVAILABILITY,
        "device": DEVICE_ALEX,
        **ORIGIN,
        "state_topic": "sleepcoach/alex/state",
        "icon": "mdi:weather-night",
        "value_template": "{{ 'ON' if value_json.winddown else 'OFF' }}",
    }


def test_nudge_event_fires_per_nudge_with_rule_as_event_type() -> None:
    topic = "homeassistant/event/sleepcoach/alex_nudge/config"
    payload = configs(make_config())[topic]
    assert payload["state_topic"] == "sleepcoach/alex/nudge"
    assert "caffeine.cutoff" in payload["event_types"]
    assert "winddown.stretch" in payload["event_types"]
    assert "quiet_hours" not in payload["event_types"]
    assert payload["value_template"] == (
        "{{ {'event_type': value_json.rule, 'nudge_id': value_json.id, "
        "'title': value_json.title, 'message': value_json.message, "
        "'severity': value_json.severity} | tojson }}"
    )


def test_last_nudge_sensor_carries_rule_title_and_message_as_attributes() -> None:
    topic = "homeassistant/sensor/sleepcoach/alex_last_nudge/config"
    payload = configs(make_config())[topic]
    assert payload["json_attributes_topic"] == "sleepcoach/alex/state"
    assert payload["json_attributes_template"] == "{{ (value_json.last_nudge or {}) | tojson }}"
    assert "state_class" not in payload  # a text sensor: no statistics


def test_snooze_button_sends_the_command_topics_snooze_for_the_last_nudge() -> None:
    topic = "homeassistant/button/sleepcoach/alex_snooze/config"
    assert configs(make_config())[topic] == {
        "name": "Snooze last nudge",
        "unique_id": "sleepcoach_alex_snooze",
        **AVAILABILITY,
        "device": DEVICE_ALEX,
        **ORIGIN,
        "command_topic": "sleepcoach/alex/command",
        "json_attributes_topic": "sleepcoach/alex/state",
        "json_attributes_template": (
            "{{ {'nudge_id': value_json.last_nudge.id if value_json.last_nudge else none} "
            "| tojson }}"
        ),
        "command_template": (
            "{{ {'command': 'snooze', 'nudge_id': state_attr(entity_id, 'nudge_id'), "
            "'minutes': 30} | tojson }}"
        ),
        "icon": "mdi:alarm-snooze",
    }


def test_done_button_acks() -> None:
    payload = configs(make_config())["homeassistant/button/sleepcoach/alex_done/config"]
    assert payload["command_template"] == (
        "{{ {'command': 'ack', 'nudge_id': state_attr(entity_id, 'nudge_id')} | tojson }}"
    )


def test_every_entity_the_issue_lists_is_there_once_per_person() -> None:
    found = configs(make_config(("alex", "sam")))
    keys = sorted(t.split("/")[3] for t in found)
    expected = sorted(f"{p}_{e.key}" for p in ("alex", "sam") for e in discovery.ENTITIES)
    assert keys == expected
    assert {
        "caffeine_now",
        "caffeine_at_bedtime",
        "caffeine_last_call",
        "next_bedtime",
        "exercise_ok_until",
        "twitches",
        "limb_movement_index",
        "hypnic_jerks",
        "time_in_bed",
        "winddown",
        "caffeine_cutoff_passed",
        "nudge",
        "last_nudge",
        "snooze",
        "done",
    } <= {e.key for e in discovery.ENTITIES}
    unique_ids = [p["unique_id"] for p in found.values()]
    assert len(unique_ids) == len(set(unique_ids))
    sam = found["homeassistant/sensor/sleepcoach/sam_next_bedtime/config"]
    assert sam["device"]["name"] == "Sleep coach Sam"
    assert sam["device"]["identifiers"] == ["sleepcoach_sam"]


def test_timestamps_have_the_timestamp_class_and_numbers_a_state_class() -> None:
    for payload in configs(make_config()).values():
        if payload.get("device_class") == "timestamp":
            assert "state_class" not in payload
            assert "unit_of_measurement" not in payload
        if "unit_of_measurement" in payload:
            assert payload["state_class"] == "measurement"


def test_prefix_and_display_name_follow_the_config() -> None:
    config = ConfigFile.model_validate(
        {
            "timezone": "Europe/Berlin",
            "mqtt": {"topic_prefix": "home/Coach"},
            "homeassistant": {"discovery_prefix": "ha"},
            "people": [{"id": "alex", "name": "Alexandra", "bedtime": "22:30", "wake": "06:30"}],
        }
    )
    found = configs(config)
    payload = found["ha/sensor/home_coach/alex_caffeine_now/config"]
    assert payload["state_topic"] == "home/Coach/alex/state"
    assert payload["availability"] == [{"topic": "home/Coach/status"}]
    assert payload["unique_id"] == "home_coach_alex_caffeine_now"
    assert payload["device"]["name"] == "Sleep coach Alexandra"
    assert discovery.birth_topic(config) == "ha/status"


@pytest.mark.parametrize(
    "config",
    [make_config(discovery_on=False), make_config(ha=False)],
    ids=["discovery switched off", "no home assistant block"],
)
def test_nothing_is_published_without_discovery(config: ConfigFile) -> None:
    assert discovery_messages(config) == []


def test_home_assistant_online_on_its_status_topic_is_a_birth() -> None:
    config = make_config()
    assert discovery.is_birth(config, "homeassistant/status", b"online")
    assert discovery.is_birth(config, "homeassistant/status", b"online\n")
    assert not discovery.is_birth(config, "homeassistant/status", b"offline")
    assert not discovery.is_birth(config, "sleepcoach/status", b"online")


def test_the_bedtime_limit_is_a_flat_line_from_the_config() -> None:
    config = ConfigFile.model_validate(
        {
            "timezone": "Europe/Berlin",
            "homeassistant": {},
            "people": [{"id": "alex", "bedtime": "22:30", "wake": "06:30"}],
            "rules": {"caffeine.bedtime_load": {"bedtime_limit_mg": 35.5}},
        }
    )
    payload = configs(config)["homeassistant/sensor/sleepcoach/alex_caffeine_limit/config"]
    assert payload["value_template"] == "{{ 35.5 }}"
    assert payload["state_topic"] == "sleepcoach/alex/state"
    assert payload["unit_of_measurement"] == "mg"
    default = configs(make_config())["homeassistant/sensor/sleepcoach/alex_caffeine_limit/config"]
    assert default["value_template"] == "{{ 50 }}"


def dashboard_entities() -> set[str]:
    """Every entity id config/dashboard.yaml refers to."""
    text = (Path(__file__).resolve().parents[2] / "config" / "dashboard.yaml").read_text()
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("entity", "entities") and isinstance(value, str):
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                if isinstance(item, str) and "." in item:
                    found.add(item)
                walk(item)

    walk(yaml.safe_load(text))
    return found


def test_the_dashboard_names_only_entities_the_discovery_creates_for_alex() -> None:
    # Home Assistant's entity id: platform, then the device name and entity name, slugged.
    created = {
        f"{e.component}.{discovery.slug('Sleep coach Alex')}_{discovery.slug(e.name)}"
        for e in discovery.ENTITIES
    }
    used = dashboard_entities()
    assert used
    assert used <= created, used - created
