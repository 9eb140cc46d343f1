"""ESPHome in-bed sensors: a binary sensor (load cells, pressure mat, mmWave) published as ON/OFF.

ESPHome's MQTT binary sensor publishes the plain text `ON` or `OFF` on
`<topic_prefix>/binary_sensor/<object_id>/state` (esphome/components/mqtt/mqtt_binary_sensor.cpp,
https://esphome.io/components/mqtt.html). The state is retained and sent again on every
reconnect, so only a change becomes an occupancy event.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from coach.config import DeviceKind
from coach.decode.profile.base import Message, Options, Outcome, Profile, Refused, load_text
from coach.decode.profile.base import switch_state as _switch
from coach.decode.profile.zigbee2mqtt import occupancy_change
from coach.decode.refusal import show


class BedOptions(Options):
    """Options of esphome_bed."""

    invert: bool = Field(False, description="True when the sensor reports ON for an empty bed.")


class EsphomeBed(Profile[BedOptions]):
    """An ESPHome binary sensor saying whether someone is in bed."""

    name: ClassVar[str] = "esphome_bed"
    summary: ClassVar[str] = "ESPHome in-bed binary sensor (ON/OFF): occupancy changes"
    kinds: ClassVar[tuple[DeviceKind, ...]] = ("bed_motion",)
    options_model: ClassVar[type[Options]] = BedOptions
    expects: ClassVar[str] = "the text ON or OFF (true/false and 1/0 are accepted too)"
    sources: ClassVar[tuple[str, ...]] = (
        "https://esphome.io/components/mqtt.html",
        "https://esphome.io/api/mqtt__binary__sensor_8cpp_source",
    )
    example: ClassVar[dict[str, Any]] = {
        "id": "bed_mat",
        "kind": "bed_motion",
        "topic": "bedroom-esp/binary_sensor/bed_occupied/state",
        "person": "alex",
        "profile": "esphome_bed",
    }

    def handle(self, message: Message, options: BedOptions, state: dict[str, Any]) -> Outcome:
        """Emit occupancy when ON/OFF changed."""
        payload, at = message.payload, message.at
        text = load_text(payload)
        value = _switch(text)
        if value is None:
            msg = f"got {show(text)}"
            raise Refused(msg)
        return occupancy_change(state, value != options.invert, at)
