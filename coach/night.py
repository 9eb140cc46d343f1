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

import math
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any, Final

from coach import activity, caffeine, insight, stress, sunlight
from coach.action import RecordNight, RefuseEvent
from coach.clock import Night, at_local, local_iso, night_of
from coach.config import WEEKDAYS
from coach.event import (
    RLS_CRITERIA,
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
from coach.nudge import Severity
from coach.rule import Ctx, Family, hours
from coach.state import Exposures, NightRecord, NightsState, OpenNight, PersonState
from coach.wording import count, duration

# --- Sources ------------------------------------------------------------------------------------

SOURCE_SCORING = (
    "Ferri et al. 2016, WASM standards for PLM scoring, Sleep Med 26:86-95; Berry et al., AASM "
    "Scoring Manual 2.5, 2018 (limb movements 0.5-10 s, series of at least 4)"
)
SOURCE_PLMS = "ICSD-3 (AASM 2014): PLMS index above 15/h in adults"
SOURCE_PLMS_COMMON = (
    "Leary et al. 2018, Clin Neurophysiol 129(11):2306-2314 (Wisconsin Sleep Cohort, 1,084 "
    "adults: PLM index of 15/h or more in 25.3 %, rising with age; sleepiness differed only with "
    "restless-legs symptoms); Haba-Rubio et al. 2016, Ann Neurol 79(3):464-474 (HypnoLaus, 2,162 "
    "adults aged 40-80, mean 58: PLMS index above 15/h in 28.6 %)"
)
SOURCE_RLS_CRITERIA = (
    "Allen et al. 2014, Sleep Med 15(8):860-873 (IRLSSG consensus: the essential criteria of "
    "restless legs syndrome)"
)
SOURCE_HYPNIC = "ICSD-3: hypnic jerks (sleep starts) are a benign normal variant"
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
        rested=rested_after(ctx.ps, key),
    )
    previous = [h for h in nights.history if h.night < key][-USUAL_NIGHTS:]
    history = [h for h in nights.history if h.night != key]
    history.append(entry)
    history.sort(key=lambda h: h.night)
    nights.history = history[-HISTORY_NIGHTS:]
    at = datetime.fromtimestamp(end, tz)
    scheduled = trigger == "wake"
    _send_summary(
        ctx, night, doc, at, scheduled=scheduled, entry=entry, usual=previous, at_bed=at_bed
    )
    check_frequent(ctx, night.key, scheduled=scheduled)
    check_daytime(ctx, ctx.local_day(), scheduled=scheduled)


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
    from the person's state, a late workout and stress before bed from the evening's record.

    What nothing measured is None, unknown: caffeine when the person's caffeine is not tracked
    (no coffee maker, nothing logged), a late workout when no tracker reports exercise, stress
    without a stress reading before bed."""
    ps = ctx.ps
    rules = ctx.config.rules
    bed = night.bedtime
    nicotine_from = (bed - hours(rules.stimulant_late.hours_before_bed)).timestamp()
    evening = ps.evenings.get(night.key)
    late_workout = evening is not None and evening.late_workout
    return Exposures(
        caffeine_at_bedtime=(
            at_bed > rules.caffeine_bedtime_load.bedtime_limit_mg
            if caffeine.tracks_caffeine(ctx)
            else None
        ),
        late_workout=late_workout or (False if _tracks_exercise(ctx) else None),
        stress_evening=stress.stress_evening(ps, night.key),
        late_nicotine=any(nicotine_from <= t <= end for t in ps.nicotine),
        alcohol_evening=evening is not None and evening.alcohol_late,
    )


def _tracks_exercise(ctx: Ctx) -> bool:
    """Whether the coach sees the person's exercise: a fitness tracker measures them, or one
    reported a workout or a heart rate."""
    ps = ctx.ps
    return (
        ps.last_workout_at is not None
        or ps.last_hr_at is not None
        or ctx.has_device("fitness_tracker")
    )


# --- How a night compares with the person's own ---------------------------------------------------

#: The person's own nights a night is compared with (the latest ones before it).
USUAL_NIGHTS: Final = 14
#: Fewest earlier nights before anything is called usual or not.
USUAL_MIN_NIGHTS: Final = 5


def twitches_per_hour(entry: NightRecord) -> float | None:
    """Limb movements per hour in bed of a stored night; None without time in bed."""
    hours_in_bed = entry.time_in_bed_s / 3600.0
    if hours_in_bed <= 0:
        return None
    return entry.limb_movements / hours_in_bed


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    """First quartile, median and third quartile (linear interpolation between ranks)."""
    ordered = sorted(values)
    last = len(ordered) - 1

    def at(q: float) -> float:
        pos = q * last
        low = int(pos)
        high = min(low + 1, last)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

    return at(0.25), at(0.5), at(0.75)


def compare_with_usual(value: float, earlier: list[float]) -> str | None:
    """ "more", "about" or "less" than usual against the person's earlier nights; None with
    fewer than `USUAL_MIN_NIGHTS` of them.

    Usual is the middle half of the earlier nights (first to third quartile), widened by a
    margin of a fifth of the median and at least 1 an hour, so that a night just outside that
    range on a calm week is still "about usual".
    """
    if len(earlier) < USUAL_MIN_NIGHTS:
        return None
    low, median, high = _quartiles(earlier)
    margin = max(1.0, 0.2 * median)
    if value > high + margin:
        return "more"
    if value < low - margin:
        return "less"
    return "about"


def _usual_line(entry_rate: float | None, earlier: list[NightRecord]) -> tuple[str, dict[str, Any]]:
    """The sentence on how last night's twitches compare, and its evidence."""
    rates = [r for r in (twitches_per_hour(h) for h in earlier) if r is not None]
    if entry_rate is None:
        return "", {"compared_nights": len(rates)}
    verdict = compare_with_usual(entry_rate, rates)
    rate = f"{_rate(entry_rate)} an hour in bed"
    evidence: dict[str, Any] = {
        "twitches_per_hour": round(entry_rate, 1),
        "compared_nights": len(rates),
        "compared_with_usual": verdict,
    }
    if verdict is None:
        return (
            f"Twitches (limb movements): {rate}. With {count(len(rates), 'earlier night')} "
            f"it is too soon to say what is usual for you (the coach compares from "
            f"{USUAL_MIN_NIGHTS}).",
            evidence,
        )
    low, _, high = _quartiles(rates)
    evidence["usual_range_per_hour"] = [round(low, 1), round(high, 1)]
    words = {"more": "more than usual", "about": "about usual", "less": "less than usual"}
    usual = _rate(low) if _rate(low) == _rate(high) else f"{_rate(low)}-{_rate(high)}"
    return (
        f"Twitches (limb movements): {rate}, {words[verdict]} for you (usually {usual} an hour "
        f"over your last {count(len(rates), 'night')}).",
        evidence,
    )


