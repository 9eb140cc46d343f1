"""Nights: bed-sensor events become scored night summaries, and the twitch and insight rules.

How it works. Each person has at most one *open* night (`NightsState.open`): the night named by
its evening, collected from 12 h before its wake time (or 2 h before bedtime, if earlier) until it
closes. Occupancy changes and movements (native `movement` events, or raw `accel` chunks put
through a streaming `LimbMovementDetector`) are appended to it as plain numbers; a message outside
the open night's window takes a slow path once that finds its night or marks the gap as skipped,
so the hot path is a comparison and an append. Both lists are capped, so a chatty sensor cannot
grow the state without bound.

A night closes at its wake time (a timer), or earlier when the person gets up after at least 3 h
in bed and no more than 1 h before wake. Closing scores it with
`coach.limb_movement.summarize_night` (WASM 2016 or AASM 2018 series rules, a PLM index per hour
asleep, hypnic jerks near sleep onset), records which exposures the evening had (caffeine at
bedtime above the limit, a late intense workout, a high-stress evening, late nicotine: the
caffeine and nicotine from the person's state, the rest from the evening's record that the exercise
and stress rules write), keeps the summary in a history of the last 60 nights, publishes it as
`last_night`, asks the shell to store it with the night's movement timeline (`RecordNight`), and
runs the rules:

- `twitch.night_summary`: a plain summary of the night (info). A night without bed data is
  "no data", and a stay in bed without a single movement reported is "no movement data" (the
  sensor reports occupancy only): either is published as such and gets no summary nudge, never
  "a quiet night".
- `twitch.frequent`: a PLM index above 15/h (ICSD-3) on at least 3 of the last 7 nights suggests
  considering a sleep specialist; at most once in 7 days.
- `twitch.daytime`: daytime twitching logged on at least 2 of the last 7 days, with twitching at
  night that week (a PLM series or a hypnic jerk), suggests asking a doctor about a blood test;
  checked when a night closes and when daytime twitching is logged; at most once in 14 days.
- `insight.correlation`: every Sunday at 10:00 local, once 14 nights are stored, each evening
  factor with at least 5 nights with it and 5 without is compared on each outcome (PLM index,
  hypnic jerks, time to settle) by `coach.insight`: a difference of means, a permutation test
  seeded from person and date, Benjamini-Hochberg across every comparison, and a minimum effect.
  What passes is reported as an association, with how many nights each side had.

Nothing here diagnoses: every message says "screening, not a diagnosis", "consider" and "talk to
your doctor", and none names a dose.

The raw detector is kept live in the state between events (it buffers about a minute of samples;
rebuilding it from JSON for every 1 s chunk would cost more than the detection); the state writes
and reads it through its `to_dict` and `from_dict`.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any, Final

from coach import caffeine, insight
from coach.action import RecordNight, RefuseEvent
from coach.clock import Night, at_local, local_iso, night_of
from coach.config import WEEKDAYS
from coach.event import (
    AccelSampled,
    BedtimeChanged,
    MovementDetected,
    OccupancyChanged,
    SubstanceLogged,
    Timer,
)
from coach.limb_movement import (
    NIGHT_START_BEFORE_WAKE_S,
    LimbMovementDetector,
    NightConfig,
    NightSummary,
    summarize_night,
)
from coach.rule import Ctx, Family, hours
from coach.state import Exposures, NightRecord, NightsState, OpenNight

# --- Sources ------------------------------------------------------------------------------------

SOURCE_SCORING = (
    "Ferri et al. 2016, WASM standards for PLM scoring, Sleep Med 26:86-95; Berry et al., AASM "
    "Scoring Manual 2.5, 2018 (limb movements 0.5-10 s, series of at least 4)"
)
SOURCE_PLMS = "ICSD-3 (AASM 2014): PLMS index above 15/h in adults"
SOURCE_HYPNIC = "ICSD-3: hypnic jerks (sleep starts) are a benign normal variant"
SOURCE_RLS = (
    "RLS Foundation: up to 7-10 % of the U.S. population (rls.org); Ohayon et al. 2012, "
    "Sleep Med Rev 16(4):283-295"
)
SOURCE_DEVICE = (
    "Home sensors are screening tools: PAM-RL against polysomnography, sensitivity 0.88 and "
    "specificity 0.76 (Sforza et al. 2005, Sleep Med)"
)
SOURCE_BLOOD = (
    "AASM 2024 RLS guideline (Winkelman et al., J Clin Sleep Med, doi 10.5664/jcsm.11390): check "
    "ferritin and transferrin saturation; vitamin D lower in RLS (Mansourian et al. 2020, Sleep "
    "Med 75:326-334)"
)
SOURCE_INSIGHT = (
    "Triggers of sleep starts: caffeine, nicotine, stress, strenuous evening exercise (AASM, "
    "sleepeducation.org); permutation p-values (Phipson & Smyth 2010, Stat Appl Genet Mol Biol "
    "9(1):39); false-discovery rate (Benjamini & Hochberg 1995, J R Stat Soc B 57(1):289-300)"
)
SCREENING = "Screening, not a diagnosis."

# --- Bounds -------------------------------------------------------------------------------------

#: Movements kept per night: one every 1.5 s for 8 h; beyond that they are counted as lost.
MAX_MOVEMENTS: Final = 20_000
#: Occupancy changes kept per night.
MAX_OCCUPANCY: Final = 1_000
#: Night summaries kept: enough for the weekly insight (min 14, two months of comparison).
HISTORY_NIGHTS: Final = 60
#: A night is collected from wake − 12 h (coach.limb_movement's default), or bedtime − 2 h.
START_BEFORE_BED_S: Final = 2 * 3600.0
#: The window of the weekly rules ("the last 7 nights", "the last 7 days").
WEEK_DAYS: Final = 7
#: The stored night's timeline keeps at most this many movements (about 44 KB of JSON): the
#: jerks and the LMs of counted series first, then the strongest of the rest. A night in bed
#: has a few hundred (posture changes every 20-30 min, a 60/h PLM train over 8 h is 480 LMs);
#: a flood from a noisy sensor is thinned to its strongest, and the count left out is stored.
TIMELINE_MOVEMENTS: Final = 2_000
#: ... at most this many PLM series (each has 4 LMs or more) and stays in bed.
TIMELINE_SERIES: Final = 500
TIMELINE_STAYS: Final = 500
#: How a timeline movement is marked: in a counted PLM series, a hypnic jerk, or neither.
OTHER, IN_SERIES, JERK = 0, 1, 2
#: A summary that could not go out is still worth reading until the evening.
SUMMARY_VALID: Final = timedelta(hours=12)
#: The weekly insight stays relevant for the day.
INSIGHT_VALID: Final = timedelta(hours=10)

#: Summary fields that mean nothing without movement data.
UNSCORED: Final = (
    "sleep_onset",
    "time_to_settle_s",
    "asleep_s",
    "movements",
    "limb_movements",
    "posture_changes",
    "plm_count",
    "plm_index",
    "series",
    "hypnic_jerks",
)


def _detector(nights: NightsState) -> LimbMovementDetector:
    """The person's live raw-accel detector, created on first use."""
    if nights.detector is None:
        nights.detector = LimbMovementDetector()
    return nights.detector


