"""The caffeine rules, pinned: drink table, decay, cutoff, last call, bedtime load, daily limit.

Alex goes to bed at 22:30 (Europe/Berlin), so with the default 9 h cutoff the last moment for
caffeine is 13:30 and the last call comes at 13:00; the bedtime-load check runs at 21:30.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from coach import caffeine
from coach.event import CoffeeBrewed, Event
from coach.state import PersonState
from tests.core.conftest import (
    CONFIG,
    DAY,
    assert_no_dosing,
    coffee,
    in_bed,
    logged,
    make_config,
    run,
    run_day,
    t,
)

NEXT = "2026-11-25"

# -- the drink table and the model ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("drink", "volume_ml", "caffeine_mg", "expected_mg"),
    [
        pytest.param("espresso", None, None, 63.0, id="an espresso shot is 63 mg"),
        pytest.param("espresso", 60.0, None, 126.0, id="a double espresso is 126 mg"),
        pytest.param("espresso", 40.0, None, 84.0, id="40 ml of espresso is 84 mg"),
        pytest.param("coffee", 240.0, None, 95.0, id="a 240 ml coffee is 95 mg"),
        pytest.param("coffee", 360.0, None, 142.5, id="a 360 ml coffee is 142.5 mg"),
        pytest.param("cold_brew", 240.0, None, 155.0, id="a cold brew is 155 mg"),
        pytest.param("tea", 120.0, None, 23.5, id="half a cup of tea is 23.5 mg"),
        pytest.param("decaf", 240.0, None, 3.0, id="a decaf is 3 mg"),
        pytest.param("other", 250.0, None, 0.0, id="an unknown drink without a figure counts 0"),
        pytest.param("other", 250.0, 80.0, 80.0, id="the maker's figure is used for other"),
        pytest.param("espresso", 30.0, 100.0, 100.0, id="the maker's figure overrides the table"),
    ],
)
def test_dose_comes_from_the_usda_table_scaled_by_volume(
    drink: str, volume_ml: float | None, caffeine_mg: float | None, expected_mg: float
) -> None:
    assert caffeine.dose_mg(drink, volume_ml, caffeine_mg) == pytest.approx(expected_mg)


def test_caffeine_decays_by_half_every_half_life_and_ignores_future_doses() -> None:
    ps = PersonState(doses=[(t("08:00").timestamp(), 100.0), (t("18:00").timestamp(), 40.0)])
    assert caffeine.caffeine_at(ps, t("08:00"), 5.0) == pytest.approx(100.0)
    assert caffeine.caffeine_at(ps, t("13:00"), 5.0) == pytest.approx(50.0)
    assert caffeine.caffeine_at(ps, t("18:00"), 5.0) == pytest.approx(25.0 + 40.0)
    assert caffeine.caffeine_at(ps, t("07:59"), 5.0) == 0.0
    assert caffeine.caffeine_at(ps, t("18:00"), 2.5) == pytest.approx(100 / 16 + 40.0)


def test_pruning_forgets_negligible_doses_and_keeps_future_ones() -> None:
    old = t("08:00", "2026-11-20").timestamp()
    recent = t("08:00").timestamp()
    future = t("20:00").timestamp()
    ps = PersonState(doses=[(old, 95.0), (recent, 95.0), (future, 63.0)])
    caffeine.prune_doses(ps, t("12:00"), 5.0)
    assert ps.doses == [(recent, 95.0), (future, 63.0)]


# -- caffeine.cutoff -----------------------------------------------------------------------------


def cutoff(hhmm: str, severity: str, day: str = DAY) -> tuple[str, str]:
    """The expected (id, severity) of a cutoff nudge for a drink at `hhmm`."""
    return (f"caffeine.cutoff:alex:{day}:{hhmm.replace(':', '')}", severity)


CUTOFF_TABLE = [
    pytest.param([coffee("13:29")], [], id="an espresso at 13:29 is before the 13:30 cutoff"),
    pytest.param(
        [coffee("13:30")], [cutoff("13:30", "warning")], id="an espresso at 13:30 is at the cutoff"
    ),
    pytest.param(
        [coffee("13:31")],
        [cutoff("13:31", "warning")],
        id="an espresso at 13:31 gets a warning (about 18 mg left at bedtime)",
    ),
    pytest.param([coffee("21:00", "other", mg=19)], [], id="19 mg is below the 20 mg minimum dose"),
    pytest.param(
        [coffee("21:00", "other", mg=20)],
        [cutoff("21:00", "warning")],
        id="20 mg at 21:00 is a late drink",
    ),
    pytest.param([coffee("21:00", "decaf", ml=240)], [], id="a late decaf is ignored"),
    pytest.param([coffee("21:00", "other")], [], id="a late unknown drink without figure"),
    pytest.param(
        [coffee("17:30", "other", mg=99.8)],
        [cutoff("17:30", "warning")],
        id="49.9 mg predicted at bedtime is a warning",
    ),
    pytest.param(
        [coffee("17:30", "other", mg=100.2)],
        [cutoff("17:30", "alert")],
        id="50.1 mg predicted at bedtime is an alert",
    ),
    pytest.param(
        [coffee("11:00", "coffee", ml=600), coffee("15:00", "other", mg=20)],
        [cutoff("15:00", "alert")],
        id="a small late drink on top of a big morning one is an alert",
    ),
    pytest.param(
        [coffee("01:30", "coffee", ml=240, day=NEXT)],
        [cutoff("01:30", "alert", day=DAY)],
        id="a coffee at 01:30 is still no caffeine now, for the night in progress",
    ),
    pytest.param(
        [coffee("07:00", "coffee", ml=240, day=NEXT)],
        [],
        id="a coffee at 07:00 next morning is judged against the next night",
    ),
    pytest.param(
        [coffee("16:00"), coffee("16:00", "tea", ml=240)],
        [cutoff("16:00", "warning")],
        id="two drinks in the same minute share one nudge",
    ),
    pytest.param(
        [coffee("16:00"), coffee("16:01")],
        [cutoff("16:00", "warning"), cutoff("16:01", "alert")],
        id="two late espressos get a nudge each, the second an alert (about 51 mg at bedtime)",
    ),
    pytest.param(
        [logged("18:00", "caffeine")],
        [cutoff("18:00", "alert")],
        id="caffeine logged by hand without a figure counts as a 95 mg coffee",
    ),
    pytest.param(
        [logged("18:00", "caffeine", mg=30)],
        [cutoff("18:00", "warning")],
        id="caffeine logged by hand with its figure",
    ),
    pytest.param([logged("18:00", "alcohol")], [], id="alcohol is no caffeine"),
]


@pytest.mark.parametrize(("events", "expected"), CUTOFF_TABLE)
def test_cutoff(events: list[Event], expected: list[tuple[str, str]]) -> None:
    replay = run(events)
    assert [(n.id, n.severity) for n in replay.nudges] == expected
    for nudge in replay.nudges:
        assert nudge.rule == "caffeine.cutoff"
        assert nudge.title == "No caffeine now"


# Saturday 2026-11-28: bedtime Friday 22:30, weekend wake 08:00, so the last third of that night
# begins at 04:50.
SAT = "2026-11-28"
FRI = "2026-11-27"
WEEKEND = make_config(wake={"default": "06:30", "sat": "08:00", "sun": "08:00"})


def cutoff_fri(hhmm: str) -> tuple[str, str]:
    """A cutoff nudge for a drink at `hhmm` on Saturday, judged against Friday's night."""
    return (f"caffeine.cutoff:alex:{FRI}:{hhmm.replace(':', '')}", "alert")