def _rate(per_hour: float) -> str:
    """A rate an hour as people read it: one decimal under 10 ("0.4"), whole numbers above."""
    return f"{per_hour:.1f}" if per_hour < 9.95 else f"{per_hour:.0f}"


def _plm_line(ctx: Ctx, plm: float | None, series: int) -> str:
    """The PLM index, never without what it means."""
    if plm is None:
        return ""
    limit = ctx.config.rules.twitch_frequent.plm_index
    if series == 0:
        return "No periodic leg movements (no run of 4 or more at regular intervals)."
    index = f"Periodic leg movements: {plm:.1f} an hour asleep (the PLM index)"
    if plm <= limit:
        return f"{index}, within the {limit:g} an hour that sleep medicine uses as the adult limit."
    return (
        f"{index}, above the {limit:g} an hour that sleep medicine uses as the adult limit. About "
        f"a quarter of middle-aged and older adults are above it, it is often harmless on its "
        f"own, and one night says little."
    )


# --- The morning digest: the evening before, and the day's encouragements ------------------------


def _evening_lines(ctx: Ctx, exposures: Exposures, at_bed: float) -> list[str]:
    """One line for each factor the coach saw on the evening before the night."""
    rules = ctx.config.rules
    lines = []
    if exposures.caffeine_at_bedtime:
        lines.append(
            f"The evening before: caffeine still in your body at bedtime (about {at_bed:.0f} mg)."
        )
    if exposures.late_workout:
        lines.append("The evening before: vigorous exercise close to bedtime.")
    if exposures.stress_evening:
        lines.append("The evening before: stress stayed high in the hours before bed.")
    if exposures.alcohol_evening:
        window = rules.alcohol_late.hours_before_bed
        lines.append(f"The evening before: alcohol within {_hours(window)} of bedtime.")
    if exposures.late_nicotine:
        window = rules.stimulant_late.hours_before_bed
        lines.append(f"The evening before: nicotine within {_hours(window)} of bedtime.")
    return lines


