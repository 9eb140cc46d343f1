"""What every rule family shares: the decision context and the way a nudge is sent.

A rule family is a module with a `FAMILY` (see `Family`): handlers for the events it cares
about, the timers it plans for a night, and handlers for those timers. The engine calls them;
they append actions to the context. They never read the clock: `ctx.now` is the only "now".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from coach.action import Action, DropNudge, PublishNudge
from coach.clock import Night, at_local, local_date, local_iso, night_of, tonight
from coach.config import Config, Person
from coach.event import Event, Timer
from coach.nudge import Nudge, Severity
from coach.state import CoachState, NudgeRecord, PersonState

#: The routine nudges: reminders the coach schedules itself. At most
#: `rules.nudge_budget.routine_per_evening` of them go out per person and evening; every other
#: nudge answers something the person just did (a late coffee, a workout, a drink) or a
#: measurement of them, and is never held back by the budget.
ROUTINE_RULES = frozenset(
    {
        "caffeine.last_call",
        "caffeine.bedtime_load",
        "winddown.stretch",
        "sunlight.daily",
        "encouragement.exercise",
    }
)
#: The routine nudge that keeps its place in the budget: the evening's own.
WINDDOWN = "winddown.stretch"


@dataclass(slots=True)
class Ctx:
    """Everything a rule needs to decide about one person at `now`."""

    config: Config
    tz: ZoneInfo
    person: Person
    ps: PersonState
    state: CoachState
    now: datetime
    #: The `ts` of the event being decided, in POSIX seconds: the engine converts it once (an
    #: aware datetime with an offset costs about 0.4 µs per conversion, a third of a reading's
    #: handling), and the handlers of frequent readings take it from here.
    event_s: float
    actions: list[Action] = field(default_factory=list)
    #: Other people whose published state this decision changed (a withdrawn question): the
    #: engine publishes their state too.
    touched: list[str] = field(default_factory=list)
    _tonight: Night | None = None

    @property
    def tonight(self) -> Night:
        """The night in progress at `now`, or the next one."""
        if self._tonight is None:
            self._tonight = tonight(self.person, self.now, self.tz, self.ps.bedtime_overrides)
        return self._tonight

    def move_bedtime(self, bedtime: str) -> Night:
        """Move tonight's bedtime (a "HH:MM" command) and return the night as it now is."""
        self.ps.bedtime_overrides[self.tonight.evening.isoformat()] = bedtime
        self._tonight = None
        return self.tonight

    def night_at(self, instant: datetime) -> Night:
        """The night in progress at `instant`, or the next one after it."""
        if instant == self.now:
            return self.tonight
        return tonight(self.person, instant, self.tz, self.ps.bedtime_overrides)

    def night_of_intake(self, instant: datetime) -> Night:
        """The night a drink (or a dose) taken at `instant` counts toward.

        Before bedtime it is tonight's. Between bedtime and wake it is the night in progress (a
        coffee at 02:57 still keeps that night awake), unless the person is up for the new day:
        in the last third of the night and not shown in bed by a bed sensor (someone without one
        is never shown in bed). Then it belongs to the new day and its night: the Saturday
        coffee at 07:30, after getting up before an 08:00 wake time, is no late-night coffee.
        """
        night = self.night_at(instant)
        if instant < night.bedtime or self.ps.in_bed:
            return night
        last_third = night.wake - (night.wake - night.bedtime) / 3
        if instant < last_third:
            return night
        return night_of(
            self.person, night.evening + timedelta(days=1), self.tz, self.ps.bedtime_overrides
        )

    def has_device(self, kind: str) -> bool:
        """Whether a device of this kind (`coffee_maker`, `fitness_tracker`) measures the person."""
        return any(d.person == self.person.id and d.kind == kind for d in self.config.devices)

    def local_day(self, instant: datetime | None = None) -> str:
        """The local date (ISO) of an instant, `now` by default."""
        return local_date(instant or self.now, self.tz).isoformat()

    def once(self, key: str) -> bool:
        """True the first time a key is seen (and marks it): "at most once per period"."""
        if key in self.ps.once:
            return False
        self.ps.once[key] = self.now.timestamp()
        return True

    def is_quiet(self) -> bool:
        """Quiet hours: from bedtime + N minutes until wake of the night in progress."""
        night = self.tonight
        start = night.bedtime + timedelta(minutes=self.config.rules.quiet_hours.after_bedtime_min)
        return start <= self.now < night.wake

    def send(
        self,
        rule: str,
        *,
        day: str,
        night: str,
        severity: Severity,
        title: str,
        message: str,
        evidence: dict[str, Any],
        expires: datetime,
        scheduled: bool,
        cause: str = "",
        actions: tuple[str, ...] = ("ack", "snooze"),
    ) -> bool:
        """Send a nudge once: its id is person, rule, local date and cause. True if it went out.

        A scheduled nudge (a timer came due) is dropped in quiet hours; one that answers what the
        person just did (a coffee, a workout) goes out, since they are evidently awake. A nudge
        whose moment has passed is dropped, never sent late.
        """
        nudge_id = f"{rule}:{self.person.id}:{day}" + (f":{cause}" if cause else "")
        return self.publish(
            nudge_id,
            rule,
            night=night,
            severity=severity,
            title=title,
            message=message,
            evidence=evidence,
            expires=expires,
            scheduled=scheduled,
            actions=actions,
        )

    def titled(self, title: str) -> str:
        """A nudge's title as sent: with more than one person in the config it starts with the
        person's display name ("Sam: No caffeine now"), so a shared phone or topic shows whose."""
        if len(self.config.people) > 1:
            return f"{self.person.display_name}: {title}"
        return title

    def publish(
        self,
        nudge_id: str,
        rule: str,
        *,
        night: str,
        severity: Severity,
        title: str,
        message: str,
        evidence: dict[str, Any],
        expires: datetime,
        scheduled: bool,
        remember: bool = True,
        actions: tuple[str, ...] = ("ack", "snooze"),
        named: bool = False,
    ) -> bool:
        """Send a nudge under an exact id, unless it was handled before, expired or is quiet;
        True if it went out.

        `remember` keeps a record for ack and snooze; a snoozed repeat is answered under the
        original's record. The title gets the person's name (`titled`) unless it is `named`
        already (a repeat of a recorded nudge).
        """
        if not named:
            title = self.titled(title)
        if nudge_id in self.state.sent:
            return False
        now_s = self.now.timestamp()
        reason = None
        routine = remember and rule in ROUTINE_RULES
        if self.now >= expires:
            reason = "expired"
        elif scheduled and self.is_quiet():
            reason = "quiet_hours"
        elif routine and not self._within_budget(rule, night):
            reason = "budget"
        self.state.sent[nudge_id] = now_s
        if reason is not None:
            self.drop(nudge_id, rule, reason, title=title, night=night)
            return False
        if routine:
            self.ps.evening(night).routine.append(nudge_id)
        if remember:
            self.ps.nudges[nudge_id] = NudgeRecord(
                rule=rule,
                night=night,
                severity=severity,
                title=title,
                message=message,
                evidence=evidence,
                sent_at=now_s,
                expires_at=expires.timestamp(),
                actions=actions,
            )
        self.actions.append(
            PublishNudge(
                Nudge(
                    id=nudge_id,
                    person=self.person.id,
                    rule=rule,
                    ts=self.now,
                    severity=severity,
                    title=title,
                    message=message,
                    evidence=evidence,
                    actions=actions,
                    expires=expires,
                )
            )
        )
        return True

    def _within_budget(self, rule: str, night: str) -> bool:
        """Whether one more routine nudge fits this evening's budget.

        The wind-down keeps its place: until it has gone out (or its moment has passed), the
        day's other routine nudges leave one slot free for it, so a busy afternoon (a last call,
        too little daylight) never crowds out the evening's own reminder.
        """
        rules = self.config.rules
        budget = rules.nudge_budget.routine_per_evening
        used = self.ps.evenings[night].routine if night in self.ps.evenings else []
        if rule != WINDDOWN and rules.winddown_stretch.enabled and self.tonight.key == night:
            winddown_at = self.tonight.bedtime - timedelta(
                minutes=rules.winddown_stretch.minutes_before_bed
            )
            winddown_id = f"{WINDDOWN}:{self.person.id}:{night}"
            if self.now < winddown_at and winddown_id not in self.state.sent:
                budget -= 1
        return len(used) < budget

    def drop(
        self, nudge_id: str, rule: str, reason: str, *, title: str = "", night: str = ""
    ) -> None:
        """Record a nudge that is not sent, and why (with the title it would have had and the
        night it belonged to)."""
        self.state.dropped[reason] = self.state.dropped.get(reason, 0) + 1
        drop = DropNudge(nudge_id, self.person.id, rule, self.now, reason, title, night)
        self.actions.append(drop)


