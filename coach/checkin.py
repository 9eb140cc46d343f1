"""The morning check-in: how rested the person feels, twitching while awake, restless legs.

How it works. At wake time + 30 minutes (`checkin.morning`; a person turns it off with
`morning_checkin: false`) the coach asks "How rested do you feel this morning?" (1-5) and whether
there was twitching while awake, unless that day's check-in is answered already. While the
limb-movement pattern of `twitch.frequent` stands and the restless-legs questions are not all
answered, the check-in asks them too. The person answers with the command
`{"command": "checkin", "rested": 1-5, "daytime_twitching": true|false, "rls": {...}}` (or a
Home Assistant notification button, which sends the same command); any answer may be left out.

An answer is kept for its local date (a later answer the same day replaces only what it gives)
and stored (`RecordCheckin`), and it is used at once:

- "rested" joins the night that ended that morning, as an outcome the weekly insight compares;
- `twitch.frequent` is checked again: with the pattern, yes to all four restless-legs questions
  or rested at most 2 on 3 of the last 7 mornings suggests a sleep specialist;
- "daytime_twitching": true counts that day for `twitch.daytime`, as a `log` does.

The restless-legs questions are the essential criteria 1-4 of the IRLSSG consensus (Allen et al.
2014, Sleep Med 15(8):860-873); the fifth (not explained by another condition) is a clinician's to
judge. Yes to all four is a reason to have it checked, never a diagnosis.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from coach import night as nights_feature
from coach.action import RecordCheckin
from coach.clock import Night
from coach.event import CheckinAnswered, Timer
from coach.rule import Ctx, Family
from coach.state import Checkin

RULE = "checkin.morning"
#: The check-in stays worth answering until early afternoon.
VALID = timedelta(hours=6)
#: The commands that answer the check-in's nudge: a check-in, or "seen" without answering.
ACTIONS = ("checkin", "ack")


def plan(ctx: Ctx, night: Night) -> list[Timer]:
    """The check-in after the night's wake time."""
    rule = ctx.config.rules.checkin_morning
    if not rule.enabled or not ctx.person.morning_checkin:
        return []
    at = night.wake + timedelta(minutes=rule.minutes_after_wake)
    return [Timer(RULE, ctx.person.id, at, night.key)]


def _asks_rls(ctx: Ctx, today: str) -> bool:
    """Whether the check-in asks the restless-legs questions: the pattern was found lately (its
    check-in nudge went out in the last 7 days) and they are not all answered."""
    sent = ctx.ps.nights.frequent_sent_at
    if sent is None or ctx.now.timestamp() - sent >= nights_feature.WEEK_DAYS * 86400.0:
        return False
    answered = nights_feature.rls_answers(ctx.ps, today)
    return len(answered) < len(nights_feature.RLS_QUESTIONS)


def on_check(ctx: Ctx, timer: Timer) -> None:
    """Ask the morning check-in, unless today's is answered already."""
    today = ctx.local_day()
    if today in ctx.ps.checkins:
        return
    message = (
        "How rested do you feel this morning, from 1 (not at all) to 5 (fully rested)? And did "
        "you have muscle twitching while awake yesterday?"
    )
    if _asks_rls(ctx, today):
        message += " About your legs, yes or no: " + " ".join(nights_feature.RLS_QUESTIONS.values())
    message += " Your answers stay at home and help the coach read your nights."
    ctx.send(
        RULE,
        day=today,
        night=timer.night,
        severity="info",
        title="Morning check-in",
        message=message,
        evidence={
            "asks": ["rested", "daytime_twitching"] + (["rls"] if _asks_rls(ctx, today) else []),
            "rls_questions": nights_feature.RLS_QUESTIONS if _asks_rls(ctx, today) else {},
            "source_rls": nights_feature.SOURCE_RLS_CRITERIA,
        },
        expires=timer.at + VALID,
        scheduled=True,
        actions=ACTIONS,
    )


def on_checkin(ctx: Ctx, event: CheckinAnswered) -> None:
    """Keep the answers for their day, store them, and let the rules use them at once."""
    ps = ctx.ps
    day = ctx.local_day(event.ts)
    answer = ps.checkins.get(day)
    if answer is None:
        answer = ps.checkins[day] = Checkin()
    if event.rested is not None:
        answer.rested = event.rested
    if event.daytime_twitching is not None:
        answer.daytime_twitching = event.daytime_twitching
    if event.rls:
        answer.rls = {**answer.rls, **event.rls}
    answer.at = max(answer.at, ctx.event_s)
    ctx.actions.append(
        RecordCheckin(
            person=ctx.person.id,
            day=day,
            ts=event.ts,
            rested=answer.rested,
            daytime_twitching=answer.daytime_twitching,
            rls=dict(answer.rls),
        )
    )
    history = ps.nights.history
    if event.rested is not None:
        # The night that ended this morning gets the answer, for the weekly insight.
        for i, entry in enumerate(history):
            if nights_feature.rested_after(ps, entry.night) != entry.rested:
                history[i] = replace(entry, rested=nights_feature.rested_after(ps, entry.night))
    if event.daytime_twitching:
        if day not in ps.daytime_twitching:
            ps.daytime_twitching.append(day)
        nights_feature.check_daytime(ctx, max(day, ctx.local_day()), scheduled=False, also=day)
    if history and (event.rested is not None or event.rls):
        nights_feature.check_frequent(ctx, history[-1].night, scheduled=False)


FAMILY = Family(
    name="checkin",
    events={CheckinAnswered: on_checkin},
    timers={RULE: on_check},
    plan=plan,
)
