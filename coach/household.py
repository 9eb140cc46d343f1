"""Households: a drink from a coffee maker several people use goes to whoever says it was theirs.

How it works. A device's `person:` may list several people (`person: [alex, sam]`); its brews
arrive as `SharedDrinkBrewed` and are never guessed onto someone:

- each listed person is asked at once, with a `household.whose` question (info, actions
  `["mine"]`, id `household.whose:<person>:<local date>:<HHMM of the brew>`); a person in their
  quiet hours is not asked (they are asleep; they did not have it), unless they are up for the
  new day (`Ctx.night_of_intake`: the last third of the night, not in bed);
- the command `mine` (`DrinkClaimed`, with the question's id or, without one, the person's most
  recent open question) gives the drink to that person at the moment it was brewed: their caffeine
  rules run on it as if it came from their own maker, so a drink past their cutoff gets the cutoff
  nudge right after the answer, the brew time in its evidence;
- the first answer wins; the other people's questions are withdrawn (`WithdrawNudge`, and the
  open questions in each person's state);
- unanswered within `answer_within_min` (30 min), the drink is recorded as unattributed and
  nobody's caffeine changes. A drink below the cutoff rule's minimum dose (a decaf) and any drink
  while the rule is switched off are unattributed at once, without a question.

What was decided is kept in `CoachState.shared_drinks` (open drinks until answered or given up,
closed ones for two days, so a late or repeated answer is refused with the reason). The expiry is
a core timer, re-armed when the coach starts, so an answer after a restart still finds its drink.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from coach import caffeine
from coach.action import (
    Action,
    CancelTimer,
    RecordDrink,
    RefuseEvent,
    ScheduleTimer,
    WithdrawNudge,
)
from coach.clock import hhmm, local_iso
from coach.config import Config
from coach.event import CoffeeBrewed, DrinkClaimed, SharedDrinkBrewed, Timer
from coach.rule import Ctx, Family
from coach.state import CoachState, SharedDrink

RULE = "household.whose"
#: Closed drinks are remembered this long, so a late answer is told why it is refused.
CLOSED_KEEP_S = 2 * 24 * 3600.0
SOURCE = (
    "project rule: a drink from a coffee maker several people use counts for nobody until one of "
    "them says it was theirs"
)


def _ctx(
    config: Config, state: CoachState, person_id: str, now: datetime, actions: list[Action]
) -> Ctx:
    person = config.people_by_id[person_id]
    ps = state.person(person_id)
    return Ctx(config, config.tz, person, ps, state, now, now.timestamp(), actions)


def _key(device: str, at: float, state: CoachState) -> str:
    base = f"{device}@{at:.0f}"
    key, n = base, 1
    while key in state.shared_drinks:  # two brews in the same second: both are asked about
        n += 1
        key = f"{base}#{n}"
    return key


def _timer(config: Config, key: str, drink: SharedDrink) -> Timer:
    at = datetime.fromtimestamp(drink.open_until, tz=config.tz)
    day = datetime.fromtimestamp(drink.at, tz=config.tz).date().isoformat()
    return Timer(RULE, drink.people[0], at, day, key)


def on_brew(
    config: Config,
    state: CoachState,
    event: SharedDrinkBrewed,
    now: datetime,
    *,
    actions: list[Action],
    touched: list[str],
) -> None:
    """Ask each of the device's people whose drink it was (or record it as unattributed); the
    people whose published state changed are added to `touched`."""
    tz = config.tz
    at = event.ts
    mg = caffeine.dose_mg(event.drink, event.volume_ml, event.caffeine_mg)
    rule = config.rules.household_whose
    people = [p for p in event.people if p in config.people_by_id]
    drink = SharedDrink(
        device=event.source,
        at=at.timestamp(),
        drink=event.drink,
        mg=mg,
        people=people,
        open_until=(at + timedelta(minutes=rule.answer_within_min)).timestamp(),
    )
    key = _key(event.source, drink.at, state)
    state.shared_drinks[key] = drink
    if rule.enabled and mg >= config.rules.caffeine_cutoff.min_dose_mg:
        name = caffeine.drink_name(event.drink)
        answer_by = datetime.fromtimestamp(drink.open_until, tz=tz)
        for person_id in people:
            ctx = _ctx(config, state, person_id, now, actions)
            # Asked unless asleep: in quiet hours and not up for the new day (as the caffeine
            # rules tell a drink on getting up from a late-night one).
            intake = ctx.night_of_intake(at)
            up = intake.key != ctx.night_at(at).key
            sent = ctx.send(
                RULE,
                day=ctx.local_day(at),
                night=intake.key,
                cause=hhmm(at, tz).replace(":", ""),
                severity="info",
                title=f"Whose {name}?",
                message=(
                    f"The shared coffee maker made {_article(name)} {name} at {hhmm(at, tz)} "
                    f'(about {mg:.0f} mg of caffeine). Was it yours? Answer "Mine" so your '
                    f"caffeine and your cutoff count it; unanswered by {hhmm(answer_by, tz)}, it "
                    f"counts for nobody."
                ),
                evidence={
                    "device": event.source,
                    "drink": event.drink,
                    "drink_at": local_iso(at, tz),
                    "dose_mg": round(mg, 1),
                    "people": list(people),
                    "answer_by": local_iso(answer_by, tz),
                    "source": SOURCE,
                },
                expires=answer_by,
                scheduled=not up,  # in their quiet hours and not up: asleep, not asked
                actions=("mine",),
            )
            if sent:
                drink.questions[person_id] = _question_id(ctx, at)
    if not drink.questions or drink.open_until <= now.timestamp():
        drink.outcome = "unattributed"
        drink.closed_at = now.timestamp()
        return
    actions.append(ScheduleTimer(_timer(config, key, drink)))
    touched.extend(drink.questions)


def _article(name: str) -> str:
    return "an" if name[:1] in "aeiou" else "a"


def _question_id(ctx: Ctx, at: datetime) -> str:
    return f"{RULE}:{ctx.person.id}:{ctx.local_day(at)}:{hhmm(at, ctx.tz).replace(':', '')}"


def _find(state: CoachState, nudge_id: str) -> tuple[str, SharedDrink] | None:
    for key, drink in state.shared_drinks.items():
        if nudge_id in drink.questions.values():
            return key, drink
    return None


def _latest(ctx: Ctx) -> tuple[str, SharedDrink] | None:
    """The person's most recent open question; else the latest drink of theirs that closed
    within the answer window (so a late answer hears why), else None."""
    person_id = ctx.person.id
    drinks = ctx.state.shared_drinks.items()
    found = [(k, d) for k, d in drinks if not d.outcome and person_id in d.questions]
    if not found:
        since = ctx.now.timestamp() - ctx.config.rules.household_whose.answer_within_min * 60.0
        found = [
            (k, d)
            for k, d in drinks
            if person_id in d.people
            and d.questions
            and (not d.outcome or (d.closed_at or 0.0) >= since)
        ]
    return max(found, key=lambda kv: kv[1].at) if found else None


def on_claim(ctx: Ctx, event: DrinkClaimed) -> None:
    """`mine`: the drink is the person's, at the moment it was brewed; the others' questions go."""
    person_id = ctx.person.id
    tz = ctx.tz
    if event.nudge_id is None:
        found = _latest(ctx)
        if found is None:
            ctx.actions.append(
                RefuseEvent(
                    f"mine: {person_id} has no open question about a shared coffee maker's drink"
                )
            )
            return
    else:
        found = _find(ctx.state, event.nudge_id)
        if found is None:
            ctx.actions.append(
                RefuseEvent(f"mine: no question about a shared drink with id {event.nudge_id!r}")
            )
            return
    key, drink = found
    name = caffeine.drink_name(drink.drink)
    brewed = datetime.fromtimestamp(drink.at, tz=tz)
    what = f"the {name} of {local_iso(brewed, tz)} from {drink.device!r}"
    if person_id not in drink.people:
        ctx.actions.append(
            RefuseEvent(
                f"mine: {person_id} is not listed on device {drink.device!r} "
                f"({', '.join(drink.people)}), so {what} cannot be theirs"
            )
        )
        return
    if drink.outcome == "claimed":
        ctx.actions.append(
            RefuseEvent(
                f"mine: {what} was already claimed by {drink.claimed_by}; the first answer wins"
            )
        )
        return
    if drink.outcome == "unattributed" or ctx.now.timestamp() >= drink.open_until:
        until = hhmm(datetime.fromtimestamp(drink.open_until, tz=tz), tz)
        ctx.actions.append(
            RefuseEvent(
                f"mine: the question about {what} expired at {until}; it was recorded as "
                "unattributed"
            )
        )
        return
    if person_id not in drink.questions:
        ctx.actions.append(
            RefuseEvent(
                f"mine: {person_id} was not asked about {what} (it came in their quiet hours)"
            )
        )
        return
    drink.outcome = "claimed"
    drink.claimed_by = person_id
    drink.closed_at = ctx.now.timestamp()
    ctx.actions.append(CancelTimer(_timer(ctx.config, key, drink).id))
    own = ctx.ps.nudges.get(drink.questions[person_id])
    if own is not None:
        own.acked = True
    _withdraw(ctx, drink, keep=person_id)
    # Their caffeine rules, as if their own maker had brewed it then.
    ctx.actions.append(
        RecordDrink(
            CoffeeBrewed(
                person=person_id,
                ts=brewed,
                source=drink.device,
                drink=drink.drink,  # type: ignore[arg-type]
                caffeine_mg=round(drink.mg, 1),
            )
        )
    )
    caffeine.add_dose(ctx, brewed, drink.mg, drink.drink)


def _withdraw(ctx: Ctx, drink: SharedDrink, keep: str) -> None:
    """Take back the questions of everyone but `keep`; their states are published again."""
    for person_id, nudge_id in drink.questions.items():
        if person_id == keep:
            continue
        ctx.actions.append(WithdrawNudge(nudge_id, person_id))
        ctx.touched.append(person_id)


def on_expire(ctx: Ctx, timer: Timer) -> None:
    """Nobody answered in time: the drink counts for nobody."""
    drink = ctx.state.shared_drinks.get(timer.ref)
    if drink is None or drink.outcome:
        return
    drink.outcome = "unattributed"
    drink.closed_at = ctx.now.timestamp()
    _withdraw(ctx, drink, keep=ctx.person.id)
    own = drink.questions.get(ctx.person.id)
    if own is not None:
        ctx.actions.append(WithdrawNudge(own, ctx.person.id))


def open_questions(ctx: Ctx) -> list[dict[str, Any]]:
    """The person's questions still waiting for an answer, oldest first (their state's field)."""
    tz = ctx.tz
    person_id = ctx.person.id
    found = []
    for drink in sorted(ctx.state.shared_drinks.values(), key=lambda d: d.at):
        if drink.outcome or person_id not in drink.questions:
            continue
        found.append(
            {
                "id": drink.questions[person_id],
                "device": drink.device,
                "drink": drink.drink,
                "drink_at": local_iso(datetime.fromtimestamp(drink.at, tz=tz), tz),
                "caffeine_mg": round(drink.mg, 1),
                "answer_by": local_iso(datetime.fromtimestamp(drink.open_until, tz=tz), tz),
            }
        )
    return found


def rearm(config: Config, state: CoachState, actions: list[Action]) -> None:
    """At start: the expiry of every open drink (a past one fires at once)."""
    for key, drink in state.shared_drinks.items():
        if not drink.outcome:
            actions.append(ScheduleTimer(_timer(config, key, drink)))


def housekeeping(state: CoachState, now_s: float) -> None:
    """Forget closed drinks after two days."""
    drinks = state.shared_drinks
    stale = [d for d in drinks.values() if d.closed_at is not None]
    if any(now_s - (d.closed_at or now_s) >= CLOSED_KEEP_S for d in stale):
        state.shared_drinks = {
            k: d
            for k, d in drinks.items()
            if d.closed_at is None or now_s - d.closed_at < CLOSED_KEEP_S
        }


FAMILY = Family(name="household", events={DrinkClaimed: on_claim}, timers={RULE: on_expire})
