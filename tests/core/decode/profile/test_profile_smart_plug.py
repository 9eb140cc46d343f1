"""The smart plug's brew detection across power traces: espresso, full pot, kettle, drop-outs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coach.config import Device
from coach.decode.profile import tick, translate, validate_device
from coach.event import CoffeeBrewed, Event

BASE = datetime(2026, 11, 24, 7, 0, tzinfo=ZoneInfo("Europe/Berlin"))

Trace = list[tuple[float, float | None]]  # (seconds after BASE, watts; None = a tick only)


def plug(**options: Any) -> Device:
    """A Shelly Gen1 plug (plain-number payloads) under the coffee machine."""
    return Device(
        id="coffee",
        kind="coffee_maker",
        topic="shellies/shellyplug-s-C18B12/relay/0/power",
        person="alex",
        profile="smart_plug_power",
        options=options,
    )


def run(device: Device, trace: Trace, *, end_tick: float | None = None) -> list[Event]:
    """Feed a trace; honour every wake_at before the next reading, as the daemon would."""
    state: dict[str, Any] = {}
    events: list[Event] = []
    wake: datetime | None = None
    points: list[tuple[float, float | None]] = list(trace)
    if end_tick is not None:
        points.append((end_tick, None))
    for offset, watts in points:
        at = BASE + timedelta(seconds=offset)
        if wake is not None and wake <= at:
            result = tick(device, wake, state)
            assert result.error is None
            events += result.events
            state, wake = result.state, result.wake_at
        if watts is None:
            result = tick(device, at, state)
        else:
            result = translate(device, device.topic, f"{watts:.2f}".encode(), at, state)
        assert result.error is None, result.error
        events += result.events
        state, wake = result.state, result.wake_at
    return events


def every(step_s: float, start: float, end: float, watts: float) -> Trace:
    """Readings of `watts` every `step_s` from `start` up to `end` (exclusive)."""
    out: Trace = []
    t = start
    while t < end:
        out.append((t, watts))
        t += step_s
    return out


ESPRESSO: Trace = [(0, 2.0), *every(2, 10, 45, 1350.0), (45, 3.0)]
FULL_POT: Trace = [(0, 1.5), *every(10, 10, 490, 1020.0), *every(30, 490, 1500, 65.0)]
KETTLE_BELOW_START: Trace = [(0, 0.0), *every(5, 5, 200, 850.0), (200, 0.0)]
# An espresso machine's thermoblock cycles: the heater drops out for 20 s mid-brew (readings
# of 0 W), then the brew goes on; it must stay one brew.
DIP_MID_BREW: Trace = [
    (0, 1.0),
    *every(5, 10, 40, 1300.0),
    *every(5, 40, 60, 0.0),
    *every(5, 60, 90, 1280.0),
    (90, 1.0),
]
# The plug's readings stop for two minutes mid-brew (Wi-Fi), then come back still brewing.
GAP_MID_BREW: Trace = [
    (0, 1.0),
    *every(10, 10, 60, 1100.0),
    *every(10, 180, 400, 1100.0),
    (400, 2.0),
]


@pytest.mark.parametrize(
    ("trace", "expected"),
    [
        pytest.param(ESPRESSO, [("espresso", 10.0)], id="a 35 s espresso at 1350 W is an espresso"),
        pytest.param(FULL_POT, [("coffee", 10.0)], id="an 8-minute full pot is one coffee"),
        pytest.param(
            KETTLE_BELOW_START, [], id="a kettle at 850 W never reaches the start and is no brew"
        ),
        pytest.param(
            DIP_MID_BREW, [("espresso", 10.0)], id="a 20 s dip mid-brew does not split the brew"
        ),
        pytest.param(
            GAP_MID_BREW, [("coffee", 10.0)], id="readings that drop out for 2 min keep one brew"
        ),
    ],
)
def test_power_traces_make_the_right_brews(trace: Trace, expected: list[tuple[str, float]]) -> None:
    events = run(plug(), trace, end_tick=3600)
    brews = [e for e in events if isinstance(e, CoffeeBrewed)]
    assert [(b.drink, (b.ts - BASE).total_seconds()) for b in brews] == expected
    assert all(b.key is None for b in brews), "Gen1 readings carry no device time"


def test_a_silent_plug_is_closed_by_the_tick_at_wake_at() -> None:
    device = plug()
    state: dict[str, Any] = {}
    for offset, watts in [(0, 1300.0), (30, 0.5)]:
        result = translate(
            device, device.topic, str(watts).encode(), BASE + timedelta(seconds=offset), state
        )
        state = result.state
    assert result.events == []
    assert result.wake_at == BASE + timedelta(seconds=90)
    early = tick(device, BASE + timedelta(seconds=89), state)
    assert early.events == []
    due = tick(device, result.wake_at, early.state)
    assert [type(e).__name__ for e in due.events] == ["CoffeeBrewed"]
    assert due.state["phase"] == "idle"
    again = tick(device, BASE + timedelta(seconds=500), due.state)
    assert again.events == []


def test_the_drink_override_wins_over_the_bands() -> None:
    events = run(plug(drink="tea", volume_ml=300, caffeine_mg=30), FULL_POT, end_tick=3600)
    assert [
        (e.drink, e.volume_ml, e.caffeine_mg) for e in events if isinstance(e, CoffeeBrewed)
    ] == [("tea", 300.0, 30.0)]


def test_custom_bands_pick_by_energy() -> None:
    bands = [
        {"drink": "espresso", "max_energy_wh": 20},
        {"drink": "coffee", "min_energy_wh": 20, "max_energy_wh": 200, "volume_ml": 150},
    ]
    # 35 s at 1350 W is about 13 Wh; 8 minutes at 1020 W about 136 Wh.
    assert [
        e.drink
        for e in run(plug(drinks=bands), ESPRESSO, end_tick=3600)
        if isinstance(e, CoffeeBrewed)
    ] == ["espresso"]
    assert [
        e.drink
        for e in run(plug(drinks=bands), FULL_POT, end_tick=3600)
        if isinstance(e, CoffeeBrewed)
    ] == ["coffee"]


def test_a_brew_fitting_no_band_is_other() -> None:
    long_brew: Trace = [(0, 0.0), *every(30, 10, 1800, 1100.0), (1800, 0.0)]
    events = run(plug(), long_brew, end_tick=7200)
    assert [e.drink for e in events if isinstance(e, CoffeeBrewed)] == ["other"]


def test_a_boiler_top_up_shorter_than_min_brew_is_ignored() -> None:
    top_up: Trace = [(0, 0.0), (10, 1200.0), (13, 0.0)]
    assert run(plug(min_brew_s=10), top_up, end_tick=600) == []


def test_a_reading_older_than_the_last_is_ignored() -> None:
    device = plug()
    first = translate(device, device.topic, b"1300", BASE + timedelta(seconds=10), {})
    late = translate(device, device.topic, b"0", BASE, first.state)
    assert late.events == []
    assert late.state == first.state
    assert "older" in late.notes[0]


def test_the_start_threshold_is_configurable() -> None:
    assert run(plug(start_watts=800, stop_watts=400), KETTLE_BELOW_START, end_tick=3600) != []


def test_stop_above_start_is_an_option_error() -> None:
    problems = validate_device(plug(start_watts=500, stop_watts=900))
    assert problems == ["options: stop_watts must not be above start_watts"]
