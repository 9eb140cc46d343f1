"""A device profile added from outside: written here, registered here, replayed by the simulator.

This is the worked example of docs/devices.md ("Add a device profile"): a profile is one class,
and `PROFILES.adding(...)` is the registry the config loader and the decoder take. A shipped
profile is the same class in `coach/decode/profile/`, listed in `PROFILES` instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import Field

from coach.config import DeviceKind
from coach.decode.profile import PROFILES, Options, Profile, ProfileRegistry
from coach.decode.profile.base import Message, Native, Outcome, Refused, load_json
from coach.decode.refusal import show
from coach.event import Drink
from coach.nudge import Nudge
from integrations.config_file import ConfigError, ConfigFile, load_config
from integrations.simulator import ErrorRecord, Simulation, error_line, nudge_line

TOPIC = "kitchen/machine/made"


class MachineOptions(Options):
    """Options of coffee_machine."""

    drinks: dict[str, Drink] = Field(
        default_factory=lambda: {
            "ristretto": "espresso",
            "espresso": "espresso",
            "lungo": "coffee",
        },
        description="The machine's product names and the drink each one is.",
    )


class CoffeeMachine(Profile[MachineOptions]):
    """A coffee machine that reports each drink it made: `{"product": "ristretto", "ml": 25}`."""

    name: ClassVar[str] = "coffee_machine"
    summary: ClassVar[str] = "A coffee machine that reports each drink it made"
    kinds: ClassVar[tuple[DeviceKind, ...]] = ("coffee_maker",)
    options_model: ClassVar[type[Options]] = MachineOptions
    expects: ClassVar[str] = 'a JSON object such as {"product": "ristretto", "ml": 25}'
    sources: ClassVar[tuple[str, ...]] = ()
    example: ClassVar[dict[str, Any]] = {
        "id": "machine",
        "kind": "coffee_maker",
        "topic": TOPIC,
        "person": "alex",
        "profile": "coffee_machine",
    }

    def handle(self, message: Message, options: MachineOptions, state: dict[str, Any]) -> Outcome:
        """One drink made: a native `brew` body, dated when the message arrived."""
        data = load_json(message.payload)
        product = data.get("product") if isinstance(data, dict) else None
        if not isinstance(product, str):
            msg = f"no product in {show(data)}"
            raise Refused(msg)
        body: dict[str, Any] = {"event": "brew", "drink": options.drinks.get(product, "other")}
        if "ml" in data:
            body["volume_ml"] = data["ml"]
        return Outcome(natives=[Native(body, message.at)], notes=[f"{product} made"])


REGISTRY: ProfileRegistry = PROFILES.adding(CoffeeMachine())

CONFIG_YAML = f"""\
timezone: Europe/Berlin
people:
  - id: alex
    bedtime: "22:30"
    wake: "06:30"
devices:
  - id: machine
    kind: coffee_maker
    topic: {TOPIC}
    person: alex
    profile: coffee_machine
"""


def _line(ts: str, payload: dict[str, Any] | str) -> str:
    return json.dumps({"ts": ts, "topic": TOPIC, "payload": payload})


def _replay(
    config: ConfigFile, lines: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The simulator with the added profile: nudges and errors as `sleepcoach simulate` writes."""
    sim = Simulation(config, profiles=REGISTRY)
    outputs = [o for n, text in enumerate(lines, 1) for o in sim.feed_line(text, n)]
    outputs += sim.finish()
    nudges = [json.loads(nudge_line(o, config)) for o in outputs if isinstance(o, Nudge)]
    errors = [json.loads(error_line(o)) for o in outputs if isinstance(o, ErrorRecord)]
    return nudges, errors


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """The household's config, its machine on the added profile."""
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_YAML, encoding="utf-8")
    return path


def test_the_shipped_registry_does_not_know_the_profile(config_file: Path) -> None:
    """Without the registry that adds it, the config names an unknown profile."""
    with pytest.raises(ConfigError) as refused:
        load_config(config_file)
    [problem] = refused.value.problems
    assert problem.path == "devices[0].profile"
    assert problem.message.startswith("unknown profile 'coffee_machine'; one of native, ")


def test_the_added_profiles_options_are_checked_when_the_config_loads(tmp_path: Path) -> None:
    """`check-config`'s checks apply: an option that is no drink names its line and path."""
    path = tmp_path / "config.yaml"
    path.write_text(
        CONFIG_YAML + "    options:\n      drinks: {ristretto: soup}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path, profiles=REGISTRY)
    [problem] = refused.value.problems
    assert (problem.line, problem.path) == (13, "devices[0].options.drinks.ristretto")
    assert "espresso" in problem.message


def test_a_late_ristretto_from_the_added_profile_gets_the_cutoff_nudge(config_file: Path) -> None:
    """The machine's report becomes a brew, and the coach's rules take it from there."""
    config = load_config(config_file, profiles=REGISTRY)
    nudges, errors = _replay(
        config,
        [
            _line("2026-11-24T07:30:00+01:00", {"product": "lungo", "ml": 150}),
            _line("2026-11-24T16:05:00+01:00", {"product": "ristretto", "ml": 25}),
        ],
    )
    assert errors == []
    cutoff = [n for n in nudges if n["rule"] == "caffeine.cutoff"]
    assert [n["ts"] for n in cutoff] == ["2026-11-24T16:05:00+01:00"]
    assert cutoff[0]["evidence"]["drink"] == "espresso"
    assert cutoff[0]["evidence"]["drink_at"] == "2026-11-24T16:05:00+01:00"


def test_what_the_added_profile_cannot_read_or_makes_wrong_is_an_error_record(
    config_file: Path,
) -> None:
    """Its own refusal names it and what it expected; a brew out of range is the native check's."""
    config = load_config(config_file, profiles=REGISTRY)
    nudges, errors = _replay(
        config,
        [
            _line("2026-11-24T16:05:00+01:00", {"status": "idle"}),
            _line("2026-11-24T16:06:00+01:00", {"product": "lungo", "ml": 5000}),
        ],
    )
    assert [n["rule"] for n in nudges] == ["winddown.stretch"]  # no brew reached the rules
    assert errors == [
        {
            "ts": "2026-11-24T16:05:00+01:00",
            "topic": TOPIC,
            "error": 'line 1: coffee_machine: no product in {"status": "idle"}; '
            'expected a JSON object such as {"product": "ristretto", "ml": 25}',
        },
        {
            "ts": "2026-11-24T16:06:00+01:00",
            "topic": TOPIC,
            "error": 'line 2: coffee_machine: it made {"drink": "coffee", "event": "brew", '
            '"volume_ml": 5000}, which the coach refused: volume_ml: must be above 0 and at '
            "most 2000, got 5000",
        },
    ]
