"""Home Assistant MQTT discovery: the coach as one device per person, built as plain data.

How it works: Home Assistant subscribes to `<discovery_prefix>/<component>/<node_id>/<object_id>
/config` and creates an entity for every retained JSON config published there. This module builds
those configs from the configuration and the topic prefix, and nothing else: no I/O, no clock,
so the exact payloads are pinned by snapshot tests. The shell publishes them retained, again
whenever Home Assistant announces itself (`homeassistant/status` = `online`); the bridge remembers
the topics it published and clears (empty retained payload) those the current configuration no
longer produces, so a person removed from the config loses their device cleanly.

Every entity reads the person's retained state document `<prefix>/<person>/state` (docs/contract.md)
through a `value_template`, is unavailable while `<prefix>/status` says `offline` (the coach's
last will), and carries a unique id, a device class, a unit and a state class where Home
Assistant's history and long-term statistics need them. Schema: the MQTT sensor, binary sensor,
event and button pages of home-assistant.io (checked against Home Assistant 2025.4).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from coach.config import NOT_RULES, Config, Person, Rules

if TYPE_CHECKING:
    # Annotations only: the config file checks device topics against the discovery topics.
    from integrations.config_file import ConfigFile

#: Home Assistant publishes `online` here when it (re)starts; discovery is re-sent then.
BIRTH_PAYLOAD: Final = "online"
MANUFACTURER: Final = "sleepcoach"
MODEL: Final = "Sleep coach"
#: Snooze length of the "Snooze last nudge" button and the phone's "Snooze 30 min" button.
SNOOZE_MINUTES: Final = 30

# Keys of the state document's `last_night` object that the entities read.
LAST_NIGHT_TWITCHES: Final = "twitches"
LAST_NIGHT_PLM_INDEX: Final = "limb_movement_index"
LAST_NIGHT_HYPNIC_JERKS: Final = "hypnic_jerks"
LAST_NIGHT_TIME_IN_BED: Final = "time_in_bed_min"

Message = tuple[str, str, bool]
"""An MQTT message to publish: (topic, payload, retain)."""


@dataclass(frozen=True, slots=True)
class EntityDescription:
    """One entity of a person's device, as data: platform, key, name and its extra config."""

    component: str
    key: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    #: A value template that depends on the configuration (a rule's limit), if any.
    template: Callable[[Config], str] | None = None


def _state(key: str) -> str:
    """A template that reads a top-level number or string from the state document."""
    return f"{{{{ value_json.{key} if value_json.{key} is not none else 'None' }}}}"


def _last_night(key: str) -> str:
    """A template that reads last night's summary, `None` (unknown) before a first night."""
    return (
        f"{{{{ value_json.last_night.{key} if value_json.last_night "
        f"and value_json.last_night.{key} is not none else 'None' }}}}"
    )


def _flag(key: str) -> str:
    """A template that turns a JSON boolean of the state document into ON/OFF."""
    return f"{{{{ 'ON' if value_json.{key} else 'OFF' }}}}"


_MG: Final = {
    "unit_of_measurement": "mg",
    "device_class": "weight",
    "state_class": "measurement",
    "suggested_display_precision": 0,
}
_COUNT: Final = {"state_class": "measurement", "suggested_display_precision": 0}

