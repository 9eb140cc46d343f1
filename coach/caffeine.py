"""Caffeine: how much is in the body, and the four caffeine rules.

How it works: every drink adds a dose at the moment it was brewed. The amount left at any time
follows first-order elimination, `mg(t) = Σ dose · 0.5^((t − t_dose) / half_life)`, with the
person's half-life (5 h by default; IOM 2001, range 2–10 h in healthy adults per Gardiner et al.
2023). Doses come from the drink table (USDA values) scaled by volume, unless the coffee maker
says `caffeine_mg`. A drink counts toward the night it belongs to (`Ctx.night_of_intake`): one
after bedtime keeps the night in progress awake, one taken on getting up belongs to the new day.
From that:

- `caffeine.cutoff`: a drink of ≥ 20 mg less than 9 h before its night's bedtime gets "No
  caffeine now" at once; an alert when the amount predicted at bedtime exceeds 50 mg. The 9 h
  round up what Gardiner et al. 2023 (Sleep Med Rev 69:101764, a meta-analysis of 24 studies)
  found for a coffee of 107 mg: taken at least 8.8 h before bed, it no longer cut total sleep.
- `caffeine.last_call`: 30 min before the cutoff, on a day that had caffeine, it says when the
  cutoff is; it informs, and never invites another drink.
- `caffeine.bedtime_load`: 60 min before bedtime, when the amount predicted at bedtime is high.
  When the wind-down falls within 30 min of it (by default 45 min before bed), the warning goes
  out inside the wind-down instead, as one nudge (`load_joins_winddown`).
- `caffeine.daily_limit`: the day's total passes 400 mg (EFSA 2015), once a day.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from coach.clock import Night, hhmm, local_iso
from coach.event import CoffeeBrewed, SubstanceLogged, Timer
from coach.nudge import Severity
from coach.rule import Ctx, Family, hours
from coach.state import PersonState
from coach.wording import before_bedtime

# USDA FoodData Central values: mg of caffeine per reference volume (ml).
DRINKS: dict[str, tuple[float, float]] = {
    "espresso": (63.0, 30.0),
    "coffee": (95.0, 240.0),
    "cold_brew": (155.0, 240.0),
    "tea": (47.0, 240.0),
    "decaf": (3.0, 240.0),
}
# A logged caffeine drink without a figure counts as one brewed coffee (USDA, 95 mg / 240 ml).
DEFAULT_LOGGED_MG = 95.0
SOURCE_MODEL = (
    "first-order decay, half-life 5 h (IOM 2001; 2-10 h in healthy adults, Gardiner et al. 2023)"
)
SOURCE_CUTOFF = (
    "Gardiner et al. 2023, Sleep Med Rev 69:101764 (meta-analysis of 24 studies: caffeine cut "
    "total sleep by 45 min on average; to avoid that, a 107 mg coffee at least 8.8 h and a "
    "217.5 mg pre-workout drink at least 13.2 h before bed); Drake et al. 2013, J Clin Sleep Med "
    "9(11):1195-1200 (400 mg taken 0, 3 or 6 h before bedtime all disrupted sleep in 12 healthy "
    "adults, by more than 1 h of sleep even at 6 h)"
)
SOURCE_DAILY = (
    "EFSA 2015 scientific opinion on the safety of caffeine (up to 400 mg a day raises no "
    "safety concern for healthy adults, 200 mg in pregnancy)"
)
SOURCE_TABLE = "USDA FoodData Central"
NEGLIGIBLE_MG = 0.5


def dose_mg(drink: str, volume_ml: float | None, caffeine_mg: float | None) -> float:
    """Caffeine in one drink: the maker's figure, else the USDA table scaled by volume."""
    if caffeine_mg is not None:
        return caffeine_mg
    entry = DRINKS.get(drink)
    if entry is None:  # "other" without a figure: unknown, counted as none
        return 0.0
    mg, ref_ml = entry
    return mg if volume_ml is None else mg * volume_ml / ref_ml


