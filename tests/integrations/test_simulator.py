"""`sleepcoach simulate`: the recorded scenarios' nudges, the virtual clock, bad lines, the CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coach import engine
from coach.action import DropNudge
from coach.config import Config
from coach.event import CoffeeBrewed, Event, Timer
from coach.nudge import Nudge
from coach.state import CoachState, dump_state
from integrations import simulator
from integrations.cli import main
from integrations.config_file import load_config
from integrations.simulator import (
    ErrorRecord,
    Output,
    Simulation,
    TimerQueue,
    simulate,
    write_run,
)

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
CONFIG_FILE = SCENARIOS / "config.yaml"
SCENARIO_NAMES = sorted(p.stem for p in SCENARIOS.glob("*.jsonl") if ".expected" not in p.name)


@pytest.fixture(scope="module")
def config() -> Config:
    """The scenarios' config: alex, bed 22:30, wake 06:30, age 35, Europe/Berlin."""
    return load_config(CONFIG_FILE)


def run(config: Config, name: str) -> tuple[str, str]:
    """Run a scenario file through the library; (nudge lines, error lines) as written."""
    out, err = io.StringIO(), io.StringIO()
    with (SCENARIOS / f"{name}.jsonl").open("rb") as lines:
        write_run(config, lines, out, err)
    return out.getvalue(), err.getvalue()


def expected(name: str, kind: str = "expected") -> str:
    """An expected-output file's text; an absent file means no output at all."""
    path = SCENARIOS / f"{name}.{kind}.jsonl"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def lines_of(config: Config, *records: dict[str, Any] | str) -> list[Output]:
    """Simulate scenario lines given as dicts (or raw text)."""
    raw = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return list(simulate(config, raw))


def nudges(outputs: list[Output]) -> list[Nudge]:
    """The nudges sent, in order."""
    return [o for o in outputs if isinstance(o, Nudge)]


def errors(outputs: list[Output]) -> list[ErrorRecord]:
    """The error records, in order."""
    return [o for o in outputs if isinstance(o, ErrorRecord)]


def msg(ts: str, topic: str, payload: dict[str, Any] | str) -> dict[str, Any]:
    """One scenario line."""
    return {"ts": ts, "topic": topic, "payload": payload}


COFFEE = "home/kitchen/coffee"
TRACKER = "tracker/alex"
BED = "home/bedroom/bed"
COMMAND = "sleepcoach/alex/command"
HR = {"event": "heart_rate", "bpm": 70}
NO_DAYLIGHT = {"event": "sunlight", "minutes": 0}  # a reading of 0: the 15:00 check nudges


# -- the recorded scenarios ---------------------------------------------------------------------


def test_every_scenario_has_its_expected_nudges() -> None:
    assert len(SCENARIO_NAMES) >= 10
    for name in SCENARIO_NAMES:
        assert (SCENARIOS / f"{name}.expected.jsonl").exists(), name


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_scenario_produces_the_expected_nudges_and_errors(config: Config, name: str) -> None:
    out, err = run(config, name)
    assert out.splitlines() == expected(name).splitlines()
    assert err.splitlines() == expected(name, "expected-errors").splitlines()


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_scenario_nudges_come_out_in_time_order(config: Config, name: str) -> None:
    out, _ = run(config, name)
    stamps = [datetime.fromisoformat(json.loads(line)["ts"]) for line in out.splitlines()]
    assert stamps == sorted(stamps)


def rules_and_times(name: str) -> list[tuple[str, str]]:
    """(rule, local ts) of a scenario's expected nudges: what the scenario pins, readable."""
    return [(d["rule"], d["ts"]) for d in map(json.loads, expected(name).splitlines())]


def test_normal_weekday_gets_last_call_and_winddown_only() -> None:
    # Two coffees (07:10, 10:30) and 21 min of daylight; the run goes on until 06:35 + 12 h, and
    # the next day has no daylight reading: unknown, so no nudge at 15:00.
    assert rules_and_times("normal_weekday") == [
        ("caffeine.last_call", "2026-11-24T13:00:00+01:00"),
        ("winddown.stretch", "2026-11-24T21:45:00+01:00"),
        ("twitch.night_summary", "2026-11-25T06:30:00+01:00"),  # the bed felt two movements
    ]


