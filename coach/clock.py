"""Local wall-clock arithmetic: nights, bedtimes and wake times, right across daylight saving.

How it works: a *night* is named by the local date of its evening. Its bedtime is the person's
bedtime for that weekday; a bedtime before noon ("00:45") belongs to the evening before, so it
falls on the next calendar day. Its wake time is the first wake time after bedtime (the wake time
of the morning's weekday). Wall-clock times are turned into instants with `zoneinfo`; a time that
does not exist on a spring-forward day (02:30) moves forward by the gap, and a time that exists
twice on a fall-back day takes the first. Durations ("8 h before bed") are measured in real
elapsed time (UTC), so "8 h before 22:30" is 14:30 on every day, daylight saving or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from coach.config import Person

NOON = time(12, 0)


def at_local(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The instant (UTC) at which the local wall clock in `tz` shows `clock` on `day`."""
    naive_local = datetime.combine(day, clock, tzinfo=tz)
    # Round-trip through UTC: a non-existent local time (spring forward) becomes a real instant.
    return naive_local.astimezone(UTC)


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The local calendar date of an instant."""
    return instant.astimezone(tz).date()


@dataclass(frozen=True, slots=True)
class Night:
    """One night of one person: named by its evening's local date."""

    evening: date
    bedtime: datetime
    wake: datetime

    @property
    def key(self) -> str:
        """The night's id part, the ISO date of its evening."""
        return self.evening.isoformat()


def bedtime_of(
    person: Person, evening: date, tz: ZoneInfo, override: time | None = None
) -> datetime:
    """Bedtime of the night named by `evening` (a time before noon falls on the next day)."""
    clock = override if override is not None else person.bedtime.on(evening.weekday())
    day = evening + timedelta(days=1) if clock < NOON else evening
    return at_local(day, clock, tz)


def night_of(
    person: Person, evening: date, tz: ZoneInfo, overrides: dict[str, str] | None = None
) -> Night:
    """The night that starts on the evening of `evening`."""
    override = None
    if overrides:
        raw = overrides.get(evening.isoformat())
        if raw is not None:
            override = time.fromisoformat(raw)
    bed = bedtime_of(person, evening, tz, override)
    bed_local_day = bed.astimezone(tz).date()
    wake_clock = person.wake.on(bed_local_day.weekday())
    wake = at_local(bed_local_day, wake_clock, tz)
    if wake <= bed:
        next_day = bed_local_day + timedelta(days=1)
        wake = at_local(next_day, person.wake.on(next_day.weekday()), tz)
    return Night(evening=evening, bedtime=bed, wake=wake)


def tonight(
    person: Person, now: datetime, tz: ZoneInfo, overrides: dict[str, str] | None = None
) -> Night:
    """The night in progress if `now` is between its bedtime and wake, otherwise the next one.

    A coffee at 01:30 is still judged against the bedtime of the night in progress.
    """
    today = local_date(now, tz)
    for offset in (-1, 0):
        night = night_of(person, today + timedelta(days=offset), tz, overrides)
        # Bedtime comes before wake: a night not over yet is in progress or still ahead.
        if now < night.wake:
            return night
    # Tomorrow evening's bedtime is tomorrow noon at the earliest, so it is always ahead.
    return night_of(person, today + timedelta(days=1), tz, overrides)


def local_iso(instant: datetime, tz: ZoneInfo) -> str:
    """An instant as ISO 8601 local time with its offset, to the second."""
    return instant.astimezone(tz).replace(microsecond=0).isoformat()


def hhmm(instant: datetime, tz: ZoneInfo) -> str:
    """The local wall-clock time of an instant, as HH:MM."""
    return instant.astimezone(tz).strftime("%H:%M")