NEW_DAY_TABLE = [
    pytest.param(
        [in_bed("22:40", day=FRI), in_bed("07:20", False, day=SAT), coffee("07:30", day=SAT)],
        [],
        id="up at 07:20 before an 08:00 wake: the 07:30 coffee belongs to the new day",
    ),
    pytest.param(
        [in_bed("22:40", day=FRI), coffee("07:30", "coffee", ml=240, day=SAT)],
        [cutoff_fri("07:30")],
        id="the bed sensor shows the person in bed: still the night in progress",
    ),
    pytest.param(
        [coffee("04:49", "coffee", ml=240, day=SAT)],
        [cutoff_fri("04:49")],
        id="without bed data, 04:49 is before the night's last third",
    ),
    pytest.param(
        [coffee("04:50", "coffee", ml=240, day=SAT)],
        [],
        id="without bed data, 04:50 begins the last third: the new day",
    ),
    pytest.param(
        [
            in_bed("22:40", day=FRI),
            in_bed("02:50", False, day=SAT),
            coffee("02:57", "coffee", ml=240, day=SAT),
        ],
        [cutoff_fri("02:57")],
        id="out of bed at 02:57: a coffee then keeps the night in progress awake",
    ),
]


@pytest.mark.parametrize(("events", "expected"), NEW_DAY_TABLE)
def test_a_drink_on_getting_up_belongs_to_the_new_day(
    events: list[Event], expected: list[tuple[str, str]]
) -> None:
    replay = run(events, config=WEEKEND)
    got = [(n.id, n.severity) for n in replay.nudges if n.rule == "caffeine.cutoff"]
    assert got == expected


