"""Regular activity: the week's minutes of exercise, and a daytime suggestion after four days
without a workout (`encouragement.exercise`).

How it works. Every workout the tracker reports is remembered: when the latest one started, and,
for a moderate or vigorous workout that ended, its minutes (up to 4 h) on the local date it
started. From that:

- `active_minutes_week(ps, day)`: the minutes of the 7 local days ending `day`, a vigorous minute
  counting as two (the WHO guideline's "equivalent combination": 150 minutes of moderate or 75 of
  vigorous activity a week); None while the tracker has never reported a workout, since a
  tracker that does not report workouts says nothing about exercise (unknown, not zero).
- `is_active_week(ps, day)`: whether that reaches the 150 minutes; None when unknown. The morning
  summary acknowledges it.
- `encouragement.exercise`: at 11:00 local (never after 18:00), for a person whose tracker has
  reported workouts, on the fourth day after the day of the latest one: one suggestion to move
  today, then none for another four days. Days without a workout are zero minutes only while
  the tracker is worn: when it sent no reading at all (heart rate, stress, a workout) in the last
  24 hours, they are unknown and no suggestion goes out.

Bull et al. 2020 (Br J Sports Med 54(24):1451-1462, the WHO 2020 guidelines): adults, 150-300
minutes of moderate or 75-150 minutes of vigorous aerobic activity a week, or an equivalent
combination. Kredlow et al. 2015 (J Behav Med 38(3):427-449, a meta-analysis in adults): regular
exercise had small benefits on total sleep time and sleep efficiency, small-to-medium ones on the
time to fall asleep and a moderate one on sleep quality.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from coach.clock import Night, at_local, local_date
from coach.event import Timer
from coach.rule import Ctx, Family, daily_check
from coach.state import PersonState, Workout
from coach.wording import count

RULE = "encouragement.exercise"
SOURCE = (
    "Bull et al. 2020, Br J Sports Med 54(24):1451-1462 (WHO 2020 guidelines: adults, 150-300 "
    "min of moderate or 75-150 min of vigorous aerobic activity a week); Kredlow et al. 2015, "
    "J Behav Med 38(3):427-449 (meta-analysis in adults: regular exercise, small benefits on "
    "total sleep time and efficiency, small-to-medium on sleep onset, moderate on sleep quality)"
)
#: WHO 2020: at least 150 minutes of moderate activity a week (a vigorous minute counts twice).
WEEKLY_TARGET_MIN = 150.0
#: A workout counts at most this long: one whose end came much later lost messages in between.
MAX_WORKOUT_MIN = 4 * 60.0
#: Suggestions stop at this local time: a nudge to exercise in the evening would work against
#: the exercise rule's advice to keep the evening light.
LATEST = time(18, 0)
#: A tracker silent this long is taken off the wrist: days without a workout then are unknown.
TRACKER_SILENT_S = 24 * 3600.0


def tracker_seen_at(ps: PersonState) -> float | None:
    """The latest reading of the person's tracker (heart rate, stress or a workout), if any."""
    seen = [t for t in (ps.last_hr_at, ps.last_stress_at, ps.last_workout_at) if t is not None]
    return max(seen, default=None)


def record_workout(ctx: Ctx, workout: Workout, ended_at: datetime) -> None:
    """A workout ended: add its minutes to the day it started (moderate or vigorous only)."""
    if workout.intensity not in ("moderate", "vigorous"):
        return
    minutes = min(MAX_WORKOUT_MIN, max(0.0, (ended_at.timestamp() - workout.started_at) / 60.0))
    day = ctx.local_day(datetime.fromtimestamp(workout.started_at, ctx.tz))
    moderate, vigorous = ctx.ps.active_minutes.get(day, (0.0, 0.0))
    if workout.intensity == "vigorous":
        vigorous += minutes
    else:
        moderate += minutes
    ctx.ps.active_minutes[day] = (moderate, vigorous)


def active_minutes_week(ps: PersonState, day: str) -> float | None:
    """Moderate-equivalent minutes of the 7 local days ending `day` (a vigorous minute counts
    twice); None while the tracker has never reported a workout (unknown)."""
    if ps.last_workout_at is None:
        return None
    last = date.fromisoformat(day)
    first = (last - timedelta(days=6)).isoformat()
    return sum(m + 2.0 * v for d, (m, v) in ps.active_minutes.items() if first <= d <= day)


def is_active_week(ps: PersonState, day: str, target_min: float = WEEKLY_TARGET_MIN) -> bool | None:
    """Whether the 7 days ending `day` reached the WHO 2020 weekly minutes; None when unknown."""
    minutes = active_minutes_week(ps, day)
    return None if minutes is None else minutes >= target_min


def plan(ctx: Ctx, night: Night) -> list[Timer]:
    """The daytime check of the night's evening date."""
    rule = ctx.config.rules.encouragement_exercise
    return daily_check(ctx, night, RULE, enabled=rule.enabled, at=rule.check_at)


def on_check(ctx: Ctx, timer: Timer) -> None:
    """Days without a workout: suggest some activity today, once in a while."""
    rule = ctx.config.rules.encouragement_exercise
    ps = ctx.ps
    if ps.last_workout_at is None:
        return  # this tracker has never reported a workout: nothing is known
    seen = tracker_seen_at(ps)
    if seen is None or ctx.now.timestamp() - seen > TRACKER_SILENT_S:
        return  # the tracker sent nothing for a day (off the wrist): the days are unknown
    today = local_date(ctx.now, ctx.tz)
    last_day = local_date(datetime.fromtimestamp(ps.last_workout_at, ctx.tz), ctx.tz)
    days = (today - last_day).days
    if days < rule.days_without:
        return
    sent = ps.once.get(RULE)
    if sent is not None and ctx.now.timestamp() - sent < rule.days_without * 86400:
        return
    night = ctx.tonight
    if ctx.send(
        RULE,
        day=today.isoformat(),
        night=night.key,
        severity="info",
        title="Time to move?",
        message=(
            f"Your tracker hasn't recorded a workout for {count(days, 'day')}. If you can, "
            f"consider some activity today, even a brisk walk: regular exercise tends to help "
            f"sleep."
        ),
        evidence={
            "days_without_workout": days,
            "last_workout": last_day.isoformat(),
            "days_without": rule.days_without,
            "active_minutes_7_days": active_minutes_week(ps, today.isoformat()),
            "source": SOURCE,
        },
        expires=min(at_local(today, LATEST, ctx.tz), night.bedtime),
        scheduled=True,
    ):
        ps.once[RULE] = ctx.now.timestamp()


FAMILY = Family(name="activity", timers={RULE: on_check}, plan=plan)
