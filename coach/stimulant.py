"""Stimulants other than caffeine: nicotine close to bed.

How it works: a nicotine log less than 4 h before tonight's bedtime gets a nudge at once.
Spadola et al. 2019 (Sleep 42(11):zsz136, 785 adults, 5,164 nights of actigraphy): nicotine
within 4 h of bedtime went with 6 more minutes awake after sleep onset, and 42–47 minutes less
sleep in people with insomnia.
"""

from __future__ import annotations

from datetime import timedelta

from coach.clock import hhmm, local_iso
from coach.event import SubstanceLogged
from coach.rule import Ctx, Family, hours

SOURCE = "Spadola et al. 2019, Sleep 42(11):zsz136 (nicotine within 4 h of bedtime)"


def on_logged(ctx: Ctx, event: SubstanceLogged) -> None:
    """Nicotine and alcohol are remembered; nicotine close to bed gets a nudge."""
    ts = event.ts.timestamp()
    if event.what == "alcohol":
        ctx.ps.alcohol.append(ts)
        return
    if event.what != "nicotine":
        return
    ctx.ps.nicotine.append(ts)
    rule = ctx.config.rules.stimulant_late
    if not rule.enabled:
        return
    night = ctx.night_at(event.ts)
    if event.ts < night.bedtime - hours(rule.hours_before_bed):
        return
    hours_left = (night.bedtime - event.ts).total_seconds() / 3600.0
    when = f"{hours_left:.1f} h before bedtime" if hours_left > 0 else "after your bedtime"
    ctx.send(
        "stimulant.late",
        day=night.key,
        night=night.key,
        cause=hhmm(event.ts, ctx.tz).replace(":", ""),
        severity="warning",
        title="Nicotine this late keeps you wired",
        message=(
            f"Nicotine is a stimulant, and this was {when}. "
            f"Consider keeping the last {rule.hours_before_bed:g} hours before bed nicotine-free; "
            f"if you'd like help quitting, talk to your doctor."
        ),
        evidence={
            "logged_at": local_iso(event.ts, ctx.tz),
            "bedtime": local_iso(night.bedtime, ctx.tz),
            "hours_before_bed": round(hours_left, 2),
            "window_hours": rule.hours_before_bed,
            "source": SOURCE,
        },
        expires=max(night.bedtime, event.ts) + timedelta(hours=1),
        scheduled=False,
    )


FAMILY = Family(name="stimulant", events={SubstanceLogged: on_logged})
