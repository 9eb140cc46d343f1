"""The dashboard's view of a person: what the page shows, computed from the state at `now`.

How it works: `snapshot` copies out of the live state the few things the page reads (the caffeine
doses, tonight's bedtime override, the recent nudges, the night summaries), so the shell can hand
the copy to another thread while the core goes on mutating its own state. `person_view` turns such
a copy into one JSON-able document at a given `now`:

- `caffeine`: today's curve, the amount in the body from the person's doses and half-life
  (`coach.caffeine`'s first-order model), sampled from the evening's midnight until two hours after
  bedtime, with a step at each drink; the amount now, the amount predicted at bedtime, the
  bedtime limit, the cutoff and the last call;
- `planned`: tonight's schedule as the rules plan it (last call, cutoff, last vigorous workout,
  the bedtime caffeine check, wind-down, bedtime, wake), each marked when it has passed;
- `nudges`: the latest nudges with the evidence each carried;
- `last_night`: the last night closed, with its movement timeline when it was stored (the
  shell passes the stored nights in: the state keeps the figures, storage the timeline);
- `trends`: the 14 evenings up to tonight: PLM index, hypnic jerks, time in bed and the caffeine
  left at bedtime (tonight's as predicted), `None` where nothing was measured (never 0).

Instants for the charts are POSIX milliseconds (what a browser's `Date` takes); instants shown as
text are local ISO 8601 with their offset. Nothing here reads a clock.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

from coach import caffeine, exercise, winddown
from coach.clock import at_local, local_iso
from coach.config import Config, Person
from coach.limb_movement import classify_duration
from coach.night import IN_SERIES, JERK, UNSCORED
from coach.rule import Ctx
from coach.state import CoachState, NightsState, PersonState

#: Evenings in the trends, tonight included.
TREND_DAYS: Final = 14
#: Nudges listed, newest first.
RECENT_NUDGES: Final = 6
#: The caffeine curve goes on this long after bedtime.
CURVE_AFTER_BED: Final = timedelta(hours=2)
#: At most about this many samples on the curve (its step is a whole number of minutes).
CURVE_SAMPLES: Final = 288


def snapshot(state: CoachState, person_id: str) -> PersonState:
    """A detached copy of what the dashboard reads of a person: safe to hand to another thread.

    The core mutates its state in place (nudge records are acked, lists are appended to), so
    everything kept here is copied; a night's records are replaced whole when a night closes,
    never changed after, so they are shared. Only the nudges the page lists are copied: the
    consumer takes this copy after every batch that changed the person, so it must stay cheap.
    """
    ps = state.people.get(person_id)
    if ps is None:
        return PersonState()
    latest = heapq.nlargest(RECENT_NUDGES, ps.nudges.items(), key=lambda kv: kv[1].sent_at)
    return PersonState(
        doses=list(ps.doses),
        caffeine_days=dict(ps.caffeine_days),
        bedtime_overrides=dict(ps.bedtime_overrides),
        in_bed=ps.in_bed,
        nudges={k: replace(r, evidence=dict(r.evidence)) for k, r in latest},
        nights=NightsState(history=list(ps.nights.history), last_night=ps.nights.last_night),
    )


def person_view(
    config: Config,
    person: Person,
    ps: PersonState,
    now: datetime,
    nights: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Everything the dashboard shows of one person at `now` (a JSON-able document).

    `nights` are the person's stored nights (what `RecordNight` carried: the summary with its
    evening and timeline), in any order; the state's own records stand in for nights not among
    them.
    """
    if now.tzinfo is None:
        msg = "now must be timezone-aware"
        raise ValueError(msg)
    tz = config.tz
    ctx = Ctx(config, tz, person, ps, CoachState(), now, now.timestamp())
    stored = {n["night"]: n for n in nights if isinstance(n.get("night"), str)}
    last: Mapping[str, Any] | None = ps.nights.last_night
    if stored and (last is None or max(stored) >= last["night"]):
        last = stored[max(stored)]
    caffeine_doc = caffeine_view(ctx)
    return {
        "person": {"id": person.id, "name": person.display_name},
        "now": local_iso(now, tz),
        "now_ms": _ms(now),
        "timezone": config.timezone,
        "caffeine": caffeine_doc,
        "planned": planned(ctx),
        "in_bed": ps.in_bed,
        "nudges": recent_nudges(ps, config, limit=RECENT_NUDGES),
        "last_night": night_view(last, config),
        "trends": trends(ps, stored, config, ctx.tonight.evening, caffeine_doc["bedtime_mg"]),
    }


