"""Exercise: vigorous exercise in the last hour before bed, from workout events or a heart rate.

How it works. Stutz, Eiholzer & Spengler 2019 (Sports Med 49(2):269-287, a meta-analysis of 23
studies in healthy adults) found that evening exercise does not harm sleep (it slightly increased
deep sleep); only vigorous exercise *ending* an hour or less before bedtime went with a longer
time to fall asleep, less total sleep and a lower sleep efficiency. So:

- A vigorous workout still going in the last hour before bedtime (open at bedtime − 60 min, or
  starting after it) gets the alert "Switch to stretching" at once, or at bedtime − 60 min for
  one that started earlier and is still open then (a timer, re-planned with the night).
- A vigorous workout that starts within 3 h of bedtime, before that last hour, gets one
  informational tip: finish an hour before bed and keep that hour for light stretching.
- A moderate or light workout gets nothing, at any hour.
- Without a workout event, a heart rate held at ≥ 77 % of maximum (220 − age, or the person's
  `max_hr`; ACSM's lower bound for vigorous intensity) for 10 minutes counts as vigorous
  exercise: the tip inside the 3 h, the alert inside the last hour, each once a night.

So a workout gets at most two exercise nudges (the tip, then the alert), and an evening's
heart-rate path at most two. The evening record notes a vigorous late session
(`Evening.late_workout`) for the wind-down's text and the night's factors.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from coach import activity
from coach.action import CancelTimer, ScheduleTimer
from coach.clock import Night, hhmm, local_iso
from coach.event import HeartRateMeasured, Timer, WorkoutEnded, WorkoutStarted
from coach.nudge import Severity
from coach.rule import Ctx, Family, hours
from coach.state import Workout
from coach.wording import before_bedtime, count

RULE = "exercise.late_intense"
SOURCE = (
    "Stutz, Eiholzer & Spengler 2019, Sports Med 49(2):269-287 (meta-analysis of 23 studies in "
    "healthy adults: evening exercise did not impair sleep; vigorous exercise ending ≤ 1 h "
    "before bedtime lengthened sleep-onset latency and lowered total sleep time and sleep "
    "efficiency)"
)
SOURCE_HR = "ACSM: vigorous intensity starts at 77 % of maximum heart rate (220 − age)"
# A gap in heart-rate readings longer than this breaks a "held high" stretch.
HR_GAP_S = 5 * 60
# A workout whose end never arrived (trackers drop messages) stops counting after this long;
# otherwise one lost `workout_end` would hide every later high heart rate until the next one.
WORKOUT_MAX_S = 4 * 3600
LAST_HOUR_TIMER = "exercise.last_hour"


def tip_from(ctx: Ctx, night: Night) -> datetime:
    """From when a vigorous workout starting gets the tip (bedtime − 3 h by default)."""
    return night.bedtime - hours(ctx.config.rules.exercise_late_intense.vigorous_hours_before_bed)


def last_hour_at(ctx: Ctx, night: Night) -> datetime:
    """Where the last hour before bed begins: vigorous exercise after it gets the alert."""
    minutes = ctx.config.rules.exercise_late_intense.alert_minutes_before_bed
    return night.bedtime - timedelta(minutes=minutes)


def exercise_ok_until(ctx: Ctx, night: Night) -> datetime:
    """Until when vigorous exercise is fine tonight: it should end by the last hour before bed."""
    return last_hour_at(ctx, night)


def max_heart_rate(ctx: Ctx) -> float | None:
    """The person's maximum heart rate: measured, else 220 − age, else unknown."""
    if ctx.person.max_hr is not None:
        return float(ctx.person.max_hr)
    if ctx.person.age is not None:
        return 220.0 - ctx.person.age
    return None


def _send(
    ctx: Ctx,
    night: Night,
    at: datetime,
    *,
    cause: str,
    last_hour: bool,
    opening: str,
    evidence: dict[str, object],
) -> None:
    ctx.ps.evening(night.key).late_workout = True
    severity: Severity
    if last_hour:
        severity, title = "alert", "Switch to stretching"
        advice = (
            "Hard exercise this close to bed can make it harder to fall asleep; consider "
            "switching to light stretching now."
        )
        cause += ":last_hour"
    else:
        severity, title = "info", "Keep the last hour light"
        advice = (
            "Evening exercise generally doesn't harm sleep; only hard exercise that ends within "
            f"an hour of bedtime can make it harder to fall asleep. Consider finishing by "
            f"{hhmm(last_hour_at(ctx, night), ctx.tz)} and keeping the last hour for light "
            "stretching."
        )
    hours_left = (night.bedtime - at).total_seconds() / 3600.0
    ctx.send(
        RULE,
        day=night.key,
        night=night.key,
        cause=cause,
        severity=severity,
        title=title,
        message=f"{opening} {advice}",
        evidence={
            **evidence,
            "bedtime": local_iso(night.bedtime, ctx.tz),
            "hours_before_bed": round(hours_left, 2),
            "last_hour": last_hour,
            "source": SOURCE,
        },
        expires=max(night.bedtime, at) + timedelta(hours=1),
        # It answers what the person is doing right now: never held back, even after bedtime.
        scheduled=False,
    )