def test_late_espresso_is_an_alert_with_the_predicted_bedtime_load() -> None:
    cutoff = json.loads(expected("late_espresso").splitlines()[1])
    assert cutoff["id"] == "caffeine.cutoff:alex:2026-11-24:1605"
    assert cutoff["severity"] == "alert"
    # 126 mg at 16:05 and 95 mg at 07:30, half-life 5 h, at 22:30.
    assert cutoff["evidence"]["predicted_mg_at_bedtime"] == pytest.approx(
        126 * 0.5 ** (6.4167 / 5) + 95 * 0.5 ** (15 / 5), abs=0.1
    )


def test_late_run_says_more_about_stretching_at_winddown() -> None:
    late, winddown = map(json.loads, expected("late_run").splitlines())
    assert (late["rule"], late["evidence"]["hours_before_bed"]) == ("exercise.late_intense", 2.25)
    assert winddown["evidence"]["late_workout_today"] is True
    assert "After today's late workout" in winddown["message"]


def test_a_vigorous_workout_into_the_last_hour_gets_the_tip_then_the_alert() -> None:
    # 21:00-21:50 HIIT, bedtime 22:30: a tip at its start, the alert when the last hour begins.
    got = [
        (d["rule"], d["severity"], d["ts"][11:16])
        for d in map(json.loads, expected("vigorous_last_hour").splitlines())
    ]
    assert got == [
        ("exercise.late_intense", "info", "21:00"),
        ("exercise.late_intense", "alert", "21:30"),
        ("winddown.stretch", "info", "21:45"),
    ]


def test_moderate_walk_and_light_stretching_get_no_exercise_nudge() -> None:
    assert rules_and_times("moderate_walk") == [("winddown.stretch", "2026-11-26T21:45:00+01:00")]


def test_person_in_bed_at_winddown_gets_no_winddown_but_a_recorded_drop(config: Config) -> None:
    with (SCENARIOS / "in_bed_at_winddown.jsonl").open("rb") as lines:
        outputs = list(simulate(config, lines))
    # The night's own summary, next morning, is the only nudge.
    assert [n.id for n in nudges(outputs)] == ["twitch.night_summary:alex:2026-11-27"]
    drops = [o for o in outputs if isinstance(o, DropNudge)]
    assert [(d.nudge_id, d.reason) for d in drops] == [
        ("winddown.stretch:alex:2026-11-27", "in_bed")
    ]


def test_snooze_repeats_and_ack_stops_repeats(config: Config) -> None:
    assert [n["id"] for n in map(json.loads, expected("snooze_and_ack").splitlines())] == [
        "sunlight.daily:alex:2026-11-23",
        "sunlight.daily:alex:2026-11-23:snooze1",  # snoozed 30 min at 15:10
        # snoozed again at 15:41, acked at 15:50: the 16:11 repeat is cancelled
        "winddown.stretch:alex:2026-11-23",
        "winddown.stretch:alex:2026-11-23:snooze1",  # snoozed 10 min at 21:50
        # snoozed 60 min at 22:05: due 23:05, in quiet hours, after its expiry: dropped
    ]
    with (SCENARIOS / "snooze_and_ack.jsonl").open("rb") as lines:
        drops = [o for o in simulate(config, lines) if isinstance(o, DropNudge)]
    assert [(d.nudge_id, d.reason) for d in drops] == [
        ("winddown.stretch:alex:2026-11-23:snooze2", "expired")
    ]


def test_changed_bedtime_moves_cutoff_last_call_and_winddown() -> None:
    assert rules_and_times("changed_bedtime") == [
        ("caffeine.last_call", "2026-11-26T14:00:00+01:00"),
        # the 14:20 coffee is before the 14:30 cutoff of a 23:30 bedtime (the 22:30 one's was
        # 13:30): no caffeine.cutoff
        ("winddown.stretch", "2026-11-26T22:45:00+01:00"),
    ]


