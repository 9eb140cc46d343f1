"""Home Assistant's MQTT Statestream: entities such as a watch's heart rate, mapped by entity id.

Statestream publishes every state change on `<base_topic>/<domain>/<object_id>/state` and, with
`publish_attributes`, each attribute on `<base_topic>/<domain>/<object_id>/<attribute>`; "all
states and attributes are passed through JSON serialization before publishing", so `on` arrives as
`"on"` (https://www.home-assistant.io/integrations/mqtt_statestream/; older versions sent states
unquoted, and both are read). The entity id is the topic's domain and object id; `entities` in
the options says what each entity means:

- `heart_rate` (bpm), `stress` (0-100): each new value is a reading.
- `in_bed`: on/off (a Withings sleep analyzer's in-bed sensor), occupancy on change.
- `workout`: an activity sensor: a state in `idle_states` ends a workout; any other state starts
  one with that activity, its intensity looked up in `intensity` (default `default_intensity`).
- `daylight`: an illuminance sensor in lux; time spent at or above `min_lux` is logged as
  sunlight minutes, credited reading by reading.
- `sunlight_minutes`: a sensor counting today's daylight minutes; each increase is logged.

`unavailable` and `unknown` states are ignored. A value repeated unchanged is ignored too:
Home Assistant sends a state again when only an attribute changed.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BeforeValidator, Field

from coach.config import DeviceKind
from coach.decode.profile.base import (
    Message,
    Native,
    Options,
    Outcome,
    Profile,
    Refused,
    from_iso,
    iso,
    load_text,
    number,
    switch_state,
)
from coach.decode.profile.zigbee2mqtt import occupancy_change
from coach.decode.refusal import show
from coach.event import Intensity

Meaning = Literal["heart_rate", "stress", "in_bed", "workout", "daylight", "sunlight_minutes"]


class EntityMap(Options):
    """What one Home Assistant entity means to the coach."""

    event: Meaning = Field(
        description="heart_rate, stress, in_bed, workout, daylight or sunlight_minutes."
    )
    attribute: str | None = Field(
        None, min_length=1, description="Read this attribute's topic instead of the state."
    )
    invert: bool = Field(False, description="in_bed: the sensor is on when the bed is empty.")
    idle_states: tuple[str, ...] = Field(
        ("idle", "still", "none", "off", "stationary", "resting", "sleeping", "0"),
        description="workout: states that mean no workout (compared in lower case).",
    )
    intensity: dict[str, Intensity] = Field(
        default_factory=dict,
        description="workout: intensity per activity state, e.g. {running: vigorous}.",
    )
    default_intensity: Intensity = Field(
        "moderate", description="workout: intensity of an activity not in `intensity`."
    )
    min_lux: float = Field(
        1000.0,
        gt=0,
        description="daylight: lux that count as daylight. Overcast daylight outdoors gives "
        "1,000 lx and more, indoor light 100-500 lx.",
    )


def _entity(value: Any) -> Any:
    return {"event": value} if isinstance(value, str) else value


class StatestreamOptions(Options):
    """Options of ha_statestream."""

    entities: dict[str, Annotated[EntityMap, BeforeValidator(_entity)]] = Field(
        min_length=1,
        description="Entity id → meaning: `sensor.watch_heart_rate: heart_rate`, or an object "
        "{event: workout, intensity: {running: vigorous}}.",
    )
    max_gap_s: float = Field(
        900.0,
        gt=0,
        description="daylight: a bright reading counts for at most this long.",
    )


_IGNORED: Final = frozenset({"unavailable", "unknown", "none", ""})


class HaStatestream(Profile[StatestreamOptions]):
    """Home Assistant entities published by mqtt_statestream."""

    name: ClassVar[str] = "ha_statestream"
    summary: ClassVar[str] = (
        "Home Assistant MQTT Statestream (watch heart rate, stress, workouts, in-bed, daylight)"
    )
    kinds: ClassVar[tuple[DeviceKind, ...]] = ("bed_motion", "coffee_maker", "fitness_tracker")
    options_model: ClassVar[type[Options]] = StatestreamOptions
    expects: ClassVar[str] = (
        "a state on <base>/<domain>/<object_id>/state of an entity listed in options.entities"
    )
    sources: ClassVar[tuple[str, ...]] = (
        "https://www.home-assistant.io/integrations/mqtt_statestream/",
    )
    example: ClassVar[dict[str, Any]] = {
        "id": "watch",
        "kind": "fitness_tracker",
        "topic": "homeassistant/+/+/state",
        "person": "alex",
        "profile": "ha_statestream",
        "options": {
            "entities": {
                "sensor.alex_watch_heart_rate": "heart_rate",
                "sensor.alex_watch_stress": "stress",
                "sensor.alex_watch_activity": {
                    "event": "workout",
                    "intensity": {"running": "vigorous", "walking": "light"},
                },
                "sensor.balcony_illuminance": {"event": "daylight", "min_lux": 1000},
            }
        },
    }

    def handle(
        self, message: Message, options: StatestreamOptions, state: dict[str, Any]
    ) -> Outcome:
        """Find the entity from the topic and read its value by what it means."""
        topic, payload, at = message.topic, message.payload, message.at
        levels = topic.split("/")
        if len(levels) < 3:
            msg = f"topic {show(topic)} is not <base>/<domain>/<object_id>/<state or attribute>"
            raise Refused(msg)
        domain, object_id, leaf = levels[-3], levels[-2], levels[-1]
        entity_id = f"{domain}.{object_id}"
        mapping = options.entities.get(entity_id)
        if mapping is None:
            return Outcome(notes=[f"{entity_id} is not in options.entities; ignored"])
        wanted = mapping.attribute or "state"
        if leaf != wanted:
            return Outcome(notes=[f"{entity_id}: {leaf} is not read (reading {wanted}); ignored"])
        text = load_text(payload)
        if text.lower() in _IGNORED:
            return Outcome(notes=[f"{entity_id} is {text or 'empty'}; ignored"])
        seen = state.get("seen")
        if not isinstance(seen, dict):
            seen = state["seen"] = {}
        previous = seen.get(entity_id)
        seen[entity_id] = text
        if mapping.event == "daylight":
            return _daylight(
                options, mapping=mapping, state=state, entity_id=entity_id, text=text, at=at
            )
        if previous == text:
            return Outcome(notes=[f"{entity_id} still {text}; nothing new"])
        if mapping.event == "heart_rate":
            bpm = number(text, f"{entity_id} (heart rate)")
            return Outcome(natives=[Native({"event": "heart_rate", "bpm": bpm}, at)])
        if mapping.event == "stress":
            level = number(text, f"{entity_id} (stress)")
            return Outcome(natives=[Native({"event": "stress", "level": level}, at)])
        if mapping.event == "in_bed":
            value = switch_state(text)
            if value is None:
                msg = f"{entity_id} (in bed) must be on or off, got {show(text)}"
                raise Refused(msg)
            beds = state.get("bed")
            if not isinstance(beds, dict):
                beds = state["bed"] = {}
            return occupancy_change(beds, value != mapping.invert, at)
        if mapping.event == "workout":
            return _workout(mapping, state, entity_id, text, at)
        return _sunlight_minutes(state, entity_id, previous, text, at)


def _workout(
    mapping: EntityMap, state: dict[str, Any], entity_id: str, text: str, at: datetime
) -> Outcome:
    active = state.get("workout")
    word = text.strip().lower()
    on = switch_state(word)
    idle = word in {s.lower() for s in mapping.idle_states} or on is False
    if idle:
        if active is None:
            return Outcome(notes=[f"{entity_id} is {text}: no workout running"])
        state["workout"] = None
        return Outcome(natives=[Native({"event": "workout_end"}, at)])
    activity = "workout" if on is True else word[:64]
    if active == activity:
        return Outcome(notes=[f"{entity_id}: {activity} goes on"])
    intensity = mapping.intensity.get(activity, mapping.default_intensity)
    natives = []
    if active is not None:
        natives.append(Native({"event": "workout_end"}, at))
    state["workout"] = activity
    natives.append(
        Native({"event": "workout_start", "activity": activity, "intensity": intensity}, at)
    )
    return Outcome(natives=natives)


def _daylight(
    options: StatestreamOptions,
    *,
    mapping: EntityMap,
    state: dict[str, Any],
    entity_id: str,
    text: str,
    at: datetime,
) -> Outcome:
    lux = number(text, f"{entity_id} (illuminance)")
    if lux < 0:
        msg = f"{entity_id} (illuminance) must not be negative, got {show(text)}"
        raise Refused(msg)
    bright = state.get("bright")
    if not isinstance(bright, dict):
        bright = state["bright"] = {}
    since = from_iso(bright.get(entity_id))
    out = Outcome()
    if since is not None and at > since:
        minutes = min((at - since), timedelta(seconds=options.max_gap_s)).total_seconds() / 60
        if round(minutes, 2) > 0:  # two readings in the same instant add nothing
            out.natives.append(Native({"event": "sunlight", "minutes": round(minutes, 2)}, since))
    if lux >= mapping.min_lux:
        bright[entity_id] = iso(at)
        out.notes.append(f"{entity_id}: {lux:g} lx, daylight")
    else:
        bright.pop(entity_id, None)
        out.notes.append(f"{entity_id}: {lux:g} lx, below {mapping.min_lux:g} lx")
    return out


def _sunlight_minutes(
    state: dict[str, Any], entity_id: str, previous: Any, text: str, at: datetime
) -> Outcome:
    minutes = number(text, f"{entity_id} (daylight minutes)")
    before: float | None = None
    if isinstance(previous, str):
        try:
            before = float(previous)
        except ValueError:
            before = None
    if before is not None and not math.isfinite(before):
        before = None
    if before is None:
        # The first value seen: where today's count stood; only increases from now on count.
        return Outcome(notes=[f"{entity_id}: {minutes:g} min so far today"])
    delta = minutes - before if minutes >= before else minutes  # a drop is a new day
    if delta <= 0:
        return Outcome(notes=[f"{entity_id}: no new daylight"])
    return Outcome(natives=[Native({"event": "sunlight", "minutes": delta}, at)])
