"""The nights feature through `sleepcoach simulate`: synthetic nights in, the nudges they produce.

The `tests/scenarios/nights_*.jsonl` files are seeded synthetic nights from
`integrations.night_synth` (native bed events, the truth known), plus a few command and tracker
lines; `test_simulator.py` pins their whole output against the `.expected.jsonl` files. Here the
nights feature's part of it is spelled out: which rule fires on which morning, and which stays
quiet. Regenerate the files (after a deliberate change to the generator) with
`python -m tests.integrations.test_night_scenarios`, then review the expected files' diff.
"""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coach.action import Action, RecordNight
from coach.config import Config
from coach.engine import decide
from coach.event import Event
from coach.nudge import Nudge
from coach.state import CoachState
from integrations.config_file import load_config
from integrations.simulator import Simulation, write_run

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
BED = "home/bedroom/bed"
COMMAND = "sleepcoach/alex/command"
TRACKER = "tracker/alex"
RULES = ("twitch.", "insight.")


@pytest.fixture(scope="module")
def config() -> Config:
    """The scenarios' config: alex, bed 22:30, wake 06:30, Europe/Berlin."""
    return load_config(SCENARIOS / "config.yaml")


def night_nudges(config: Config, name: str) -> list[dict[str, Any]]:
    """The nights feature's nudges of a scenario, as written by `sleepcoach simulate`."""
    out, err = io.StringIO(), io.StringIO()
    with (SCENARIOS / f"{name}.jsonl").open("rb") as lines:
        write_run(config, lines, out, err)
    assert err.getvalue() == ""
    nudges = [json.loads(line) for line in out.getvalue().splitlines()]
    return [n for n in nudges if n["rule"].startswith(RULES)]


