"""Alcohol: a drink logged close to bedtime gets one informational nudge an evening.

How it works: alcohol is logged by command (`{"command": "log", "what": "alcohol"}`). A drink
logged less than 3 h before its night's bedtime (the night it belongs to, as for caffeine: one
logged on getting up belongs to the new day) gets `alcohol.late` once that evening, and the
evening's record notes it (`Evening.alcohol_late`) for the morning summary and the insights.

Ebrahim et al. 2013 (Alcohol Clin Exp Res 37(4):539-549, a review of 27 studies in healthy
volunteers): at every dose studied alcohol shortened the time to fall asleep, and at moderate and
high doses (about two or more standard drinks) it reduced REM sleep in the first half of the night
while sleep in the second half was more disrupted. Spadola et al. 2019 (Sleep 42(11), 785 adults,
5,164 nights of actigraphy): alcohol within 4 h of bedtime went with a lower sleep efficiency.
The 3 h window is the project's default within those 4 h. The nudge informs; it never tells
anyone how much to drink.
"""

from __future__ import annotations

from datetime import timedelta

from coach.event import SubstanceLogged
from coach.rule import Ctx, Family, hours, logged_evidence
from coach.wording import before_bedtime

SOURCE = (
    "Ebrahim et al. 2013, Alcohol Clin Exp Res 37(4):539-549 (review of 27 studies in healthy "
    "volunteers: alcohol at every dose shortened sleep onset; at moderate and high doses, about "
    "2 or more standard drinks, it reduced REM sleep in the first half of the night and sleep in "
    "the second half was more disrupted); Spadola et al. 2019, Sleep 42(11):zsz136 (785 adults, "
    "5,164 nights of actigraphy: alcohol within 4 h of bedtime, lower sleep efficiency)"
)


def on_logged(ctx: Ctx, event: SubstanceLogged) -> None:
    """Alcohol is remembered; a drink close to bedtime gets one nudge that evening."""
    if event.what != "alcohol":
        return
    ctx.ps.alcohol.append(ctx.event_s)
    rule = ctx.config.rules.alcohol_late
    night = ctx.night_of_intake(event.ts)
    if event.ts < night.bedtime - hours(rule.hours_before_bed):
        return
    # The evening's fact stands whether or not the nudge is wanted: the morning summary and the
    # insights read it.
    ctx.ps.evening(night.key).alcohol_late = True
    if not rule.enabled:
        return
    when = before_bedtime(event.ts, night.bedtime, ctx.tz)
    ctx.send(
        "alcohol.late",
        day=night.key,
        night=night.key,
        severity="info",
        title="Alcohol close to bedtime",
        message=(
            f"You logged a drink {when}. Alcohol can help you fall asleep but tends to disturb "
            f"the second half of the night. Consider water or alcohol-free drinks from now on."
        ),
        evidence=logged_evidence(ctx, night, event.ts, rule.hours_before_bed, SOURCE),
        expires=max(night.bedtime, event.ts) + timedelta(hours=1),
        scheduled=False,
    )


FAMILY = Family(name="alcohol", events={SubstanceLogged: on_logged})
