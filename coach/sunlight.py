"""Daylight: at least 15 minutes of natural light a day.

How it works: sunlight minutes reported by the tracker add up per local day; at 15:00 local, a
day with less than 15 minutes gets a nudge to go outside. A day without any daylight reading is
unknown, not zero (many trackers never report daylight, or only when worn outside): it gets no
nudge. A reading of 0 minutes is a reading, and counts.

The 15 minutes are a small, reachable daily target (the project's default): Brown et al. 2022
(PLoS Biol 20(3):e3001571, expert consensus) recommend bright daytime light, at least 250 lx
melanopic EDI at the eye, without naming a minimum duration; Burns et al. 2022 (J Affect Disord,
UK Biobank, about 400,000 adults) found each extra hour spent outdoors linked to fewer insomnia
symptoms and easier getting up.
"""

from __future__ import annotations

import math
from datetime import timedelta

from coach.clock import Night
from coach.event import SunlightLogged, Timer
from coach.rule import Ctx, Family, daily_check
from coach.state import PersonState
from coach.wording import count

SOURCE = (
    "Brown et al. 2022, PLoS Biol 20(3):e3001571 (bright daytime light); "
    "Burns et al. 2022, J Affect Disord (time outdoors and insomnia)"
)


def on_sunlight(ctx: Ctx, event: SunlightLogged) -> None:
    """Add the minutes to the day's total."""
    day = ctx.local_day(event.ts)
    ctx.ps.sunlight[day] = ctx.ps.sunlight.get(day, 0.0) + event.minutes


def daylight_minutes(ps: PersonState, day: str) -> float | None:
    """Minutes of daylight reported on a local date; None when nothing was reported."""
    return ps.sunlight.get(day)


def is_daylight_reached(ps: PersonState, day: str, min_minutes: float) -> bool | None:
    """Whether the day's daylight reached `min_minutes`; None when it is unknown (no reading)."""
    minutes = daylight_minutes(ps, day)
    return None if minutes is None else minutes >= min_minutes


def plan(ctx: Ctx, night: Night) -> list[Timer]:
    """The afternoon check of the night's evening date."""
    rule = ctx.config.rules.sunlight_daily
    return daily_check(ctx, night, "sunlight.daily", enabled=rule.enabled, at=rule.check_at)


def on_check(ctx: Ctx, timer: Timer) -> None:
    """Too little daylight so far today: suggest going outside."""
    rule = ctx.config.rules.sunlight_daily
    day = ctx.local_day()
    minutes = daylight_minutes(ctx.ps, day)
    if minutes is None or minutes >= rule.min_minutes:
        return
    night = ctx.tonight
    ctx.send(
        "sunlight.daily",
        day=day,
        night=night.key,
        severity="info",
        title="Get some daylight",
        message=(
            f"Your tracker has counted {_daylight(minutes)} today. Consider stepping "
            f"outside for at least {count(rule.min_minutes, 'minute')} before the evening: "
            f"daylight helps your body clock and lowers stress."
        ),
        evidence={
            "sunlight_minutes_today": round(minutes, 1),
            "min_minutes": rule.min_minutes,
            "date": day,
            "source": SOURCE,
        },
        expires=night.bedtime - timedelta(hours=3),
        scheduled=True,
    )


def _daylight(minutes: float) -> str:
    if minutes <= 0:
        return "no daylight"
    if minutes < 1:
        return "less than a minute of daylight"
    # Whole minutes counted so far, rounded down: 14.9 is "14 minutes", short of the 15.
    return f"{count(math.floor(minutes), 'minute')} of daylight"


FAMILY = Family(
    name="sunlight",
    events={SunlightLogged: on_sunlight},
    timers={"sunlight.daily": on_check},
    plan=plan,
)
