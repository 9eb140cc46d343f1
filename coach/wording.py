"""Wording: how the coach says numbers, so every message speaks in one voice.

Counts get the right singular or plural ("1 minute", "2 minutes"), durations read as a person
would say them ("1 hour 15 minutes", not "1.2 h"), clock times as HH:MM.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from coach.clock import hhmm


def count(n: float, one: str, many: str | None = None) -> str:
    """A whole count with its noun: `count(1, "minute")` is "1 minute", 0 or 2 "minutes"."""
    whole = round(n)
    return f"{whole} {one if whole == 1 else many or one + 's'}"


def duration(span: timedelta) -> str:
    """A span as people say it: "40 minutes", "1 hour", "about 2 hours 30 minutes".

    Under an hour to the minute; from an hour on to the nearest quarter hour, which is as precise
    as a schedule needs and reads at a glance, with "about" when that rounded it.
    """
    minutes = max(0, round(span.total_seconds() / 60.0))
    if minutes < 60:
        return count(minutes, "minute")
    quarters = round(minutes / 15.0)
    h, q = divmod(quarters, 4)
    text = f"{count(h, 'hour')} {q * 15} minutes" if q else count(h, "hour")
    return text if quarters * 15 == minutes else f"about {text}"


def before_bedtime(at: datetime, bedtime: datetime, tz: ZoneInfo) -> str:
    """When something happened, said against bedtime: "2 hours before your bedtime (22:30)",
    or "after your bedtime (22:30)"."""
    bed = hhmm(bedtime, tz)
    if at >= bedtime:
        return f"after your bedtime ({bed})"
    return f"{duration(bedtime - at)} before your bedtime ({bed})"