# --- Collecting a night -------------------------------------------------------------------------


def _start_of(night: Night) -> float:
    """When collecting a night begins (POSIX seconds)."""
    return min(
        night.wake.timestamp() - NIGHT_START_BEFORE_WAKE_S,
        night.bedtime.timestamp() - START_BEFORE_BED_S,
    )


def _night_of_key(ctx: Ctx, key: str) -> Night:
    return night_of(ctx.person, date.fromisoformat(key), ctx.tz, ctx.ps.bedtime_overrides)


def _route(ctx: Ctx, t: float) -> OpenNight | None:
    """Slow path: the open night for an instant outside the current window, or None (skipped)."""
    nights = ctx.ps.nights
    cur = nights.open
    if cur is not None and t >= cur.wake:
        # The wake timer never came (the daemon was down): close the night at its wake time.
        _close(ctx, cur, cur.wake, "wake")
        cur = None
    if cur is not None:
        return None  # older than the open night's window: a late message, nothing to add to
    night = ctx.night_at(datetime.fromtimestamp(t, ctx.tz))
    start = _start_of(night)
    if night.key <= nights.closed:
        following = _night_of_key(ctx, (night.evening + timedelta(days=1)).isoformat())
        nights.skip = (t, _start_of(following))
        return None
    if t < start:
        nights.skip = (t, start)
        return None
    return _open(ctx, night, start)