def ids_and_times(nudges: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(id, local ts) of each nudge."""
    return [(n["id"], n["ts"]) for n in nudges]


def test_a_quiet_week_gets_a_summary_each_morning_and_nothing_else(config: Config) -> None:
    nudges = night_nudges(config, "nights_quiet_week")
    assert [n["rule"] for n in nudges] == ["twitch.night_summary"] * 7
    assert [n["id"] for n in nudges] == [
        f"twitch.night_summary:alex:2026-11-{d}" for d in range(23, 30)
    ]
    for nudge in nudges:
        assert nudge["evidence"]["plm_index"] < 5  # truth: 0/h
        assert "Screening, not a diagnosis." in nudge["message"]
        assert "above 15/h" not in nudge["message"]


def test_a_week_of_plm_trains_gets_summaries_and_one_check_in_not_a_specialist(
    config: Config,
) -> None:
    nudges = night_nudges(config, "nights_plm_week")
    summaries = [n for n in nudges if n["rule"] == "twitch.night_summary"]
    assert len(summaries) == 7
    for nudge in summaries:
        assert 25 <= nudge["evidence"]["plm_index"] <= 35  # truth: 30/h
        assert "above the 15 an hour" in nudge["message"]
        assert "specialist" not in nudge["message"]
    # The third night above 15/h closes on Thursday morning; not again within 7 days.
    (frequent,) = [n for n in nudges if n["rule"] == "twitch.frequent"]
    assert frequent["id"] == "twitch.frequent:alex:2026-11-25"
    assert frequent["ts"].startswith("2026-11-26T")
    assert frequent["evidence"]["nights_above"] == 3
    # No one answered the check-in: the pattern alone is common, asked about, no specialist.
    assert frequent["severity"] == "info"
    assert frequent["evidence"]["specialist"] is False
    assert "specialist" not in frequent["message"]


def test_daytime_twitching_reported_twice_suggests_a_blood_test(config: Config) -> None:
    nudges = night_nudges(config, "nights_daytime")
    (daytime,) = [n for n in nudges if n["rule"] == "twitch.daytime"]
    # Logged at noon on Tuesday and Wednesday (the nights' hypnic jerks do not count).
    assert ids_and_times([daytime]) == [
        ("twitch.daytime:alex:2026-11-25", "2026-11-25T12:00:00+01:00")
    ]
    assert daytime["evidence"]["daytime_twitching_days"] == ["2026-11-24", "2026-11-25"]
    assert "blood test" in daytime["message"]
    assert [n["rule"] for n in nudges if n["rule"] != "twitch.daytime"] == [
        "twitch.night_summary"
    ] * 3


def test_late_workouts_that_go_with_worse_nights_show_up_in_the_sunday_insight(
    config: Config,
) -> None:
    nudges = night_nudges(config, "nights_insight")
    (insight,) = [n for n in nudges if n["rule"] == "insight.correlation"]
    # 15 nights stored by Sunday 2026-11-22 10:00 (one Sunday earlier there were only 8).
    assert ids_and_times([insight]) == [
        ("insight.correlation:alex:2026-11-22", "2026-11-22T10:00:00+01:00")
    ]
    findings = {(f["factor"], f["outcome"]): f for f in insight["evidence"]["findings"]}
    plm = findings[("late_workout", "plm_index")]
    assert plm["nights_with"] == 5
    assert plm["nights_without"] == 10
    assert plm["difference"] > 25  # truth: 40/h after a late workout, 5/h otherwise
    assert plm["q_value"] <= 0.10
    assert "was associated with a higher PLM-like index" in insight["message"]
    assert "on the 5 nights with it" in insight["message"]
    assert "on the 10 nights without" in insight["message"]
    assert "not proof of cause" in insight["message"]
    assert len([n for n in nudges if n["rule"] == "twitch.night_summary"]) == 15


def test_each_night_the_simulator_closes_is_recorded_with_its_summary_figures(
    config: Config,
) -> None:
    """The simulator runs the daemon's decide(): every night it closes comes out as the
    RecordNight the daemon stores, with the figures of that morning's summary."""
    records: list[RecordNight] = []

    def recording(state: CoachState, event: Event, now: datetime, cfg: Config) -> list[Action]:
        actions = decide(state, event, now, cfg)
        records.extend(a for a in actions if isinstance(a, RecordNight))
        return actions

    run = Simulation(config, decide=recording)
    outputs = []
    with (SCENARIOS / "nights_plm_week.jsonl").open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            outputs += run.feed_line(line, number)
    outputs += run.finish()
    summaries = {
        o.evidence["night"]: o.evidence
        for o in outputs
        if isinstance(o, Nudge) and o.rule == "twitch.night_summary"
    }
    scored = {r.night: r.summary for r in records if r.summary["status"] == "ok"}
    assert len(scored) == 7
    assert sorted(scored) == sorted(summaries)
    for night, summary in scored.items():
        evidence = summaries[night]
        assert summary["limb_movement_index"] == evidence["plm_index"]
        assert (summary["plm_count"], summary["series"]) == (
            evidence["plm_count"],
            evidence["plm_series"],
        )
        assert summary["hypnic_jerks"] == evidence["hypnic_jerks"]
        assert summary["movements"] == evidence["movements"]
        assert summary["time_in_bed_min"] == evidence["time_in_bed_min"]
        drawn = summary["timeline"]
        assert drawn["series"]  # a PLM train every night
        assert sum(s[2] for s in drawn["series"]) == summary["plm_count"]
        assert len(drawn["movements"]) + drawn["omitted"] == summary["movements"]


def test_sleepcoach_synth_writes_a_scenario_the_simulator_scores(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("integrations.night_synth")
    from integrations.cli import main as cli  # noqa: PLC0415

    out = tmp_path / "two.jsonl"
    args = ["synth", "--out", str(out), "--nights", "2", "--seed", "3", "--plm-index", "30"]
    assert cli(args) == 0
    report = capsys.readouterr().out.splitlines()
    assert report[0].startswith("night 1 (seed 3): in bed ")
    assert re.search(r"PLM index \d+\.\d/h \(WASM\), \d+ hypnic jerks$", report[0])
    assert report[-1].startswith("wrote ")
    assert report[-1].endswith(" lines, 2 nights")
    lines = out.read_text(encoding="utf-8").splitlines()
    assert int(report[-1].split()[1]) == len(lines)
    sink, err = io.StringIO(), io.StringIO()
    with out.open("rb") as scenario:
        write_run(config, scenario, sink, err)
    assert err.getvalue() == ""
    rules = [json.loads(line)["rule"] for line in sink.getvalue().splitlines()]
    assert rules.count("twitch.night_summary") == 2
    assert cli(["synth", "--out", str(out), "--nights", "0"]) == 2


# -- building the scenario files -------------------------------------------------------------------


def _line(ts: datetime, topic: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"ts": ts.isoformat(), "topic": topic, "payload": payload}


def build(name: str) -> list[dict[str, Any]]:
    """The lines of one nights scenario (needs `integrations.night_synth` and numpy)."""
    from integrations import night_synth  # noqa: PLC0415  (only to regenerate the files)

    first = datetime.fromisoformat("2026-11-23T21:30:00+01:00")  # a Monday
    extra: list[dict[str, Any]] = []
    specs: list[dict[str, Any]]
    if name == "nights_quiet_week":
        specs = [{"plm_index": 0.0, "noise": "low"} for _ in range(7)]
    elif name == "nights_plm_week":
        specs = [{"plm_index": 30.0} for _ in range(7)]
    elif name == "nights_daytime":
        specs = [{"plm_index": 0.0, "hypnic_jerks": 3}, {"plm_index": 0.0}, {"plm_index": 0.0}]
        for day in ("2026-11-24", "2026-11-25"):
            at = datetime.fromisoformat(f"{day}T12:00:00+01:00")
            extra.append(_line(at, COMMAND, {"command": "log", "what": "daytime_twitching"}))
    elif name == "nights_insight":
        first = datetime.fromisoformat("2026-11-07T21:30:00+01:00")  # a Saturday
        specs = []
        for i in range(15):
            exposed = i % 3 == 0
            specs.append({"plm_index": 40.0 if exposed else 5.0})
            if exposed:
                evening = first + timedelta(days=i)
                workout = {"event": "workout_start", "activity": "running", "intensity": "vigorous"}
                extra.append(_line(evening - timedelta(minutes=60), TRACKER, workout))
                extra.append(
                    _line(evening - timedelta(minutes=20), TRACKER, {"event": "workout_end"})
                )
    else:
        raise ValueError(name)
    starts = night_synth.nightly_starts(first, len(specs))
    lines: list[dict[str, Any]] = []
    for i, (start, spec) in enumerate(zip(starts, specs, strict=True)):
        night = night_synth.random_night(100 + i, start, with_accel=False, **spec)
        lines += night_synth.scenario_lines(night, BED)
    lines += extra
    lines.sort(key=lambda line: datetime.fromisoformat(line["ts"]).timestamp())
    return lines


NAMES = ("nights_quiet_week", "nights_plm_week", "nights_daytime", "nights_insight")


def main() -> None:
    """Write the nights scenarios and their expected outputs."""
    config = load_config(SCENARIOS / "config.yaml")
    for name in NAMES:
        text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in build(name))
        (SCENARIOS / f"{name}.jsonl").write_text(text, encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        write_run(config, io.StringIO(text), out, err)
        (SCENARIOS / f"{name}.expected.jsonl").write_text(out.getvalue(), encoding="utf-8")


if __name__ == "__main__":
    main()
