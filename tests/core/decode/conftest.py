"""Helpers for the decode tests: a config of two people with the devices a test names.

Test modules import them with `from tests.core.decode.conftest import ...`, as the core's tests do
with theirs.
"""

from __future__ import annotations

from typing import Any

from coach.config import Config

#: The coach's topic prefix the tests route commands under (the MQTT settings' default).
PREFIX = "sleepcoach"


def config_of(*devices: dict[str, Any]) -> Config:
    """alex (bed 22:30) and sam (bed 00:45) in Berlin, with these devices."""
    return Config.model_validate(
        {
            "timezone": "Europe/Berlin",
            "people": [
                {"id": "alex", "bedtime": "22:30", "wake": "06:30"},
                {"id": "sam", "bedtime": "00:45", "wake": "08:30"},
            ],
            "devices": list(devices),
        }
    )