def _open(ctx: Ctx, night: Night, start: float) -> OpenNight:
    """Start collecting a night; someone already in bed is in bed from when they got in."""
    ps = ctx.ps
    cur = OpenNight(
        night=night.key,
        start=start,
        bedtime=night.bedtime.timestamp(),
        wake=night.wake.timestamp(),
    )
    if ps.in_bed:
        cur.occupancy.append((ps.in_bed_since if ps.in_bed_since is not None else start, True))
    ps.nights.open = cur
    ps.nights.skip = None
    return cur


def _collecting(ctx: Ctx, t: float) -> OpenNight | None:
    """The open night `t` belongs to, or None when no night is collected then."""
    nights = ctx.ps.nights
    cur = nights.open
    if cur is not None and cur.start <= t < cur.wake:
        return cur
    skip = nights.skip
    if skip is not None and skip[0] <= t < skip[1]:
        return None
    return _route(ctx, t)


def _add_movement(ctx: Ctx, t: float, duration_s: float, intensity: float) -> None:
    cur = _collecting(ctx, t)
    if cur is None:
        return
    if len(cur.movements) < MAX_MOVEMENTS:
        cur.movements.append((t, duration_s, intensity))
    else:
        cur.lost += 1


def on_movement(ctx: Ctx, event: MovementDetected) -> None:
    """A native movement joins the open night (O(1): a comparison and an append)."""
    t = ctx.event_s
    cur = ctx.ps.nights.open
    # The hot path, inlined: a movement inside the open night's window with room left.
    if cur is not None and cur.start <= t < cur.wake:
        movements = cur.movements
        if len(movements) < MAX_MOVEMENTS:
            movements.append((t, event.duration_s, event.intensity))
            return
    _add_movement(ctx, t, event.duration_s, event.intensity)


def on_accel(ctx: Ctx, event: AccelSampled) -> None:
    """A raw chunk goes through the detector; the movements it completes join their night."""
    if _collecting(ctx, ctx.event_s) is None:
        return  # no night is collected now: the detector rests (a gap restarts its stream)
    detector = _detector(ctx.ps.nights)
    try:
        found = detector.feed(event.samples, ctx.event_s, event.rate_hz)
    except ValueError as err:
        ctx.actions.append(RefuseEvent(f"accel: {err}"))
        return
    for m in found:
        _add_movement(ctx, m.onset, m.duration_s, m.intensity)


def on_occupancy(ctx: Ctx, event: OccupancyChanged) -> None:
    """Record getting in or out of bed; getting up near wake after 3 h in bed ends the night."""
    t = ctx.event_s
    cur = _collecting(ctx, t)
    if cur is None:
        return
    if len(cur.occupancy) < MAX_OCCUPANCY:
        cur.occupancy.append((t, event.occupied))
    if event.occupied:
        return
    rule = ctx.config.rules.twitch_night_summary
    if t < cur.wake - rule.got_up_before_wake_min * 60.0:
        return
    if _in_bed_s(cur, t) >= rule.got_up_min_in_bed_h * 3600.0:
        _close(ctx, cur, t, "got_up")


def _in_bed_s(cur: OpenNight, until: float) -> float:
    """Seconds in bed in the open night up to `until`."""
    total, entered = 0.0, None
    for t, occupied in sorted(cur.occupancy, key=lambda c: c[0]):
        if t > until:
            break
        if occupied and entered is None:
            entered = max(t, cur.start)
        elif not occupied and entered is not None:
            total += max(0.0, t - entered)
            entered = None
    if entered is not None:
        total += max(0.0, until - entered)
    return total