def _hours(value: float) -> str:
    return f"{value:g} hour" if value == 1 else f"{value:g} hours"


def _encouragements(ctx: Ctx, day: str) -> tuple[list[str], dict[str, Any]]:
    """The day's encouragements: daylight reached, and the WHO's weekly activity reached."""
    ps = ctx.ps
    lines = []
    min_daylight = ctx.config.rules.sunlight_daily.min_minutes
    daylight = sunlight.daylight_minutes(ps, day)
    active = activity.active_minutes_week(ps, day)
    if sunlight.is_daylight_reached(ps, day, min_daylight) and daylight is not None:
        lines.append(f"Well done: {count(math.floor(daylight), 'minute')} of daylight yesterday.")
    if activity.is_active_week(ps, day) and active is not None:
        lines.append(
            f"Well done: {count(active, 'active minute')} over the last 7 days, the "
            f"{activity.WEEKLY_TARGET_MIN:.0f} a week the WHO recommends."
        )
    evidence = {
        "daylight_minutes": None if daylight is None else round(daylight, 1),
        "daylight_target_minutes": min_daylight,
        "active_minutes_7_days": None if active is None else round(active),
        "active_target_minutes": activity.WEEKLY_TARGET_MIN,
    }
    return lines, evidence


def _send_summary(
    ctx: Ctx,
    night: Night,
    doc: dict[str, Any],
    at: datetime,
    *,
    scheduled: bool,
    entry: NightRecord,
    usual: list[NightRecord],
    at_bed: float,
) -> None:
    rule = ctx.config.rules.twitch_night_summary
    if not rule.enabled:
        return
    plm = doc["plm_index"]
    jerks = doc["hypnic_jerks"]
    rate = twitches_per_hour(entry)
    first = f"Last night you were in bed {duration(timedelta(seconds=doc['time_in_bed_s']))}"
    if doc["time_to_settle_s"] is None:
        first += " and the sensor found no settled stretch of sleep."
    elif doc["time_to_settle_s"] < 60:
        first += " and settled at once."
    else:
        first += f" and settled after {duration(timedelta(seconds=doc['time_to_settle_s']))}."
    compared, usual_evidence = _usual_line(rate, usual)
    lines = [first, compared, _plm_line(ctx, plm, doc["series"])]
    if jerks:
        lines.append(
            f"{count(jerks, 'hypnic jerk')} at sleep onset, a common and harmless 'sleep start'."
        )
    exposures = entry.exposures
    lines += _evening_lines(ctx, exposures, at_bed)
    cheers, cheers_evidence = _encouragements(ctx, night.key)
    lines += cheers
    lines.append(SCREENING)
    message = "\n".join(line for line in lines if line)
    ctx.send(
        "twitch.night_summary",
        day=night.key,
        night=night.key,
        severity="info",
        title="Last night",
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
            **usual_evidence,
            "evening": {"caffeine_mg_at_bedtime": round(at_bed, 1), **asdict(exposures)},
            "encouragements": cheers_evidence,
            "source": SOURCE_SCORING,
            "source_plms": SOURCE_PLMS,
            "source_plms_common": SOURCE_PLMS_COMMON,
            "source_hypnic": SOURCE_HYPNIC,
            "source_encouragement": f"{activity.SOURCE}; {sunlight.SOURCE}",
            "screening": SOURCE_DEVICE,
        },
        expires=max(at, night.wake) + SUMMARY_VALID,
        scheduled=scheduled,
    )


