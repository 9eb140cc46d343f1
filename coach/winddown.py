"""Wind-down: light stretching and dim light before bed.

How it works: `minutes_before_bed` (45) before tonight's bedtime, a nudge to switch to light
stretching, dim the lights and put screens away; it says more about stretching on a night after a
late workout. It is not sent when the person is already in bed. The article's advice on hypnic
jerks: only light stretching before bed, and time to relax. Brown et al. 2022 (PLoS Biol
20(3):e3001571) recommend ≤ 10 lx melanopic light in the 3 h before bed.

When the caffeine bedtime-load check falls within 30 minutes of the wind-down (the defaults: 60
and 45 minutes before bed), the wind-down carries it: on an evening with more than 50 mg of
caffeine predicted at bedtime it says so, as a warning, and no separate caffeine nudge goes out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from coach import caffeine
from coach.clock import Night, hhmm, local_iso
from coach.event import Timer
from coach.rule import Ctx, Family

SOURCE = (
    "Stutz et al. 2019, Sports Med 49(2) (only light activity close to bed); "
    "Brown et al. 2022, PLoS Biol 20(3):e3001571 (dim light before bed)"
)


#: The nudge's title, sent or not.
TITLE: Final = "Time to wind down"


def winddown_at(ctx: Ctx, night: Night) -> datetime:
    """When this night's wind-down starts."""
    return night.bedtime - timedelta(minutes=ctx.config.rules.winddown_stretch.minutes_before_bed)


def plan(ctx: Ctx, night: Night) -> list[Timer]:
    """One wind-down per night."""
    if not ctx.config.rules.winddown_stretch.enabled:
        return []
    return [Timer("winddown.stretch", ctx.person.id, winddown_at(ctx, night), night.key)]


def on_winddown(ctx: Ctx, timer: Timer) -> None:
    """Time to wind down, unless already in bed."""
    night = ctx.tonight
    nudge_id = f"winddown.stretch:{ctx.person.id}:{night.key}"
    if ctx.ps.in_bed:
        if nudge_id not in ctx.state.sent:
            ctx.state.sent[nudge_id] = ctx.now.timestamp()
            ctx.drop(nudge_id, "winddown.stretch", "in_bed", title=TITLE, night=night.key)
        return
    evening = ctx.ps.evenings.get(night.key)
    late_workout = evening is not None and evening.late_workout
    load = caffeine.predicted_load(ctx, night) if caffeine.load_joins_winddown(ctx, night) else None
    bedtime = hhmm(night.bedtime, ctx.tz)
    if load is None:
        opening = f"Bedtime is at {bedtime}."
    else:
        opening = (
            f"Bedtime is at {bedtime}, and about {load:.0f} mg of caffeine will still be in your "
            f"body then, which can make it harder to fall asleep."
        )
    message = (
        f"{opening} Consider dimming the lights, putting screens away and doing a few minutes "
        f"of light stretching to relax."
    )
    if late_workout:
        message += (
            " After today's late workout, slow stretches for the legs, hips and back, held "
            "20–30 seconds each with calm breathing, help your body settle."
        )
    evidence: dict[str, object] = {
        "bedtime": local_iso(night.bedtime, ctx.tz),
        "minutes_before_bed": ctx.config.rules.winddown_stretch.minutes_before_bed,
        "late_workout_today": late_workout,
        "source": SOURCE,
    }
    if load is not None:
        evidence["caffeine.bedtime_load"] = caffeine.load_evidence(ctx, night, load)
    ctx.send(
        "winddown.stretch",
        day=night.key,
        night=night.key,
        severity="info" if load is None else "warning",
        title=TITLE,
        message=message,
        evidence=evidence,
        expires=night.bedtime + timedelta(minutes=ctx.config.rules.quiet_hours.after_bedtime_min),
        scheduled=True,
    )


FAMILY = Family(name="winddown", timers={"winddown.stretch": on_winddown}, plan=plan)