def on_bedtime_changed(ctx: Ctx, event: BedtimeChanged) -> None:
    """A moved bedtime may move where tonight's collection starts: forget the skipped gap."""
    ctx.ps.nights.skip = None


# --- Closing a night ----------------------------------------------------------------------------


def _night_config(ctx: Ctx) -> NightConfig:
    rule = ctx.config.rules.twitch_night_summary
    return NightConfig(
        plm_rules=rule.plm_rules,
        quiet_s=rule.onset_quiet_min * 60.0,
        quiet_max_intensity=rule.movement_threshold,
        hypnic_window_s=rule.hypnic_window_min * 60.0,
        hypnic_min_intensity=rule.hypnic_min_intensity,
    )


def _close(ctx: Ctx, cur: OpenNight, end: float, trigger: str) -> None:
    """Score the open night up to `end`, store it, publish it and run the rules on it."""
    nights = ctx.ps.nights
    tz = ctx.tz
    detector = nights.detector
    if detector is not None and detector.is_streaming:
        # Movements still in the detector's buffer belong to this night.
        for m in detector.flush():
            if cur.start <= m.onset < end and len(cur.movements) < MAX_MOVEMENTS:
                cur.movements.append((m.onset, m.duration_s, m.intensity))
    key = cur.night
    night = _night_of_key(ctx, key)
    movements = [m for m in cur.movements if m[0] < end]
    # The scorer takes the stored POSIX seconds as they are: no datetime per movement.
    summary = summarize_night(
        cur.occupancy,
        movements,
        night.wake.timestamp(),
        _night_config(ctx),
        start=cur.start,
        now=end,
    )
    doc = summary.to_dict(tz)
    doc["hypnic_jerk_onsets"] = [
        local_iso(datetime.fromtimestamp(m, tz), tz) for m in summary.hypnic_jerk_onsets
    ]
    # Everyone moves in a night in bed (posture changes every 20-30 min), so a stay without a
    # single movement means the sensor reports occupancy only: twitches are unknown, not zero.
    has_movements = summary.has_data and summary.movements > 0
    if summary.has_data and not has_movements:
        doc.update(dict.fromkeys(UNSCORED))
    plm = summary.plm_index if has_movements else None
    doc.update(
        night=key,
        status="ok" if has_movements else "no movement data" if summary.has_data else "no data",
        ended_by=trigger,
        twitches=summary.movements - summary.posture_changes if has_movements else None,
        limb_movement_index=None if plm is None else round(plm, 1),
        time_in_bed_min=round(summary.time_in_bed_s / 60.0),
        movements_lost=cur.lost,
    )
    if nights.open is cur:
        nights.open = None
    nights.closed = max(key, nights.closed)
    if nights.open is None:
        following = _night_of_key(ctx, (night.evening + timedelta(days=1)).isoformat())
        nights.skip = (end, _start_of(following))
    last = nights.last_night
    if last is None or last["night"] <= key:
        nights.last_night = doc
    at_bed = caffeine.caffeine_at(ctx.ps, night.bedtime, ctx.person.caffeine_half_life_h)
    exposures = _exposures(ctx, night, end, at_bed)
    ctx.actions.append(
        RecordNight(
            person=ctx.person.id,
            night=key,
            ts=datetime.fromtimestamp(end, tz),
            summary={
                **doc,
                "evening": {"caffeine_mg_at_bedtime": round(at_bed, 1), **asdict(exposures)},
                "timeline": timeline(summary, movements, scored=has_movements),
            },
        )
    )
    if not has_movements:
        return
    entry = NightRecord(
        night=key,
        plm_index=plm,
        plm_count=summary.plm_count,
        series=summary.series,
        hypnic_jerks=summary.hypnic_jerks,
        time_to_settle_s=summary.time_to_settle_s,
        time_in_bed_s=summary.time_in_bed_s,
        limb_movements=summary.limb_movements,
        exposures=exposures,
    )
    history = [h for h in nights.history if h.night != key]
    history.append(entry)
    history.sort(key=lambda h: h.night)
    nights.history = history[-HISTORY_NIGHTS:]
    at = datetime.fromtimestamp(end, tz)
    scheduled = trigger == "wake"
    _send_summary(ctx, night, doc, at, scheduled=scheduled)
    _check_frequent(ctx, night, scheduled=scheduled)
    _check_daytime(ctx, ctx.local_day(), scheduled=scheduled)


