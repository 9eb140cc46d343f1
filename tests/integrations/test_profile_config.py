"""Config load runs each device's profile checks: a bad option names its YAML line and path."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.config_file import ConfigError, load_config

CONFIG = """\
timezone: Europe/Berlin
people:
  - id: alex
    bedtime: "22:30"
    wake: "06:30"
devices:
  - id: bed
    kind: bed_motion
    topic: zigbee2mqtt/bed
    person: alex
    profile: custom
    options:
      event: "'movement'"
      fields:
        intensity: "strength / `255`"
  - id: coffee
    kind: coffee_maker
    topic: shellies/plug/relay/0/power
    person: alex
    profile: smart_plug_power
    options:
      start_watts: 1000
      stop_wats: 500
"""


def test_bad_profile_options_are_reported_with_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    with pytest.raises(ConfigError) as caught:
        load_config(path, resolve_secrets=False)
    problems = [(p.line, p.path) for p in caught.value.problems]
    assert problems == [
        (15, "devices[0].options.fields.intensity"),
        (23, "devices[1].options.stop_wats"),
    ]
    assert "divide(a, b)" in caught.value.problems[0].message
    assert "unknown option for smart_plug_power" in caught.value.problems[1].message


def test_good_profile_options_load(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        CONFIG.replace("strength / `255`", "divide(strength, `255`)").replace(
            "stop_wats", "stop_watts"
        )
    )
    config = load_config(path, resolve_secrets=False)
    assert [d.profile for d in config.devices] == ["custom", "smart_plug_power"]