# --- twitch.frequent and twitch.daytime -----------------------------------------------------------

#: The restless-legs answers count for this many days (the check-ins kept).
RLS_ANSWERS_DAYS: Final = 14
#: The questions the check-in asks, by `RLS_CRITERIA` key (IRLSSG essential criteria 1-4).
RLS_QUESTIONS: Final = {
    "urge_to_move": "Do you have an urge to move your legs, usually with unpleasant feelings "
    "in them?",
    "worse_at_rest": "Does it start or get worse while you rest, sitting or lying down?",
    "better_moving": "Does moving, walking or stretching ease it, at least while you move?",
    "worse_evening": "Is it worse in the evening or at night than during the day?",
}


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


def _days_back(today: str, days: int) -> str:
    """The first local date of the `days` days ending `today`."""
    return (date.fromisoformat(today) - timedelta(days=days - 1)).isoformat()


def rested_after(ps: PersonState, night_key: str) -> int | None:
    """How rested the person said they felt the morning after the night `night_key`."""
    morning = (date.fromisoformat(night_key) + timedelta(days=1)).isoformat()
    answer = ps.checkins.get(morning)
    return None if answer is None else answer.rested


def rls_answers(ps: PersonState, today: str) -> dict[str, bool]:
    """The latest answer to each restless-legs question in the check-ins of the last
    `RLS_ANSWERS_DAYS` days."""
    first = _days_back(today, RLS_ANSWERS_DAYS)
    answers: dict[str, bool] = {}
    for day in sorted(d for d in ps.checkins if first <= d <= today):
        answers.update(ps.checkins[day].rls)
    return answers


def is_rls_all_yes(ps: PersonState, today: str) -> bool:
    """Yes to all four restless-legs questions (IRLSSG essential criteria 1-4)."""
    answers = rls_answers(ps, today)
    return all(answers.get(k) is True for k in RLS_CRITERIA)


def unrested_mornings(ps: PersonState, today: str, rested_max: int) -> list[str]:
    """The mornings of the last 7 days the person felt rested at `rested_max` or less."""
    first = _days_back(today, WEEK_DAYS)
    return sorted(
        d
        for d, a in ps.checkins.items()
        if first <= d <= today and a.rested is not None and a.rested <= rested_max
    )