def caffeine_at(ps: PersonState, instant: datetime, half_life_h: float) -> float:
    """Caffeine (mg) in the body at `instant`, from doses taken before it."""
    t = instant.timestamp()
    hl_s = half_life_h * 3600.0
    return float(sum(mg * 0.5 ** ((t - at) / hl_s) for at, mg in ps.doses if at <= t))


def prune_doses(ps: PersonState, now: datetime, half_life_h: float) -> None:
    """Forget doses whose remainder is negligible."""
    t = now.timestamp()
    hl_s = half_life_h * 3600.0
    ps.doses = [
        (at, mg) for at, mg in ps.doses if at > t or mg * 0.5 ** ((t - at) / hl_s) >= NEGLIGIBLE_MG
    ]


def tracks_caffeine(ctx: Ctx) -> bool:
    """Whether the coach knows the person's caffeine: a coffee maker measures them (it reports
    every brew, so a day without one is a known 0), or they recorded caffeine in the days kept."""
    return bool(ctx.ps.caffeine_days) or ctx.has_device("coffee_maker")


def caffeine_mg_on(ps: PersonState, day: str, *, tracked: bool) -> float | None:
    """The caffeine (mg) recorded on a local date: None when unknown (nothing recorded that day
    and the person's caffeine is not tracked, `tracks_caffeine`), never a 0 that was not seen."""
    mg = ps.caffeine_days.get(day)
    if mg is not None:
        return mg
    return 0.0 if tracked else None


def cutoff_at(ctx: Ctx, night: Night) -> datetime:
    """The last moment for caffeine before this night's bedtime."""
    return night.bedtime - hours(ctx.config.rules.caffeine_cutoff.cutoff_hours)


def add_dose(ctx: Ctx, at: datetime, mg: float, drink: str) -> None:
    """Record a dose, then apply the cutoff and daily-limit rules to it."""
    ps = ctx.ps
    ps.doses.append((at.timestamp(), mg))
    day = ctx.local_day(at)
    ps.caffeine_days[day] = total = ps.caffeine_days.get(day, 0.0) + mg
    _check_cutoff(ctx, at, mg, drink)
    _check_daily(ctx, at, day, total)


def drink_name(drink: str) -> str:
    """How a message names a drink: "espresso", "cold brew", "caffeinated drink"."""
    return {"caffeine": "caffeinated drink", "other": "drink"}.get(drink, drink.replace("_", " "))


def _check_cutoff(ctx: Ctx, at: datetime, mg: float, drink: str) -> None:
    rule = ctx.config.rules.caffeine_cutoff
    if not rule.enabled or mg < rule.min_dose_mg:
        return
    night = ctx.night_of_intake(at)
    cutoff = cutoff_at(ctx, night)
    if at < cutoff:
        return
    half_life = ctx.person.caffeine_half_life_h
    at_bed = caffeine_at(ctx.ps, max(night.bedtime, at), half_life)
    severity: Severity = "alert" if at_bed > rule.bedtime_limit_mg else "warning"
    hours_left = (night.bedtime - at).total_seconds() / 3600.0
    that = f"That {drink_name(drink)} ({mg:.0f} mg of caffeine)"
    when = before_bedtime(at, night.bedtime, ctx.tz)
    if at < night.bedtime:
        # The amount at bedtime is every drink's: say so when earlier ones add to it, or the
        # figure reads as this drink's alone (a 40 mg drink "leaving" 54 mg).
        own = mg * 0.5 ** (hours_left / half_life)
        earlier = "with your earlier drinks, " if at_bed - own >= 1.0 else ""
        message = (
            f"{that} came {when}; {earlier}about "
            f"{at_bed:.0f} mg will still be in your body then, which can make it harder to fall "
            f"asleep and shorten your sleep. Consider caffeine-free drinks for the rest of the day."
        )
    else:
        message = (
            f"{that} came {when}. Caffeine takes hours to wear off and can "
            f"make it harder to get back to sleep; consider caffeine-free drinks for the rest of "
            f"the night."
        )
    ctx.send(
        "caffeine.cutoff",
        day=night.key,
        night=night.key,
        cause=hhmm(at, ctx.tz).replace(":", ""),
        severity=severity,
        title="No caffeine now",
        message=message,
        evidence={
            "drink": drink,
            "dose_mg": round(mg, 1),
            "drink_at": local_iso(at, ctx.tz),
            "bedtime": local_iso(night.bedtime, ctx.tz),
            "hours_before_bed": round(hours_left, 2),
            "cutoff_hours": rule.cutoff_hours,
            "predicted_mg_at_bedtime": round(at_bed, 1),
            "bedtime_limit_mg": rule.bedtime_limit_mg,
            "half_life_h": half_life,
            "source": SOURCE_CUTOFF,
            "model": SOURCE_MODEL,
        },
        expires=max(night.bedtime, at) + timedelta(hours=1),
        scheduled=False,
    )


