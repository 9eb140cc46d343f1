"""The coaching engine: `decide(state, event, now, config) -> actions`, changing `state` in place.

How it works: the engine is a state machine with no I/O and no clock. The shell (daemon or
simulator) turns every MQTT message, command and timer firing into an event and has it decided
at the current time; `decide` updates the state it is given, in place, and returns the actions
(publish a nudge, schedule a timer, publish the person's state, record a dropped nudge).

- Duplicates (a message with the same device, timestamp and content) are ignored: their keys are
  remembered for 48 hours, at most `coach.state.SEEN_MAX` of them (the newest).
- Rule families (one module each: caffeine, stimulant, alcohol, exercise, winddown, stress,
  sunlight, activity, and the bed-sensor nights) handle the events they care about, plan the
  timers of a night, and handle those timers when they fire.
- A night's timers are planned when the coach starts and at each wake time for the next night;
  a changed bedtime re-plans the night under the same timer ids, so the shell replaces them.
- Commands: `ack` stops repeats of a nudge, `snooze` sends it again after N minutes unless it
  expired or falls in quiet hours, `bedtime_tonight` moves tonight's bedtime, `log` records
  nicotine, alcohol, caffeine or daytime twitching.
- Nudge ids are deterministic, and an id is sent at most once, so replays and restarts never
  repeat a nudge.

`decide` changes the state it is given (copying it for every event would cost more than the
decision). The shell does not call it directly: `coach.runner.Runner` owns the state, and puts it
back as it was before an event on which `decide` raised.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from coach import (
    activity,
    alcohol,
    caffeine,
    checkin,
    exercise,
    household,
    night,
    stimulant,
    stress,
    sunlight,
    winddown,
)
from coach.action import Action, CancelTimer, RefuseEvent, ScheduleTimer, UpdateState
from coach.clock import Night, local_iso, night_of
from coach.config import Config
from coach.event import (
    AccelSampled,
    BedtimeChanged,
    CoachStarted,
    Event,
    HeartRateMeasured,
    MovementDetected,
    NudgeAcked,
    NudgeSnoozed,
    OccupancyChanged,
    SharedDrinkBrewed,
    StressMeasured,
    SubstanceLogged,
    Timer,
    TimerFired,
)
from coach.rule import Ctx, Family, Rulebook
from coach.state import SEEN_MAX, CoachState, forget_oldest_seen, set_seen

FAMILIES: tuple[Family, ...] = (
    caffeine.FAMILY,
    stimulant.FAMILY,
    alcohol.FAMILY,
    exercise.FAMILY,
    winddown.FAMILY,
    stress.FAMILY,
    sunlight.FAMILY,
    activity.FAMILY,
    night.FAMILY,
    checkin.FAMILY,
    household.FAMILY,
)

# Timers planned at start-up this late are still scheduled (the shell fires them at once).
START_GRACE = timedelta(minutes=15)
# How long things are remembered.
SEEN_KEEP_S = 48 * 3600
SENT_KEEP_S = 35 * 24 * 3600
NUDGE_KEEP_S = 2 * 24 * 3600
DAYS_KEEP = 14
HOUSEKEEPING_EVERY_S = 3600.0


#: The coach's rules; `decide(..., rules=...)` runs another set.
RULES = Rulebook(FAMILIES)

# Frequent readings that refresh the published state only when they led to an action.
SILENT_EVENTS = (MovementDetected, AccelSampled, HeartRateMeasured, StressMeasured)


def decide(
    state: CoachState, event: Event, now: datetime, config: Config, rules: Rulebook = RULES
) -> list[Action]:
    """Apply one event at `now` to `state`, in place; return the actions to carry out.

    `rules` are the rule families that handle it: the coach's own unless a caller says otherwise.

    On an exception `state` may be half changed: `coach.runner.Runner` rolls it back.
    """
    if now.tzinfo is None:
        msg = "now must be timezone-aware"
        raise ValueError(msg)
    key = event.key
    seen = state.seen
    if key is not None and key in seen:
        return []
    t = event.ts.timestamp()
    if key is not None:
        if state.seen_in_order and seen and t < next(reversed(seen.values())):
            state.seen_in_order = False  # a buffered reading, after newer ones
        seen[key] = t
        if len(seen) > SEEN_MAX:
            forget_oldest_seen(state)
    now_s = now.timestamp()
    actions: list[Action] = []
    # Once per clock hour. (Comparing with the last event instead never ran it while readings
    # kept coming more often than hourly, and `seen` grew with every heart-rate message.)
    if now_s // HOUSEKEEPING_EVERY_S > state.clock // HOUSEKEEPING_EVERY_S:
        _housekeeping(state, now_s, config)
    state.clock = max(state.clock, now_s)
    tz = config.tz
    if isinstance(event, CoachStarted):
        for person in config.people:
            ctx = Ctx(config, tz, person, state.person(person.id), state, now, t, actions)
            _start(ctx, rules)
        household.rearm(config, state, actions)
        return actions
    if isinstance(event, SharedDrinkBrewed):
        touched: list[str] = []
        household.on_brew(config, state, event, now, actions=actions, touched=touched)
        _publish_states(config, state, now, t, actions=actions, people=touched)
        return actions
    subject = config.people_by_id.get(event.person)
    if subject is None:
        return [RefuseEvent(f"unknown person {event.person!r}")]
    ctx = Ctx(config, tz, subject, state.person(subject.id), state, now, t, actions)
    silent = False
    if isinstance(event, TimerFired):
        _on_timer(ctx, event.timer, rules)
    else:
        for handler in rules.events.get(type(event), ()):
            handler(ctx, event)
        # Readings (nine messages in ten) are none of the kinds the engine handles itself.
        silent = isinstance(event, SILENT_EVENTS)
        if not silent:
            _on_core_event(ctx, event, rules)
    if actions or not silent:
        actions.append(UpdateState(subject.id, state_document(ctx)))
    if ctx.touched:
        others = [p for p in ctx.touched if p != subject.id]
        _publish_states(config, state, now, t, actions=actions, people=others)
    return actions


def _publish_states(
    config: Config,
    state: CoachState,
    now: datetime,
    t: float,
    *,
    actions: list[Action],
    people: Iterable[str],
) -> None:
    """Publish the state of other people a decision changed (each once, in config order)."""
    wanted = set(people)
    for person in config.people:
        if person.id in wanted:
            ctx = Ctx(config, config.tz, person, state.person(person.id), state, now, t, [])
            actions.append(UpdateState(person.id, state_document(ctx)))


def _on_core_event(ctx: Ctx, event: Event, rules: Rulebook) -> None:
    if isinstance(event, OccupancyChanged):
        ps = ctx.ps
        if event.occupied and not ps.in_bed:
            ps.in_bed_since = ctx.event_s
        elif not event.occupied:
            ps.in_bed_since = None
        ps.in_bed = event.occupied
    elif isinstance(event, NudgeAcked):
        _ack(ctx, event.nudge_id)
    elif isinstance(event, NudgeSnoozed):
        _snooze(ctx, event.nudge_id, event.minutes)
    elif isinstance(event, BedtimeChanged):
        before = ctx.tonight
        _replan(ctx, rules, before, ctx.move_bedtime(event.time))
    elif isinstance(event, SubstanceLogged) and event.what == "daytime_twitching":
        day = ctx.local_day(event.ts)
        if day not in ctx.ps.daytime_twitching:
            ctx.ps.daytime_twitching.append(day)


def _base_id(ctx: Ctx, nudge_id: str) -> str | None:
    """The original nudge of an id, which may be a snoozed repeat (`<id>:snooze<n>`)."""
    base, sep, tail = nudge_id.rpartition(":snooze")
    candidate = base if sep and tail.isdigit() else nudge_id
    return candidate if candidate in ctx.ps.nudges else None


def _snooze_timer(ctx: Ctx, base: str, at: datetime) -> Timer:
    return Timer("snooze", ctx.person.id, at, ctx.ps.nudges[base].night, base)


def _ack(ctx: Ctx, nudge_id: str) -> None:
    base = _base_id(ctx, nudge_id)
    if base is None:
        ctx.actions.append(RefuseEvent(f"ack: no recent nudge with id {nudge_id!r}"))
        return
    record = ctx.ps.nudges[base]
    record.acked = True
    if record.snooze_until is not None:
        record.snooze_until = None
        ctx.actions.append(CancelTimer(_snooze_timer(ctx, base, ctx.now).id))


def _snooze(ctx: Ctx, nudge_id: str, minutes: int) -> None:
    base = _base_id(ctx, nudge_id)
    if base is None:
        ctx.actions.append(RefuseEvent(f"snooze: no recent nudge with id {nudge_id!r}"))
        return
    record = ctx.ps.nudges[base]
    if record.acked:
        return
    # In UTC: `now` may carry the local zone, where adding minutes is wall-clock arithmetic and
    # a 30-minute snooze at 02:50 CEST on a fall-back night would come 90 real minutes later.
    at = ctx.now.astimezone(UTC) + timedelta(minutes=minutes)
    record.snooze_until = at.timestamp()
    ctx.actions.append(ScheduleTimer(_snooze_timer(ctx, base, at)))


def _resend(ctx: Ctx, timer: Timer) -> None:
    base = timer.ref
    record = ctx.ps.nudges.get(base)
    if record is None or record.acked or record.snooze_until is None:
        return
    record.snooze_until = None
    record.snoozes += 1
    ctx.publish(
        f"{base}:snooze{record.snoozes}",
        record.rule,
        night=record.night,
        severity=record.severity,  # type: ignore[arg-type]
        title=record.title,
        message=record.message,
        evidence={**record.evidence, "snoozed": record.snoozes, "original_id": base},
        expires=datetime.fromtimestamp(record.expires_at, tz=ctx.tz),
        scheduled=True,
        remember=False,  # the repeat is answered under the original id
        actions=record.actions,
        named=True,  # the record keeps the title as it was sent
    )
    record.sent_at = ctx.now.timestamp()


def _on_timer(ctx: Ctx, timer: Timer, rules: Rulebook) -> None:
    if timer.kind == "plan":
        _schedule(ctx, _plan(ctx, rules, ctx.tonight), grace=timedelta(0))
        return
    if timer.kind == "snooze":
        _resend(ctx, timer)
        return
    handler = rules.timers.get(timer.kind)
    if handler is not None:
        handler(ctx, timer)


def _plan(ctx: Ctx, rules: Rulebook, night: Night) -> list[Timer]:
    """Every timer of a night, and the one that plans the next night at wake."""
    timers = [Timer("plan", ctx.person.id, night.wake, night.key)]
    for family in rules.families:
        if family.plan is not None:
            timers.extend(family.plan(ctx, night))
    return timers


def _replan(ctx: Ctx, rules: Rulebook, before: Night, after: Night) -> None:
    """Move a night's timers to its new bedtime, under the same ids so the shell replaces them.

    A timer whose new moment has passed while its old one has not is still pending in the shell
    at the old time: it fires now. (Left alone, a bedtime moved from 22:30 to 22:00 at 21:20 had
    its wind-down at the old 21:45, and one moved to 21:30 never had it: 21:45 fell in the new
    quiet hours.) A timer whose two moments have both passed has fired already.
    """
    pending_at = {timer.id: timer.at for timer in _plan(ctx, rules, before)}
    for timer in _plan(ctx, rules, after):
        if timer.at > ctx.now or timer.kind == "plan":
            ctx.actions.append(ScheduleTimer(timer))
        elif pending_at.get(timer.id, ctx.now) > ctx.now:
            ctx.actions.append(ScheduleTimer(replace(timer, at=ctx.now)))


def _schedule(ctx: Ctx, timers: Iterable[Timer], grace: timedelta) -> None:
    earliest = ctx.now - grace
    for timer in timers:
        if timer.at > earliest or timer.kind == "plan":
            ctx.actions.append(ScheduleTimer(timer))


def _start(ctx: Ctx, rules: Rulebook) -> None:
    """Plan tonight (the night in progress or the next) and re-arm pending snoozes."""
    night = ctx.tonight
    timers = _plan(ctx, rules, night)
    # Between midnight and a wake time, yesterday's daytime timers are long gone; the next
    # night's daytime timers (sunlight at 15:00) are planned at wake.
    _schedule(ctx, timers, grace=START_GRACE)
    for base, record in ctx.ps.nudges.items():
        if record.snooze_until is not None:
            at = datetime.fromtimestamp(record.snooze_until, tz=ctx.tz)
            ctx.actions.append(ScheduleTimer(_snooze_timer(ctx, base, at)))
    ctx.actions.append(UpdateState(ctx.person.id, state_document(ctx)))


def next_bedtime(ctx: Ctx, night: Night) -> datetime:
    """The first bedtime after `now`: tonight's while it is ahead, else the following night's.

    Tonight (the night in progress) keeps its bedtime until wake, for the rules that judge
    against it; a reader asking "when is bedtime next" after 23:30 wants tomorrow's.
    """
    if night.bedtime > ctx.now:
        return night.bedtime
    following = night_of(
        ctx.person, night.evening + timedelta(days=1), ctx.tz, ctx.ps.bedtime_overrides
    )
    return following.bedtime


def state_document(ctx: Ctx) -> dict[str, Any]:
    """The person's retained state (docs/contract.md): caffeine, next bedtime, last night, …"""
    night = ctx.tonight
    tz = ctx.tz
    rules = ctx.config.rules
    half_life = ctx.person.caffeine_half_life_h
    cutoff = caffeine.cutoff_at(ctx, night)
    winddown_start = winddown.winddown_at(ctx, night)
    quiet_start = night.bedtime + timedelta(minutes=rules.quiet_hours.after_bedtime_min)
    last_nudge = None
    if ctx.ps.nudges:
        base, rec = max(ctx.ps.nudges.items(), key=lambda kv: kv[1].sent_at)
        last_nudge = {
            # The id as it went out: a snoozed repeat is the record's latest sending.
            "id": f"{base}:snooze{rec.snoozes}" if rec.snoozes else base,
            "rule": rec.rule,
            "title": rec.title,
            "message": rec.message,
            "severity": rec.severity,
            "ts": local_iso(datetime.fromtimestamp(rec.sent_at, tz=tz), tz),
        }
    return {
        "person": ctx.person.id,
        "ts": local_iso(ctx.now, tz),
        "caffeine_mg_now": round(caffeine.caffeine_at(ctx.ps, ctx.now, half_life), 1),
        "caffeine_mg_at_bedtime": round(
            caffeine.caffeine_at(ctx.ps, max(night.bedtime, ctx.now), half_life), 1
        ),
        "caffeine_mg_today": round(ctx.ps.caffeine_days.get(ctx.local_day(), 0.0), 1),
        "caffeine_cutoff": local_iso(cutoff, tz),
        "caffeine_last_call": local_iso(
            cutoff - timedelta(minutes=rules.caffeine_last_call.minutes_before_cutoff), tz
        ),
        "caffeine_cutoff_passed": cutoff <= ctx.now,
        "tonight_bedtime": local_iso(night.bedtime, tz),
        "next_bedtime": local_iso(next_bedtime(ctx, night), tz),
        "next_wake": local_iso(night.wake, tz),
        "exercise_ok_until": local_iso(exercise.exercise_ok_until(ctx, night), tz),
        "winddown": winddown_start <= ctx.now < quiet_start,
        "in_bed": ctx.ps.in_bed,
        "last_night": ctx.ps.nights.last_night,
        "last_nudge": last_nudge,
        "open_questions": household.open_questions(ctx),
    }


