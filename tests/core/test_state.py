"""The state's JSON without its duplicate keys, the keys given back in time order, and a state
an older version wrote brought forward."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from pydantic import ValidationError

from coach.event import load_event
from coach.limb_movement import LimbMovementDetector
from coach.state import (
    STATE_VERSION,
    CoachState,
    Evening,
    Exposures,
    NightsState,
    StateVersionError,
    dump_state,
    load_state,
    restore_seen,
)
from tests.core.conftest import TZ, Replay, t


def _state() -> CoachState:
    state = CoachState(clock=100.0)
    state.person("alex").caffeine_days["2026-11-24"] = 63.0
    state.seen = {"watch|a|1": 10.0, "watch|b|2": 20.0}
    return state


def test_a_dump_without_seen_leaves_only_the_keys_out() -> None:
    state = _state()
    raw = dump_state(state, seen=False)
    assert "seen" not in json.loads(raw)
    restored = load_state(raw)
    assert restored.seen == {}
    restored.seen = state.seen
    assert restored == state
    assert state.seen == {"watch|a|1": 10.0, "watch|b|2": 20.0}  # the live state keeps them


def test_keys_given_back_are_merged_in_time_order() -> None:
    state = _state()
    restore_seen(state, [("ring|c|3", 15.0), ("watch|b|2", 20.0), ("band|d|4", 5.0)])
    assert list(state.seen.items()) == [
        ("band|d|4", 5.0),
        ("watch|a|1", 10.0),
        ("ring|c|3", 15.0),
        ("watch|b|2", 20.0),
    ]


# -- a state an older version wrote ---------------------------------------------------------------

#: Written by the code of version 1 (commit 18a38e0): alex's state at 00:06 with the night of
#: 2026-11-24 open (occupancy, 49 movements), one night in the history, a late workout and a
#: stressed evening marked, and the raw-accel detector mid-stream; then the events that followed
#: and what version 1 made of them (its nudges, its `last_night`, its history).
VERSION_1 = Path(__file__).parents[1] / "fixtures" / "state" / "v1_open_night.json"


def test_a_version_1_state_is_migrated_and_its_open_night_goes_on() -> None:
    doc = json.loads(VERSION_1.read_text())
    old = doc["state"]["people"]["alex"]
    state = load_state(json.dumps(doc["state"]))
    assert state.version == STATE_VERSION
    ps = state.people["alex"]
    cur = ps.nights.open
    assert cur is not None
    assert cur.night == "2026-11-24"
    assert cur.movements == [tuple(m) for m in old["nights"]["open"]["mov"]]
    assert cur.occupancy == [(t, bool(o)) for t, o in old["nights"]["open"]["occ"]]
    assert ps.nights.closed == "2026-11-23"
    assert ps.nights.last_night == old["nights"]["last_summary"]
    assert [h.night for h in ps.nights.history] == ["2026-11-23"]
    assert isinstance(ps.nights.detector, LimbMovementDetector)
    assert ps.nights.detector.is_streaming
    assert ps.evenings == {"2026-11-24": Evening(late_workout=True, stress_high=True)}
    assert not [mark for mark in ps.once if mark.startswith("stress.relax:")]
    # Written again it is the new version, and reads back the same.
    assert load_state(dump_state(state)) == state

    # The coach starts again with it and the night goes on as it did under version 1.
    replay = Replay(state=state).start(t("00:06", "2026-11-25"))
    events = [load_event(e["kind"], json.dumps(e["event"])) for e in doc["events"]]
    replay.feed(events, until=t("07:00", "2026-11-25"))
    expected = doc["expected"]
    # The summary's words changed since version 1 (it now compares the night with the person's
    # usual and adds the evening before); what it reports, its id and its figures did not.
    # The morning check-in (30 min after wake) is newer than version 1 and left aside.
    got = [json.loads(json.dumps(n.to_payload(TZ))) for n in replay.nudges]
    got = [n for n in got if n["rule"] != "checkin.morning"]
    fields = ("id", "person", "rule", "ts", "severity")
    assert [{k: n[k] for k in fields} for n in got] == [
        {k: n[k] for k in fields} for n in expected["nudges"]
    ]
    for mine, theirs in zip(got, expected["nudges"], strict=True):
        assert {k: mine["evidence"][k] for k in theirs["evidence"]} == theirs["evidence"]
    assert replay.documents[-1]["last_night"] == expected["last_night"]
    history = replay.state.people["alex"].nights.history
    # Records gained fields since (alcohol in the evening, how rested the morning after): unknown.
    assert [asdict(h) for h in history] == [
        {**h, "rested": None, "exposures": {**h["exposures"], "alcohol_evening": False}}
        for h in expected["history"]
    ]
    assert history[-1].exposures == Exposures(
        caffeine_at_bedtime=True, late_workout=True, stress_evening=True, late_nicotine=False
    )


def test_version_1_repeat_marks_and_skipped_gap_are_kept() -> None:
    person = {
        "nights": {
            "skip": [100.0, 200.0],
            "closed": "2026-11-23",
            "sent": {"twitch.frequent": 50.0, "twitch.daytime": 60.0},
        },
        "late_workout_nights": ["2026-11-22"],
        "once": {"stress.relax:2026-11-23": 70.0, "caffeine.daily_limit:2026-11-23": 80.0},
    }
    state = load_state(json.dumps({"version": 1, "people": {"alex": person}}))
    ps = state.people["alex"]
    assert ps.nights == NightsState(
        skip=(100.0, 200.0), closed="2026-11-23", frequent_sent_at=50.0, daytime_sent_at=60.0
    )
    assert ps.evenings == {
        "2026-11-22": Evening(late_workout=True),
        "2026-11-23": Evening(stress_high=True),
    }
    assert ps.once == {"caffeine.daily_limit:2026-11-23": 80.0}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(b"[1, 2]", "JSON object", id="a state that is no JSON object is refused"),
        pytest.param(b'{"version": "1"}', "integer version", id="a text version is refused"),
        pytest.param(b'{"version": 0}', "unknown", id="version 0 never existed"),
    ],
)
def test_an_unreadable_version_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(StateVersionError, match=message):
        load_state(raw)


def test_a_state_with_an_unreadable_detector_is_refused_as_invalid() -> None:
    state = CoachState()
    state.person("alex").nights.detector = LimbMovementDetector()
    doc = json.loads(dump_state(state))
    doc["people"]["alex"]["nights"]["detector"] = [1, 2, 3]
    with pytest.raises(ValidationError, match="detector state is a JSON object"):
        load_state(json.dumps(doc))
    doc["people"]["alex"]["nights"]["detector"] = {"version": 9}
    with pytest.raises(ValidationError, match="unknown detector state version 9"):
        load_state(json.dumps(doc))