def _check_daily(ctx: Ctx, at: datetime, day: str, total: float) -> None:
    rule = ctx.config.rules.caffeine_daily_limit
    if not rule.enabled or total <= rule.daily_limit_mg:
        return
    if not ctx.once(f"caffeine.daily_limit:{day}"):
        return
    night = ctx.night_of_intake(at)
    ctx.send(
        "caffeine.daily_limit",
        day=day,
        night=night.key,
        severity="warning",
        title="That's a lot of caffeine today",
        message=(
            f"You've had about {total:.0f} mg of caffeine today, more than the "
            f"{rule.daily_limit_mg:.0f} mg a day considered safe for healthy adults. Consider "
            f"switching to water or caffeine-free drinks for the rest of the day."
        ),
        evidence={
            "total_mg_today": round(total, 1),
            "daily_limit_mg": rule.daily_limit_mg,
            "date": day,
            "source": SOURCE_DAILY,
        },
        # It answers a drink the person just had, so like the cutoff it goes out even after
        # bedtime: they are evidently awake (expiring at bedtime dropped a 23:00 coffee's).
        expires=max(night.bedtime, at) + timedelta(hours=1),
        scheduled=False,
    )


def on_coffee(ctx: Ctx, event: CoffeeBrewed) -> None:
    """A brew adds its caffeine."""
    add_dose(ctx, event.ts, dose_mg(event.drink, event.volume_ml, event.caffeine_mg), event.drink)


def on_logged(ctx: Ctx, event: SubstanceLogged) -> None:
    """A caffeine drink logged by hand adds its caffeine."""
    if event.what == "caffeine":
        mg = event.caffeine_mg if event.caffeine_mg is not None else DEFAULT_LOGGED_MG
        add_dose(ctx, event.ts, mg, "caffeine")


def bedtime_load_at(ctx: Ctx, night: Night) -> datetime:
    """When this night's bedtime-load check is due."""
    minutes = ctx.config.rules.caffeine_bedtime_load.minutes_before_bed
    return night.bedtime - timedelta(minutes=minutes)


def load_joins_winddown(ctx: Ctx, night: Night) -> bool:
    """Whether the bedtime-load warning goes out inside the wind-down (one nudge, not two):
    both rules on, and their times at most `nudge_budget.merge_within_min` apart."""
    rules = ctx.config.rules
    if not (rules.caffeine_bedtime_load.enabled and rules.winddown_stretch.enabled):
        return False
    apart = abs(
        rules.caffeine_bedtime_load.minutes_before_bed - rules.winddown_stretch.minutes_before_bed
    )
    return apart <= rules.nudge_budget.merge_within_min


def predicted_load(ctx: Ctx, night: Night) -> float | None:
    """The caffeine (mg) predicted at bedtime when it is above the bedtime limit, else None."""
    at_bed = caffeine_at(ctx.ps, night.bedtime, ctx.person.caffeine_half_life_h)
    return at_bed if at_bed > ctx.config.rules.caffeine_bedtime_load.bedtime_limit_mg else None


