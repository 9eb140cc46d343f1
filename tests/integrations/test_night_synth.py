"""Tests for integrations.night_synth: seeded determinism, consistent truth, scenario files."""

from __future__ import annotations

import ast
import io
import itertools
import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

import integrations.night_synth as synth
from coach.limb_movement import Movement, find_series
from integrations.night_synth import (
    NOISE_PROFILES,
    NightSpec,
    PlmTrain,
    SynthNight,
    generate_night,
    nightly_starts,
    random_night,
    random_spec,
    scenario_lines,
    write_scenario,
)

ZONE = ZoneInfo("Europe/Berlin")
START = datetime(2026, 11, 24, 22, 30, tzinfo=ZONE)


def short_spec(**changes: object) -> NightSpec:
    """A 1.5-hour night with nothing random but the noise, unless told otherwise."""
    spec = NightSpec(
        start=START,
        wake=START + timedelta(hours=1, minutes=30),
        bed_entry_s=60.0,
        settle_s=300.0,
        final_exit_s=5400.0,
        hypnic_jerks=0,
        twitches_per_hour=0.0,
        posture_changes_per_hour=0.0,
        noise=replace(NOISE_PROFILES["low"], bumps_per_hour=0.0),
        seed=1,
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def full_night() -> SynthNight:
    """One drawn, full-length night with raw samples (generated once for the module)."""
    return random_night(7, START, noise="high", plm_index=30.0, hypnic_jerks=2)


def test_the_generator_does_not_import_coach() -> None:
    tree = ast.parse(Path(synth.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] == "coach"}


def test_the_same_seed_gives_the_same_night() -> None:
    a, b = generate_night(short_spec()), generate_night(short_spec())
    assert a.accel is not None
    assert b.accel is not None
    assert np.array_equal(a.accel, b.accel)
    assert (a.events, a.truth, a.movements) == (b.events, b.truth, b.movements)
    assert random_spec(3, START) == random_spec(3, START)


def test_another_seed_gives_another_night() -> None:
    a, b = generate_night(short_spec()), generate_night(short_spec(seed=2))
    assert a.accel is not None
    assert b.accel is not None
    assert not np.array_equal(a.accel, b.accel)
    assert random_spec(3, START) != random_spec(4, START)


@pytest.mark.parametrize(
    ("interval_s", "count", "expected"),
    [
        pytest.param(20.0, 30, 30, id="a clean train of 30 LMs every 20 s is 30 PLMs"),
        pytest.param(20.0, 3, 0, id="a train of 3 LMs is no series"),
        pytest.param(120.0, 10, 0, id="LMs two minutes apart are no series"),
        pytest.param(7.0, 10, 0, id="LMs 7 s apart are too close for WASM"),
    ],
)
def test_truth_of_a_single_train(interval_s: float, count: int, expected: int) -> None:
    spec = short_spec(plm_trains=(PlmTrain(600.0, interval_s, count, jitter=0.0),))
    night = generate_night(spec, with_accel=False)
    truth = night.truth
    assert len(truth.plm_onsets) == expected
    assert truth.plm_index == pytest.approx(expected / (truth.asleep_s / 3600))
    plms = [m for m in night.movements if m.kind == "plm"]
    assert len(plms) == count
    assert all(m.is_limb_movement for m in plms)


def test_aasm_truth_accepts_shorter_intervals() -> None:
    spec = short_spec(plm_trains=(PlmTrain(600.0, 7.0, 10, jitter=0.0),))
    truth = generate_night(spec, with_accel=False).truth
    assert truth.plm_index == 0.0
    assert truth.plm_index_aasm * truth.asleep_s / 3600 == pytest.approx(10)


def test_truth_agrees_with_the_coach_scorer(full_night: SynthNight) -> None:
    truth = full_night.truth
    body = [m for m in full_night.movements if m.is_body]
    onset = truth.sleep_onset.timestamp()
    counted = 0
    for start, end in truth.bed_stays:
        stay = [
            Movement(m.onset.timestamp(), m.duration_s, m.intensity)
            for m in body
            if start.timestamp() <= m.onset.timestamp() < end.timestamp()
        ]
        counted += sum(1 for s in find_series(stay) for i in s if stay[i].onset >= onset)
    assert counted == len(truth.plm_onsets) > 0


def test_truth_is_consistent(full_night: SynthNight) -> None:
    truth, spec = full_night.truth, full_night.spec
    assert set(truth.plm_onsets) <= set(truth.lm_onsets)
    assert truth.hypnic_jerks == spec.hypnic_jerks == 2
    first_stay = truth.bed_stays[0]
    assert first_stay[0] <= truth.sleep_onset < first_stay[1]
    assert all(
        0 <= (j - truth.sleep_onset).total_seconds() <= 900 for j in truth.hypnic_jerk_onsets
    )
    assert truth.asleep_s < truth.time_in_bed_s
    assert truth.plm_index == pytest.approx(len(truth.plm_onsets) / (truth.asleep_s / 3600))
    # Drawn for 30/h; jitter, posture changes and trips out of bed move the truth a little.
    assert 20 < truth.plm_index < 35


def test_raw_samples_look_like_a_bed_sensor(full_night: SynthNight) -> None:
    accel = full_night.accel
    assert accel is not None
    assert accel.shape[1] == 3
    seconds = accel.shape[0] / full_night.rate_hz
    assert full_night.spec.final_exit_s + 60 <= seconds <= full_night.spec.final_exit_s + 300
    assert np.median(accel[:, 2]) == pytest.approx(1.0, abs=0.01)
    assert abs(np.median(accel[:, 0])) < 0.1
    assert abs(np.median(accel[:, 1])) < 0.1


def test_noise_levels_are_ordered() -> None:
    def quiet_sd(level: str) -> float:
        night = generate_night(short_spec(noise=NOISE_PROFILES[level]))
        assert night.accel is not None
        return float(np.std(night.accel[:1500, 0]))  # the first 30 s: nobody in bed yet

    assert quiet_sd("low") < quiet_sd("medium") < quiet_sd("high")


def test_events_are_what_a_bed_device_publishes(full_night: SynthNight) -> None:
    events = full_night.events
    times = [datetime.fromisoformat(e["ts"]) for e in events]
    assert all(t.utcoffset() is not None for t in times)
    assert times == sorted(times)
    occupancy = [e["occupied"] for e in events if e["event"] == "occupancy"]
    assert occupancy[0] is True
    assert occupancy[-1] is False
    assert all(a != b for a, b in itertools.pairwise(occupancy))
    moves = [e for e in events if e["event"] == "movement"]
    assert moves
    assert all(0.0 <= e["intensity"] <= 1.0 and e["duration_s"] > 0 for e in moves)
    assert {e["event"] for e in events} == {"movement", "occupancy"}


def test_a_dst_night_keeps_elapsed_time() -> None:
    start = datetime(2026, 10, 24, 22, 30, tzinfo=ZONE)
    spec = replace(short_spec(), start=start, wake=start + timedelta(hours=2))
    night = generate_night(spec)
    assert night.accel is not None
    first_event = datetime.fromisoformat(night.events[0]["ts"])
    assert first_event.timestamp() - start.timestamp() == pytest.approx(60.0, abs=1.0)
    starts = nightly_starts(datetime(2026, 10, 24, 22, 30, tzinfo=ZONE), 3)
    assert [s.strftime("%H:%M %z") for s in starts] == ["22:30 +0200", "22:30 +0100", "22:30 +0100"]


def test_scenario_lines_follow_the_contract() -> None:
    night = generate_night(short_spec(plm_trains=(PlmTrain(600.0, 20.0, 8),)))
    buffer = io.StringIO()
    written = write_scenario(buffer, night, topic="home/bedroom/bed")
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert written == len(lines) == len(night.events)
    assert all(set(line) == {"ts", "topic", "payload"} for line in lines)
    assert all(line["topic"] == "home/bedroom/bed" for line in lines)
    assert all(line["payload"]["ts"] == line["ts"] for line in lines)
    stamps = [datetime.fromisoformat(line["ts"]).timestamp() for line in lines]
    assert stamps == sorted(stamps)


def test_scenario_with_raw_samples(tmp_path: Path) -> None:
    night = generate_night(short_spec(final_exit_s=400.0))
    assert night.accel is not None
    path = tmp_path / "night.jsonl"
    written = write_scenario(path, [night], topic="bed", include_accel=True, accel_chunk_s=2.0)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    accel = [line["payload"] for line in lines if line["payload"]["event"] == "accel"]
    assert written == len(lines) == len(night.events) + len(accel)
    assert {p["rate_hz"] for p in accel} == {50.0}
    assert sum(len(p["samples"]) for p in accel) == night.accel.shape[0]
    assert all(len(p["samples"][0]) == 3 for p in accel)
    assert len(scenario_lines(night, "bed")) == len(night.events)


def test_specs_refuse_naive_times() -> None:
    with pytest.raises(ValueError, match="aware"):
        short_spec(start=START.replace(tzinfo=None))