@pytest.mark.parametrize(
    ("name", "change"), [("dst_autumn_week", "2026-10-25"), ("dst_spring_week", "2026-03-29")]
)
def test_dst_week_keeps_local_wall_clock_times(name: str, change: str) -> None:
    got = rules_and_times(name)
    assert len(got) == 14
    for rule, ts in got:
        local = datetime.fromisoformat(ts)
        want = "21:45" if rule == "winddown.stretch" else "13:00"
        assert local.strftime("%H:%M") == want, (rule, ts)
    offsets = {ts[:10]: ts[-6:] for _, ts in got}
    before, after = ("+02:00", "+01:00") if name.startswith("dst_autumn") else ("+01:00", "+02:00")
    assert {o for day, o in offsets.items() if day < change} == {before}
    assert {o for day, o in offsets.items() if day >= change} == {after}


def test_bad_lines_are_each_reported_and_good_lines_all_used(config: Config) -> None:
    out, err = run(config, "bad_lines")
    records = [json.loads(line) for line in err.splitlines()]
    assert all(list(r) == ["ts", "topic", "error"] for r in records)
    numbers = [int(r["error"].split(":")[0].removeprefix("line ")) for r in records]
    text = (SCENARIOS / "bad_lines.jsonl").read_text(encoding="utf-8").splitlines()
    good = {1, 10, 20, 21, 23, 25, 27}  # 10 is blank: skipped, not an error
    assert numbers == [n for n in range(1, len(text) + 1) if n not in good]
    # Every good line shows: the 07:30 coffee in the last call's figure, the raw-string daylight
    # payload by the absence of a 15:00 nudge, the 16:30 espresso, the run, and the bed at 21:40
    # by the wind-down that was not sent.
    sent = [json.loads(line) for line in out.splitlines()]
    assert [n["rule"] for n in sent] == [
        "caffeine.last_call",
        "caffeine.cutoff",
        "exercise.late_intense",
    ]
    assert sent[0]["evidence"]["caffeine_mg_today"] == 95.0
    assert sent[1]["evidence"]["dose_mg"] == 80.0


# -- determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dst_autumn_week", "bad_lines", "snooze_and_ack"])
def test_two_runs_are_byte_identical(config: Config, name: str) -> None:
    assert run(config, name) == run(config, name)


# -- the virtual clock and the timer queue ----------------------------------------------------


def timer(kind: str, at: str, night: str = "2026-11-24") -> Timer:
    """A timer of alex's."""
    return Timer(kind, "alex", datetime.fromisoformat(at), night)


def drain(queue: TimerQueue, until: str) -> list[str]:
    """Pop every timer due by `until`; their kinds in firing order."""
    limit = datetime.fromisoformat(until).timestamp()
    fired = []
    while (t := queue.pop_due(limit)) is not None:
        fired.append(t.kind)
    return fired


def test_timer_queue_fires_in_time_order_ties_in_scheduling_order() -> None:
    queue = TimerQueue()
    queue.schedule(timer("c", "2026-11-24T21:45:00+01:00"))
    queue.schedule(timer("a", "2026-11-24T14:00:00+01:00"))
    queue.schedule(timer("b", "2026-11-24T14:00:00+01:00"))
    assert drain(queue, "2026-11-24T13:59:59+01:00") == []
    assert drain(queue, "2026-11-24T14:00:00+01:00") == ["a", "b"]
    assert len(queue) == 1


def test_timer_queue_schedule_replaces_the_same_id_and_cancel_removes_it() -> None:
    queue = TimerQueue()
    queue.schedule(timer("w", "2026-11-24T21:45:00+01:00"))
    queue.schedule(timer("w", "2026-11-24T22:45:00+01:00"))  # same id, later
    queue.schedule(timer("x", "2026-11-24T20:00:00+01:00"))
    queue.cancel("x:alex:2026-11-24")
    queue.cancel("never-scheduled")
    assert drain(queue, "2026-11-24T22:00:00+01:00") == []
    limit = datetime.fromisoformat("2026-11-25T00:00:00+01:00").timestamp()
    fired = queue.pop_due(limit)
    assert fired is not None
    assert fired.at == datetime.fromisoformat("2026-11-24T22:45:00+01:00")
    assert queue.pop_due(limit) is None