def timeline(
    summary: NightSummary, movements: list[tuple[float, float, float]], *, scored: bool
) -> dict[str, Any]:
    """The night's movements for drawing it, compact and bounded (`TIMELINE_*`).

    Every time is seconds after the night's start (`night_start` of the summary it is stored
    with): `stays` in bed as [start, end]; `sleep_onset` (None unless `scored`: a night without
    movement data has none); `movements` in bed as [onset, duration_s, intensity,
    mark] in onset order, mark 1 for an LM of a counted PLM series, 2 for a hypnic jerk, 0 for
    the rest (a movement's kind follows from its duration: under 0.5 s brief, up to 10 s a limb
    movement, longer a posture change); `series` as [first onset, last end, LMs counted];
    `omitted`, the movements in bed left out to keep the bound. Times to 0.1 s, intensities to
    0.01.
    """
    t0 = summary.night_start

    def offset(t: float) -> float:
        return round(t - t0, 1)

    mark = dict.fromkeys(summary.in_bed, OTHER)
    for series in summary.plm_series:
        mark.update(dict.fromkeys(series, IN_SERIES))
    mark.update(dict.fromkeys(summary.jerks, JERK))
    kept = summary.in_bed
    if len(kept) > TIMELINE_MOVEMENTS:
        # Marked ones first, then by intensity; ties by onset, so the choice is reproducible.
        ranked = sorted(kept, key=lambda i: (-mark[i], -movements[i][2], movements[i][0]))
        chosen = set(ranked[:TIMELINE_MOVEMENTS])
        kept = tuple(i for i in kept if i in chosen)
    onset = summary.sleep_onset if scored else None
    return {
        "stays": [[offset(a), offset(b)] for a, b in summary.stays[:TIMELINE_STAYS]],
        "sleep_onset": None if onset is None else offset(onset),
        "movements": [
            [
                offset(movements[i][0]),
                round(movements[i][1], 1),
                round(movements[i][2], 2),
                mark[i],
            ]
            for i in kept
        ],
        "series": [
            [
                offset(movements[s[0]][0]),
                offset(movements[s[-1]][0] + movements[s[-1]][1]),
                len(s),
            ]
            for s in summary.plm_series[:TIMELINE_SERIES]
        ],
        "omitted": len(summary.in_bed) - len(kept),
    }


def no_data_night(ctx: Ctx, key: str) -> None:
    """A night that closes with nothing collected: "no data", never "a good night"."""
    if key <= ctx.ps.nights.closed:
        return
    night = _night_of_key(ctx, key)
    cur = OpenNight(
        night=key,
        start=_start_of(night),
        bedtime=night.bedtime.timestamp(),
        wake=night.wake.timestamp(),
    )
    _close(ctx, cur, night.wake.timestamp(), "wake")


def _exposures(ctx: Ctx, night: Night, end: float, at_bed: float) -> Exposures:
    """What the evening before the night had: caffeine (`at_bed` mg at bedtime) and nicotine
    from the person's state, a late workout and stress before bed from the evening's record."""
    ps = ctx.ps
    rules = ctx.config.rules
    bed = night.bedtime
    nicotine_from = (bed - hours(rules.stimulant_late.hours_before_bed)).timestamp()
    evening = ps.evenings.get(night.key)
    return Exposures(
        caffeine_at_bedtime=at_bed > rules.caffeine_bedtime_load.bedtime_limit_mg,
        late_workout=evening is not None and evening.late_workout,
        stress_evening=evening is not None and evening.stress_high,
        late_nicotine=any(nicotine_from <= t <= end for t in ps.nicotine),
    )


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60.0:.0f} min"


