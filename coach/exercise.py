"""Exercise: intense workouts too close to bed, from workout events or a high heart rate.

How it works: a vigorous workout starting less than 3 h before tonight's bedtime, or a moderate
one less than 1 h before, gets "Switch to stretching" at once. Stutz, Eiholzer & Spengler 2019
(Sports Med 49(2):269-287, 23 studies): evening exercise does not harm sleep overall, but
vigorous exercise ending within 1 h of bedtime worsens sleep-onset latency, total sleep time and
efficiency; moderate evening exercise does not. A light workout never triggers it. Without a
workout event, a heart rate held at ≥ 77 % of maximum (220 − age, or the person's `max_hr`;
ACSM's threshold for vigorous intensity) for 10 minutes in the vigorous window counts too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from coach.clock import Night, hhmm, local_iso
from coach.event import HeartRateMeasured, WorkoutEnded, WorkoutStarted
from coach.rule import Ctx, Family, hours
from coach.state import Workout

SOURCE = (
    "Stutz, Eiholzer & Spengler 2019, Sports Med 49(2):269-287 (vigorous exercise ending "
    "≤ 1 h before bed hurts sleep; moderate evening exercise does not)"
)
SOURCE_HR = "ACSM: vigorous intensity ≥ 77 % of maximum heart rate (220 − age)"
# A gap in heart-rate readings longer than this breaks a "held high" stretch.
HR_GAP_S = 5 * 60
# A workout whose end never arrived (trackers drop messages) stops counting after this long;
# otherwise one lost `workout_end` would hide every later high heart rate until the next one.
WORKOUT_MAX_S = 4 * 3600


def exercise_ok_until(ctx: Ctx, night: Night) -> datetime:
    """The last moment a vigorous workout may start before this night's bedtime."""
    return night.bedtime - hours(ctx.config.rules.exercise_late_intense.vigorous_hours_before_bed)


def max_heart_rate(ctx: Ctx) -> float | None:
    """The person's maximum heart rate: measured, else 220 − age, else unknown."""
    if ctx.person.max_hr is not None:
        return float(ctx.person.max_hr)
    if ctx.person.age is not None:
        return 220.0 - ctx.person.age
    return None


def _nudge_late(
    ctx: Ctx, night: Night, at: datetime, cause: str, evidence: dict[str, object]
) -> None:
    ctx.ps.evening(night.key).late_workout = True
    hours_left = (night.bedtime - at).total_seconds() / 3600.0
    when = f"{hours_left:.1f} h before bedtime" if hours_left > 0 else "after your bedtime"
    ctx.send(
        "exercise.late_intense",
        day=night.key,
        night=night.key,
        cause=cause,
        severity="warning",
        title="Switch to stretching",
        message=(
            f"An intense workout {when} can keep your body "
            f"revved up and make it harder to fall asleep. Consider easing off to light "
            f"stretching now, and scheduling hard sessions earlier in the day."
        ),
        evidence={
            **evidence,
            "bedtime": local_iso(night.bedtime, ctx.tz),
            "hours_before_bed": round(hours_left, 2),
            "source": SOURCE,
        },
        expires=max(night.bedtime, at) + timedelta(hours=1),
        scheduled=False,
    )


def on_workout_started(ctx: Ctx, event: WorkoutStarted) -> None:
    """A vigorous or moderate workout inside its window gets a nudge."""
    ctx.ps.workout = Workout(event.ts.timestamp(), event.activity, event.intensity)
    rule = ctx.config.rules.exercise_late_intense
    if not rule.enabled or event.intensity == "light":
        return
    window = (
        rule.vigorous_hours_before_bed
        if event.intensity == "vigorous"
        else rule.moderate_hours_before_bed
    )
    night = ctx.night_at(event.ts)
    if event.ts < night.bedtime - hours(window):
        return
    _nudge_late(
        ctx,
        night,
        event.ts,
        hhmm(event.ts, ctx.tz).replace(":", ""),
        {
            "activity": event.activity,
            "intensity": event.intensity,
            "started_at": local_iso(event.ts, ctx.tz),
            "window_hours": window,
        },
    )


def on_workout_ended(ctx: Ctx, event: WorkoutEnded) -> None:
    """The workout is over."""
    ctx.ps.workout = None
    ctx.ps.hr_high_since = None


def on_heart_rate(ctx: Ctx, event: HeartRateMeasured) -> None:
    """A heart rate held high in the vigorous window, with no workout logged, counts too."""
    ps = ctx.ps
    t = ctx.event_s
    last = ps.last_hr_at
    ps.last_hr_at = t
    rule = ctx.config.rules.exercise_late_intense
    max_hr = max_heart_rate(ctx)
    if not rule.enabled or max_hr is None or event.bpm < rule.hr_fraction_of_max * max_hr:
        ps.hr_high_since = None
        return
    if ps.hr_high_since is None or last is None or t - last > HR_GAP_S:
        ps.hr_high_since = t
    if ps.workout is not None and t - ps.workout.started_at > WORKOUT_MAX_S:
        ps.workout = None
    if ps.workout is not None or t - ps.hr_high_since < rule.hr_minutes * 60:
        return
    night = ctx.night_at(event.ts)
    if event.ts < night.bedtime - hours(rule.vigorous_hours_before_bed):
        return
    _nudge_late(
        ctx,
        night,
        event.ts,
        "hr",
        {
            "heart_rate_bpm": event.bpm,
            "max_heart_rate_bpm": max_hr,
            "fraction_of_max": rule.hr_fraction_of_max,
            "held_minutes": round((t - ps.hr_high_since) / 60.0, 1),
            "window_hours": rule.vigorous_hours_before_bed,
            "source_heart_rate": SOURCE_HR,
        },
    )


FAMILY = Family(
    name="exercise",
    events={
        WorkoutStarted: on_workout_started,
        WorkoutEnded: on_workout_ended,
        HeartRateMeasured: on_heart_rate,
    },
)
