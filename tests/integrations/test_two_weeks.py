"""Two weeks of a household, pinned: every nudge the coach sent, by time, id and title.

The scenario (tests/scenarios/two_weeks) is the household of bench/week.py over two weeks (seed
7): alex and sam, each with a bed sensor, a coffee maker and a watch, coffees in the morning and
after lunch and a few too late, moderate and vigorous workouts (one still going an hour before
bed), two stressful evenings a week, daylight readings (sam's watch only at the weekend), alcohol
logged now and then. Every message in the expected output was read by hand; `NUDGES` pins what
went out, and the expected file pins every word and figure.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

from coach.rule import ROUTINE_RULES
from integrations.config_file import load_config
from integrations.simulator import write_run
from tests.core.test_messages import VOICE

HERE = Path(__file__).resolve().parent.parent / "scenarios" / "two_weeks"

#: (local time sent, id, title) of every nudge, in the order they went out.
NUDGES = [
    ("2026-11-23T07:45", "checkin.morning:sam:2026-11-23", "Morning check-in"),
    ("2026-11-23T13:00", "caffeine.last_call:alex:2026-11-23", "Caffeine cutoff at 13:30"),
    ("2026-11-23T13:45", "caffeine.last_call:sam:2026-11-23", "Caffeine cutoff at 14:15"),
    ("2026-11-23T21:45", "winddown.stretch:alex:2026-11-23", "Time to wind down"),
    ("2026-11-23T22:30", "winddown.stretch:sam:2026-11-23", "Time to wind down"),
    ("2026-11-24T06:25", "twitch.night_summary:alex:2026-11-23", "Last night"),
    ("2026-11-24T07:00", "checkin.morning:alex:2026-11-24", "Morning check-in"),
    ("2026-11-24T07:13", "twitch.night_summary:sam:2026-11-23", "Last night"),
    ("2026-11-24T07:45", "checkin.morning:sam:2026-11-24", "Morning check-in"),
    ("2026-11-24T13:00", "caffeine.last_call:alex:2026-11-24", "Caffeine cutoff at 13:30"),
    ("2026-11-24T13:45", "caffeine.last_call:sam:2026-11-24", "Caffeine cutoff at 14:15"),
    ("2026-11-24T14:05", "caffeine.cutoff:alex:2026-11-24:1405", "No caffeine now"),
    ("2026-11-24T21:45", "winddown.stretch:alex:2026-11-24", "Time to wind down"),
    ("2026-11-24T22:30", "winddown.stretch:sam:2026-11-24", "Time to wind down"),
    ("2026-11-25T06:30", "twitch.night_summary:alex:2026-11-24", "Last night"),
    ("2026-11-25T07:00", "checkin.morning:alex:2026-11-25", "Morning check-in"),
    ("2026-11-25T07:12", "twitch.night_summary:sam:2026-11-24", "Last night"),
    ("2026-11-25T07:45", "checkin.morning:sam:2026-11-25", "Morning check-in"),
    ("2026-11-25T13:00", "caffeine.last_call:alex:2026-11-25", "Caffeine cutoff at 13:30"),
    ("2026-11-25T13:45", "caffeine.last_call:sam:2026-11-25", "Caffeine cutoff at 14:15"),
    ("2026-11-25T16:30", "caffeine.cutoff:sam:2026-11-25:1630", "No caffeine now"),
    ("2026-11-25T19:33", "stress.relax:alex:2026-11-25", "Make time to relax"),
    ("2026-11-25T21:45", "winddown.stretch:alex:2026-11-25", "Time to wind down"),
    ("2026-11-25T21:46", "exercise.late_intense:sam:2026-11-25:2146", "Keep the last hour light"),
    (
        "2026-11-25T22:15",
        "exercise.late_intense:sam:2026-11-25:2146:last_hour",
        "Switch to stretching",
    ),
    ("2026-11-25T22:30", "winddown.stretch:sam:2026-11-25", "Time to wind down"),
    ("2026-11-26T06:21", "twitch.night_summary:alex:2026-11-25", "Last night"),
    ("2026-11-26T07:00", "checkin.morning:alex:2026-11-26", "Morning check-in"),
    ("2026-11-26T07:15", "twitch.night_summary:sam:2026-11-25", "Last night"),
    ("2026-11-26T07:45", "checkin.morning:sam:2026-11-26", "Morning check-in"),
    ("2026-11-26T13:00", "caffeine.last_call:alex:2026-11-26", "Caffeine cutoff at 13:30"),
    ("2026-11-26T13:45", "caffeine.last_call:sam:2026-11-26", "Caffeine cutoff at 14:15"),
    ("2026-11-26T13:56", "caffeine.cutoff:alex:2026-11-26:1356", "No caffeine now"),
    ("2026-11-26T20:04", "exercise.late_intense:alex:2026-11-26:2004", "Keep the last hour light"),
    ("2026-11-26T21:45", "winddown.stretch:alex:2026-11-26", "Time to wind down"),
    ("2026-11-26T22:30", "winddown.stretch:sam:2026-11-26", "Time to wind down"),
    ("2026-11-27T06:22", "twitch.night_summary:alex:2026-11-26", "Last night"),
    ("2026-11-27T07:00", "checkin.morning:alex:2026-11-27", "Morning check-in"),
    ("2026-11-27T07:05", "twitch.night_summary:sam:2026-11-26", "Last night"),
    ("2026-11-27T07:45", "checkin.morning:sam:2026-11-27", "Morning check-in"),
    ("2026-11-27T13:00", "caffeine.last_call:alex:2026-11-27", "Caffeine cutoff at 13:30"),
    ("2026-11-27T13:45", "caffeine.last_call:sam:2026-11-27", "Caffeine cutoff at 14:15"),
    ("2026-11-27T15:00", "caffeine.cutoff:sam:2026-11-27:1500", "No caffeine now"),
    ("2026-11-27T20:35", "stress.relax:sam:2026-11-27", "Make time to relax"),
    ("2026-11-27T21:08", "alcohol.late:alex:2026-11-27", "Alcohol close to bedtime"),
    ("2026-11-27T21:45", "winddown.stretch:alex:2026-11-27", "Time to wind down"),
    ("2026-11-27T22:30", "winddown.stretch:sam:2026-11-27", "Time to wind down"),
    ("2026-11-28T07:20", "twitch.night_summary:alex:2026-11-27", "Last night"),
    ("2026-11-28T08:30", "checkin.morning:alex:2026-11-28", "Morning check-in"),
    ("2026-11-28T08:30", "twitch.night_summary:sam:2026-11-27", "Last night"),
    ("2026-11-28T09:00", "checkin.morning:sam:2026-11-28", "Morning check-in"),
    ("2026-11-28T13:00", "caffeine.last_call:alex:2026-11-28", "Caffeine cutoff at 13:30"),
    ("2026-11-28T13:45", "caffeine.last_call:sam:2026-11-28", "Caffeine cutoff at 14:15"),
    ("2026-11-28T20:32", "alcohol.late:sam:2026-11-28", "Alcohol close to bedtime"),
    ("2026-11-28T21:45", "winddown.stretch:alex:2026-11-28", "Time to wind down"),
    ("2026-11-28T22:30", "winddown.stretch:sam:2026-11-28", "Time to wind down"),
    ("2026-11-29T07:53", "twitch.night_summary:alex:2026-11-28", "Last night"),
    ("2026-11-29T08:29", "twitch.night_summary:sam:2026-11-28", "Last night"),
    ("2026-11-29T08:30", "checkin.morning:alex:2026-11-29", "Morning check-in"),
    ("2026-11-29T09:00", "checkin.morning:sam:2026-11-29", "Morning check-in"),
    ("2026-11-29T11:00", "encouragement.exercise:sam:2026-11-29", "Time to move?"),
    ("2026-11-29T13:00", "caffeine.last_call:alex:2026-11-29", "Caffeine cutoff at 13:30"),
    ("2026-11-29T21:45", "winddown.stretch:alex:2026-11-29", "Time to wind down"),
    ("2026-11-29T22:30", "winddown.stretch:sam:2026-11-29", "Time to wind down"),
    ("2026-11-30T06:30", "twitch.night_summary:alex:2026-11-29", "Last night"),
    ("2026-11-30T07:00", "checkin.morning:alex:2026-11-30", "Morning check-in"),
    ("2026-11-30T07:14", "twitch.night_summary:sam:2026-11-29", "Last night"),
    ("2026-11-30T07:45", "checkin.morning:sam:2026-11-30", "Morning check-in"),
    ("2026-11-30T13:00", "caffeine.last_call:alex:2026-11-30", "Caffeine cutoff at 13:30"),
    ("2026-11-30T13:45", "caffeine.last_call:sam:2026-11-30", "Caffeine cutoff at 14:15"),
    ("2026-11-30T21:45", "winddown.stretch:alex:2026-11-30", "Time to wind down"),
    ("2026-11-30T22:30", "winddown.stretch:sam:2026-11-30", "Time to wind down"),
    ("2026-12-01T06:30", "twitch.night_summary:alex:2026-11-30", "Last night"),
    ("2026-12-01T07:00", "checkin.morning:alex:2026-12-01", "Morning check-in"),
    ("2026-12-01T07:06", "twitch.night_summary:sam:2026-11-30", "Last night"),
    ("2026-12-01T07:45", "checkin.morning:sam:2026-12-01", "Morning check-in"),
    ("2026-12-01T13:00", "caffeine.last_call:alex:2026-12-01", "Caffeine cutoff at 13:30"),
    ("2026-12-01T13:45", "caffeine.last_call:sam:2026-12-01", "Caffeine cutoff at 14:15"),
    ("2026-12-01T13:53", "caffeine.cutoff:alex:2026-12-01:1353", "No caffeine now"),
    ("2026-12-01T21:45", "winddown.stretch:alex:2026-12-01", "Time to wind down"),
    ("2026-12-01T22:30", "winddown.stretch:sam:2026-12-01", "Time to wind down"),
    ("2026-12-02T06:21", "twitch.night_summary:alex:2026-12-01", "Last night"),
    ("2026-12-02T07:00", "checkin.morning:alex:2026-12-02", "Morning check-in"),
    ("2026-12-02T07:05", "twitch.night_summary:sam:2026-12-01", "Last night"),
    ("2026-12-02T07:45", "checkin.morning:sam:2026-12-02", "Morning check-in"),
    ("2026-12-02T13:00", "caffeine.last_call:alex:2026-12-02", "Caffeine cutoff at 13:30"),
    ("2026-12-02T13:45", "caffeine.last_call:sam:2026-12-02", "Caffeine cutoff at 14:15"),
    ("2026-12-02T16:30", "caffeine.cutoff:sam:2026-12-02:1630", "No caffeine now"),
    ("2026-12-02T19:36", "stress.relax:alex:2026-12-02", "Make time to relax"),
    ("2026-12-02T21:41", "exercise.late_intense:sam:2026-12-02:2141", "Keep the last hour light"),
    ("2026-12-02T21:45", "winddown.stretch:alex:2026-12-02", "Time to wind down"),
    (
        "2026-12-02T22:15",
        "exercise.late_intense:sam:2026-12-02:2141:last_hour",
        "Switch to stretching",
    ),
    ("2026-12-02T22:30", "winddown.stretch:sam:2026-12-02", "Time to wind down"),
    ("2026-12-03T06:30", "twitch.night_summary:alex:2026-12-02", "Last night"),
    ("2026-12-03T07:00", "checkin.morning:alex:2026-12-03", "Morning check-in"),
    ("2026-12-03T07:15", "twitch.night_summary:sam:2026-12-02", "Last night"),
    ("2026-12-03T07:45", "checkin.morning:sam:2026-12-03", "Morning check-in"),
    ("2026-12-03T13:00", "caffeine.last_call:alex:2026-12-03", "Caffeine cutoff at 13:30"),
    ("2026-12-03T13:45", "caffeine.last_call:sam:2026-12-03", "Caffeine cutoff at 14:15"),
    ("2026-12-03T14:09", "caffeine.cutoff:alex:2026-12-03:1409", "No caffeine now"),
    ("2026-12-03T19:55", "exercise.late_intense:alex:2026-12-03:1955", "Keep the last hour light"),
    ("2026-12-03T21:45", "winddown.stretch:alex:2026-12-03", "Time to wind down"),
    ("2026-12-03T22:30", "winddown.stretch:sam:2026-12-03", "Time to wind down"),
    ("2026-12-04T06:27", "twitch.night_summary:alex:2026-12-03", "Last night"),
    ("2026-12-04T07:00", "checkin.morning:alex:2026-12-04", "Morning check-in"),
    ("2026-12-04T07:15", "twitch.night_summary:sam:2026-12-03", "Last night"),
    ("2026-12-04T07:45", "checkin.morning:sam:2026-12-04", "Morning check-in"),
    ("2026-12-04T13:00", "caffeine.last_call:alex:2026-12-04", "Caffeine cutoff at 13:30"),
    ("2026-12-04T13:45", "caffeine.last_call:sam:2026-12-04", "Caffeine cutoff at 14:15"),
    ("2026-12-04T15:00", "caffeine.cutoff:sam:2026-12-04:1500", "No caffeine now"),
    ("2026-12-04T20:34", "stress.relax:sam:2026-12-04", "Make time to relax"),
    ("2026-12-04T21:02", "alcohol.late:alex:2026-12-04", "Alcohol close to bedtime"),
    ("2026-12-04T21:45", "winddown.stretch:alex:2026-12-04", "Time to wind down"),
    ("2026-12-04T22:30", "winddown.stretch:sam:2026-12-04", "Time to wind down"),
    ("2026-12-05T07:20", "twitch.night_summary:alex:2026-12-04", "Last night"),
    ("2026-12-05T08:30", "checkin.morning:alex:2026-12-05", "Morning check-in"),
    ("2026-12-05T08:30", "twitch.night_summary:sam:2026-12-04", "Last night"),
    ("2026-12-05T09:00", "checkin.morning:sam:2026-12-05", "Morning check-in"),
    ("2026-12-05T13:00", "caffeine.last_call:alex:2026-12-05", "Caffeine cutoff at 13:30"),
    ("2026-12-05T13:45", "caffeine.last_call:sam:2026-12-05", "Caffeine cutoff at 14:15"),
    ("2026-12-05T20:26", "alcohol.late:sam:2026-12-05", "Alcohol close to bedtime"),
    ("2026-12-05T21:45", "winddown.stretch:alex:2026-12-05", "Time to wind down"),
    ("2026-12-05T22:30", "winddown.stretch:sam:2026-12-05", "Time to wind down"),
    ("2026-12-06T07:52", "twitch.night_summary:alex:2026-12-05", "Last night"),
    ("2026-12-06T08:30", "checkin.morning:alex:2026-12-06", "Morning check-in"),
    ("2026-12-06T08:30", "twitch.night_summary:sam:2026-12-05", "Last night"),
    ("2026-12-06T09:00", "checkin.morning:sam:2026-12-06", "Morning check-in"),
    ("2026-12-06T11:00", "encouragement.exercise:sam:2026-12-06", "Time to move?"),
    ("2026-12-06T13:00", "caffeine.last_call:alex:2026-12-06", "Caffeine cutoff at 13:30"),
    ("2026-12-06T21:45", "winddown.stretch:alex:2026-12-06", "Time to wind down"),
    ("2026-12-06T22:30", "winddown.stretch:sam:2026-12-06", "Time to wind down"),
    ("2026-12-07T06:30", "twitch.night_summary:alex:2026-12-06", "Last night"),
    ("2026-12-07T07:00", "checkin.morning:alex:2026-12-07", "Morning check-in"),
    ("2026-12-07T07:15", "twitch.night_summary:sam:2026-12-06", "Last night"),
    ("2026-12-07T07:45", "checkin.morning:sam:2026-12-07", "Morning check-in"),
]


def replay() -> tuple[list[dict[str, object]], str]:
    """The scenario through the simulator: the nudges as written, and the errors."""
    out, err = io.StringIO(), io.StringIO()
    with (HERE / "two_weeks.jsonl").open("rb") as lines:
        write_run(load_config(HERE / "config.yaml"), lines, out, err)
    return [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_two_weeks_send_these_nudges_word_for_word() -> None:
    nudges, errors = replay()
    assert errors == ""
    # Two people: each title as sent starts with its person's name ("Sam: Morning check-in").
    assert [(str(n["ts"])[:16], n["id"], n["title"]) for n in nudges] == [
        (ts, nudge_id, f"{nudge_id.split(':')[1].capitalize()}: {title}")
        for ts, nudge_id, title in NUDGES
    ]
    expected = (HERE / "two_weeks.expected.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in expected] == nudges


def test_two_weeks_keep_the_budget_and_the_voice() -> None:
    nudges, _ = replay()
    # Routine nudges per person and evening (the id's date), at most the default 2.
    routine = Counter(
        (n["person"], str(n["id"]).split(":")[2]) for n in nudges if n["rule"] in ROUTINE_RULES
    )
    assert max(routine.values()) == 2
    # The answers to what they did all went out: the late drinks, the workouts, the alcohol.
    answers = Counter(n["rule"] for n in nudges if n["rule"] not in ROUTINE_RULES)
    assert answers["caffeine.cutoff"] == 8
    assert answers["exercise.late_intense"] == 6
    assert answers["alcohol.late"] == 4
    for n in nudges:
        message = str(n["message"])
        for wrong, pattern in VOICE:
            assert pattern.search(message) is None, f"{n['id']}: {wrong}: {message}"