def test_a_drink_of_the_new_day_counts_toward_its_night() -> None:
    # The 07:30 coffee is still in the body at Saturday's bedtime: it adds to that night's load.
    events = [in_bed("07:20", False, day=SAT), coffee("07:30", "other", mg=2000, day=SAT)]
    replay = run(events, config=WEEKEND, start=t("07:00", SAT), until=t("23:00", SAT))
    assert "caffeine.bedtime_load" in replay.nudge("winddown.stretch:alex:2026-11-28").evidence
    assert "caffeine.daily_limit:alex:2026-11-28" in replay.ids


@pytest.mark.parametrize(
    ("drink", "named"),
    [
        pytest.param("espresso", "That espresso (63 mg of caffeine)", id="an espresso"),
        pytest.param("cold_brew", "That cold brew (155 mg of caffeine)", id="a cold brew"),
        pytest.param("tea", "That tea (47 mg of caffeine)", id="a tea"),
        pytest.param("other", "That drink (80 mg of caffeine)", id="another drink with its mg"),
    ],
)
def test_the_cutoff_names_the_drink(drink: str, named: str) -> None:
    mg = 80.0 if drink == "other" else None
    (nudge,) = run([coffee("20:00", drink, mg=mg)]).nudges
    assert nudge.message.startswith(named + " came 2 hours 30 minutes before your bedtime")


def test_caffeine_logged_by_hand_is_a_caffeinated_drink() -> None:
    (nudge,) = run([logged("20:00", "caffeine", mg=130)]).nudges
    assert nudge.message.startswith("That caffeinated drink (130 mg of caffeine) came 2 hours")


def test_cutoff_evidence_carries_the_figures_and_sources() -> None:
    replay = run([coffee("14:31", ml=40)])
    (nudge,) = replay.nudges
    assert nudge.ts == t("14:31")
    assert nudge.evidence == {
        "drink": "espresso",
        "dose_mg": 84.0,
        "drink_at": "2026-11-24T14:31:00+01:00",
        "bedtime": "2026-11-24T22:30:00+01:00",
        "hours_before_bed": 7.98,
        "cutoff_hours": 9.0,
        "predicted_mg_at_bedtime": 27.8,
        "bedtime_limit_mg": 50.0,
        "half_life_h": 5.0,
        "source": caffeine.SOURCE_CUTOFF,
        "model": caffeine.SOURCE_MODEL,
    }
    # Each citation says what the study found, at what dose.
    assert "a 107 mg coffee at least 8.8 h" in nudge.evidence["source"]
    assert "Drake et al. 2013" in nudge.evidence["source"]
    assert "400 mg taken 0, 3 or 6 h before bedtime" in nudge.evidence["source"]
    assert nudge.message == (
        "That espresso (84 mg of caffeine) came about 8 hours before your bedtime (22:30); about "
        "28 mg will still be in your body then, which can make it harder to fall asleep and "
        "shorten your sleep. Consider caffeine-free drinks for the rest of the day."
    )
    assert nudge.actions == ("ack", "snooze")
    assert_no_dosing(nudge.message)