@pytest.mark.parametrize(
    ("last_ts", "fires"),
    [
        pytest.param(
            "2026-11-24T03:00:00+01:00", True, id="a timer at exactly last ts + 12 h fires"
        ),
        pytest.param("2026-11-24T02:59:59+01:00", False, id="one a second later does not"),
    ],
)
def test_the_run_ends_at_the_last_ts_plus_12_hours(
    config: Config, last_ts: str, fires: bool
) -> None:
    # The 15:00 daylight check of 2026-11-24 (a reading of no daylight that day).
    out = lines_of(
        config, msg("2026-11-23T23:00:00+01:00", TRACKER, HR), msg(last_ts, TRACKER, NO_DAYLIGHT)
    )
    assert [n.rule for n in nudges(out)] == (["sunlight.daily"] if fires else [])


@pytest.mark.parametrize(
    ("start", "sent_at"),
    [
        pytest.param("21:35", "21:45", id="a start before a timer fires it on time"),
        pytest.param("21:55", "21:55", id="a start within 15 min after it fires it at once"),
        pytest.param("22:05", None, id="a start later than that skips it"),
    ],
)
def test_the_first_ts_starts_the_clock_and_plans_the_day(
    config: Config, start: str, sent_at: str | None
) -> None:
    # The wind-down of 2026-11-24 is due at 21:45.
    out = lines_of(config, msg(f"2026-11-24T{start}:00+01:00", TRACKER, HR))
    winddown = [n for n in nudges(out) if n.rule == "winddown.stretch"]
    if sent_at is None:
        assert winddown == []
    else:
        assert [n.ts.astimezone(config.tz).strftime("%H:%M") for n in winddown] == [sent_at]


def test_timers_due_at_a_lines_ts_fire_before_that_line(config: Config) -> None:
    # The wind-down is due at 21:45; a snooze of it stamped 21:45 finds it already sent.
    out = lines_of(
        config,
        msg("2026-11-24T20:00:00+01:00", TRACKER, HR),
        msg(
            "2026-11-24T21:45:00+01:00",
            COMMAND,
            {"command": "snooze", "nudge_id": "winddown.stretch:alex:2026-11-24", "minutes": 5},
        ),
    )
    assert errors(out) == []
    assert [n.id for n in nudges(out)] == [
        "winddown.stretch:alex:2026-11-24",
        "winddown.stretch:alex:2026-11-24:snooze1",
    ]
    assert nudges(out)[1].ts == datetime.fromisoformat("2026-11-24T21:50:00+01:00")


def test_a_line_older_than_the_clock_is_decided_at_the_clock(config: Config) -> None:
    out = lines_of(
        config,
        msg("2026-11-24T18:00:00+01:00", TRACKER, HR),
        msg("2026-11-24T16:05:00+01:00", COFFEE, {"event": "brew", "drink": "coffee"}),
    )
    (cutoff,) = [n for n in nudges(out) if n.rule == "caffeine.cutoff"]
    assert cutoff.ts == datetime.fromisoformat("2026-11-24T18:00:00+01:00")
    assert cutoff.evidence["drink_at"] == "2026-11-24T16:05:00+01:00"


def test_the_time_policy_holds_under_the_virtual_clock(config: Config) -> None:
    """As in the daemon: a payload `ts` more than 5 minutes after its line's arrival, or more
    than 48 hours before, is refused naming the range; a late one inside the window is used."""
    arrive = "2026-11-24T16:05:00+01:00"
    out = lines_of(
        config,
        msg(
            arrive, COFFEE, {"event": "brew", "drink": "coffee", "ts": "2027-11-24T16:05:00+01:00"}
        ),
        msg(
            arrive, COFFEE, {"event": "brew", "drink": "coffee", "ts": "2026-11-21T16:05:00+01:00"}
        ),
        msg(
            arrive, COFFEE, {"event": "brew", "drink": "coffee", "ts": "2026-11-24T15:00:00+01:00"}
        ),
    )
    assert [e.error.split(";")[0] for e in errors(out)] == [
        "line 1: ts: 2027-11-24T16:05:00+01:00 is in the future",
        "line 2: ts: 2026-11-21T16:05:00+01:00 is too old",
    ]
    assert all(
        e.error.endswith("here 2026-11-22T16:05:00+01:00 to 2026-11-24T16:10:00+01:00")
        for e in errors(out)
    )
    (cutoff,) = [n for n in nudges(out) if n.rule == "caffeine.cutoff"]
    assert cutoff.evidence["drink_at"] == "2026-11-24T15:00:00+01:00"


