"""Stimulants other than caffeine: nicotine close to bed.

How it works: a nicotine log less than 4 h before tonight's bedtime gets a nudge at once.
Spadola et al. 2019 (Sleep 42(11):zsz136, 785 adults, 5,164 nights of actigraphy): nicotine
within 4 h of bedtime went with 6 more minutes awake after sleep onset, and 42–47 minutes less
sleep in people with insomnia.
"""

from __future__ import annotations

from datetime import timedelta

from coach.clock import hhmm
from coach.event import SubstanceLogged
from coach.rule import Ctx, Family, hours, logged_evidence
from coach.wording import before_bedtime, duration

SOURCE = "Spadola et al. 2019, Sleep 42(11):zsz136 (nicotine within 4 h of bedtime)"


def on_logged(ctx: Ctx, event: SubstanceLogged) -> None:
    """Nicotine is remembered; nicotine close to bed gets a nudge (alcohol: `coach.alcohol`)."""
    if event.what != "nicotine":
        return
    ctx.ps.nicotine.append(ctx.event_s)
    rule = ctx.config.rules.stimulant_late
    if not rule.enabled:
        return
    night = ctx.night_of_intake(event.ts)
    if event.ts < night.bedtime - hours(rule.hours_before_bed):
        return
    when = before_bedtime(event.ts, night.bedtime, ctx.tz)
    ctx.send(
        "stimulant.late",
        day=night.key,
        night=night.key,
        cause=hhmm(event.ts, ctx.tz).replace(":", ""),
        severity="warning",
        title="Nicotine this late keeps you wired",
        message=(
            f"Nicotine is a stimulant, and this was {when}. "
            f"Consider keeping the last {duration(hours(rule.hours_before_bed))} before bed "
            f"nicotine-free; if you'd like help quitting, talk to your doctor."
        ),
        evidence=logged_evidence(ctx, night, event.ts, rule.hours_before_bed, SOURCE),
        expires=max(night.bedtime, event.ts) + timedelta(hours=1),
        scheduled=False,
    )


FAMILY = Family(name="stimulant", events={SubstanceLogged: on_logged})