def test_a_coffee_after_bedtime_says_so_and_goes_out_in_quiet_hours() -> None:
    replay = run([coffee("01:30", "cold_brew", ml=240, day=NEXT)])
    (nudge,) = replay.nudges
    assert nudge.message == (
        "That cold brew (155 mg of caffeine) came after your bedtime (22:30). Caffeine takes "
        "hours to wear off and can make it harder to get back to sleep; consider caffeine-free "
        "drinks for the rest of the night."
    )
    assert nudge.evidence["hours_before_bed"] == -3.0
    assert nudge.evidence["predicted_mg_at_bedtime"] == 155.0
    assert replay.dropped == []


def test_cutoff_follows_the_configured_hours_and_limit() -> None:
    config = make_config(
        rules={"caffeine.cutoff": {"cutoff_hours": 6, "min_dose_mg": 50, "bedtime_limit_mg": 10}}
    )
    replay = run([coffee("16:29"), coffee("16:31", "other", mg=49), coffee("16:32")], config=config)
    assert [(n.id, n.severity) for n in replay.nudges] == [cutoff("16:32", "alert")]
    assert replay.nudges[0].evidence["cutoff_hours"] == 6


def test_cutoff_uses_the_persons_half_life() -> None:
    # 100 mg 5 h before bed: 50 mg left at a 5 h half-life, about 70.7 mg at 10 h.
    replay = run([coffee("17:30", "other", mg=100)], config=make_config(caffeine_half_life_h=10))
    (nudge,) = replay.nudges
    assert nudge.evidence["predicted_mg_at_bedtime"] == 70.7
    assert nudge.evidence["half_life_h"] == 10.0
    assert nudge.severity == "alert"


def test_cutoff_switched_off_sends_nothing() -> None:
    config = make_config(rules={"caffeine.cutoff": {"enabled": False}})
    assert run([coffee("21:00", "coffee", ml=240)], config=config).nudges == []


@pytest.mark.parametrize(
    ("bedtime", "drink_at", "expected"),
    [
        pytest.param("00:45", "15:44", [], id="bedtime 00:45: 15:44 is before its cutoff"),
        pytest.param(
            "00:45",
            "15:46",
            ["caffeine.cutoff:alex:2026-11-24:1546"],
            id="bedtime 00:45: 15:46 is after its cutoff, on the evening's night",
        ),
        pytest.param(
            {"default": "22:30", "tue": "20:00"},
            "11:01",
            ["caffeine.cutoff:alex:2026-11-24:1101"],
            id="Tuesday's own 20:00 bedtime moves the cutoff to 11:00",
        ),
    ],
)
def test_cutoff_hangs_on_the_nights_bedtime(
    bedtime: object, drink_at: str, expected: list[str]
) -> None:
    assert run([coffee(drink_at)], config=make_config(bedtime=bedtime)).ids == expected


@pytest.mark.parametrize(
    ("drink_at", "expected"),
    [
        pytest.param("17:59", [], id="17:59 is more than 9 real hours before 04:00 CEST"),
        pytest.param(
            "18:01",
            ["caffeine.cutoff:alex:2026-03-28:1801"],
            id="18:01 is less than 9 real hours before 04:00 CEST (10 on the wall clock)",
        ),
    ],
)
def test_cutoff_is_measured_in_real_hours_across_the_spring_forward(
    drink_at: str, expected: list[str]
) -> None:
    # The night of Saturday 2026-03-28: the clocks jump from 02:00 to 03:00 before a 04:00 bed.
    replay = run([coffee(drink_at, day="2026-03-28")], config=make_config(bedtime="04:00"))
    assert replay.ids == expected