def check_frequent(ctx: Ctx, night_key: str, *, scheduled: bool) -> None:
    """twitch.frequent for the week ending with the night `night_key`.

    The pattern alone gets a short check-in and no specialist; the pattern with restless-legs
    symptoms (yes to all four questions) or unrefreshing sleep (rested at most 2 on 3 of the last
    7 mornings) suggests a sleep specialist. Each goes out at most once in `repeat_days`.
    """
    rule = ctx.config.rules.twitch_frequent
    nights = ctx.ps.nights
    if not rule.enabled:
        return
    week = _week_of_nights(ctx, night_key)
    high = [h for h in week if h.plm_index is not None and h.plm_index > rule.plm_index]
    if len(high) < rule.nights:
        return
    today = ctx.local_day()
    all_yes = is_rls_all_yes(ctx.ps, today)
    unrested = unrested_mornings(ctx.ps, today, rule.rested_max)
    specialist = all_yes or len(unrested) >= rule.unrested_mornings
    last_sent = nights.specialist_sent_at if specialist else nights.frequent_sent_at
    if not _is_due(ctx, last_sent, rule.repeat_days):
        return
    pattern = (
        f"On {len(high)} of the last {WEEK_DAYS} nights the sensor counted more than "
        f"{rule.plm_index:g} periodic leg movements an hour asleep."
    )
    answers = rls_answers(ctx.ps, today)
    evidence: dict[str, Any] = {
        "nights_above": len(high),
        "nights_with_data": len(week),
        "window_nights": WEEK_DAYS,
        "plm_index_limit": rule.plm_index,
        "nights_needed": rule.nights,
        "plm_index_by_night": {
            h.night: round(h.plm_index, 1) for h in high if h.plm_index is not None
        },
        "rls_answers": answers,
        "rls_all_yes": all_yes,
        "unrested_mornings": unrested,
        "rested_max": rule.rested_max,
        "unrested_mornings_needed": rule.unrested_mornings,
        "specialist": specialist,
        "source": SOURCE_PLMS,
        "source_prevalence": SOURCE_PLMS_COMMON,
        "source_rls": SOURCE_RLS_CRITERIA,
        "screening": SOURCE_DEVICE,
    }
    if specialist:
        if all_yes:
            why = "and you answered yes to all four restless-legs questions"
        else:
            why = (
                f"and you felt poorly rested ({rule.rested_max} or less of 5) on "
                f"{len(unrested)} of the last {WEEK_DAYS} mornings"
            )
        message = (
            f"{pattern[:-1]}, {why}. Together these are worth having checked: consider seeing "
            f"a sleep specialist, or talk to your doctor first. {SCREENING}"
        )
        title = "Leg movements worth having checked"
        severity: Severity = "warning"
        cause = "specialist"
    else:
        questions = " ".join(RLS_QUESTIONS.values())
        message = (
            f"{pattern} That is common: about a quarter of middle-aged and older adults are "
            f"above {rule.plm_index:g} an hour, and on its own it is often harmless. What matters "
            f"is how you feel, so a short check-in helps. {questions} And how rested do you feel "
            f"this morning, from 1 to 5? Answer yes or no in the morning check-in. {SCREENING}"
        )
        title = "Leg movements on several nights"
        severity = "info"
        cause = ""
    sent = ctx.send(
        "twitch.frequent",
        day=night_key,
        night=night_key,
        severity=severity,
        title=title,
        message=message,
        evidence=evidence,
        expires=ctx.now + SUMMARY_VALID,
        scheduled=scheduled,
        cause=cause,
    )
    if sent:
        if specialist:
            nights.specialist_sent_at = ctx.now.timestamp()
        else:
            nights.frequent_sent_at = ctx.now.timestamp()


def check_daytime(ctx: Ctx, today: str, *, scheduled: bool, also: str | None = None) -> None:
    """twitch.daytime on `today` (local date); `also` is a day being reported right now.

    It counts the days with twitching while awake, reported by a log or a check-in; twitching
    at night (hypnic jerks, limb movements) is not daytime twitching and does not count.
    """
    rule = ctx.config.rules.twitch_daytime
    nights = ctx.ps.nights
    if not rule.enabled or not _is_due(ctx, nights.daytime_sent_at, rule.repeat_days):
        return
    first = _days_back(today, WEEK_DAYS)
    days = {d for d in ctx.ps.daytime_twitching if first <= d <= today}
    if also is not None:
        days.add(also)
    if len(days) < rule.days:
        return
    night = ctx.tonight
    if ctx.send(
        "twitch.daytime",
        day=today,
        night=night.key,
        severity="warning",
        title="Twitching while awake",
        message=(
            f"You reported twitching while awake on {count(len(days), 'day')} of the last "
            f"{WEEK_DAYS}. Muscle twitches are common and usually harmless, but when they keep "
            f"coming, consider asking your doctor whether a blood test makes sense: clinicians "
            f"often check vitamin D, B12, magnesium and calcium, and ferritin when restless legs "
            f"is a question. Please don't self-diagnose or start treating it on your own; talk "
            f"to your doctor. {SCREENING}"
        ),
        evidence={
            "daytime_twitching_days": sorted(days),
            "days_needed": rule.days,
            "window_days": WEEK_DAYS,
            "tests_clinicians_check": ["vitamin D", "B12", "magnesium", "calcium", "ferritin"],
            "source": SOURCE_BLOOD,
        },
        expires=ctx.now + SUMMARY_VALID,
        scheduled=scheduled,
    ):
        nights.daytime_sent_at = ctx.now.timestamp()


def on_logged(ctx: Ctx, event: SubstanceLogged) -> None:
    """Daytime twitching logged: check twitch.daytime with the day just logged."""
    if event.what != "daytime_twitching":
        return
    day = ctx.local_day(event.ts)
    check_daytime(ctx, max(day, ctx.local_day()), scheduled=False, also=day)


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