# -- caffeine --------------------------------------------------------------------------------------


def caffeine_view(ctx: Ctx) -> dict[str, Any]:
    """Today's caffeine curve with tonight's bedtime, cutoff, last call and the predicted load."""
    night = ctx.tonight
    tz = ctx.tz
    rules = ctx.config.rules
    half_life = ctx.person.caffeine_half_life_h
    start = at_local(night.evening, time(0, 0), tz)
    end = min(max(night.bedtime + CURVE_AFTER_BED, ctx.now + timedelta(minutes=30)), night.wake)
    cutoff = caffeine.cutoff_at(ctx, night)
    last_call = cutoff - timedelta(minutes=rules.caffeine_last_call.minutes_before_cutoff)
    doses = [(at, mg) for at, mg in ctx.ps.doses if start.timestamp() <= at <= end.timestamp()]
    return {
        "start_ms": _ms(start),
        "end_ms": _ms(end),
        "points": caffeine_curve(ctx.ps.doses, half_life, start, end),
        "doses": [{"at_ms": round(at * 1000), "mg": round(mg, 1)} for at, mg in doses],
        "now_mg": round(caffeine.caffeine_at(ctx.ps, ctx.now, half_life), 1),
        "bedtime_mg": round(
            caffeine.caffeine_at(ctx.ps, max(night.bedtime, ctx.now), half_life), 1
        ),
        "today_mg": round(ctx.ps.caffeine_days.get(ctx.local_day(), 0.0), 1),
        "limit_mg": rules.caffeine_cutoff.bedtime_limit_mg,
        "half_life_h": half_life,
        "bedtime": local_iso(night.bedtime, tz),
        "bedtime_ms": _ms(night.bedtime),
        "cutoff": local_iso(cutoff, tz),
        "cutoff_ms": _ms(cutoff),
        "last_call": local_iso(last_call, tz),
        "last_call_ms": _ms(last_call),
        "source": caffeine.SOURCE_MODEL,
    }