# -- caffeine.daily_limit ------------------------------------------------------------------------


DAILY_TABLE = [
    pytest.param(
        [logged("08:00", "caffeine", mg=200), logged("09:00", "caffeine", mg=200)],
        [],
        id="400 mg in a day is within the limit",
    ),
    pytest.param(
        [logged("08:00", "caffeine", mg=200), logged("09:00", "caffeine", mg=201)],
        ["caffeine.daily_limit:alex:2026-11-24"],
        id="401 mg in a day passes the limit",
    ),
    pytest.param(
        [
            logged("08:00", "caffeine", mg=401),
            coffee("09:00", "coffee", ml=240),
            coffee("10:00", "coffee", ml=240),
        ],
        ["caffeine.daily_limit:alex:2026-11-24"],
        id="the limit is told once a day",
    ),
    pytest.param(
        [logged("08:00", "caffeine", mg=401), logged("08:00", "caffeine", mg=401, day=NEXT)],
        ["caffeine.daily_limit:alex:2026-11-24", "caffeine.daily_limit:alex:2026-11-25"],
        id="and again the next day",
    ),
    pytest.param(
        [logged("12:00", "caffeine", mg=300), logged("08:00", "caffeine", mg=300, day=NEXT)],
        [],
        id="days are counted separately",
    ),
]


@pytest.mark.parametrize(("events", "expected"), DAILY_TABLE)
def test_daily_limit(events: list[Event], expected: list[str]) -> None:
    replay = run(events)
    assert [n.id for n in replay.nudges if n.rule == "caffeine.daily_limit"] == expected


def test_daily_limit_evidence_and_message() -> None:
    replay = run([logged("08:00", "caffeine", mg=250), coffee("09:00", "cold_brew", ml=240)])
    (nudge,) = replay.nudges
    assert nudge.severity == "warning"
    assert nudge.evidence == {
        "total_mg_today": 405.0,
        "daily_limit_mg": 400.0,
        "date": DAY,
        "source": caffeine.SOURCE_DAILY,
    }
    assert "EFSA 2015" in nudge.evidence["source"]
    assert nudge.message == (
        "You've had about 405 mg of caffeine today, more than the 400 mg a day considered safe "
        "for healthy adults. Consider switching to water or caffeine-free drinks for the rest of "
        "the day."
    )
    assert_no_dosing(nudge.message)


def test_daily_limit_passed_late_at_night_still_goes_out() -> None:
    # The person is awake and drinking at 23:00: the nudge answers that, like the cutoff's.
    replay = run([logged("08:00", "caffeine", mg=350), coffee("23:00", "coffee", ml=240)])
    assert replay.ids == [
        "caffeine.cutoff:alex:2026-11-24:2300",
        "caffeine.daily_limit:alex:2026-11-24",
    ]
    assert replay.dropped == []


def test_daily_limit_switched_off() -> None:
    config = make_config(rules={"caffeine.daily_limit": {"enabled": False}})
    assert run([logged("08:00", "caffeine", mg=900)], config=config).nudges == []


# -- caffeine.last_call --------------------------------------------------------------------------


LAST_CALL_TABLE = [
    pytest.param(
        [coffee("09:00", "coffee", ml=240)],
        ["caffeine.last_call:alex:2026-11-24"],
        id="a day with a morning coffee gets the last call",
    ),
    pytest.param([], [], id="a day without caffeine gets no last call"),
    pytest.param(
        [coffee("09:00", "decaf", ml=240)], [], id="a day with only a decaf gets no last call"
    ),
    pytest.param([coffee("13:05")], [], id="a first coffee after the last call is too late for it"),
    pytest.param(
        [coffee("09:00", day="2026-11-23")],
        ["caffeine.last_call:alex:2026-11-23"],
        id="yesterday's coffee gets yesterday's last call, not today's",
    ),
]


