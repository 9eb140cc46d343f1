"""Every command reads the config `run` would use: the file given, else $SLEEPCOACH_CONFIG, else
the example config; and `devices listen` says what a message becomes in the config's time."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from integrations.cli import main
from integrations.config_file import EXAMPLE_CONFIG, choose_config, load_config
from integrations.devices import Interpreter

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "scenarios" / "late_espresso.jsonl"
BREW = b'{"event": "brew", "drink": "coffee", "volume_ml": 240}'
AT = datetime(2026, 11, 24, 15, 5, 7, tzinfo=ZoneInfo("UTC"))


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own environment must not choose the config of these tests."""
    for name in ("SLEEPCOACH_CONFIG", "SLEEPCOACH_STORAGE_URL", "SLEEPCOACH_MQTT_URL"):
        monkeypatch.delenv(name, raising=False)


def _config(tmp_path: Path, storage: Path) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            timezone: America/New_York
            storage: {{url: "sqlite:///{storage}"}}
            people: [{{id: kim, bedtime: "23:00", wake: "07:00"}}]
            devices: [{{id: pot, kind: coffee_maker, topic: home/kitchen/coffee, person: kim}}]
            """
        ),
        encoding="utf-8",
    )
    return path


def test_the_choice_is_the_file_given_else_the_environment_else_the_example() -> None:
    assert choose_config("a.yaml", {"SLEEPCOACH_CONFIG": "b.yaml"}).path == "a.yaml"
    from_env = choose_config(None, {"SLEEPCOACH_CONFIG": "b.yaml"})
    assert (from_env.path, from_env.notice) == (
        "b.yaml",
        "no --config given: using $SLEEPCOACH_CONFIG (b.yaml)",
    )
    example = choose_config(None, {})
    assert example.path == str(EXAMPLE_CONFIG)
    assert example.notice == f"no --config given: using the example config {EXAMPLE_CONFIG}"


def test_check_config_without_a_file_checks_the_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check-config"]) == 0
    out, err = capsys.readouterr()
    assert out == "OK: 2 people, 5 devices\n"
    assert err == f"no --config given: using the example config {EXAMPLE_CONFIG}\n"


def test_check_config_without_a_file_checks_sleepcoach_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, tmp_path / "coach.db")
    monkeypatch.setenv("SLEEPCOACH_CONFIG", str(path))
    assert main(["check-config"]) == 0
    assert capsys.readouterr().out == "OK: 1 person, 1 device\n"


def test_simulate_without_a_config_simulates_the_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same nudges as with `--config` naming the example; the notice on stderr only."""
    assert main(["simulate", "--config", str(EXAMPLE_CONFIG), str(SCENARIO)]) == 0
    named = capsys.readouterr().out
    assert main(["simulate", str(SCENARIO)]) == 0
    out, err = capsys.readouterr()
    assert '"rule": "caffeine.cutoff"' in named
    assert out == named
    assert err.startswith(f"no --config given: using the example config {EXAMPLE_CONFIG}\n")


def test_report_without_a_config_reads_the_storage_of_sleepcoach_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """And SLEEPCOACH_STORAGE_URL replaces the file's storage, as it does for `run`."""
    monkeypatch.setenv("SLEEPCOACH_CONFIG", str(_config(tmp_path, tmp_path / "coach.db")))
    # Neither database exists: the report says which one it read (no history there: exit 1).
    assert main(["report", "--out", str(tmp_path / "out")]) == 1
    assert f"{tmp_path / 'coach.db'} does not exist" in capsys.readouterr().err
    monkeypatch.setenv("SLEEPCOACH_STORAGE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    assert main(["report", "--out", str(tmp_path / "out")]) == 1
    assert f"{tmp_path / 'other.db'} does not exist" in capsys.readouterr().err


def test_listen_shows_a_brew_of_the_configs_device_in_its_zone_with_its_caffeine(
    tmp_path: Path,
) -> None:
    """Not `caffeine_mg=None` at `+00:00`: the mg the coach counts, at New York's wall clock."""
    config = load_config(_config(tmp_path, tmp_path / "coach.db"), env={})
    lines = Interpreter(config, None, "home/kitchen/coffee").message(
        "home/kitchen/coffee", BREW, AT
    )
    assert lines == [
        f"10:05:07 home/kitchen/coffee {BREW.decode()}",
        "  → CoffeeBrewed for kim at 2026-11-24 10:05:07 EST: drink=coffee volume_ml=240 "
        "caffeine_mg=95 (from the drink and volume)",
    ]


def test_listen_shows_the_caffeine_a_brew_gives_itself() -> None:
    config = load_config(EXAMPLE_CONFIG, env={})
    payload = b'{"event": "brew", "drink": "espresso", "caffeine_mg": 120}'
    (_, event) = Interpreter(config, None, "home/kitchen/coffee").message(
        "home/kitchen/coffee", payload, AT
    )
    assert event == (
        "  → CoffeeBrewed for alex at 2026-11-24 16:05:07 CET: drink=espresso caffeine_mg=120"
    )


@pytest.mark.parametrize(
    ("payload", "event"),
    [
        pytest.param(BREW, "CoffeeBrewed", id="a brew is a coffee maker's"),
        pytest.param(b'{"event": "heart_rate", "bpm": 70}', "HeartRateMeasured", id="a tracker"),
        pytest.param(b'{"event": "occupancy", "occupied": true}', "OccupancyChanged", id="a bed"),
    ],
)
def test_a_topic_of_no_configured_device_is_read_as_the_payload_says(
    payload: bytes, event: str
) -> None:
    """The README's coffee on a topic the config does not know is a coffee, not a refused
    bed-sensor message."""
    config = load_config(EXAMPLE_CONFIG, env={})
    (_, line) = Interpreter(config, None, "garage/#").message("garage/thing", payload, AT)
    assert line.startswith(f"  → {event} for you at 2026-11-24 16:05:07 CET: "), line
    assert "None" not in line


def test_a_payload_that_names_no_event_is_still_refused_plainly() -> None:
    (_, line) = Interpreter(None, None, "x").message("x", b'{"drink": "coffee"}', AT)
    assert line.startswith("  refused (listen, native bed_motion): "), line