def caffeine_curve(
    doses: Sequence[tuple[float, float]], half_life_h: float, start: datetime, end: datetime
) -> list[list[float]]:
    """Caffeine in the body from `start` to `end`: `[ms, mg]` pairs, a vertical step at each dose.

    Sampled every few minutes (at most about `CURVE_SAMPLES` samples); each dose inside the window
    adds two samples at its instant, the amount just before it and just after, so a drink shows as
    the jump it is rather than a ramp across a sampling step.
    """
    t0, t1 = start.timestamp(), end.timestamp()
    if t1 <= t0:
        return []
    step = max(60.0, math.ceil((t1 - t0) / CURVE_SAMPLES / 60.0) * 60.0)
    hl_s = half_life_h * 3600.0
    grid = [t0 + i * step for i in range(int((t1 - t0) // step) + 1)]
    if grid[-1] < t1:
        grid.append(t1)
    inside = {at for at, _mg in doses if t0 < at <= t1}
    samples = [(t, True) for t in grid if t not in inside]
    samples += [(at, False) for at in inside] + [(at, True) for at in inside]
    samples.sort()
    # One sweep in time order: the amount decays from sample to sample and each dose is added
    # when the sweep passes it, so the cost grows with samples plus doses, not their product.
    ordered = sorted(doses)
    taken = 0
    amount = 0.0
    last = ordered[0][0] if ordered else t0
    points = []
    for t, inclusive in samples:
        while taken < len(ordered) and (
            ordered[taken][0] < t or (inclusive and ordered[taken][0] == t)
        ):
            at, dose = ordered[taken]
            amount = amount * 0.5 ** ((at - last) / hl_s) + dose
            last = at
            taken += 1
        mg = amount * 0.5 ** ((t - last) / hl_s) if t > last else amount
        points.append([round(t * 1000), round(mg, 1)])
    return points


# -- what is planned -------------------------------------------------------------------------------


def planned(ctx: Ctx) -> list[dict[str, Any]]:
    """Tonight's schedule as the rules plan it, in time order; `passed` once its moment is past."""
    night = ctx.tonight
    rules = ctx.config.rules
    cutoff = caffeine.cutoff_at(ctx, night)
    items: list[tuple[datetime, str, str, str]] = []
    if rules.caffeine_last_call.enabled:
        at = cutoff - timedelta(minutes=rules.caffeine_last_call.minutes_before_cutoff)
        items.append((at, "caffeine.last_call", "Last call for caffeine", "on a day with caffeine"))
    if rules.caffeine_cutoff.enabled:
        items.append((cutoff, "caffeine.cutoff", "Caffeine cutoff", "no caffeine after this"))
    if rules.exercise_late_intense.enabled:
        items.append(
            (
                exercise.exercise_ok_until(ctx, night),
                "exercise.late_intense",
                "Finish vigorous exercise",
                "light stretching after this",
            )
        )
    joined = caffeine.load_joins_winddown(ctx, night)
    if rules.caffeine_bedtime_load.enabled and not joined:
        at = caffeine.bedtime_load_at(ctx, night)
        items.append(
            (at, "caffeine.bedtime_load", "Caffeine check", "when the bedtime amount is high")
        )
    if rules.winddown_stretch.enabled:
        note = "with the caffeine check" if joined else ""
        items.append((winddown.winddown_at(ctx, night), "winddown.stretch", "Wind-down", note))
    items.append((night.bedtime, "bedtime", "Bedtime", ""))
    items.append((night.wake, "wake", "Wake", ""))
    items.sort(key=lambda item: item[0])
    return [
        {
            "id": kind,
            "title": title,
            "note": note,
            "at": local_iso(at, ctx.tz),
            "at_ms": _ms(at),
            "passed": at <= ctx.now,
        }
        for at, kind, title, note in items
    ]


# -- nudges ----------------------------------------------------------------------------------------


def recent_nudges(ps: PersonState, config: Config, *, limit: int) -> list[dict[str, Any]]:
    """The latest nudges sent to a person, newest first, each with its evidence."""
    tz = config.tz
    latest = sorted(ps.nudges.items(), key=lambda kv: kv[1].sent_at, reverse=True)[:limit]
    return [
        {
            "id": nudge_id,
            "rule": record.rule,
            "title": record.title,
            "message": record.message,
            "severity": record.severity,
            "ts": local_iso(_instant(record.sent_at), tz),
            "acked": record.acked,
            "evidence": record.evidence,
        }
        for nudge_id, record in latest
    ]


# -- nights ----------------------------------------------------------------------------------------


def night_view(summary: Mapping[str, Any] | None, config: Config) -> dict[str, Any] | None:
    """The last scored night: its figures, and its timeline in POSIX milliseconds for the chart.

    The span, sleep onset and hypnic jerks come from the summary itself; the stays in bed, the
    movements and the PLM series from its `timeline` when it has one (a stored night), where every
    time is seconds after `night_start` and each movement is `[onset, duration_s, intensity,
    mark]`, mark 1 for a limb movement of a counted series and 2 for a hypnic jerk. A movement's
    kind otherwise follows from its duration (`coach.limb_movement.classify_duration`).
    """
    if summary is None:
        return None
    tz = config.tz
    doc: dict[str, Any] = {k: summary.get(k) for k in ("night", "status", "time_in_bed_min")}
    doc["plm_rules"] = summary.get("plm_rules")
    # A night the bed reported no movements for counts nothing: no data, never 0 movements.
    scored = summary.get("status", "ok") == "ok"
    for key in UNSCORED:
        doc[key] = summary.get(key) if scored else None
    settle = doc["time_to_settle_s"]
    doc["time_to_settle_min"] = None if settle is None else round(settle / 60.0)
    index = doc["plm_index"]
    doc["plm_index"] = None if index is None else round(float(index), 1)
    doc["plm_index_limit"] = config.rules.twitch_frequent.plm_index
    start, end = summary.get("night_start"), summary.get("night_end")
    onset = doc["sleep_onset"]
    doc["start_ms"] = _iso_ms(start)
    doc["end_ms"] = _iso_ms(end)
    doc["sleep_onset"] = None if onset is None else local_iso(datetime.fromisoformat(onset), tz)
    doc["sleep_onset_ms"] = _iso_ms(onset)
    doc["hypnic_jerks_ms"] = [_iso_ms(t) for t in summary.get("hypnic_jerk_onsets") or []]
    timeline = summary.get("timeline")
    doc["timeline"] = (
        _timeline(timeline, datetime.fromisoformat(start).timestamp())
        if isinstance(timeline, Mapping) and start is not None
        else None
    )
    return doc


def _timeline(timeline: Mapping[str, Any], t0: float) -> dict[str, Any]:
    """A stored timeline (seconds after `t0`) in POSIX milliseconds, each movement with its kind."""

    def at(offset: float) -> int:
        return round((t0 + offset) * 1000)

    return {
        "in_bed": [[at(a), at(b)] for a, b in timeline.get("stays", [])],
        "movements": [
            [at(onset), duration, _MARKS.get(mark) or str(classify_duration(duration))]
            for onset, duration, _intensity, mark in timeline.get("movements", [])
        ],
        "series": [[at(a), at(b), count] for a, b, count in timeline.get("series", [])],
        "omitted": timeline.get("omitted", 0),
    }


#: How the stored timeline marks a movement: in a counted PLM series, or a hypnic jerk.
_MARKS: Final = {IN_SERIES: "series", JERK: "jerk"}


def trends(
    ps: PersonState,
    stored: Mapping[str, Mapping[str, Any]],
    config: Config,
    last_evening: date,
    tonight_mg: float,
) -> dict[str, Any]:
    """The `TREND_DAYS` evenings up to `last_evening` (tonight): each night's figures.

    A stored night gives its PLM index, hypnic jerks, time in bed and the caffeine left at its
    bedtime; for a night not stored, the state's record of it (no caffeine figure). Tonight's
    caffeine is the amount predicted at bedtime (`tonight_mg`, marked `predicted`). A night the bed
    did not score is `None`: no data is never shown as a good night.
    """
    records = {h.night: h for h in ps.nights.history}
    days = []
    for back in range(TREND_DAYS - 1, -1, -1):
        evening = (last_evening - timedelta(days=back)).isoformat()
        day: dict[str, Any] = dict.fromkeys(
            ("plm_index", "hypnic_jerks", "time_in_bed_h", "caffeine_at_bedtime_mg")
        )
        day["night"] = evening
        night = stored.get(evening)
        record = records.get(evening)
        if night is not None:
            if night.get("status", "ok") == "ok":
                index = night.get("plm_index")
                day["plm_index"] = None if index is None else round(float(index), 1)
                day["hypnic_jerks"] = night.get("hypnic_jerks")
            minutes = night.get("time_in_bed_min")
            day["time_in_bed_h"] = round(minutes / 60.0, 2) if minutes else None
            mg = (night.get("evening") or {}).get("caffeine_mg_at_bedtime")
            day["caffeine_at_bedtime_mg"] = None if mg is None else round(float(mg), 1)
        elif record is not None:
            index = record.plm_index
            day["plm_index"] = None if index is None else round(index, 1)
            day["hypnic_jerks"] = record.hypnic_jerks
            day["time_in_bed_h"] = round(record.time_in_bed_s / 3600.0, 2)
        days.append(day)
    days[-1]["caffeine_at_bedtime_mg"] = round(tonight_mg, 1)
    days[-1]["predicted"] = True
    return {
        "days": days,
        "plm_index_limit": config.rules.twitch_frequent.plm_index,
        "caffeine_limit_mg": config.rules.caffeine_cutoff.bedtime_limit_mg,
    }


# -- helpers ---------------------------------------------------------------------------------------


def _ms(instant: datetime) -> int:
    return round(instant.timestamp() * 1000)


def _instant(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _iso_ms(value: str | None) -> int | None:
    return None if value is None else _ms(datetime.fromisoformat(value))


def _span_ms(span: Sequence[float]) -> list[int]:
    return [round(span[0] * 1000), round(span[1] * 1000)]