EventHandler = Callable[[Ctx, Any], None]
TimerHandler = Callable[[Ctx, Timer], None]
Planner = Callable[[Ctx, Night], list[Timer]]


@dataclass(frozen=True)
class Family:
    """A family of rules: the events it handles, the timers it plans, and their handlers."""

    name: str
    events: dict[type[Event], EventHandler] = field(default_factory=dict)
    timers: dict[str, TimerHandler] = field(default_factory=dict)
    plan: Planner | None = None


#: Timer kinds the engine handles itself.
ENGINE_TIMERS = frozenset({"plan", "snooze"})


class Rulebook:
    """The rule families the engine runs, with the tables `decide()` looks handlers up in.

    `coach.engine.RULES` holds the coach's own families; `decide(..., rules=...)` runs another
    set (a new rule under test, say). A timer kind belongs to one family only.
    """

    __slots__ = ("events", "families", "timers")

    def __init__(self, families: Sequence[Family]) -> None:
        self.families: tuple[Family, ...] = tuple(families)
        events: dict[type[Event], list[EventHandler]] = {}
        timers: dict[str, TimerHandler] = {}
        for family in self.families:
            for kind, handler in family.events.items():
                events.setdefault(kind, []).append(handler)
            for name, timer_handler in family.timers.items():
                if name in timers or name in ENGINE_TIMERS:
                    msg = f"timer kind {name!r} of family {family.name!r} is taken"
                    raise ValueError(msg)
                timers[name] = timer_handler
        #: Per event type, its handlers in family order.
        self.events: Mapping[type[Event], tuple[EventHandler, ...]] = MappingProxyType(
            {kind: tuple(handlers) for kind, handlers in events.items()}
        )
        #: Per timer kind, its one handler.
        self.timers: Mapping[str, TimerHandler] = MappingProxyType(timers)

    def with_family(self, family: Family) -> Rulebook:
        """These families and one more, after them."""
        return Rulebook((*self.families, family))


def logged_evidence(
    ctx: Ctx, night: Night, at: datetime, window_hours: float, source: str
) -> dict[str, Any]:
    """The evidence of a nudge answering something logged close to bed (nicotine, alcohol)."""
    return {
        "logged_at": local_iso(at, ctx.tz),
        "bedtime": local_iso(night.bedtime, ctx.tz),
        "hours_before_bed": round((night.bedtime - at).total_seconds() / 3600.0, 2),
        "window_hours": window_hours,
        "source": source,
    }


def daily_check(ctx: Ctx, night: Night, kind: str, *, enabled: bool, at: time) -> list[Timer]:
    """The timer of a rule that checks once a day, at a local time of the night's evening date."""
    if not enabled:
        return []
    return [Timer(kind, ctx.person.id, at_local(night.evening, at, ctx.tz), night.key)]


def hours(value: float) -> timedelta:
    """A duration in hours."""
    return timedelta(hours=value)