def _send_summary(
    ctx: Ctx, night: Night, doc: dict[str, Any], at: datetime, *, scheduled: bool
) -> None:
    rule = ctx.config.rules.twitch_night_summary
    if not rule.enabled:
        return
    plm = doc["plm_index"]
    jerks = doc["hypnic_jerks"]
    in_bed_h = doc["time_in_bed_s"] / 3600.0
    parts = [f"Last night you were in bed {in_bed_h:.1f} h"]
    if doc["time_to_settle_s"] is None:
        parts[0] += " and the sensor found no settled stretch of sleep"
    elif doc["time_to_settle_s"] < 60:
        parts[0] += " and settled at once"
    else:
        parts[0] += f" and settled after {_minutes(doc['time_to_settle_s'])}"
    parts.append(
        f"The sensor counted {_count(doc['twitches'], 'twitch', 'twitches')} "
        f"({_count(doc['limb_movements'], 'limb movement')}) and "
        f"{_count(doc['posture_changes'], 'posture change')}"
    )
    if plm is not None:
        parts.append(
            f"Periodic limb movements: {doc['plm_count']} in "
            f"{_count(doc['series'], 'series', 'series')}, a PLM-like index of {plm:.1f} per "
            f"hour asleep"
        )
    if jerks:
        parts.append(
            f"{_count(jerks, 'hypnic jerk')} at sleep onset, a common and harmless 'sleep start'"
        )
    message = ". ".join(parts) + "."
    if plm is not None and plm > ctx.config.rules.twitch_frequent.plm_index:
        message += (
            f" That index is above {ctx.config.rules.twitch_frequent.plm_index:g}/h; one night "
            f"says little, as it varies from night to night. If it keeps happening, consider "
            f"talking to your doctor."
        )
    message += f" {SCREENING}"
    ctx.send(
        "twitch.night_summary",
        day=night.key,
        night=night.key,
        severity="info",
        title="Last night's movements",
        message=message,
        evidence={
            "night": night.key,
            "time_in_bed_min": doc["time_in_bed_min"],
            "time_to_settle_min": None
            if doc["time_to_settle_s"] is None
            else round(doc["time_to_settle_s"] / 60.0, 1),
            "movements": doc["movements"],
            "limb_movements": doc["limb_movements"],
            "posture_changes": doc["posture_changes"],
            "plm_count": doc["plm_count"],
            "plm_series": doc["series"],
            "plm_index": None if plm is None else round(plm, 1),
            "plm_rules": doc["plm_rules"],
            "hypnic_jerks": jerks,
            "ended_by": doc["ended_by"],
            "source": SOURCE_SCORING,
            "source_plms": SOURCE_PLMS,
            "source_hypnic": SOURCE_HYPNIC,
            "screening": SOURCE_DEVICE,
        },
        expires=max(at, night.wake) + SUMMARY_VALID,
        scheduled=scheduled,
    )


# --- twitch.frequent and twitch.daytime -----------------------------------------------------------


def _week_of_nights(ctx: Ctx, last_key: str) -> list[NightRecord]:
    """Stored nights with data whose evening is within the 7 days ending on `last_key`."""
    first = (date.fromisoformat(last_key) - timedelta(days=WEEK_DAYS - 1)).isoformat()
    return [h for h in ctx.ps.nights.history if first <= h.night <= last_key]


def _is_due(ctx: Ctx, last_sent: float | None, repeat_days: int) -> bool:
    """A rule that last went out at `last_sent` (or never) may go out again now."""
    return last_sent is None or ctx.now.timestamp() - last_sent >= repeat_days * 86400.0


def _was_sent(ctx: Ctx, nudge_id: str) -> bool:
    """The nudge went out now (a dropped one does not count for the repeat)."""
    return nudge_id in ctx.ps.nudges