def _housekeeping(state: CoachState, now_s: float, config: Config) -> None:
    """Forget what no rule needs any more, so state stays small over months."""
    # While the keys arrived in time order, the expired ones are a prefix, and an hour's worth is a
    # few dozen of the thousands kept: only those are touched. A reading a sensor buffered arrives
    # after newer ones; then the live keys are sorted back into time order, once, here. (Slotting
    # each late key into place as it came cost it a shuffle of every key after it; scanning every
    # key every hour cost a year's simulation a quarter of its time.)
    if state.seen_in_order:
        seen = state.seen
        expired = 0
        for t in seen.values():
            if now_s - t < SEEN_KEEP_S:
                break
            expired += 1
        for key in list(islice(seen, expired)):
            del seen[key]
    else:
        set_seen(state, {k: t for k, t in state.seen.items() if now_s - t < SEEN_KEEP_S})
    # Most hours nothing sent has expired: then the filtered copy would equal the dict.
    sent = state.sent
    if sent and now_s - min(sent.values()) >= SENT_KEEP_S:
        state.sent = {k: t for k, t in sent.items() if now_s - t < SENT_KEEP_S}
    household.housekeeping(state, now_s)
    horizon_day = datetime.fromtimestamp(now_s - DAYS_KEEP * 86400, tz=config.tz).date().isoformat()
    for person in config.people:
        ps = state.people.get(person.id)
        if ps is None:
            continue
        now = datetime.fromtimestamp(now_s, tz=config.tz)
        caffeine.prune_doses(ps, now, person.caffeine_half_life_h)
        ps.nudges = {
            k: r
            for k, r in ps.nudges.items()
            if now_s - r.sent_at < NUDGE_KEEP_S or r.snooze_until is not None
        }
        ps.caffeine_days = {d: v for d, v in ps.caffeine_days.items() if d >= horizon_day}
        ps.sunlight = {d: v for d, v in ps.sunlight.items() if d >= horizon_day}
        ps.active_minutes = {d: v for d, v in ps.active_minutes.items() if d >= horizon_day}
        ps.bedtime_overrides = {d: v for d, v in ps.bedtime_overrides.items() if d >= horizon_day}
        ps.evenings = {d: v for d, v in ps.evenings.items() if d >= horizon_day}
        ps.daytime_twitching = [d for d in ps.daytime_twitching if d >= horizon_day]
        ps.checkins = {d: v for d, v in ps.checkins.items() if d >= horizon_day}
        ps.nicotine = [t for t in ps.nicotine if now_s - t < DAYS_KEEP * 86400]
        ps.alcohol = [t for t in ps.alcohol if now_s - t < DAYS_KEEP * 86400]
        ps.once = {k: t for k, t in ps.once.items() if now_s - t < SENT_KEEP_S}