@pytest.mark.parametrize(("events", "expected"), LAST_CALL_TABLE)
def test_last_call(events: list[Event], expected: list[str]) -> None:
    replay = run(events, start=t("07:00", "2026-11-23"), until=t("23:59"))
    assert [n.id for n in replay.nudges if n.rule == "caffeine.last_call"] == expected


def test_last_call_comes_30_minutes_before_the_cutoff_with_its_figures() -> None:
    replay = run_day([coffee("09:00", "coffee", ml=240), coffee("11:00")])
    nudge = replay.nudge("caffeine.last_call:alex:2026-11-24")
    assert nudge.ts == t("13:00")
    assert nudge.severity == "info"
    assert nudge.evidence == {
        "cutoff": "2026-11-24T13:30:00+01:00",
        "bedtime": "2026-11-24T22:30:00+01:00",
        "cutoff_hours": 9.0,
        "caffeine_mg_today": 158.0,
        "source": caffeine.SOURCE_CUTOFF,
    }
    # It informs: when the cutoff is and why, and never invites another drink.
    assert nudge.title == "Caffeine cutoff at 13:30"
    assert nudge.message == (
        "Caffeine after 13:30 will still be in your body at bedtime (22:30) and can shorten your "
        "sleep. Consider caffeine-free drinks from then on."
    )
    assert "now is the time" not in nudge.message
    assert "another" not in nudge.message
    assert_no_dosing(nudge.message)


def test_last_call_follows_a_bedtime_after_midnight() -> None:
    replay = run_day([coffee("09:00")], config=make_config(bedtime="00:45"))
    assert replay.nudge("caffeine.last_call:alex:2026-11-24").ts == t("15:15")


def test_last_call_minutes_are_configurable_and_it_can_be_switched_off() -> None:
    config = make_config(rules={"caffeine.last_call": {"minutes_before_cutoff": 90}})
    replay = run_day([coffee("09:00")], config=config)
    assert replay.nudge("caffeine.last_call:alex:2026-11-24").ts == t("12:00")
    off = make_config(rules={"caffeine.last_call": {"enabled": False}})
    replay = run_day([coffee("09:00")], config=off)
    assert [n.rule for n in replay.nudges if n.rule.startswith("caffeine.")] == []


# -- caffeine.bedtime_load -----------------------------------------------------------------------

#: The bedtime-load check as a nudge of its own, not joined to the wind-down, and room for it
#: beside the last call and the wind-down.
LOAD_ALONE = {"nudge_budget": {"merge_within_min": 0, "routine_per_evening": 3}}


@pytest.mark.parametrize(
    ("mg", "half_life_h", "expected_mg"),
    [
        pytest.param(200, 5.0, None, id="200 mg at 12:30 leaves exactly 50 mg: no nudge"),
        pytest.param(240, 5.0, 60.0, id="240 mg at 12:30 leaves 60 mg: a nudge with the figure"),
        pytest.param(100, 10.0, None, id="100 mg at a 10 h half-life leaves exactly 50 mg"),
        pytest.param(102, 10.0, 51.0, id="102 mg at a 10 h half-life leaves 51 mg"),
    ],
)
def test_bedtime_load(mg: float, half_life_h: float, expected_mg: float | None) -> None:
    """On its own (the wind-down far from it): a nudge 60 min before bed."""
    config = make_config(caffeine_half_life_h=half_life_h, rules=LOAD_ALONE)
    replay = run_day([logged("12:30", "caffeine", mg=mg)], config=config)
    loads = [n for n in replay.nudges if n.rule == "caffeine.bedtime_load"]
    if expected_mg is None:
        assert loads == []
        return
    (nudge,) = loads
    assert nudge.id == "caffeine.bedtime_load:alex:2026-11-24"
    assert nudge.ts == t("21:30")
    assert nudge.severity == "warning"
    assert nudge.evidence == {
        "predicted_mg_at_bedtime": expected_mg,
        "bedtime_limit_mg": 50.0,
        "bedtime": "2026-11-24T22:30:00+01:00",
        "half_life_h": half_life_h,
        "model": caffeine.SOURCE_MODEL,
        "source": caffeine.SOURCE_CUTOFF,
    }
    assert nudge.message.startswith(
        f"About {expected_mg:.0f} mg of caffeine will still be in your body at bedtime (22:30). "
        "Consider a calm, screen-free wind-down"
    )
    assert_no_dosing(nudge.message)