def _check_frequent(ctx: Ctx, night: Night, *, scheduled: bool) -> None:
    rule = ctx.config.rules.twitch_frequent
    nights = ctx.ps.nights
    if not rule.enabled or not _is_due(ctx, nights.frequent_sent_at, rule.repeat_days):
        return
    week = _week_of_nights(ctx, night.key)
    high = [h for h in week if h.plm_index is not None and h.plm_index > rule.plm_index]
    if len(high) < rule.nights:
        return
    ctx.send(
        "twitch.frequent",
        day=night.key,
        night=night.key,
        severity="warning",
        title="A limb-movement pattern on several nights",
        message=(
            f"On {len(high)} of the last {WEEK_DAYS} nights your PLM-like index was above "
            f"{rule.plm_index:g} per hour, a pattern of periodic leg movements in sleep. It is "
            f"common (restless legs affects up to 1 in 10 people) and can be checked properly: "
            f"consider seeing a sleep specialist, and talk to your doctor about how you sleep "
            f"and feel in the evenings. {SCREENING}"
        ),
        evidence={
            "nights_above": len(high),
            "nights_with_data": len(week),
            "window_nights": WEEK_DAYS,
            "plm_index_limit": rule.plm_index,
            "nights_needed": rule.nights,
            "plm_index_by_night": {
                h.night: round(h.plm_index, 1) for h in high if h.plm_index is not None
            },
            "source": SOURCE_PLMS,
            "source_prevalence": SOURCE_RLS,
            "screening": SOURCE_DEVICE,
        },
        expires=ctx.now + SUMMARY_VALID,
        scheduled=scheduled,
    )
    if _was_sent(ctx, f"twitch.frequent:{ctx.person.id}:{night.key}"):
        nights.frequent_sent_at = ctx.now.timestamp()


def _is_twitching(entry: NightRecord) -> bool:
    """A night with twitching: a periodic limb-movement series or a hypnic jerk."""
    return bool(entry.series or entry.hypnic_jerks)


def _check_daytime(ctx: Ctx, today: str, *, scheduled: bool, also: str | None = None) -> None:
    """twitch.daytime on `today` (local date); `also` is a day being logged right now."""
    rule = ctx.config.rules.twitch_daytime
    nights = ctx.ps.nights
    if not rule.enabled or not _is_due(ctx, nights.daytime_sent_at, rule.repeat_days):
        return
    first = (date.fromisoformat(today) - timedelta(days=WEEK_DAYS - 1)).isoformat()
    days = {d for d in ctx.ps.daytime_twitching if first <= d <= today}
    if also is not None:
        days.add(also)
    if len(days) < rule.days:
        return
    # Nights of the same week: evenings from a week before today up to last night.
    last_night = (date.fromisoformat(today) - timedelta(days=1)).isoformat()
    week = [h for h in _week_of_nights(ctx, last_night) if _is_twitching(h)]
    if not week:
        return
    night = ctx.tonight
    ctx.send(
        "twitch.daytime",
        day=today,
        night=night.key,
        severity="warning",
        title="Twitching by day and by night",
        message=(
            f"You logged twitching during the day on {len(days)} of the last {WEEK_DAYS} days, "
            f"and the bed sensor saw twitching at night this week. Consider asking your doctor "
            f"whether a blood test makes sense: clinicians often check vitamin D, B12, "
            f"magnesium and calcium, and ferritin when restless legs is a question. Please "
            f"don't self-diagnose or start treating it on your own; talk to your doctor. "
            f"{SCREENING}"
        ),
        evidence={
            "daytime_twitching_days": sorted(days),
            "days_needed": rule.days,
            "window_days": WEEK_DAYS,
            "twitching_nights": {
                h.night: {"plm_series": h.series, "hypnic_jerks": h.hypnic_jerks} for h in week
            },
            "tests_clinicians_check": ["vitamin D", "B12", "magnesium", "calcium", "ferritin"],
            "source": SOURCE_BLOOD,
            "screening": SOURCE_DEVICE,
        },
        expires=ctx.now + SUMMARY_VALID,
        scheduled=scheduled,
    )
    if _was_sent(ctx, f"twitch.daytime:{ctx.person.id}:{today}"):
        nights.daytime_sent_at = ctx.now.timestamp()


def on_logged(ctx: Ctx, event: SubstanceLogged) -> None:
    """Daytime twitching logged: check twitch.daytime with the day just logged."""
    if event.what != "daytime_twitching":
        return
    day = ctx.local_day(event.ts)
    _check_daytime(ctx, max(day, ctx.local_day()), scheduled=False, also=day)


# --- insight.correlation --------------------------------------------------------------------------


