"""Stress: a high stress level held in the evening gets a nudge to make time to relax.

How it works: a stress reading ≥ 75 (0-100, as trackers report it) held for 20 minutes within
4 h of tonight's bedtime gets one nudge that evening. The American Academy of Sleep Medicine lists
stress and anxiety among the triggers of hypnic jerks. The nudge suggests ways to relax, time
with someone close among them (connecting with others, as well as exercise and daylight, is the
positive side of the same advice; the activity and daylight rules carry those).

An evening with no stress reading in those hours is unknown, not calm: the night's record says
`stress_evening` is None (`stress_evening`), and the weekly insight leaves it out.
"""

from __future__ import annotations

from datetime import timedelta

from coach.clock import local_iso
from coach.event import StressMeasured
from coach.rule import Ctx, Family, hours
from coach.state import PersonState

SOURCE = (
    "American Academy of Sleep Medicine: stress and anxiety trigger hypnic jerks "
    "(sleepeducation.org, hypnic jerks)"
)
# A gap in stress readings longer than this breaks a "held high" stretch.
STRESS_GAP_S = 15 * 60


def on_stress(ctx: Ctx, event: StressMeasured) -> None:
    """Track how long stress has stayed high; nudge once an evening."""
    ps = ctx.ps
    t = ctx.event_s
    last = ps.last_stress_at
    ps.last_stress_at = t
    rule = ctx.config.rules.stress_relax
    night = ctx.night_at(event.ts)
    in_window = night.bedtime - hours(rule.hours_before_bed) <= event.ts <= night.bedtime
    if in_window:
        ps.evening(night.key).stress_read = True
    if not rule.enabled or event.level < rule.level:
        ps.stress_high_since = None
        return
    if ps.stress_high_since is None or last is None or t - last > STRESS_GAP_S:
        ps.stress_high_since = t
    held_min = (t - ps.stress_high_since) / 60.0
    if held_min < rule.minutes:
        return
    if event.ts < night.bedtime - hours(rule.hours_before_bed):
        return
    evening = ctx.ps.evening(night.key)
    if evening.stress_high:
        return  # once an evening
    evening.stress_high = True
    ctx.send(
        "stress.relax",
        day=night.key,
        night=night.key,
        severity="info",
        title="Make time to relax",
        message=(
            "Your stress level has been high for a while this evening. Consider a short walk, "
            "slow breathing, or time with someone close: stress and anxiety make twitches as you "
            "fall asleep more likely."
        ),
        evidence={
            "stress_level": event.level,
            "threshold": rule.level,
            "held_minutes": round(held_min, 1),
            "bedtime": local_iso(night.bedtime, ctx.tz),
            "window_hours": rule.hours_before_bed,
            "source": SOURCE,
        },
        expires=night.bedtime + timedelta(minutes=ctx.config.rules.quiet_hours.after_bedtime_min),
        scheduled=False,
    )


FAMILY = Family(name="stress", events={StressMeasured: on_stress})


def stress_evening(ps: PersonState, night_key: str) -> bool | None:
    """Whether stress stayed high in the hours before this night's bedtime: True, False, or None
    when no stress reading came in those hours (unknown)."""
    evening = ps.evenings.get(night_key)
    if evening is None or not (evening.stress_read or evening.stress_high):
        return None
    return evening.stress_high
