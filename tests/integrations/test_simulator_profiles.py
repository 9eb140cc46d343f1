"""`sleepcoach simulate` with profiled devices: the daemon's translate and tick, wake-ups."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coach import engine
from coach.action import Action
from coach.config import Config
from coach.decode.profile import registry
from coach.decode.profile.registry import DeviceProfile, ProfileResult
from coach.event import CoffeeBrewed, Event, MovementDetected
from coach.nudge import Nudge
from coach.state import CoachState
from integrations.cli import main
from integrations.config_file import load_config
from integrations.simulator import ErrorRecord, Output, ProfileWake, Simulation, write_run

PROFILES = Path(__file__).resolve().parent.parent / "scenarios" / "profiles"
CONFIG_FILE = PROFILES / "config.yaml"
PLUG = "shellyplusplugs-a8032ab12345/status/switch:0"
VIBRATION = "zigbee2mqtt/bed_vibration"


@pytest.fixture(scope="module")
def config() -> Config:
    """alex (bed 22:30, wake 06:30) with a Shelly Gen2 plug, Zigbee bed sensors and a watch."""
    return load_config(CONFIG_FILE)


class Recorder:
    """decide() wrapped: every (event, now) the simulator hands it, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[Event, datetime]] = []

    def __call__(self, state: CoachState, event: Event, now: datetime, cfg: Config) -> list[Action]:
        """Record, then decide as the core does."""
        self.seen.append((event, now))
        return engine.decide(state, event, now, cfg)

    def device_events(self) -> list[tuple[Event, datetime]]:
        """The events from devices (not the start, not the core's timers)."""
        return [(e, n) for e, n in self.seen if type(e).__name__ not in ("CoachStarted",)]


def line(ts: str, topic: str, payload: dict[str, Any] | str) -> str:
    """One scenario line."""
    return json.dumps({"ts": ts, "topic": topic, "payload": payload})


def watts(ts: str, power: float, channel: int = 0) -> str:
    """A Shelly Gen2 `status/switch:N` reading (tests/fixtures/devices/smart_plug_power.json)."""
    return line(ts, PLUG, {"id": channel, "output": True, "apower": power, "voltage": 231.0})


def vibration(ts: str, strength: int = 30) -> str:
    """A DJT11LM vibration report, as in tests/fixtures/devices/zigbee2mqtt_vibration.json."""
    payload = {"battery": 100, "linkquality": 128, "strength": strength, "action": "vibration"}
    return line(ts, VIBRATION, payload)


def run(
    config: Config, lines: list[str], recorder: Recorder | None = None
) -> tuple[Simulation, list[Output]]:
    """Feed lines and finish; the simulation and everything it produced."""
    sim = Simulation(config, decide=recorder)
    out: list[Output] = []
    for number, text in enumerate(lines, start=1):
        out.extend(sim.feed_line(text, number))
    out.extend(sim.finish())
    return sim, out


