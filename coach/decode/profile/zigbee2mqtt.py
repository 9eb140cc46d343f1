"""Zigbee2MQTT bed sensors: a vibration sensor under the mattress, or an in-bed occupancy sensor.

Zigbee2MQTT publishes a device's whole cached state as one JSON object on `zigbee2mqtt/<name>`
every time anything changes (https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html),
so a battery report repeats the last `occupancy` and `strength`. Both profiles therefore act on
changes only and keep what they saw in their state.

Vibration (Aqara DJT11LM, https://www.zigbee2mqtt.io/devices/DJT11LM.html): `action` is
`vibration`, `tilt` or `drop` when the sensor fires and null otherwise; `strength` is "the max
strength measured during a period of 300 seconds" (same page), so it grades a burst, not a single
jolt. Vibration and tilt reports closer together than `burst_gap_s` form one burst, which becomes
one movement lasting from the first report to the last (at least `min_duration_s`), with
intensity `strength / strength_max` capped at 1. A burst closes when a later message arrives
after the gap or when the daemon's tick reaches it. `drop` means the sensor fell off the bed: it
is noted, not counted.

If Zigbee2MQTT is set to add `last_seen` (advanced.last_seen: ISO_8601 or epoch), that is the
device's own time and the events carry it (with a duplicate key).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar, Final

from pydantic import Field

from coach.config import Device, DeviceKind
from coach.decode.profile.base import (
    Message,
    Native,
    Options,
    Outcome,
    Profile,
    Refused,
    device_time,
    from_iso,
    iso,
    load_json,
    number,
    switch_state,
)
from coach.decode.refusal import show

_DJT11LM: Final = "https://www.zigbee2mqtt.io/devices/DJT11LM.html"
_MESSAGES: Final = "https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html"


def _object(payload: bytes) -> dict[str, Any]:
    data = load_json(payload)
    if not isinstance(data, dict):
        msg = f"the payload is JSON but not an object (got {show(data)})"
        raise Refused(msg)
    return data


def _stamp(data: dict[str, Any], at: datetime) -> tuple[datetime, bool]:
    ts = device_time(data.get("last_seen"))
    return (ts, True) if ts is not None else (at, False)


class VibrationOptions(Options):
    """Options of zigbee2mqtt_vibration."""

    strength_max: float = Field(
        100.0,
        gt=0,
        description="The `strength` that counts as the hardest movement (intensity 1). The "
        "DJT11LM's scale is undocumented; values seen in reports are mostly below 100 (e.g. 9 "
        "in Koenkk/zigbee2mqtt#21432). Watch `devices listen` while you toss and turn.",
    )
    burst_gap_s: float = Field(
        10.0, gt=0, le=300, description="Reports closer together than this form one movement."
    )
    min_duration_s: float = Field(
        1.0, gt=0, le=60, description="Duration of a movement seen as a single report."
    )
    max_burst_s: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="A burst longer than this is cut into several movements (restless tossing).",
    )
    default_strength: float = Field(
        0.0,
        ge=0,
        description="Strength assumed when the payload has none (null before the first report).",
    )


class ZigbeeVibration(Profile[VibrationOptions]):
    """An Aqara DJT11LM-style vibration sensor: vibration bursts to movements."""

    name: ClassVar[str] = "zigbee2mqtt_vibration"
    summary: ClassVar[str] = (
        "Zigbee vibration sensor under the mattress (Aqara DJT11LM): bursts become movements"
    )
    kinds: ClassVar[tuple[DeviceKind, ...]] = ("bed_motion",)
    options_model: ClassVar[type[Options]] = VibrationOptions
    expects: ClassVar[str] = (
        'a Zigbee2MQTT state object such as {"action": "vibration", "strength": 12}'
    )
    sources: ClassVar[tuple[str, ...]] = (_DJT11LM, _MESSAGES)
    example: ClassVar[dict[str, Any]] = {
        "id": "bed",
        "kind": "bed_motion",
        "topic": "zigbee2mqtt/bed_vibration",
        "person": "alex",
        "profile": "zigbee2mqtt_vibration",
        "options": {"strength_max": 100, "burst_gap_s": 10},
    }

    def handle(self, message: Message, options: VibrationOptions, state: dict[str, Any]) -> Outcome:
        """Extend, open or close a burst."""
        payload, at = message.payload, message.at
        data = _object(payload)
        action = data.get("action")
        if action is not None and not isinstance(action, str):
            msg = f"action must be a string or null, got {show(action)}"
            raise Refused(msg)
        strength_raw = data.get("strength")
        strength = (
            options.default_strength if strength_raw is None else number(strength_raw, "strength")
        )
        if strength < 0:
            msg = f"strength must not be negative, got {show(strength_raw)}"
            raise Refused(msg)
        ts, own = _stamp(data, at)
        out = Outcome()
        if action in ("vibration", "tilt"):
            burst = state.get("burst")
            start = from_iso(burst.get("start")) if isinstance(burst, dict) else None
            last = from_iso(burst.get("last")) if isinstance(burst, dict) else None
            gap = timedelta(seconds=options.burst_gap_s)
            too_long = timedelta(seconds=options.max_burst_s)
            if (
                start is not None
                and last is not None
                and isinstance(burst, dict)
                and timedelta(0) <= ts - last <= gap
                and ts - start <= too_long
            ):
                burst["last"] = iso(ts)
                burst["strength"] = max(_float(burst.get("strength")), strength)
                burst["reports"] = int(_float(burst.get("reports"))) + 1
                burst["own"] = bool(burst.get("own")) and own
                out.notes.append(f"{action}: burst goes on ({burst['reports']} reports)")
            else:
                self._close(options, state, out)
                state["burst"] = {
                    "start": iso(ts),
                    "last": iso(ts),
                    "strength": strength,
                    "reports": 1,
                    "own": own,
                }
                out.notes.append(f"{action}: a burst starts")
            out.wake_at = ts + gap
            return out
        if action == "drop":
            out.notes.append("drop: the sensor fell or was knocked over; check it is fixed")
            return out
        if action not in (None, ""):
            out.notes.append(f"action {show(action)} is not a movement; ignored")
            return out
        # A state report without an action (battery, link quality, a strength update).
        self._close_if_due(options, state, ts, out)
        if not out.natives:
            out.notes.append("no action in this report; nothing to do")
        return out

    def tick(
        self, device: Device, options: VibrationOptions, now: datetime, state: dict[str, Any]
    ) -> Outcome:
        """Close a burst whose last report is older than the gap."""
        out = Outcome()
        self._close_if_due(options, state, now, out)
        return out

    def _close_if_due(
        self, options: VibrationOptions, state: dict[str, Any], now: datetime, out: Outcome
    ) -> None:
        burst = state.get("burst")
        last = from_iso(burst.get("last")) if isinstance(burst, dict) else None
        if last is None:
            state.pop("burst", None)
            return
        # At exactly the gap it closes: the wake-up asked for at `last + gap` must end the burst,
        # or it would ask for the same time again, forever.
        if now - last >= timedelta(seconds=options.burst_gap_s):
            self._close(options, state, out)
        else:
            out.wake_at = last + timedelta(seconds=options.burst_gap_s)

    def _close(self, options: VibrationOptions, state: dict[str, Any], out: Outcome) -> None:
        burst = state.pop("burst", None)
        if not isinstance(burst, dict):
            return
        start, last = from_iso(burst.get("start")), from_iso(burst.get("last"))
        if start is None or last is None:
            return
        duration = max(options.min_duration_s, (last - start).total_seconds())
        intensity = min(1.0, _float(burst.get("strength")) / options.strength_max)
        body = {"event": "movement", "intensity": round(intensity, 4), "duration_s": duration}
        out.notes.append(
            f"burst ended: {burst.get('reports')} reports over {duration:g} s → movement"
        )
        out.natives.append(Native(body, start, device_ts=bool(burst.get("own"))))


def _float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return 0.0


class OccupancyOptions(Options):
    """Options of zigbee2mqtt_occupancy."""

    field: str | None = Field(
        None,
        min_length=1,
        description="The property holding in-bed state; default: the first of occupancy, "
        "presence, contact, state that the payload has.",
    )
    invert: bool = Field(False, description="True when the sensor reports ON for an empty bed.")


_FIELDS: Final = ("occupancy", "presence", "contact", "state")


class ZigbeeOccupancy(Profile[OccupancyOptions]):
    """A binary in-bed sensor on Zigbee2MQTT (pressure mat, load cells, mmWave presence)."""

    name: ClassVar[str] = "zigbee2mqtt_occupancy"
    summary: ClassVar[str] = (
        "Zigbee in-bed sensor (pressure mat, mmWave presence): occupancy changes"
    )
    kinds: ClassVar[tuple[DeviceKind, ...]] = ("bed_motion",)
    options_model: ClassVar[type[Options]] = OccupancyOptions
    expects: ClassVar[str] = 'a Zigbee2MQTT state object such as {"occupancy": true}'
    sources: ClassVar[tuple[str, ...]] = (
        "https://www.zigbee2mqtt.io/devices/RTCZCGQ11LM.html",
        _MESSAGES,
    )
    example: ClassVar[dict[str, Any]] = {
        "id": "bed_presence",
        "kind": "bed_motion",
        "topic": "zigbee2mqtt/bed_presence",
        "person": "alex",
        "profile": "zigbee2mqtt_occupancy",
        "options": {"field": "presence"},
    }

    def handle(self, message: Message, options: OccupancyOptions, state: dict[str, Any]) -> Outcome:
        """Emit occupancy when it changed since the last report."""
        payload, at = message.payload, message.at
        data = _object(payload)
        names = (options.field,) if options.field else _FIELDS
        name = next((n for n in names if n in data), None)
        if name is None:
            wanted = " or ".join(names)
            msg = f"no {wanted} property in the report"
            raise Refused(msg)
        value = switch_state(data[name])
        if value is None:
            msg = f"{name} must be true/false or ON/OFF, got {show(data[name])}"
            raise Refused(msg)
        occupied = value != options.invert
        ts, own = _stamp(data, at)
        return occupancy_change(state, occupied, ts, own)


def occupancy_change(
    state: dict[str, Any], occupied: bool, ts: datetime, own: bool = False
) -> Outcome:
    """An occupancy event when `occupied` differs from the state's last value (then stored)."""
    out = Outcome()
    if state.get("occupied") is occupied:
        out.notes.append(f"still {'in bed' if occupied else 'out of bed'}; nothing new")
        return out
    state["occupied"] = occupied
    out.natives.append(Native({"event": "occupancy", "occupied": occupied}, ts, device_ts=own))
    return out