#: The entities of every person's device, in the order Home Assistant lists them.
ENTITIES: Final[tuple[EntityDescription, ...]] = (
    EntityDescription(
        "sensor",
        "caffeine_now",
        "Caffeine now",
        {**_MG, "icon": "mdi:coffee", "value_template": _state("caffeine_mg_now")},
    ),
    EntityDescription(
        "sensor",
        "caffeine_at_bedtime",
        "Caffeine at bedtime",
        {**_MG, "icon": "mdi:coffee-outline", "value_template": _state("caffeine_mg_at_bedtime")},
    ),
    EntityDescription(
        "sensor",
        "caffeine_limit",
        "Caffeine limit at bedtime",
        # A flat line beside the two above in a history graph: the bedtime-load rule's limit.
        {**_MG, "icon": "mdi:format-vertical-align-top"},
        template=lambda c: f"{{{{ {c.rules.caffeine_bedtime_load.bedtime_limit_mg:g} }}}}",
    ),
    EntityDescription(
        "sensor",
        "caffeine_today",
        "Caffeine today",
        {**_MG, "icon": "mdi:coffee-maker", "value_template": _state("caffeine_mg_today")},
    ),
    EntityDescription(
        "sensor",
        "caffeine_last_call",
        "Last call for caffeine",
        {
            "device_class": "timestamp",
            "icon": "mdi:coffee-off-outline",
            "value_template": _state("caffeine_last_call"),
        },
    ),
    EntityDescription(
        "sensor",
        "next_bedtime",
        "Next bedtime",
        {
            "device_class": "timestamp",
            "icon": "mdi:bed-clock",
            "value_template": _state("next_bedtime"),
        },
    ),
    EntityDescription(
        "sensor",
        "exercise_ok_until",
        "Exercise OK until",
        {
            "device_class": "timestamp",
            "icon": "mdi:run",
            "value_template": _state("exercise_ok_until"),
        },
    ),
    EntityDescription(
        "sensor",
        "twitches",
        "Twitches last night",
        {**_COUNT, "icon": "mdi:pulse", "value_template": _last_night(LAST_NIGHT_TWITCHES)},
    ),
    EntityDescription(
        "sensor",
        "limb_movement_index",
        "Limb-movement index",
        {
            "unit_of_measurement": "/h",
            "state_class": "measurement",
            "suggested_display_precision": 1,
            "icon": "mdi:shoe-print",
            "value_template": _last_night(LAST_NIGHT_PLM_INDEX),
        },
    ),
    EntityDescription(
        "sensor",
        "hypnic_jerks",
        "Hypnic jerks last night",
        {**_COUNT, "icon": "mdi:flash", "value_template": _last_night(LAST_NIGHT_HYPNIC_JERKS)},
    ),
    EntityDescription(
        "sensor",
        "time_in_bed",
        "Time in bed",
        {
            "unit_of_measurement": "min",
            "device_class": "duration",
            "state_class": "measurement",
            "suggested_display_precision": 0,
            "icon": "mdi:bed",
            "value_template": _last_night(LAST_NIGHT_TIME_IN_BED),
        },
    ),
    EntityDescription(
        "binary_sensor",
        "winddown",
        "Wind-down",
        {"icon": "mdi:weather-night", "value_template": _flag("winddown")},
    ),
    EntityDescription(
        "binary_sensor",
        "caffeine_cutoff_passed",
        "Caffeine cutoff passed",
        {"icon": "mdi:coffee-off", "value_template": _flag("caffeine_cutoff_passed")},
    ),
    EntityDescription(
        "binary_sensor",
        "in_bed",
        "In bed",
        {"device_class": "occupancy", "value_template": _flag("in_bed")},
    ),
    EntityDescription(
        "sensor",
        "last_nudge",
        "Last nudge",
        {
            "icon": "mdi:message-badge-outline",
            "value_template": (
                "{{ value_json.last_nudge.title[:255] if value_json.last_nudge else 'None' }}"
            ),
            "json_attributes_template": "{{ (value_json.last_nudge or {}) | tojson }}",
        },
    ),
    EntityDescription("event", "nudge", "Nudge", {"icon": "mdi:message-alert-outline"}),
    EntityDescription("button", "snooze", "Snooze last nudge", {"icon": "mdi:alarm-snooze"}),
    EntityDescription("button", "done", "Done", {"icon": "mdi:check"}),
)


def slug(text: str) -> str:
    """A topic- and id-safe form of a text: lower case, runs of other characters become `_`."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "sleepcoach"


def node_id(config: ConfigFile) -> str:
    """The discovery node id of this coach: its topic prefix, slugged (one per coach instance)."""
    return slug(config.mqtt.topic_prefix)


def discovery_prefix(config: ConfigFile) -> str:
    """Home Assistant's discovery prefix (`homeassistant` unless configured)."""
    ha = config.homeassistant
    return ha.discovery_prefix if ha is not None else "homeassistant"


def birth_topic(config: ConfigFile) -> str:
    """Where Home Assistant announces itself: `<discovery_prefix>/status`."""
    return f"{discovery_prefix(config)}/status"