def test_a_payload_string_is_sent_as_raw_bytes(config: Config) -> None:
    good = msg("2026-11-24T16:05:00+01:00", COFFEE, '{"event": "brew", "drink": "coffee"}')
    latin1 = msg("2026-11-24T16:06:00+01:00", COFFEE, '{"event": "brew", "drink": "caf\udce9"}')
    out = lines_of(config, good, latin1)
    assert [n.rule for n in nudges(out) if n.rule.startswith("caffeine")] == ["caffeine.cutoff"]
    (err,) = errors(out)
    assert "not UTF-8" in err.error


def test_an_empty_scenario_yields_nothing(config: Config) -> None:
    assert lines_of(config) == []
    assert lines_of(config, "", "   ") == []


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=80) | st.binary(max_size=80), max_size=5))
def test_no_input_line_stops_a_run(lines: list[str | bytes]) -> None:
    config = load_config(CONFIG_FILE)
    good = json.dumps(msg("2026-11-24T16:05:00+01:00", COFFEE, {"event": "brew", "drink": "tea"}))
    outputs = list(simulate(config, [*lines, good]))
    assert [n.rule for n in nudges(outputs)][:1] == ["caffeine.cutoff"]


# -- a crash inside decide() ------------------------------------------------------------------


def crashing_on(espresso_at: str) -> Any:
    """A decide() that applies the event, then fails for the coffee brewed at `espresso_at`.

    It fails after the real decide() has changed the state, like a bug half-way through a rule.
    """
    real = engine.decide
    when = datetime.fromisoformat(espresso_at)

    def decide(state: CoachState, event: Event, now: datetime, config: Config) -> list[Any]:
        result = real(state, event, now, config)
        if isinstance(event, CoffeeBrewed) and event.ts == when:
            msg = "boom"
            raise RuntimeError(msg)
        return result

    return decide


@pytest.mark.parametrize("every", [1, 2, 3, 4096])
def test_a_crash_in_decide_skips_the_event_and_restores_the_state(
    config: Config, monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    monkeypatch.setattr(simulator, "CHECKPOINT_EVERY", every)
    scenario = (SCENARIOS / "late_espresso.jsonl").read_text(encoding="utf-8").splitlines()
    without = [line for line in scenario if "16:05" not in line]
    clean = Simulation(config)
    for number, line in enumerate(without, start=1):
        clean.feed_line(line, number)
    clean_out = [o for o in simulate(config, without) if not isinstance(o, ErrorRecord)]

    crashed = Simulation(config, decide=crashing_on("2026-11-24T16:05:00+01:00"))
    outputs: list[Output] = []
    for number, line in enumerate(scenario, start=1):
        outputs += crashed.feed_line(line, number)
    outputs += crashed.finish()
    clean.finish()

    (err,) = errors(outputs)
    assert err.ts == "2026-11-24T16:05:00+01:00"
    assert err.topic == COFFEE
    assert err.error.startswith("line 3: internal error in the coach on CoffeeBrewed(")
    assert "RuntimeError: boom" in err.error
    # Neither the espresso's dose nor its nudges survive; the run went on to the wind-down.
    assert [o for o in outputs if not isinstance(o, ErrorRecord)] == clean_out
    assert dump_state(crashed.state) == dump_state(clean.state)


# -- the command line -------------------------------------------------------------------------


def test_cli_writes_nudges_to_stdout_and_errors_to_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["simulate", "--config", str(CONFIG_FILE), str(SCENARIOS / "bad_lines.jsonl")])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out == expected("bad_lines")
    assert captured.err == expected("bad_lines", "expected-errors")


def test_cli_out_writes_the_file_and_nothing_to_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nudges.jsonl"
    scenario = str(SCENARIOS / "late_espresso.jsonl")
    code = main(["simulate", "--config", str(CONFIG_FILE), scenario, "--out", str(target)])
    captured = capsys.readouterr()
    assert code == 0
    assert (captured.out, captured.err) == ("", "")
    assert target.read_bytes() == (SCENARIOS / "late_espresso.expected.jsonl").read_bytes()


def test_cli_reads_stdin_for_dash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = (SCENARIOS / "late_run.jsonl").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["simulate", "--config", str(CONFIG_FILE), "-"]) == 0
    assert capsys.readouterr().out == expected("late_run")


