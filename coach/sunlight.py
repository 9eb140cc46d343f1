"""Daylight: at least 15 minutes of natural light a day.

How it works: sunlight minutes reported by the tracker add up per local day; at 15:00 local, a
day with less than 15 minutes gets a nudge to go outside. The 15 minutes come from the article
this coach is built on; Brown et al. 2022 (PLoS Biol 20(3):e3001571) recommend bright light
(≥ 250 lx melanopic) during the day, and Burns et al. 2022 (J Affect Disord, UK Biobank) found
each extra hour outdoors linked to fewer insomnia symptoms.
"""

from __future__ import annotations

from datetime import timedelta

from coach.clock import Night, at_local
from coach.event import SunlightLogged, Timer
from coach.rule import Ctx, Family

SOURCE = (
    "Brown et al. 2022, PLoS Biol 20(3):e3001571 (bright daytime light); "
    "Burns et al. 2022, J Affect Disord (time outdoors and insomnia)"
)


def on_sunlight(ctx: Ctx, event: SunlightLogged) -> None:
    """Add the minutes to the day's total."""
    day = ctx.local_day(event.ts)
    ctx.ps.sunlight[day] = ctx.ps.sunlight.get(day, 0.0) + event.minutes


def plan(ctx: Ctx, night: Night) -> list[Timer]:
    """The afternoon check of the night's evening date."""
    rule = ctx.config.rules.sunlight_daily
    if not rule.enabled:
        return []
    at = at_local(night.evening, rule.check_at, ctx.tz)
    return [Timer("sunlight.daily", ctx.person.id, at, night.key)]


def on_check(ctx: Ctx, timer: Timer) -> None:
    """Too little daylight so far today: suggest going outside."""
    rule = ctx.config.rules.sunlight_daily
    day = ctx.local_day()
    minutes = ctx.ps.sunlight.get(day, 0.0)
    if minutes >= rule.min_minutes:
        return
    night = ctx.tonight
    ctx.send(
        "sunlight.daily",
        day=day,
        night=night.key,
        severity="info",
        title="Get some daylight",
        message=(
            f"You've had about {minutes:.0f} minutes of daylight today. Consider stepping "
            f"outside for at least {rule.min_minutes} minutes before the evening: daylight helps "
            f"your body clock and lowers stress."
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


FAMILY = Family(
    name="sunlight",
    events={SunlightLogged: on_sunlight},
    timers={"sunlight.daily": on_check},
    plan=plan,
)
