"""Sleep as Android's MQTT events: tracking start and stop become getting into and out of bed.

The app publishes `{"event": "<name>", "value1": …, "value2": …}` to the topic set in Settings →
Services → Automation → MQTT (https://docs.sleep.urbandroid.org/services/automation.html).
`sleep_tracking_started` and `_resumed` become occupancy true, `_stopped` and `_paused` occupancy
false (the person is up, or out of bed for a while); repeats change nothing.
`time_to_bed_alarm_alert` (the app's bedtime notification) and the alarm events are noted with
their times in the state. The app's docs warn that some events "can be triggered several
hundred times per night" (sleep phases, `awake`/`not_awake`, sound events): they are counted per
night in the state, not turned into events, and the night's tally is noted when tracking stops.
Unknown event names are noted and ignored, so a newer app version does not flood the error topic.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

from pydantic import Field

from coach.config import DeviceKind
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
)
from coach.decode.refusal import show

#: Events that become occupancy (True: in bed and tracking; False: up).
OCCUPANCY: Final[dict[str, bool]] = {
    "sleep_tracking_started": True,
    "sleep_tracking_resumed": True,
    "sleep_tracking_stopped": False,
    "sleep_tracking_paused": False,
}
#: Events that fire often during a night and are only counted.
FREQUENT: Final = frozenset(
    {
        "awake",
        "not_awake",
        "rem",
        "deep_sleep",
        "light_sleep",
        "apnea_alarm",
        "antisnoring",
        "sound_event_snore",
        "sound_event_talk",
        "sound_event_cough",
        "sound_event_baby",
        "sound_event_laugh",
        "lullaby_volume_down",
    }
)
#: Events noted with their time (the alarm's time in value1, where the app sends it).
NOTED: Final = frozenset(
    {
        "time_to_bed_alarm_alert",
        "alarm_alert_start",
        "alarm_alert_dismiss",
        "alarm_snooze_clicked",
        "alarm_snooze_canceled",
        "alarm_skip_next",
        "show_skip_next_alarm",
        "before_alarm",
        "smart_period",
        "before_smart_period",
        "lullaby_start",
        "lullaby_stop",
        "jet_lag_start",
        "jet_lag_stop",
    }
)


class SleepAsAndroidOptions(Options):
    """Options of sleep_as_android."""

    pause_is_out_of_bed: bool = Field(
        True, description="Whether pausing tracking counts as getting out of bed."
    )


class SleepAsAndroid(Profile[SleepAsAndroidOptions]):
    """The Sleep as Android app's MQTT automation events."""

    name: ClassVar[str] = "sleep_as_android"
    summary: ClassVar[str] = (
        "Sleep as Android on a phone: tracking start/stop become in/out of bed; "
        "frequent events are tallied per night"
    )
    kinds: ClassVar[tuple[DeviceKind, ...]] = ("bed_motion",)
    options_model: ClassVar[type[Options]] = SleepAsAndroidOptions
    expects: ClassVar[str] = '{"event": "sleep_tracking_started"} and the app\'s other events'
    sources: ClassVar[tuple[str, ...]] = (
        "https://docs.sleep.urbandroid.org/services/automation.html",
    )
    example: ClassVar[dict[str, Any]] = {
        "id": "phone",
        "kind": "bed_motion",
        "topic": "SleepAsAndroid/alex",
        "person": "alex",
        "profile": "sleep_as_android",
    }

    def handle(
        self, message: Message, options: SleepAsAndroidOptions, state: dict[str, Any]
    ) -> Outcome:
        """Map tracking changes to occupancy; count and note the rest."""
        payload, at = message.payload, message.at
        data = load_json(payload)
        if not isinstance(data, dict):
            msg = f"got {show(data)}"
            raise Refused(msg)
        name = data.get("event")
        if not isinstance(name, str) or not name:
            msg = f"event must be a non-empty string, got {show(name)}"
            raise Refused(msg)
        out = Outcome()
        night = state.get("night")
        if not isinstance(night, dict):
            night = state["night"] = {}
        counts = night.get("counts")
        if not isinstance(counts, dict):
            counts = night["counts"] = {}
        if name in OCCUPANCY:
            occupied = OCCUPANCY[name]
            if name == "sleep_tracking_paused" and not options.pause_is_out_of_bed:
                out.notes.append("tracking paused; still in bed (pause_is_out_of_bed: false)")
                return out
            if name == "sleep_tracking_started":
                state["night"] = {"started": iso(at), "counts": {}}
            if state.get("occupied") is occupied:
                out.notes.append(f"{name}: no change")
            else:
                state["occupied"] = occupied
                out.natives.append(Native({"event": "occupancy", "occupied": occupied}, at))
            if name == "sleep_tracking_stopped":
                out.notes.append(_tally(night))
                state["last_night"] = {**night, "stopped": iso(at)}
                state.pop("night", None)
            return out
        if name in FREQUENT or name.startswith("sound_event_"):
            prev = counts.get(name)
            counts[name] = (prev if isinstance(prev, int) else 0) + 1
            out.notes.append(f"{name}: counted ({counts[name]} tonight)")
            return out
        if name in NOTED:
            noted = state.get("noted")
            if not isinstance(noted, dict):
                noted = state["noted"] = {}
            entry: dict[str, Any] = {"at": iso(at)}
            alarm = device_time(_epoch(data.get("value1")))
            if alarm is not None:
                entry["alarm"] = iso(alarm)
            noted[name] = entry
            when = f" (alarm at {entry['alarm']})" if "alarm" in entry else ""
            out.notes.append(f"{name}: noted{when}")
            return out
        out.notes.append(f"{name}: not an event the coach uses; ignored")
        return out


def _epoch(value: Any) -> Any:
    # value1 carries the alarm time as a string of Unix milliseconds ("1582719660934").
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def _tally(night: dict[str, Any]) -> str:
    counts = night.get("counts")
    if not isinstance(counts, dict) or not counts:
        return "night summary: no sleep-phase or sound events"
    parts = [f"{k} ×{v}" for k, v in sorted(counts.items()) if isinstance(v, int)]
    started = from_iso(night.get("started"))
    since = f" since {started.isoformat()}" if started is not None else ""
    return f"night summary{since}: " + ", ".join(parts)