def is_birth(config: ConfigFile, topic: str, payload: bytes) -> bool:
    """Whether a message is Home Assistant announcing it is (back) online: re-send discovery."""
    return topic == birth_topic(config) and payload.strip() == BIRTH_PAYLOAD.encode()


def is_enabled(config: ConfigFile) -> bool:
    """Whether the configuration asks for discovery entities."""
    return config.homeassistant is not None and config.homeassistant.discovery


def unique_id(config: ConfigFile, person: Person, key: str) -> str:
    """The entity's unique id: coach node, person and entity key (stable across renames)."""
    return f"{node_id(config)}_{person.id}_{key}"


def config_topic(config: ConfigFile, component: str, person: Person, key: str) -> str:
    """The retained discovery topic of one entity."""
    return f"{discovery_prefix(config)}/{component}/{node_id(config)}/{person.id}_{key}/config"


def device(config: ConfigFile, person: Person, version: str) -> dict[str, Any]:
    """The device block shared by a person's entities ("Sleep coach Alex")."""
    return {
        "identifiers": [f"{node_id(config)}_{person.id}"],
        "name": f"Sleep coach {person.display_name}",
        "manufacturer": MANUFACTURER,
        "model": MODEL,
        "sw_version": version,
    }


def _command(command: str, minutes: int | None = None) -> str:
    """A button's command template: the command for the nudge id held in its own attributes."""
    parts = [f"'command': '{command}'", "'nudge_id': state_attr(entity_id, 'nudge_id')"]
    if minutes is not None:
        parts.append(f"'minutes': {minutes}")
    return "{{ {" + ", ".join(parts) + "} | tojson }}"


def _event_types() -> list[str]:
    """Every rule id (the configuration's rule aliases): the event entity's `event_types`."""
    return sorted(
        f.alias for name, f in Rules.model_fields.items() if f.alias and name not in NOT_RULES
    )


def entity_config(
    config: ConfigFile, person: Person, entity: EntityDescription, version: str
) -> dict[str, Any]:
    """The discovery payload of one entity."""
    prefix = config.mqtt.topic_prefix
    state_topic = f"{prefix}/{person.id}/state"
    payload: dict[str, Any] = {
        "name": entity.name,
        "unique_id": unique_id(config, person, entity.key),
        "availability": [{"topic": f"{prefix}/status"}],
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device(config, person, version),
        "origin": {"name": "sleepcoach", "sw_version": version},
    }
    if entity.component in ("sensor", "binary_sensor"):
        payload["state_topic"] = state_topic
        if "json_attributes_template" in entity.config:
            payload["json_attributes_topic"] = state_topic
    elif entity.component == "event":
        # The nudge topic is not retained: an event fires once per nudge, never on a restart.
        payload["state_topic"] = f"{prefix}/{person.id}/nudge"
        payload["event_types"] = _event_types()
        payload["value_template"] = (
            "{{ {'event_type': value_json.rule, 'nudge_id': value_json.id, "
            "'title': value_json.title, 'message': value_json.message, "
            "'severity': value_json.severity} | tojson }}"
        )
    elif entity.component == "button":
        # The button keeps the last nudge's id as an attribute, read back by its command template,
        # so a press answers the nudge the person last saw.
        payload["command_topic"] = f"{prefix}/{person.id}/command"
        payload["json_attributes_topic"] = state_topic
        payload["json_attributes_template"] = (
            "{{ {'nudge_id': value_json.last_nudge.id if value_json.last_nudge else none} "
            "| tojson }}"
        )
        payload["command_template"] = (
            _command("snooze", SNOOZE_MINUTES) if entity.key == "snooze" else _command("ack")
        )
    payload.update(entity.config)
    if entity.template is not None:
        payload["value_template"] = entity.template(config)
    return payload


def discovery_messages(config: ConfigFile, version: str = "0") -> list[Message]:
    """Every retained discovery config for the configured people (none when disabled)."""
    if not is_enabled(config):
        return []
    messages: list[Message] = []
    for person in config.people:
        for entity in ENTITIES:
            topic = config_topic(config, entity.component, person, entity.key)
            body = entity_config(config, person, entity, version)
            messages.append((topic, json.dumps(body, separators=(",", ":")), True))
    return messages
