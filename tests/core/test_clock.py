"""Nights, bedtimes and wake times in Europe/Berlin, right across daylight saving.

A night is named by its evening's local date; a bedtime before noon belongs to the evening before;
wall-clock times stay at their wall-clock time on DST days while durations are real hours.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coach.clock import at_local, bedtime_of, hhmm, local_date, local_iso, night_of, tonight
from coach.config import Person
from tests.core.conftest import TZ, t


def person(bedtime: Any = "22:30", wake: Any = "06:30") -> Person:
    """Alex with these bedtimes and wake times."""
    return Person(id="alex", bedtime=bedtime, wake=wake)


ALEX = person()


def local(instant: datetime) -> str:
    """An instant as Berlin local ISO time, for readable comparisons."""
    return local_iso(instant, TZ)


# -- nights ---------------------------------------------------------------------------------------


def test_a_night_is_named_by_its_evening_and_runs_from_bedtime_to_wake() -> None:
    night = night_of(ALEX, date(2026, 11, 24), TZ)
    assert night.key == "2026-11-24"
    assert local(night.bedtime) == "2026-11-24T22:30:00+01:00"
    assert local(night.wake) == "2026-11-25T06:30:00+01:00"


def test_instants_are_utc_so_that_arithmetic_is_real_time() -> None:
    night = night_of(ALEX, date(2026, 11, 24), TZ)
    assert night.bedtime.tzinfo is UTC
    assert night.wake.tzinfo is UTC


def test_a_bedtime_after_midnight_belongs_to_the_evening_before() -> None:
    # Monday's "00:45" is the night from Monday to Tuesday.
    night = night_of(person("00:45"), date(2026, 11, 23), TZ)
    assert night.key == "2026-11-23"
    assert local(night.bedtime) == "2026-11-24T00:45:00+01:00"
    assert local(night.wake) == "2026-11-24T06:30:00+01:00"


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        pytest.param("11:59", "2026-11-24T11:59:00+01:00", id="11:59 is still the next morning"),
        pytest.param("12:00", "2026-11-23T12:00:00+01:00", id="noon is the evening's own day"),
        pytest.param("00:00", "2026-11-24T00:00:00+01:00", id="midnight is the next day"),
        pytest.param("23:59", "2026-11-23T23:59:00+01:00", id="23:59 is the evening's day"),
    ],
)
def test_noon_splits_evening_from_morning_bedtimes(clock: str, expected: str) -> None:
    assert local(bedtime_of(person(clock), date(2026, 11, 23), TZ)) == expected


WEEKLY = person(
    {"default": "22:30", "fri": "00:30", "sat": "23:30", "mon": "22:00"},
    {"default": "06:30", "sat": "09:00", "sun": "09:30"},
)


@pytest.mark.parametrize(
    ("evening", "bedtime", "wake"),
    [
        pytest.param("2026-11-23", "2026-11-23T22:00", "2026-11-24T06:30", id="Monday's own 22:00"),
        pytest.param(
            "2026-11-24", "2026-11-24T22:30", "2026-11-25T06:30", id="Tuesday takes the default"
        ),
        pytest.param(
            "2026-11-27",
            "2026-11-28T00:30",
            "2026-11-28T09:00",
            id="Friday's 00:30 falls on Saturday and wakes at Saturday's 09:00",
        ),
        pytest.param(
            "2026-11-28",
            "2026-11-28T23:30",
            "2026-11-29T09:30",
            id="Saturday's 23:30 wakes at Sunday's 09:30",
        ),
        pytest.param(
            "2026-11-29",
            "2026-11-29T22:30",
            "2026-11-30T06:30",
            id="Sunday night wakes at Monday's time",
        ),
    ],
)
def test_per_weekday_bedtimes_and_wake_times(evening: str, bedtime: str, wake: str) -> None:
    night = night_of(WEEKLY, date.fromisoformat(evening), TZ)
    assert local(night.bedtime) == f"{bedtime}:00+01:00"
    assert local(night.wake) == f"{wake}:00+01:00"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        pytest.param("23:15", "2026-11-24T23:15:00+01:00", id="a later bedtime tonight"),
        pytest.param("21:00", "2026-11-24T21:00:00+01:00", id="an earlier bedtime tonight"),
        pytest.param("00:30", "2026-11-25T00:30:00+01:00", id="a bedtime past midnight tonight"),
    ],
)
def test_a_bedtime_override_moves_only_its_night(override: str, expected: str) -> None:
    overrides = {"2026-11-24": override}
    assert local(night_of(ALEX, date(2026, 11, 24), TZ, overrides).bedtime) == expected
    other = night_of(ALEX, date(2026, 11, 25), TZ, overrides)
    assert local(other.bedtime) == "2026-11-25T22:30:00+01:00"


# -- tonight --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bedtime", "now", "expected"),
    [
        pytest.param("22:30", t("12:00"), "2026-11-24", id="at noon tonight is the coming night"),
        pytest.param("22:30", t("22:29"), "2026-11-24", id="a minute before bedtime"),
        pytest.param("22:30", t("22:30"), "2026-11-24", id="at bedtime, the night in progress"),
        pytest.param(
            "22:30", t("01:30", "2026-11-25"), "2026-11-24", id="at 01:30 still the night before"
        ),
        pytest.param("22:30", t("06:29", "2026-11-25"), "2026-11-24", id="a minute before wake"),
        pytest.param("22:30", t("06:30", "2026-11-25"), "2026-11-25", id="at wake the next night"),
        pytest.param("00:45", t("23:59"), "2026-11-24", id="bedtime 00:45: at 23:59, tonight's"),
        pytest.param(
            "00:45", t("00:30", "2026-11-25"), "2026-11-24", id="bedtime 00:45: at 00:30 still it"
        ),
        pytest.param(
            "00:45", t("03:00", "2026-11-25"), "2026-11-24", id="bedtime 00:45: at 03:00 asleep"
        ),
        pytest.param(
            "00:45", t("07:00", "2026-11-25"), "2026-11-25", id="bedtime 00:45: at 07:00 next"
        ),
    ],
)
def test_tonight_in_and_out_of_the_night(bedtime: str, now: datetime, expected: str) -> None:
    night = tonight(person(bedtime), now, TZ)
    assert night.key == expected
    assert night.wake > now


def test_tonight_uses_the_override_of_the_night_in_progress() -> None:
    night = tonight(ALEX, t("23:00"), TZ, {"2026-11-24": "23:30"})
    assert night.key == "2026-11-24"
    assert local(night.bedtime) == "2026-11-24T23:30:00+01:00"


# -- daylight saving ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("evening", "bedtime", "wake", "hours_in_bed"),
    [
        pytest.param(
            "2026-03-28",
            "2026-03-28T22:30:00+01:00",
            "2026-03-29T06:30:00+02:00",
            7,
            id="spring forward: the night is 7 real hours",
        ),
        pytest.param(
            "2026-03-29",
            "2026-03-29T22:30:00+02:00",
            "2026-03-30T06:30:00+02:00",
            8,
            id="the first summer night is 8 hours again",
        ),
        pytest.param(
            "2026-10-24",
            "2026-10-24T22:30:00+02:00",
            "2026-10-25T06:30:00+01:00",
            9,
            id="fall back: the night is 9 real hours",
        ),
        pytest.param(
            "2026-10-25",
            "2026-10-25T22:30:00+01:00",
            "2026-10-26T06:30:00+01:00",
            8,
            id="the first winter night is 8 hours again",
        ),
    ],
)
def test_bedtime_and_wake_stay_at_wall_clock_time_on_dst_days(
    evening: str, bedtime: str, wake: str, hours_in_bed: int
) -> None:
    night = night_of(ALEX, date.fromisoformat(evening), TZ)
    assert local(night.bedtime) == bedtime
    assert local(night.wake) == wake
    assert night.wake - night.bedtime == timedelta(hours=hours_in_bed)


@pytest.mark.parametrize(
    ("evening", "winddown"),
    [
        pytest.param("2026-03-28", "2026-03-28T21:45:00+01:00", id="the evening before spring"),
        pytest.param("2026-03-29", "2026-03-29T21:45:00+02:00", id="the spring-forward day"),
        pytest.param("2026-10-24", "2026-10-24T21:45:00+02:00", id="the evening before fall"),
        pytest.param("2026-10-25", "2026-10-25T21:45:00+01:00", id="the fall-back day"),
    ],
)
def test_winddown_stays_at_local_wall_clock_time(evening: str, winddown: str) -> None:
    night = night_of(ALEX, date.fromisoformat(evening), TZ)
    assert local(night.bedtime - timedelta(minutes=45)) == winddown


@pytest.mark.parametrize(
    ("evening", "bedtime", "cutoff"),
    [
        pytest.param(
            "2026-03-28",
            "04:00",
            "2026-03-28T19:00:00+01:00",
            id="8 h before a 04:00 bed after the jump is 19:00 (9 h on the wall clock)",
        ),
        pytest.param(
            "2026-10-24",
            "04:00",
            "2026-10-24T21:00:00+02:00",
            id="8 h before a 04:00 bed after falling back is 21:00 (7 h on the wall clock)",
        ),
        pytest.param(
            "2026-03-29",
            "22:30",
            "2026-03-29T14:30:00+02:00",
            id="on the spring-forward day itself 22:30 minus 8 h is 14:30",
        ),
    ],
)
def test_hours_before_bed_are_real_hours(evening: str, bedtime: str, cutoff: str) -> None:
    night = night_of(person(bedtime), date.fromisoformat(evening), TZ)
    assert local(night.bedtime - timedelta(hours=8)) == cutoff


def test_a_wall_clock_time_in_the_spring_gap_moves_forward_by_the_gap() -> None:
    assert local(at_local(date(2026, 3, 29), time(2, 30), TZ)) == "2026-03-29T03:30:00+02:00"


def test_a_wall_clock_time_that_happens_twice_takes_the_first() -> None:
    assert local(at_local(date(2026, 10, 25), time(2, 30), TZ)) == "2026-10-25T02:30:00+02:00"
    assert at_local(date(2026, 10, 25), time(2, 30), TZ) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


def test_local_helpers() -> None:
    instant = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    assert local_date(instant, TZ) == date(2026, 11, 25)
    assert hhmm(instant, TZ) == "00:30"
    assert local_iso(instant.replace(microsecond=123456), TZ) == "2026-11-25T00:30:00+01:00"


# -- properties -----------------------------------------------------------------------------------

# Any instant of 2026 and 2027, so both DST changes of each year are in reach.
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
clock_times = st.times().map(lambda c: c.replace(second=0, microsecond=0))
# Realistic bedtimes (19:00 to 02:59) and wake times (04:00 to 10:59) for the ordering properties.
evening_times = st.builds(time, st.sampled_from([19, 20, 21, 22, 23, 0, 1, 2]), st.integers(0, 59))
morning_times = st.builds(time, st.integers(4, 10), st.integers(0, 59))


def weekly(times: st.SearchStrategy[time]) -> st.SearchStrategy[dict[str, str]]:
    """A per-weekday schedule of HH:MM strings."""
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return st.fixed_dictionaries({d: times.map(lambda c: c.strftime("%H:%M")) for d in days})


@settings(max_examples=200, deadline=None)
@given(now=instants, bedtime=clock_times, wake=clock_times)
def test_tonight_always_ends_after_now_and_bedtime_comes_before_wake(
    now: datetime, bedtime: time, wake: time
) -> None:
    night = tonight(person(bedtime.strftime("%H:%M"), wake.strftime("%H:%M")), now, TZ)
    assert night.bedtime < night.wake
    assert night.wake > now
    assert night.wake - night.bedtime <= timedelta(hours=25)


@settings(max_examples=100, deadline=None)
@given(
    now=instants,
    step=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
    bedtimes=weekly(evening_times),
    wakes=weekly(morning_times),
)
def test_night_keys_never_go_backwards(
    now: datetime, step: timedelta, bedtimes: dict[str, str], wakes: dict[str, str]
) -> None:
    who = person(bedtimes, wakes)
    first, later = tonight(who, now, TZ), tonight(who, now + step, TZ)
    assert first.evening <= later.evening
    assert first.bedtime <= later.bedtime


@settings(max_examples=100, deadline=None)
@given(now=instants, bedtimes=weekly(evening_times), wakes=weekly(morning_times))
def test_tonight_is_in_progress_or_the_next_and_local_times_are_kept(
    now: datetime, bedtimes: dict[str, str], wakes: dict[str, str]
) -> None:
    who = person(bedtimes, wakes)
    night = tonight(who, now, TZ)
    assert night.bedtime <= now < night.wake or now < night.bedtime
    previous = night_of(who, night.evening - timedelta(days=1), TZ)
    assert previous.wake <= now  # else the night before would still be in progress
    # The wall clock shows the configured bedtime, except in the spring gap (02:00-02:59).
    clock = who.bedtime.on(night.evening.weekday())
    shown = night.bedtime.astimezone(TZ).time()
    assert shown == clock or (clock.hour == 2 and shown == clock.replace(hour=3))