def insight_at(ctx: Ctx, night: Night) -> datetime:
    """The weekly insight's time: the first configured weekday/time after bedtime − 24 h."""
    rule = ctx.config.rules.insight_correlation
    target = WEEKDAYS.index(rule.weekday)
    ref = night.bedtime - timedelta(hours=24)
    day = ref.astimezone(ctx.tz).date()
    day += timedelta(days=(target - day.weekday()) % 7)
    at = at_local(day, rule.check_at, ctx.tz)
    if at <= ref:
        at = at_local(day + timedelta(days=7), rule.check_at, ctx.tz)
    return at


def on_insight(ctx: Ctx, timer: Timer) -> None:
    """The weekly insight: which evening factors go with this person's worse nights."""
    rule = ctx.config.rules.insight_correlation
    if not rule.enabled:
        return
    day = ctx.local_day()
    history = ctx.ps.nights.history
    if len(history) < rule.min_nights:
        return
    compared = insight.compare(
        [asdict(h) for h in history],
        seed=(ctx.person.id, day),
        min_group=rule.min_group_nights,
        permutations=rule.permutations,
        fdr=rule.false_discovery_rate,
    )
    found = [c for c in compared if c.is_reported]
    if not found:
        return
    these = "This is an association" if len(found) == 1 else "These are associations"
    message = (
        f"From your last {len(history)} nights: "
        + " ".join(insight.sentence(c) for c in found)
        + f" {these} in your own data, not proof of cause: consider changing one thing for a "
        "few weeks and see whether the pattern holds, and talk to your doctor if your nights "
        f"trouble you. {SCREENING}"
    )
    ctx.send(
        "insight.correlation",
        day=day,
        night=ctx.tonight.key,
        severity="info",
        title="What goes with your restless nights",
        message=message,
        evidence={
            "nights_stored": len(history),
            "findings": [c.to_dict() for c in found],
            "comparisons": len(compared),
            "method": (
                f"difference of means; two-sided permutation test ({rule.permutations} "
                f"shuffles, seeded from person and date) per factor and outcome; "
                f"Benjamini-Hochberg across all {len(compared)} comparisons at a false-discovery "
                f"rate of {rule.false_discovery_rate:g}; reported when also at least the "
                f"outcome's minimum effect"
            ),
            "min_effect": {o.key: o.min_effect for o in insight.OUTCOMES},
            "min_group_nights": rule.min_group_nights,
            "source": SOURCE_INSIGHT,
            "screening": SOURCE_DEVICE,
        },
        expires=ctx.now + INSIGHT_VALID,
        scheduled=True,
    )


# --- Timers ---------------------------------------------------------------------------------------


def plan(ctx: Ctx, night: Night) -> list[Timer]:
    """The night ends at wake; the weekly insight falls on the next Sunday 10:00."""
    timers = [Timer("night.end", ctx.person.id, night.wake, night.key)]
    cur = ctx.ps.nights.open
    if cur is not None and cur.night < night.key:
        # A night still open from before (the coach was down at its wake time): close it now.
        at = max(datetime.fromtimestamp(cur.wake, ctx.tz), ctx.now)
        timers.append(Timer("night.end", ctx.person.id, at, cur.night))
    if ctx.config.rules.insight_correlation.enabled:
        at = insight_at(ctx, night)
        day = at.astimezone(ctx.tz).date().isoformat()
        timers.append(Timer("insight.correlation", ctx.person.id, at, day))
    return timers


def on_night_end(ctx: Ctx, timer: Timer) -> None:
    """Wake time: close the night (or an older one still open), "no data" if nothing came."""
    cur = ctx.ps.nights.open
    if cur is not None and cur.night <= timer.night:
        _close(ctx, cur, min(cur.wake, ctx.now.timestamp()), "wake")
    no_data_night(ctx, timer.night)


FAMILY = Family(
    name="night",
    events={
        MovementDetected: on_movement,
        AccelSampled: on_accel,
        OccupancyChanged: on_occupancy,
        SubstanceLogged: on_logged,
        BedtimeChanged: on_bedtime_changed,
    },
    timers={"night.end": on_night_end, "insight.correlation": on_insight},
    plan=plan,
)