def _workout_evidence(ctx: Ctx, workout: Workout) -> dict[str, object]:
    rule = ctx.config.rules.exercise_late_intense
    return {
        "activity": workout.activity,
        "intensity": workout.intensity,
        "started_at": local_iso(datetime.fromtimestamp(workout.started_at, ctx.tz), ctx.tz),
        "window_hours": rule.vigorous_hours_before_bed,
        "alert_minutes_before_bed": rule.alert_minutes_before_bed,
    }


def _cause(ctx: Ctx, workout: Workout) -> str:
    """A workout's part of its nudges' ids: its local start time, "1930"."""
    return hhmm(datetime.fromtimestamp(workout.started_at, ctx.tz), ctx.tz).replace(":", "")


def _last_hour_timer(ctx: Ctx, night: Night, workout: Workout) -> Timer | None:
    """The check at the start of the last hour for a vigorous workout still open then."""
    at = last_hour_at(ctx, night)
    if workout.intensity != "vigorous" or at.timestamp() - workout.started_at > WORKOUT_MAX_S:
        return None
    return Timer(LAST_HOUR_TIMER, ctx.person.id, at, night.key, _cause(ctx, workout))


def on_workout_started(ctx: Ctx, event: WorkoutStarted) -> None:
    """A vigorous workout: the alert inside the last hour, the tip inside the 3 h before it."""
    workout = ctx.ps.workout = Workout(event.ts.timestamp(), event.activity, event.intensity)
    ctx.ps.last_workout_at = max(ctx.ps.last_workout_at or 0.0, workout.started_at)
    rule = ctx.config.rules.exercise_late_intense
    if not rule.enabled or event.intensity != "vigorous":
        return
    night = ctx.night_at(event.ts)
    when = before_bedtime(event.ts, night.bedtime, ctx.tz)
    if event.ts >= last_hour_at(ctx, night):
        opening = f"Your vigorous workout started {when}."
        last_hour = True
    elif event.ts >= tip_from(ctx, night):
        opening = f"This vigorous workout started {when}."
        last_hour = False
    else:
        opening = ""
        last_hour = None
    if last_hour is not None:
        cause = _cause(ctx, workout)
        _send(
            ctx,
            night,
            event.ts,
            cause=cause,
            last_hour=last_hour,
            opening=opening,
            evidence=_workout_evidence(ctx, workout),
        )
    if not last_hour:
        timer = _last_hour_timer(ctx, night, workout)
        if timer is not None and timer.at > ctx.now:
            ctx.actions.append(ScheduleTimer(timer))


def on_last_hour(ctx: Ctx, timer: Timer) -> None:
    """The last hour begins: a vigorous workout still open gets the alert."""
    workout = ctx.ps.workout
    if (
        not ctx.config.rules.exercise_late_intense.enabled
        or workout is None
        or workout.intensity != "vigorous"
        or _cause(ctx, workout) != timer.ref
        or ctx.now.timestamp() - workout.started_at > WORKOUT_MAX_S
    ):
        return
    night = ctx.tonight
    _send(
        ctx,
        night,
        ctx.now,
        cause=timer.ref,
        last_hour=True,
        opening=(
            f"Your vigorous workout is still going "
            f"{before_bedtime(ctx.now, night.bedtime, ctx.tz)}."
        ),
        evidence=_workout_evidence(ctx, workout),
    )


def plan(ctx: Ctx, night: Night) -> list[Timer]:
    """The last-hour check of a vigorous workout still open (after a restart or a new bedtime)."""
    workout = ctx.ps.workout
    if workout is None or not ctx.config.rules.exercise_late_intense.enabled:
        return []
    timer = _last_hour_timer(ctx, night, workout)
    return [] if timer is None else [timer]


def on_workout_ended(ctx: Ctx, event: WorkoutEnded) -> None:
    """The workout is over: its minutes count for the week, its last-hour check is not needed."""
    workout = ctx.ps.workout
    ctx.ps.workout = None
    ctx.ps.hr_high_since = None
    if workout is not None:
        activity.record_workout(ctx, workout, event.ts)
    if workout is not None and workout.intensity == "vigorous":
        started = datetime.fromtimestamp(workout.started_at, ctx.tz)
        timer = _last_hour_timer(ctx, ctx.night_at(started), workout)
        if timer is not None and timer.at > ctx.now:
            ctx.actions.append(CancelTimer(timer.id))


def on_heart_rate(ctx: Ctx, event: HeartRateMeasured) -> None:
    """A heart rate held high with no workout logged counts as vigorous exercise too."""
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
    if event.ts < tip_from(ctx, night):
        return
    held_min = (t - ps.hr_high_since) / 60.0
    threshold = math.ceil(rule.hr_fraction_of_max * max_hr)
    _send(
        ctx,
        night,
        event.ts,
        cause="hr",
        last_hour=event.ts >= last_hour_at(ctx, night),
        opening=(
            f"Your heart rate has been at a hard-exercise level ({threshold} bpm or more) for "
            f"{count(held_min, 'minute')}, {before_bedtime(event.ts, night.bedtime, ctx.tz)}."
        ),
        evidence={
            "heart_rate_bpm": event.bpm,
            "max_heart_rate_bpm": max_hr,
            "fraction_of_max": rule.hr_fraction_of_max,
            "held_minutes": round(held_min, 1),
            "window_hours": rule.vigorous_hours_before_bed,
            "alert_minutes_before_bed": rule.alert_minutes_before_bed,
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
    timers={LAST_HOUR_TIMER: on_last_hour},
    plan=plan,
)
