"""Garbage on every profile never raises: a refusal names the profile, the state survives."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coach.config import Device
from coach.decode.profile import PROFILES, option_problems, tick, translate, validate_device

EXAMPLES = {name: Device.model_validate(p.example) for name, p in PROFILES.items()}
AT = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
# Objects with the keys the profiles look at, holding anything.
KEYS = [
    "action",
    "strength",
    "last_seen",
    "occupancy",
    "presence",
    "contact",
    "state",
    "apower",
    "id",
    "method",
    "params",
    "ENERGY",
    "Power",
    "Time",
    "power",
    "event",
    "value1",
    "switch:0",
    "ts",
]
shaped = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6).map(
    lambda d: {**d, "params": {"ts": d.get("ts"), "switch:0": d}} if d.get("method") else d
)
payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"ON", b"OFF", b'"on"', b"nan", b"1e999", b"-0", b"", b"\xff\xfe", b"[]"]),
)
topics = st.one_of(
    st.sampled_from(["", "a", "homeassistant/sensor/alex_watch_heart_rate/state", "x/y/z/w/v"]),
    st.text(max_size=30),
)
states = st.one_of(
    st.just({}),
    st.dictionaries(
        st.sampled_from(
            [
                "phase",
                "burst",
                "last_at",
                "night",
                "seen",
                "occupied",
                "bright",
                "workout",
                "start",
                "below_since",
                "counts",
            ]
        ),
        json_values,
        max_size=4,
    ),
)


@pytest.mark.parametrize("name", sorted(PROFILES))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=payloads, topic=topics, state=states, offset=st.integers(0, 10**6))
def test_garbage_never_raises_and_a_refusal_names_the_profile(
    name: str, payload: bytes, topic: str, state: dict[str, Any], offset: int
) -> None:
    device = EXAMPLES[name]
    before = json.dumps(state, sort_keys=True)
    at = AT + timedelta(seconds=offset)
    result = translate(device, topic or device.topic, payload, at, state)
    assert json.dumps(state, sort_keys=True) == before, "the caller's state is never mutated"
    assert "internal error" not in (result.error or ""), result.error
    if result.error is not None:
        assert result.error.startswith(f"{name}: ")
    json.dumps(result.state)  # always storable
    later = tick(device, at + timedelta(hours=1), result.state)
    assert "internal error" not in (later.error or ""), later.error
    json.dumps(later.state)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_example_config_is_valid(name: str) -> None:
    assert validate_device(EXAMPLES[name]) == []


def test_an_unknown_profile_names_the_known_ones() -> None:
    device = EXAMPLES["esphome_bed"].model_copy(update={"profile": "zigbee_magic"})
    [problem] = validate_device(device)
    assert problem.startswith("profile: unknown profile 'zigbee_magic'; one of native, ")
    assert "smart_plug_power" in problem


def test_a_profile_for_another_kind_is_refused() -> None:
    device = EXAMPLES["smart_plug_power"].model_copy(update={"kind": "bed_motion"})
    assert validate_device(device) == [
        "kind: profile smart_plug_power is for coffee_maker devices, not bed_motion"
    ]


def test_an_unknown_option_lists_the_known_ones() -> None:
    device = EXAMPLES["esphome_bed"].model_copy(update={"options": {"inverted": True}})
    assert validate_device(device) == [
        "options.inverted: unknown option for esphome_bed; known: invert"
    ]


@pytest.mark.parametrize(
    ("path", "expression", "fragment"),
    [
        pytest.param(
            ("fields", "intensity"), "strength / `255`", "divide(a, b)", id="arithmetic gets a hint"
        ),
        pytest.param(
            ("fields", "duration_s"), "a[", "not a valid JMESPath expression", id="a broken field"
        ),
        pytest.param(
            ("event",),
            "'movement",
            "not a valid JMESPath expression",
            id="an unclosed literal event",
        ),
        pytest.param(
            ("when",), "action ==", "not a valid JMESPath expression", id="a broken filter"
        ),
        pytest.param(("ts",), "last_seen[?", "not a valid JMESPath expression", id="a broken time"),
    ],
)
def test_a_bad_jmespath_expression_is_reported_with_its_option_path(
    path: tuple[str, ...], expression: str, fragment: str
) -> None:
    options: dict[str, Any] = {
        "event": "'movement'",
        "fields": {"intensity": "`1`", "duration_s": "`1`"},
    }
    target = options
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = expression
    device = EXAMPLES["custom"].model_copy(update={"options": options})
    [problem] = validate_device(device)
    assert problem.startswith("options." + ".".join(path) + ": ")
    assert fragment in problem
    # A device that slipped past validation is refused per message, not crashed on.
    result = translate(device, device.topic, b'{"strength": 3}', AT, {})
    assert result.error is not None
    assert result.error.startswith("custom: ")


def test_option_problems_carry_paths_for_the_yaml_lines() -> None:
    device = EXAMPLES["ha_statestream"].model_copy(
        update={"options": {"entities": {"sensor.hr": {"event": "pulse"}}}}
    )
    [problem] = option_problems(device)
    assert problem.path == ("options", "entities", "sensor.hr", "event")
