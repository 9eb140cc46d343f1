"""Recorded device payloads, replayed step by step through each profile: the events they make."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coach.config import Device
from coach.decode.profile import PROFILES, ProfileResult, tick, translate, validate_device
from coach.event import Event

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "devices"
BASE = datetime(2026, 11, 24, 22, 0, tzinfo=ZoneInfo("Europe/Berlin"))


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def payload_bytes(payload: Any) -> bytes:
    """An object is sent as its JSON, a string as raw bytes (as the fixtures README says)."""
    return payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()


def describe(event: Event) -> dict[str, Any]:
    """An event as the fixtures write it: type, own time offset, keyed, then its fields."""
    out: dict[str, Any] = {
        "type": type(event).__name__,
        "at_s": (event.ts - BASE).total_seconds(),
        "keyed": event.key is not None,
    }
    for f in dataclasses.fields(event):
        if f.name not in ("person", "ts", "source", "key"):
            out[f.name] = getattr(event, f.name)
    return out


def replay(name: str) -> list[tuple[dict[str, Any], ProfileResult]]:
    """Run every step of a fixture, carrying the state."""
    data = _fixture(name)
    device = Device.model_validate(data["device"])
    state: dict[str, Any] = {}
    results = []
    for step in data["steps"]:
        at = BASE + timedelta(seconds=step["at_s"])
        if step.get("tick"):
            result = tick(device, at, state)
        else:
            result = translate(device, step["topic"], payload_bytes(step["payload"]), at, state)
        state = result.state
        results.append((step, result))
    return results


def _cases() -> list[Any]:
    cases = []
    for name in sorted(PROFILES):
        for index, step in enumerate(_fixture(name)["steps"]):
            cases.append(pytest.param(name, index, id=f"{name}: {step['name']}"))
    return cases


@pytest.mark.parametrize(("name", "index"), _cases())
def test_recorded_step_makes_the_expected_events(name: str, index: int) -> None:
    step, result = replay(name)[index]
    if "error" in step:
        assert result.events == []
        assert result.error is not None
        for fragment in step["error"]:
            assert fragment in result.error
    else:
        assert result.error is None, result.error
        assert [describe(e) for e in result.events] == [
            pytest.approx(e, abs=1e-6) for e in step["expect"]
        ]


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_has_a_fixture_with_a_recorded_source(name: str) -> None:
    data = _fixture(name)
    assert data["profile"] == name
    assert validate_device(Device.model_validate(data["device"])) == []
    assert any("source" in step for step in data["steps"])
    assert any("error" in step for step in data["steps"]), "a refusal is part of every table"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_the_state_stays_json_and_a_restart_from_it_continues(name: str) -> None:
    # The daemon stores the state as JSON; replaying from a JSON round trip changes nothing.
    data = _fixture(name)
    device = Device.model_validate(data["device"])
    state: dict[str, Any] = {}
    for step, expected in replay(name):
        state = json.loads(json.dumps(state))
        at = BASE + timedelta(seconds=step["at_s"])
        if step.get("tick"):
            result = tick(device, at, state)
        else:
            result = translate(device, step["topic"], payload_bytes(step["payload"]), at, state)
        assert [describe(e) for e in result.events] == [describe(e) for e in expected.events]
        state = result.state
