"""Tests of the decoder: a topic and bytes to events, with the profiles' states and wake-ups."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest

from coach.config import Device, DeviceKind
from coach.decode.decoder import Decoder, Profiled, wake_id
from coach.decode.profile.base import Message, Native, Options, Outcome, Profile
from coach.decode.profile.registry import PROFILES
from coach.decode.refusal import PayloadError
from coach.event import MovementDetected, NudgeAcked, OccupancyChanged
from tests.core.decode.conftest import PREFIX, config_of

BERLIN = ZoneInfo("Europe/Berlin")
ARRIVED = datetime(2026, 11, 24, 21, 5, tzinfo=BERLIN)
VIBRATION = "zigbee2mqtt/bed_vibration"


ROUTED = config_of(
    {"id": "bed", "kind": "bed_motion", "topic": "home/bedroom/bed", "person": "alex"},
    {"id": "trackers", "kind": "fitness_tracker", "topic": "tracker/+/data", "person": "sam"},
    {"id": "zigbee", "kind": "bed_motion", "topic": "zigbee/#", "person": "sam"},
)
PROFILED = config_of(
    {"id": "bed", "kind": "bed_motion", "topic": "home/bedroom/bed", "person": "alex"},
    {
        "id": "bed_vibration",
        "kind": "bed_motion",
        "topic": VIBRATION,
        "person": "alex",
        "profile": "zigbee2mqtt_vibration",
    },
)


def test_the_decoder_routes_and_parses() -> None:
    """One call from topic and bytes to an event, a refusal, or None."""
    decoder = Decoder(ROUTED, PREFIX)
    event = decoder.message(
        "home/bedroom/bed", b'{"event": "occupancy", "occupied": true}', ARRIVED
    )
    assert isinstance(event, OccupancyChanged)
    assert event.source == "bed"
    command = decoder.message(
        "sleepcoach/sam/command", b'{"command": "ack", "nudge_id": "n"}', ARRIVED
    )
    assert command == NudgeAcked(person="sam", ts=ARRIVED, source="command:sam", nudge_id="n")
    refused = decoder.message(
        "sleepcoach/bob/command", b'{"command": "ack", "nudge_id": "n"}', ARRIVED
    )
    assert refused == PayloadError("no person 'bob' in the config")
    assert decoder.message("$SYS/x", b"{}", ARRIVED) is None


def test_a_profiled_device_keeps_its_state_in_the_dict_it_was_given() -> None:
    """The daemon stores the very dict: each result's state replaces the device's entry."""
    states: dict[str, dict[str, Any]] = {}
    decoder = Decoder(PROFILED, PREFIX, states)
    done = decoder.message(VIBRATION, b'{"action": "vibration", "strength": 30}', ARRIVED)
    assert isinstance(done, Profiled)
    assert done.device.id == "bed_vibration"
    assert done.result.events == []
    assert done.result.wake_at == ARRIVED + timedelta(seconds=10)
    assert states["bed_vibration"] == done.result.state
    assert states["bed_vibration"]


def test_a_wake_up_closes_what_the_state_holds() -> None:
    """At the asked time, the burst the state holds becomes a movement; nothing is asked again."""
    decoder = Decoder(PROFILED, PREFIX)
    first = decoder.message(VIBRATION, b'{"action": "vibration", "strength": 30}', ARRIVED)
    assert isinstance(first, Profiled)
    assert first.result.wake_at is not None
    done = decoder.tick("bed_vibration", first.result.wake_at)
    assert done is not None
    [movement] = done.result.events
    assert isinstance(movement, MovementDetected)
    assert movement.ts == ARRIVED
    assert movement.intensity == 0.3
    assert done.result.wake_at is None


def test_a_wake_up_for_a_device_without_a_profile_is_none() -> None:
    """A native device, or one no longer in the config, has nothing to wake."""
    decoder = Decoder(PROFILED, PREFIX)
    assert decoder.tick("bed", ARRIVED) is None
    assert decoder.tick("gone", ARRIVED) is None


def test_the_wake_up_id_names_the_device() -> None:
    """One pending wake-up per device, never mistaken for a core timer."""
    assert wake_id("bed_vibration") == "profile:bed_vibration"


class _Insomniac(Options):
    """Options of the test profile that always asks to be woken at once."""


class Insomniac(Profile[_Insomniac]):
    """A profile whose tick asks to be woken at its own time again."""

    name: ClassVar[str] = "insomniac"
    summary: ClassVar[str] = "wakes itself"
    kinds: ClassVar[tuple[DeviceKind, ...]] = ("bed_motion",)
    options_model: ClassVar[type[Options]] = _Insomniac
    expects: ClassVar[str] = "anything"
    sources: ClassVar[tuple[str, ...]] = ()
    example: ClassVar[dict[str, Any]] = {}

    def handle(self, message: Message, options: _Insomniac, state: dict[str, Any]) -> Outcome:
        """Ask for a wake-up now."""
        return Outcome(wake_at=message.at)

    def tick(
        self, device: Device, options: _Insomniac, now: datetime, state: dict[str, Any]
    ) -> Outcome:
        """Make a movement, and ask for a wake-up now again."""
        body = {"event": "movement", "intensity": 0.5, "duration_s": 1}
        return Outcome(natives=[Native(body, now)], wake_at=now)


def test_a_wake_up_asked_for_at_its_own_time_is_dropped() -> None:
    """A tick that asks for itself again would wake forever: its events count, the ask does not."""
    config = config_of(
        {
            "id": "odd",
            "kind": "bed_motion",
            "topic": "odd",
            "person": "alex",
            "profile": "insomniac",
        }
    )
    decoder = Decoder(config, PREFIX, profiles=PROFILES.adding(Insomniac()))
    first = decoder.message("odd", b"x", ARRIVED)
    assert isinstance(first, Profiled)
    assert first.result.wake_at == ARRIVED  # a message may ask for now: the caller fires it next
    done = decoder.tick("odd", ARRIVED)
    assert done is not None
    assert len(done.result.events) == 1
    assert done.result.wake_at is None


@pytest.mark.parametrize(
    ("device", "error"),
    [
        pytest.param(
            {"profile": "zigbee2mqtt_vibration", "options": {"strength_max": 0}},
            "zigbee2mqtt_vibration: options.strength_max: must be more than 0, got 0; "
            "expected a Zigbee2MQTT state object",
            id="bad options refuse every message, naming the option",
        ),
        pytest.param(
            {"profile": "no_such_profile"},
            "unknown profile 'no_such_profile'",
            id="an unknown profile refuses every message",
        ),
    ],
)
def test_a_device_the_config_loader_would_refuse_is_refused_message_by_message(
    device: dict[str, Any], error: str
) -> None:
    """Options are checked once, when the decoder is built; the decoder never raises for them."""
    config = config_of(
        {"id": "bad", "kind": "bed_motion", "topic": VIBRATION, "person": "alex", **device}
    )
    decoder = Decoder(config, PREFIX)
    for _ in range(2):
        done = decoder.message(VIBRATION, b'{"action": "vibration"}', ARRIVED)
        assert isinstance(done, Profiled)
        assert done.result.events == []
        assert done.result.error is not None
        assert done.result.error.startswith(error)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        pytest.param(timedelta(0), True, id="now"),
        pytest.param(timedelta(minutes=5), True, id="5 minutes ahead: a drifting clock"),
        pytest.param(timedelta(minutes=5, seconds=1), False, id="more than 5 minutes ahead"),
        pytest.param(timedelta(days=365), False, id="next year"),
        pytest.param(-timedelta(hours=47, minutes=59), True, id="late inside the window"),
        pytest.param(-timedelta(hours=48), True, id="at the window's edge"),
        pytest.param(-timedelta(hours=48, seconds=1), False, id="older than the window"),
    ],
)
def test_the_time_policy_takes_a_ts_from_48_hours_back_to_5_minutes_ahead(
    offset: timedelta, accepted: bool
) -> None:
    """A device's own `ts` is measured against the arrival time the caller passes in."""
    ts = (ARRIVED + offset).isoformat()
    decoder = Decoder(ROUTED, PREFIX)
    for topic, body in (
        ("home/bedroom/bed", f'{{"event": "occupancy", "occupied": true, "ts": "{ts}"}}'),
        ("sleepcoach/sam/command", f'{{"command": "log", "what": "alcohol", "ts": "{ts}"}}'),
    ):
        got = decoder.message(topic, body.encode(), ARRIVED)
        if accepted:
            assert not isinstance(got, PayloadError), got
            continue
        assert isinstance(got, PayloadError)
        where = "in the future" if offset > timedelta(0) else "too old"
        assert got.error == (
            f"ts: {ARRIVED + offset} is {where}; a ts is accepted from 48 hours before the "
            "message arrives to 5 minutes after it, here 2026-11-22T21:05:00+01:00 to "
            "2026-11-24T21:10:00+01:00"
        ).replace(f"{ARRIVED + offset}", (ARRIVED + offset).isoformat())


def test_a_profiles_event_outside_the_time_policy_becomes_its_error() -> None:
    """A profile that dates its events by the device (Zigbee2MQTT's `last_seen`) is held to the
    same policy: the event is left out and the result says why."""
    config = config_of(
        {
            "id": "bed",
            "kind": "bed_motion",
            "topic": "zigbee2mqtt/bed",
            "person": "alex",
            "profile": "zigbee2mqtt_occupancy",
        }
    )
    decoder = Decoder(config, PREFIX)
    ahead = (ARRIVED + timedelta(days=2)).isoformat()
    done = decoder.message(
        "zigbee2mqtt/bed", f'{{"occupancy": true, "last_seen": "{ahead}"}}'.encode(), ARRIVED
    )
    assert isinstance(done, Profiled)
    assert done.result.events == []
    assert f"ts: {ahead} is in the future; a ts is accepted" in str(done.result.error)
    now = ARRIVED.isoformat()
    done = decoder.message(
        "zigbee2mqtt/bed", f'{{"occupancy": false, "last_seen": "{now}"}}'.encode(), ARRIVED
    )
    assert isinstance(done, Profiled)
    assert [type(e) for e in done.result.events] == [OccupancyChanged]
    assert done.result.error is None