@pytest.fixture
def broken_config(tmp_path: Path) -> Path:
    """A config whose person has no bedtime (line 3)."""
    path = tmp_path / "broken.yaml"
    path.write_text("timezone: Europe/Berlin\npeople:\n  - id: alex\n    wake: '06:30'\n")
    return path


@pytest.mark.parametrize(
    ("case", "code", "says"),
    [
        pytest.param(
            "missing config", 2, "cannot read the file", id="an unreadable config exits 2"
        ),
        pytest.param(
            "broken config", 2, ":3: people[0]", id="an invalid config exits 2 naming the line"
        ),
        pytest.param("missing scenario", 1, "cannot read", id="an unreadable scenario exits 1"),
        pytest.param("unwritable out", 1, "cannot write", id="an unwritable --out exits 1"),
        pytest.param("only bad lines", 0, "line 1:", id="a scenario of bad lines exits 0"),
    ],
)
def test_cli_exit_codes(
    tmp_path: Path,
    broken_config: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    code: int,
    says: str,
) -> None:
    config, scenario = str(CONFIG_FILE), str(SCENARIOS / "late_run.jsonl")
    extra: list[str] = []
    if case == "missing config":
        config = str(tmp_path / "nope.yaml")
    elif case == "broken config":
        config = str(broken_config)
    elif case == "missing scenario":
        scenario = str(tmp_path / "nope.jsonl")
    elif case == "unwritable out":
        extra = ["--out", str(tmp_path / "no-such-dir" / "out.jsonl")]
    else:
        bad = tmp_path / "bad.jsonl"
        bad.write_text("not json\n{}\n")
        scenario = str(bad)
    assert main(["simulate", "--config", config, scenario, *extra]) == code
    assert says in capsys.readouterr().err


def test_cli_without_a_config_uses_the_example_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As `run` does (tests/integrations/test_commands_config.py compares the nudges)."""
    monkeypatch.delenv("SLEEPCOACH_CONFIG", raising=False)
    assert main(["simulate", str(SCENARIOS / "late_run.jsonl")]) == 0
    assert "no --config given: using the example config" in capsys.readouterr().err


def test_the_console_script_replays_a_scenario(tmp_path: Path) -> None:
    script = str(Path(sys.executable).with_name("sleepcoach"))  # installed beside this Python
    target = tmp_path / "out.jsonl"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # another hash seed than the expected file's
    result = subprocess.run(
        [
            script,
            "simulate",
            "--config",
            str(CONFIG_FILE),
            str(SCENARIOS / "snooze_and_ack.jsonl"),
            "--out",
            str(target),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == expected("snooze_and_ack", "expected-errors")
    assert target.read_bytes() == (SCENARIOS / "snooze_and_ack.expected.jsonl").read_bytes()


def test_a_long_run_forgets_message_keys_after_48_hours_even_out_of_order(config: Config) -> None:
    # Three days of heart rates every 10 minutes with the watch's own ts; every fifth one is
    # delivered 25 minutes late (a buffered reading), so keys arrive out of time order.
    start = datetime.fromisoformat("2026-11-23T12:05:00+01:00")
    lines, stamps = [], []
    for i in range(3 * 144):
        measured = start + timedelta(minutes=10 * i)
        arrived = measured + timedelta(minutes=25 if i % 5 == 0 else 0)
        payload = {"event": "heart_rate", "bpm": 60 + i % 7, "ts": measured.isoformat()}
        lines.append((arrived, json.dumps(msg(arrived.isoformat(), TRACKER, payload))))
        stamps.append(measured.timestamp())
    last = datetime.fromisoformat("2026-11-26T12:00:00+01:00")  # housekeeping runs at this event
    lines.append((last, json.dumps(msg(last.isoformat(), TRACKER, HR))))
    sim = Simulation(config)
    for arrived, line in sorted(lines, key=lambda x: x[0]):
        if arrived <= last:
            sim.feed_line(line)
    kept = list(sim.state.seen.values())
    assert kept == sorted(kept)
    delivered = [t for t, (arrived, _) in zip(stamps, lines, strict=False) if arrived <= last]
    assert len(kept) == sum(1 for t in delivered if last.timestamp() - t < 48 * 3600)
    assert all(last.timestamp() - t < 48 * 3600 for t in kept)
