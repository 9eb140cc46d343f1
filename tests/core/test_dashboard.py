"""The dashboard's view, pinned: the caffeine curve, tonight's schedule, nudges, nights, trends.

Alex goes to bed at 22:30 and wakes at 06:30 (Europe/Berlin); the default 9 h cutoff is 13:30,
the last call 13:00.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coach import caffeine
from coach.action import RecordNight
from coach.dashboard import (
    TREND_DAYS,
    caffeine_curve,
    night_view,
    person_view,
    snapshot,
)
from coach.state import CoachState, PersonState
from tests.core.conftest import (
    CONFIG,
    DAY,
    Replay,
    ack,
    bedtime_tonight,
    coffee,
    make_config,
    run,
    t,
)
from tests.core.test_night import a_night, replay_nights

ALEX = CONFIG.people[0]


def ms(instant: datetime) -> int:
    return round(instant.timestamp() * 1000)


def view(
    state: CoachState, now: datetime, config: Any = CONFIG, nights: Any = ()
) -> dict[str, Any]:
    return person_view(config, config.people[0], snapshot(state, "alex"), now, nights)


def stored(replay: Replay) -> list[dict[str, Any]]:
    """The nights the replay asked the shell to store, as storage gives them back."""
    return [a.summary for a in replay.actions if isinstance(a, RecordNight)]


# -- the caffeine curve ---------------------------------------------------------------------------


def test_the_curve_decays_by_half_every_half_life_and_steps_up_at_each_drink() -> None:
    doses = [(t("08:00").timestamp(), 100.0)]
    points = dict(map(tuple, caffeine_curve(doses, 5.0, t("00:00"), t("20:00"))))  # type: ignore[arg-type]
    assert points[ms(t("00:00"))] == 0.0
    assert points[ms(t("13:00"))] == pytest.approx(50.0, abs=0.05)
    assert points[ms(t("18:00"))] == pytest.approx(25.0, abs=0.05)
    # The drink is a step: the instant of the dose appears twice, before and after it.
    at_dose = [
        mg
        for when, mg in caffeine_curve(doses, 5.0, t("00:00"), t("20:00"))
        if when == ms(t("08:00"))
    ]
    assert at_dose == [0.0, 100.0]


def test_the_curve_is_sampled_evenly_and_ends_at_its_end() -> None:
    points = caffeine_curve([], 5.0, t("00:00"), t("00:30", "2026-11-25"))
    steps = {b[0] - a[0] for a, b in itertools.pairwise(points)}
    assert points[0][0] == ms(t("00:00"))
    assert points[-1][0] == ms(t("00:30", "2026-11-25"))
    assert len(points) <= 290
    assert max(steps) == 6 * 60 * 1000  # 24.5 h in at most 288 steps: every 6 minutes
    assert all(mg == 0.0 for _t, mg in points)


@settings(max_examples=60, deadline=None)
@given(
    doses=st.lists(st.tuples(st.integers(-40 * 60, 30 * 60), st.floats(1.0, 400.0)), max_size=25),
    half_life=st.floats(2.0, 10.0),
)
def test_the_curve_is_the_models_amount_at_every_sample(
    doses: list[tuple[int, float]], half_life: float
) -> None:
    """The sweep that draws the curve gives what `caffeine_at` gives, sample by sample."""
    base = t("00:00").timestamp()
    taken = [(base + minutes * 60.0, mg) for minutes, mg in doses]
    ps = PersonState(doses=taken)
    instants = {round(at * 1000) for at, _mg in taken}
    for when, mg in caffeine_curve(taken, half_life, t("00:00"), t("20:00")):
        if when in instants:
            continue  # the step's two samples: before and after the dose
        expected = caffeine.caffeine_at(ps, datetime.fromtimestamp(when / 1000, UTC), half_life)
        assert mg == pytest.approx(round(expected, 1), abs=0.11)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param(t("20:00"), t("20:00"), id="an empty window has no points"),
        pytest.param(t("20:00"), t("19:00"), id="a window ending before it starts has no points"),
    ],
)
def test_an_empty_window_has_no_curve(start: datetime, end: datetime) -> None:
    assert caffeine_curve([(t("08:00").timestamp(), 100.0)], 5.0, start, end) == []


def test_the_view_shows_todays_curve_from_midnight_to_two_hours_after_bed() -> None:
    replay = run([coffee("08:00", mg=100), coffee("15:00", mg=80)], start=t("07:00"))
    doc = view(replay.state, t("16:00"))["caffeine"]
    assert doc["start_ms"] == ms(t("00:00"))
    assert doc["end_ms"] == ms(t("00:30", "2026-11-25"))
    assert doc["bedtime_ms"] == ms(t("22:30"))
    assert doc["cutoff_ms"] == ms(t("13:30"))
    assert doc["last_call_ms"] == ms(t("13:00"))
    assert [d["mg"] for d in doc["doses"]] == [100.0, 80.0]
    assert doc["doses"][1]["at_ms"] == ms(t("15:00"))
    ps = replay.state.people["alex"]
    assert doc["now_mg"] == round(caffeine.caffeine_at(ps, t("16:00"), 5.0), 1)
    assert doc["bedtime_mg"] == round(caffeine.caffeine_at(ps, t("22:30"), 5.0), 1)
    assert doc["today_mg"] == 180.0
    assert doc["limit_mg"] == 50.0


def test_a_drink_from_the_evening_before_is_still_on_the_curve_at_midnight() -> None:
    replay = run([coffee("23:00", mg=100, day="2026-11-23")], start=t("22:00", "2026-11-23"))
    doc = view(replay.state, t("10:00"))["caffeine"]
    assert doc["doses"] == []  # before the window: no dot, only its remainder
    assert doc["points"][0][1] == pytest.approx(100 * 0.5 ** (1 / 5), abs=0.05)


def test_past_bedtime_the_curve_runs_on_until_half_an_hour_after_now_but_not_past_wake() -> None:
    replay = run([coffee("23:00", mg=100)], start=t("07:00"))
    late = view(replay.state, t("02:00", "2026-11-25"))["caffeine"]
    assert late["end_ms"] == ms(t("02:30", "2026-11-25"))
    assert late["bedtime_mg"] == late["now_mg"]  # bedtime has passed: now is what is left
    at_wake = view(replay.state, t("06:20", "2026-11-25"))["caffeine"]
    assert at_wake["end_ms"] == ms(t("06:30", "2026-11-25"))


def test_on_the_spring_forward_day_the_curve_spans_the_shorter_day() -> None:
    doc = view(CoachState(), t("12:00", "2026-03-29"))["caffeine"]
    assert doc["start_ms"] == ms(t("00:00", "2026-03-29"))
    assert doc["bedtime_ms"] == ms(t("22:30", "2026-03-29"))
    assert doc["cutoff_ms"] == ms(t("13:30", "2026-03-29"))  # 9 real hours before bed
    assert (doc["end_ms"] - doc["start_ms"]) / 3_600_000 == 23.5


# -- what is planned ------------------------------------------------------------------------------


def planned(now: datetime, config: Any = CONFIG, events: Any = ()) -> list[tuple[str, str, bool]]:
    replay = run(list(events), config=config, start=t("07:00"))
    return [
        (item["id"], item["at"][11:16], item["passed"])
        for item in view(replay.state, now, config)["planned"]
    ]


@pytest.mark.parametrize(
    ("now", "config", "events", "expected"),
    [
        pytest.param(
            t("12:00"),
            CONFIG,
            [],
            [
                ("caffeine.last_call", "13:00", False),
                ("caffeine.cutoff", "13:30", False),
                ("exercise.late_intense", "21:30", False),
                ("winddown.stretch", "21:45", False),
                ("bedtime", "22:30", False),
                ("wake", "06:30", False),
            ],
            id="at noon the whole evening is ahead, in time order",
        ),
        pytest.param(
            t("13:15"),
            CONFIG,
            [],
            [
                ("caffeine.last_call", "13:00", True),
                ("caffeine.cutoff", "13:30", False),
                ("exercise.late_intense", "21:30", False),
                ("winddown.stretch", "21:45", False),
                ("bedtime", "22:30", False),
                ("wake", "06:30", False),
            ],
            id="after the last call it is marked passed and the cutoff is next",
        ),
        pytest.param(
            t("21:00"),
            CONFIG,
            [bedtime_tonight("20:00", "23:30")],
            [
                ("caffeine.last_call", "14:00", True),
                ("caffeine.cutoff", "14:30", True),
                ("exercise.late_intense", "22:30", False),
                ("winddown.stretch", "22:45", False),
                ("bedtime", "23:30", False),
                ("wake", "06:30", False),
            ],
            id="a bedtime moved for tonight moves the whole schedule",
        ),
        pytest.param(
            t("12:00"),
            make_config(
                rules={
                    "caffeine.last_call": {"enabled": False},
                    "winddown.stretch": {"enabled": False},
                    "exercise.late_intense": {"enabled": False},
                    "caffeine.bedtime_load": {"enabled": False},
                }
            ),
            [],
            [
                ("caffeine.cutoff", "13:30", False),
                ("bedtime", "22:30", False),
                ("wake", "06:30", False),
            ],
            id="a rule switched off plans nothing",
        ),
    ],
)
def test_planned(
    now: datetime, config: Any, events: list[Any], expected: list[tuple[str, str, bool]]
) -> None:
    assert planned(now, config, events) == expected


def test_the_caffeine_check_is_planned_with_the_wind_down_or_on_its_own() -> None:
    replay = run([], start=t("07:00"))
    (winddown,) = [
        i for i in view(replay.state, t("12:00"))["planned"] if i["id"] == "winddown.stretch"
    ]
    assert winddown["note"] == "with the caffeine check"
    alone = make_config(rules={"nudge_budget": {"merge_within_min": 0}})
    items = planned(t("12:00"), alone)
    assert ("caffeine.bedtime_load", "21:30", False) in items
    assert ("winddown.stretch", "21:45", False) in items


def test_after_midnight_the_night_in_progress_is_still_the_one_planned() -> None:
    items = planned(t("01:00", "2026-11-25"))
    assert ("bedtime", "22:30", True) in items
    assert items[-1] == ("wake", "06:30", False)


# -- nudges ---------------------------------------------------------------------------------------


def test_nudges_come_newest_first_with_their_evidence_and_whether_they_were_acked() -> None:
    replay = run(
        [
            coffee("15:00"),
            coffee("16:00", "coffee"),
            ack("16:05", "caffeine.cutoff:alex:2026-11-24:1500"),
        ],
        start=t("07:00"),
    )
    every = view(replay.state, t("16:10"))["nudges"]
    assert [n["ts"] for n in every] == sorted((n["ts"] for n in every), reverse=True)
    nudges = [n for n in every if n["rule"] == "caffeine.cutoff"]
    assert [n["id"] for n in nudges] == [
        "caffeine.cutoff:alex:2026-11-24:1600",
        "caffeine.cutoff:alex:2026-11-24:1500",
    ]
    newest, older = nudges
    assert newest["title"] == "No caffeine now"
    assert newest["ts"] == "2026-11-24T16:00:00+01:00"
    assert newest["evidence"]["drink"] == "coffee"
    assert newest["evidence"]["source"] == caffeine.SOURCE_CUTOFF
    assert (newest["acked"], older["acked"]) == (False, True)


def test_at_most_six_nudges_are_listed() -> None:
    drinks = [coffee(f"{h}:00", mg=30) for h in range(15, 23)] + [coffee("23:10", mg=30)]
    replay = run(drinks, start=t("07:00"))
    nudges = view(replay.state, t("23:20"))["nudges"]
    assert len(nudges) == 6
    assert nudges[0]["evidence"]["drink_at"] == "2026-11-24T23:10:00+01:00"


# -- last night -----------------------------------------------------------------------------------


def test_last_night_shows_the_scored_summary_in_milliseconds_for_the_chart() -> None:
    replay = replay_nights(a_night("2026-11-24", lms=150, jerk=True), 1)
    night = view(replay.state, t("08:00", "2026-11-25"))["last_night"]
    assert night["night"] == "2026-11-24"
    assert night["status"] == "ok"
    scored = replay.state.people["alex"].nights.last_night
    assert scored is not None
    assert scored["plm_index"] > 18  # 150 movements in series over about 8 h asleep
    assert night["plm_index"] == round(scored["plm_index"], 1)
    assert night["plm_index_limit"] == 15.0
    assert night["series"] == 1
    assert night["hypnic_jerks"] == 1
    assert night["hypnic_jerks_ms"] == [ms(t("22:34"))]
    assert night["time_in_bed_min"] == 480  # scored at the wake time, 06:30
    assert night["sleep_onset_ms"] is not None
    assert night["start_ms"] < ms(t("22:30"))
    assert night["end_ms"] == ms(t("06:30", "2026-11-25"))  # closed by the wake timer
    assert night["timeline"] is None  # the state keeps no timeline: storage does


def test_the_stored_night_gives_last_nights_timeline_in_milliseconds_with_each_kind() -> None:
    replay = replay_nights(a_night("2026-11-24", lms=150, jerk=True), 1)
    night = view(replay.state, t("08:00", "2026-11-25"), nights=stored(replay))["last_night"]
    line = night["timeline"]
    assert line["in_bed"] == [[ms(t("22:30")), ms(t("06:30", "2026-11-25"))]]
    kinds = [kind for _at, _duration, kind in line["movements"]]
    assert kinds.count("jerk") == 1
    assert kinds.count("series") == 150
    assert kinds.count("posture") == 2  # 00:00 and 04:00, 20 s each
    assert kinds.count("brief") == 1  # the 0.3 s twitch at 02:00
    jerk = next(at for at, _d, kind in line["movements"] if kind == "jerk")
    assert jerk == night["hypnic_jerks_ms"][0] == ms(t("22:34"))
    ((first, last, count),) = line["series"]
    assert first == ms(t("01:00", "2026-11-25"))
    assert count == 150
    assert last == first + 149 * 30_000 + 2_000  # the last LM's onset plus its 2 s
    assert line["omitted"] == 0


def test_the_state_stands_in_for_a_night_not_stored_yet() -> None:
    first = replay_nights(a_night("2026-11-24", lms=150), 1)
    older = stored(first)
    replay = replay_nights([*a_night("2026-11-24", lms=150), *a_night("2026-11-25")], 2)
    night = view(replay.state, t("08:00", "2026-11-26"), nights=older)["last_night"]
    assert night["night"] == "2026-11-25"
    assert night["timeline"] is None


def test_a_night_without_data_says_so() -> None:
    replay = run([], start=t("07:00"), until=t("07:00", "2026-11-25"))
    night = view(replay.state, t("08:00", "2026-11-25"))["last_night"]
    assert night["status"] == "no data"
    assert night["plm_index"] is None
    assert night["movements"] is None  # no movement counted: unknown, not 0
    assert night["hypnic_jerks"] is None
    assert night["time_in_bed_min"] == 0
    assert night["timeline"] is None


def test_no_night_yet_is_none() -> None:
    assert view(CoachState(), t("12:00"))["last_night"] is None
    assert night_view(None, CONFIG) is None


# -- trends ---------------------------------------------------------------------------------------


def test_trends_cover_fourteen_evenings_up_to_tonight_with_no_data_as_none() -> None:
    events = [
        *a_night("2026-11-23"),
        coffee("18:00", mg=200, day="2026-11-24"),
        *a_night("2026-11-24", lms=150),
        coffee("09:00", mg=120, day="2026-11-25"),
    ]
    replay = replay_nights(events, 2)
    kept = [n for n in stored(replay) if n["night"] == "2026-11-24"]
    days = view(replay.state, t("12:00", "2026-11-25"), nights=kept)["trends"]["days"]
    assert len(days) == TREND_DAYS
    assert days[0]["night"] == "2026-11-12"
    assert days[-1]["night"] == "2026-11-25"
    from_state, from_storage, tonight = days[-3:]
    assert from_state == {  # not among the stored nights: the state's record of it
        "night": "2026-11-23",
        "plm_index": 0.0,
        "hypnic_jerks": 0,
        "time_in_bed_h": 8.0,
        "caffeine_at_bedtime_mg": None,
    }
    at_bed = caffeine.caffeine_at(
        PersonState(doses=[(t("18:00").timestamp(), 200.0)]), t("22:30"), 5.0
    )
    assert from_storage == {
        "night": "2026-11-24",
        "plm_index": 18.8,
        "hypnic_jerks": 0,
        "time_in_bed_h": 8.0,
        "caffeine_at_bedtime_mg": round(at_bed, 1),
    }
    ps = replay.state.people["alex"]
    predicted = caffeine.caffeine_at(ps, t("22:30", "2026-11-25"), 5.0)
    assert tonight == {
        "night": "2026-11-25",
        "plm_index": None,  # tonight has not been slept yet
        "hypnic_jerks": None,
        "time_in_bed_h": None,
        "caffeine_at_bedtime_mg": round(predicted, 1),
        "predicted": True,
    }
    assert all(d["plm_index"] is None and d["time_in_bed_h"] is None for d in days[:-3])


def test_a_stored_night_without_data_is_no_data_in_the_trends() -> None:
    replay = run([], start=t("07:00"), until=t("07:00", "2026-11-25"))
    (night,) = stored(replay)
    assert night["status"] == "no data"
    days = view(replay.state, t("12:00", "2026-11-25"), nights=[night])["trends"]["days"]
    assert days[-2]["plm_index"] is None
    assert days[-2]["time_in_bed_h"] is None  # 0 minutes in bed is no data here


# -- the hand-over copy ---------------------------------------------------------------------------


def test_the_snapshot_does_not_change_when_the_live_state_does() -> None:
    replay = run([coffee("15:00")], start=t("07:00"))
    copy = snapshot(replay.state, "alex")
    replay.feed([coffee("16:00"), ack("16:05", "caffeine.cutoff:alex:2026-11-24:1500")])
    live = replay.state.people["alex"]
    assert len(live.doses) == 2
    assert len(copy.doses) == 1
    assert live.nudges["caffeine.cutoff:alex:2026-11-24:1500"].acked
    assert not copy.nudges["caffeine.cutoff:alex:2026-11-24:1500"].acked
    assert copy.caffeine_days == {DAY: 63.0}


def test_the_snapshot_of_someone_unknown_is_empty_and_adds_nobody_to_the_state() -> None:
    state = CoachState()
    assert snapshot(state, "sam") == PersonState()
    assert state.people == {}


def test_the_view_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        person_view(CONFIG, ALEX, PersonState(), datetime(2026, 11, 24, 12, 0))


def test_the_view_is_the_same_in_any_zone_now_is_given_in() -> None:
    replay = run([coffee("15:00")], start=t("07:00"))
    local = view(replay.state, t("16:00"))
    utc = view(replay.state, t("16:00").astimezone(UTC))
    assert local == utc
    assert local["now"] == "2026-11-24T16:00:00+01:00"
    assert local["now_ms"] == ms(t("16:00")) == ms(t("15:00") + timedelta(hours=1))