def load_evidence(ctx: Ctx, night: Night, at_bed: float) -> dict[str, object]:
    """The evidence of a bedtime-load warning."""
    return {
        "predicted_mg_at_bedtime": round(at_bed, 1),
        "bedtime_limit_mg": ctx.config.rules.caffeine_bedtime_load.bedtime_limit_mg,
        "bedtime": local_iso(night.bedtime, ctx.tz),
        "half_life_h": ctx.person.caffeine_half_life_h,
        "model": SOURCE_MODEL,
        "source": SOURCE_CUTOFF,
    }


def plan(ctx: Ctx, night: Night) -> list[Timer]:
    """Last call before the cutoff and the bedtime-load check (unless the wind-down carries it)."""
    rules = ctx.config.rules
    timers = []
    if rules.caffeine_last_call.enabled:
        at = cutoff_at(ctx, night) - timedelta(
            minutes=rules.caffeine_last_call.minutes_before_cutoff
        )
        timers.append(Timer("caffeine.last_call", ctx.person.id, at, night.key))
    if rules.caffeine_bedtime_load.enabled and not load_joins_winddown(ctx, night):
        at = bedtime_load_at(ctx, night)
        timers.append(Timer("caffeine.bedtime_load", ctx.person.id, at, night.key))
    return timers


def on_last_call(ctx: Ctx, timer: Timer) -> None:
    """Before the cutoff, on a day that had caffeine: say when caffeine stops being a good idea."""
    night = ctx.tonight
    day = ctx.local_day()
    today = caffeine_mg_on(ctx.ps, day, tracked=tracks_caffeine(ctx))
    if today is None or today < ctx.config.rules.caffeine_cutoff.min_dose_mg:
        return  # unknown, or no caffeine today: nothing to say
    cutoff = cutoff_at(ctx, night)
    ctx.send(
        "caffeine.last_call",
        day=night.key,
        night=night.key,
        severity="info",
        title=f"Caffeine cutoff at {hhmm(cutoff, ctx.tz)}",
        message=(
            f"Caffeine after {hhmm(cutoff, ctx.tz)} will still be in your body at bedtime "
            f"({hhmm(night.bedtime, ctx.tz)}) and can shorten your sleep. Consider caffeine-free "
            f"drinks from then on."
        ),
        evidence={
            "cutoff": local_iso(cutoff, ctx.tz),
            "bedtime": local_iso(night.bedtime, ctx.tz),
            "cutoff_hours": ctx.config.rules.caffeine_cutoff.cutoff_hours,
            "caffeine_mg_today": round(today, 1),
            "source": SOURCE_CUTOFF,
        },
        expires=cutoff,
        scheduled=True,
    )


def on_bedtime_load(ctx: Ctx, timer: Timer) -> None:
    """An hour before bed: warn when the caffeine predicted at bedtime is still high."""
    night = ctx.tonight
    if load_joins_winddown(ctx, night):
        return  # a timer planned before the config changed: the wind-down carries it
    at_bed = predicted_load(ctx, night)
    if at_bed is None:
        return
    ctx.send(
        "caffeine.bedtime_load",
        day=night.key,
        night=night.key,
        severity="warning",
        title="Caffeine still high at bedtime",
        message=(
            f"About {at_bed:.0f} mg of caffeine will still be in your body at bedtime "
            f"({hhmm(night.bedtime, ctx.tz)}). Consider a calm, screen-free wind-down; if this "
            f"happens often, an earlier last coffee may help you fall asleep."
        ),
        evidence=load_evidence(ctx, night, at_bed),
        expires=night.bedtime,
        scheduled=True,
    )


FAMILY = Family(
    name="caffeine",
    events={CoffeeBrewed: on_coffee, SubstanceLogged: on_logged},
    timers={"caffeine.last_call": on_last_call, "caffeine.bedtime_load": on_bedtime_load},
    plan=plan,
)