@pytest.mark.parametrize(
    ("mg", "half_life_h", "expected_mg"),
    [
        pytest.param(200, 5.0, None, id="exactly 50 mg at bedtime: a plain wind-down"),
        pytest.param(240, 5.0, 60.0, id="60 mg at bedtime: the wind-down says so"),
        pytest.param(102, 10.0, 51.0, id="51 mg at a 10 h half-life: the wind-down says so"),
    ],
)
def test_bedtime_load_inside_the_wind_down(
    mg: float, half_life_h: float, expected_mg: float | None
) -> None:
    """By default the check (60 min before bed) is 15 min from the wind-down: one nudge."""
    config = make_config(caffeine_half_life_h=half_life_h)
    replay = run_day([logged("12:30", "caffeine", mg=mg)], config=config)
    assert [n.rule for n in replay.nudges if n.rule == "caffeine.bedtime_load"] == []
    winddown = replay.nudge("winddown.stretch:alex:2026-11-24")
    if expected_mg is None:
        assert "caffeine" not in winddown.message
        assert winddown.severity == "info"
        return
    assert winddown.severity == "warning"
    assert winddown.evidence["caffeine.bedtime_load"] == {
        "predicted_mg_at_bedtime": expected_mg,
        "bedtime_limit_mg": 50.0,
        "bedtime": "2026-11-24T22:30:00+01:00",
        "half_life_h": half_life_h,
        "model": caffeine.SOURCE_MODEL,
        "source": caffeine.SOURCE_CUTOFF,
    }
    assert f"about {expected_mg:.0f} mg of caffeine will still be in your body" in (
        winddown.message
    )


def test_bedtime_load_limit_and_minutes_are_configurable() -> None:
    config = make_config(
        rules={
            "caffeine.bedtime_load": {"minutes_before_bed": 120, "bedtime_limit_mg": 10},
            "nudge_budget": {"routine_per_evening": 3},
        }
    )
    replay = run_day([logged("12:30", "caffeine", mg=50)], config=config)
    (nudge,) = [n for n in replay.nudges if n.rule == "caffeine.bedtime_load"]
    assert nudge.ts == t("20:30")
    assert nudge.evidence["predicted_mg_at_bedtime"] == 12.5
    off = make_config(rules={"caffeine.bedtime_load": {"enabled": False}})
    replay = run_day([logged("12:30", "caffeine", mg=400)], config=off)
    assert [n.rule for n in replay.nudges if n.rule == "caffeine.bedtime_load"] == []


def test_state_document_shows_caffeine_now_at_bedtime_and_today() -> None:
    replay = run([logged("12:30", "caffeine", mg=200)])
    doc = replay.documents[-1]
    assert doc["caffeine_mg_now"] == 200.0
    assert doc["caffeine_mg_at_bedtime"] == 50.0
    assert doc["caffeine_mg_today"] == 200.0
    assert doc["caffeine_cutoff"] == "2026-11-24T13:30:00+01:00"
    assert doc["caffeine_last_call"] == "2026-11-24T13:00:00+01:00"
    assert doc["caffeine_cutoff_passed"] is False


def test_a_utc_instant_is_the_same_drink() -> None:
    at = datetime(2026, 11, 24, 13, 31, tzinfo=UTC)  # 14:31 in Berlin
    replay = run([coffee("14:31")], config=CONFIG)
    other = run([CoffeeBrewed(person="alex", ts=at, drink="espresso")])
    assert replay.ids == other.ids == ["caffeine.cutoff:alex:2026-11-24:1431"]