def run_file(config: Config, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A scenario file through `write_run`: (nudges, error records) as the JSON written."""
    out, err = io.StringIO(), io.StringIO()
    with (PROFILES / f"{name}.jsonl").open("rb") as lines:
        write_run(config, lines, out, err)
    return (
        [json.loads(x) for x in out.getvalue().splitlines()],
        [json.loads(x) for x in err.getvalue().splitlines()],
    )


def of(events: list[tuple[Event, datetime]], kind: type[Event]) -> list[tuple[Event, datetime]]:
    """The (event, now) pairs of one event type."""
    return [(e, n) for e, n in events if isinstance(e, kind)]


# -- the recorded scenarios --------------------------------------------------------------------


def test_a_late_espresso_on_a_shelly_plug_gets_the_cutoff_nudge(config: Config) -> None:
    """The plug's power trace becomes brews; the espresso closes at its wake-up, not at bedtime."""
    nudges, errors = run_file(config, "late_espresso_plug")
    assert errors == []
    cutoff = [n for n in nudges if n["rule"] == "caffeine.cutoff"]
    assert len(cutoff) == 1
    # Power fell to 2 W at 16:05:50 and the plug said nothing more: the tick 60 s later closed it.
    assert cutoff[0]["ts"] == "2026-11-24T16:06:50+01:00"
    assert cutoff[0]["evidence"]["drink"] == "espresso"
    assert cutoff[0]["evidence"]["drink_at"] == "2026-11-24T16:05:00+01:00"
    # The morning pot (6.5 min at about 1150 W) was a coffee, counted in the day's caffeine.
    last_call = next(n for n in nudges if n["rule"] == "caffeine.last_call")
    assert last_call["evidence"]["caffeine_mg_today"] > 0
    assert [n["ts"] for n in nudges] == sorted(n["ts"] for n in nudges)


def _bursts(name: str, gap_s: float = 10.0) -> int:
    """Vibration bursts in a scenario: reports more than `gap_s` after the previous one."""
    count, last = 0, None
    for text in (PROFILES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(text)
        payload = record["payload"]
        if record["topic"] != VIBRATION or not isinstance(payload, dict):
            continue
        if payload.get("action") not in ("vibration", "tilt"):
            continue
        ts = datetime.fromisoformat(record["ts"])
        if last is None or (ts - last).total_seconds() > gap_s:
            count += 1
        last = ts
    return count


def test_a_zigbee_vibration_night_reaches_the_night_summary(config: Config) -> None:
    """Every burst of the Aqara sensor is one movement in the morning's night summary."""
    nudges, _ = run_file(config, "zigbee_night")
    summaries = [n for n in nudges if n["rule"] == "twitch.night_summary"]
    assert len(summaries) == 1
    summary = summaries[0]
    assert summary["ts"] == "2026-11-24T06:30:00+01:00"
    assert summary["evidence"]["night"] == "2026-11-23"
    bursts = _bursts("zigbee_night")
    assert bursts > 40
    assert summary["evidence"]["movements"] == bursts
    assert summary["evidence"]["time_in_bed_min"] == 475  # 22:35 to 06:30, from the in-bed sensor


def test_garbage_on_a_profiled_topic_is_an_error_naming_the_profile(config: Config) -> None:
    """Bad payloads go to stderr as {ts, topic, error} and the night is scored all the same."""
    _, errors = run_file(config, "zigbee_night")
    assert len(errors) == 2
    for record in errors:
        assert list(record) == ["ts", "topic", "error"]
        assert record["topic"] == VIBRATION
        assert "zigbee2mqtt_vibration: " in record["error"]
        assert "expected a Zigbee2MQTT state object" in record["error"]
    assert "not JSON" in errors[0]["error"]
    assert "action must be a string or null, got 5" in errors[1]["error"]
    assert errors[0]["ts"] < errors[1]["ts"]


def test_the_command_line_replays_a_profiled_recording(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sleepcoach simulate` on the vibration night: exit 0, nudges out, errors on stderr."""
    out = tmp_path / "nudges.jsonl"
    scenario = PROFILES / "zigbee_night.jsonl"
    code = main(["simulate", "--config", str(CONFIG_FILE), str(scenario), "--out", str(out)])
    assert code == 0
    rules = [json.loads(x)["rule"] for x in out.read_text(encoding="utf-8").splitlines()]
    assert "twitch.night_summary" in rules
    stderr = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert [e["topic"] for e in stderr] == [VIBRATION, VIBRATION]


# -- wake-ups on the virtual clock -------------------------------------------------------------


def test_a_brew_known_only_through_tick_closes_after_the_last_line(config: Config) -> None:
    """Readings stop below the stop power at the file's end: the wake-up still closes the brew."""
    recorder = Recorder()
    lines = [
        watts("2026-11-24T16:05:00+01:00", 1350.2),
        watts("2026-11-24T16:05:30+01:00", 1280.0),
        watts("2026-11-24T16:05:50+01:00", 2.1),
    ]
    _, out = run(config, lines, recorder)
    brews = of(recorder.seen, CoffeeBrewed)
    assert len(brews) == 1
    brew, now = brews[0]
    assert isinstance(brew, CoffeeBrewed)
    assert brew.drink == "espresso"
    assert brew.ts == datetime.fromisoformat("2026-11-24T16:05:00+01:00")
    assert now == datetime.fromisoformat("2026-11-24T16:06:50+01:00")  # decided at the wake-up
    assert any(isinstance(o, Nudge) and o.rule == "caffeine.cutoff" for o in out)


def test_a_message_without_a_reading_leaves_the_wake_up_pending(config: Config) -> None:
    """A switch:1 status has no reading for us (no wake_at); the brew still closes at 16:06:50."""
    recorder = Recorder()
    lines = [
        watts("2026-11-24T16:05:00+01:00", 1350.2),
        watts("2026-11-24T16:05:50+01:00", 2.1),
        watts("2026-11-24T16:06:10+01:00", 2000.0, channel=1),
        line("2026-11-24T18:00:00+01:00", "tracker/alex", {"event": "sunlight", "minutes": 5}),
    ]
    _, out = run(config, lines, recorder)
    assert [o for o in out if isinstance(o, ErrorRecord)] == []
    brews = of(recorder.seen, CoffeeBrewed)
    assert [n for _, n in brews] == [datetime.fromisoformat("2026-11-24T16:06:50+01:00")]


def test_the_next_wake_at_of_a_device_replaces_its_pending_wake_up(config: Config) -> None:
    """Two reports 4 s apart make one burst, closed once, at the second one plus the gap."""
    recorder = Recorder()
    sim = Simulation(config, decide=recorder)
    sim.feed_line(vibration("2026-11-23T23:00:00+01:00"), 1)
    sim.feed_line(vibration("2026-11-23T23:00:04+01:00", strength=50), 2)
    wakes = [t for _, t in sim.timers._pending.values() if isinstance(t, ProfileWake)]
    assert wakes == [
        ProfileWake("bed_vibration", datetime.fromisoformat("2026-11-23T23:00:14+01:00"))
    ]
    sim.feed_line(
        line("2026-11-23T23:30:00+01:00", "tracker/alex", {"event": "stress", "level": 20})
    )
    moves = of(recorder.seen, MovementDetected)
    assert len(moves) == 1
    move, now = moves[0]
    assert isinstance(move, MovementDetected)
    assert move.ts == datetime.fromisoformat("2026-11-23T23:00:00+01:00")
    assert move.duration_s == 4.0
    assert move.intensity == 0.5
    assert now == datetime.fromisoformat("2026-11-23T23:00:14+01:00")
    assert not [t for _, t in sim.timers._pending.values() if isinstance(t, ProfileWake)]


def test_a_tick_at_exactly_wake_at_closes_the_vibration_burst(config: Config) -> None:
    """The wake-up the profile asked for ends the burst (it used to ask for itself again)."""
    device = next(d for d in config.devices if d.id == "bed_vibration")
    at = datetime.fromisoformat("2026-11-23T23:00:00+01:00")
    first = registry.translate(device, VIBRATION, b'{"action": "vibration"}', at, {})
    assert first.wake_at == at + timedelta(seconds=10)
    done = registry.tick(device, first.wake_at, first.state)
    assert len(done.events) == 1
    assert done.wake_at is None


def test_a_profile_error_at_a_wake_up_is_dated_then(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error from tick becomes an error record with the wake-up's time and the device's topic."""

    def failing(bound: DeviceProfile, now: datetime, state: dict[str, Any]) -> ProfileResult:
        return ProfileResult([], f"{bound.device.profile}: broken clock", state)

    monkeypatch.setattr(DeviceProfile, "tick", failing)
    _, out = run(
        config,
        [watts("2026-11-24T16:05:50+01:00", 1350.0), watts("2026-11-24T16:06:00+01:00", 2.0)],
    )
    errors = [o for o in out if isinstance(o, ErrorRecord)]
    assert errors == [
        ErrorRecord(
            "2026-11-24T16:07:00+01:00",
            PLUG,
            "profile wake-up of coffee: smart_plug_power: broken clock",
        )
    ]


def test_the_simulator_makes_the_daemons_translate_and_tick_calls(config: Config) -> None:
    """The events decided are a by-hand replay of the daemon's registry.translate and tick calls."""
    lines = (PROFILES / "late_espresso_plug.jsonl").read_text(encoding="utf-8").splitlines()
    recorder = Recorder()
    run(config, lines, recorder)
    # Everything from the profiled devices (the watch speaks the native format).
    decided = [e for e, _ in recorder.seen if e.source not in ("", "watch")]

    devices = {d.topic: d for d in config.devices}
    states: dict[str, dict[str, Any]] = {}
    wakes: dict[str, datetime] = {}
    expected: list[Event] = []

    def take(device_id: str, result: ProfileResult) -> None:
        states[device_id] = result.state
        expected.extend(result.events)
        if result.wake_at is not None:
            wakes[device_id] = result.wake_at

    for text in lines:
        record = json.loads(text)
        ts = datetime.fromisoformat(record["ts"])
        for device_id, wake in sorted(wakes.items(), key=lambda kv: kv[1]):
            if wake <= ts:
                del wakes[device_id]
                device = next(d for d in config.devices if d.id == device_id)
                take(device_id, registry.tick(device, wake, states.get(device_id, {})))
        device = devices[record["topic"]]
        payload = json.dumps(record["payload"], separators=(",", ":")).encode()
        if registry.is_profiled(device):
            result = registry.translate(
                device, record["topic"], payload, ts, states.get(device.id, {})
            )
            take(device.id, result)
    assert wakes == {}  # every brew was closed by a later line's time
    assert decided == expected
    assert len(expected) == 3  # the morning pot, the espresso, getting into bed


def test_make_simulate_points_at_a_scenario_and_config_that_exist() -> None:
    """The Makefile's `simulate` target replays files that are in the repository."""
    root = PROFILES.parent.parent.parent
    defaults = {}
    for text in (root / "Makefile").read_text(encoding="utf-8").splitlines():
        name, sep, value = text.partition("?=")
        if sep:
            defaults[name.strip()] = value.strip()
    assert (root / defaults["SCENARIO"]).is_file()
    assert load_config(root / defaults["SCENARIO_CONFIG"]).devices
