"""`sleepcoach report`: a person's stored nights, their evenings and the nudges, for people to read.

How it works: the report covers a period of local days in the configured time zone (the last 14
days by default; `--days`, `--since`, `--until`). One builder, `build_report`, reads each
person's history and makes a `PersonReport`: one `NightEntry` per evening of the period (a night
is named by its evening's date), holding the stored night summary's figures, the evening beside
it and the nudges that belong to that night. Three renderers show that one structure: the JSON
document (`report_json`, `--format json`), the terminal tables and the HTML page, so the three
never disagree.

- Nights are the summaries the coach stored when each night closed. No summary, or one without
  bed data, is "no data", never a zero.
- The evening: the coach's own record of it, stored with the night (caffeine left at bedtime, a
  late workout, stress, alcohol, nicotine); the caffeine drunk and the workouts come from the
  stored events, each under the night in progress or the next one (`coach.clock.tonight`, as the
  core judges a drink: a coffee at 00:40 is Saturday night's). Caffeine is replayed with the
  core's model (`coach.caffeine.dose_mg` and `caffeine_at`, the person's half-life) from two days
  before the period, so the first morning starts with what was left. A day for which nothing at
  all was stored for the person (no event, nudge or night) has no caffeine figures: "no data".
- A nudge belongs to the night the coach decided it for (`_night_of_nudge`): a dropped nudge's
  stored record names it, a sent one's evidence or id says it; failing those, the night in
  progress or ahead when it was decided (`coach.clock.tonight`, as the rules judge). Saturday
  23:40 and Sunday 01:00 are Saturday's night, and so is Sunday morning's word on that night.
  It is shown by its title.
- A morning check-in (`checkin` command: how rested, twitching while awake, the restless-legs
  questions) is about the night before its day: it is shown under that night.

The HTML page embeds its plots as `data:` URIs, so it can be mailed or moved on its own; the plots
are also written as PNG files beside it. They are drawn with matplotlib's object API (no pyplot,
no global backend: `Figure.savefig` renders with Agg).

The figures are screening from consumer sensors, not a diagnosis; the page says so.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from statistics import median
from typing import IO, TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from coach.caffeine import DEFAULT_LOGGED_MG, NEGLIGIBLE_MG, caffeine_at, dose_mg
from coach.clock import at_local, hhmm, local_date, local_iso, night_of, tonight
from coach.config import Config, Person
from coach.state import PersonState
from integrations.config_file import (
    ConfigError,
    ConfigFile,
    choose_config,
    load_config,
    with_env_overrides,
)
from integrations.error import ProjectError
from integrations.identity import storage_url
from integrations.storage import (
    Storage,
    StorageError,
    StoredCheckin,
    StoredEvent,
    StoredNight,
    StoredNudge,
    engine_url,
    safe_url,
)
from integrations.subcommand import Command, SubParsers, say

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DEFAULT_DAYS: Final = 14
DEFAULT_OUT: Final = "sleepcoach-report"
MAX_DAYS: Final = 366
#: Up to this many days the plots show every day (the caffeine curve, labels on bars).
DETAILED_DAYS: Final = 31
#: Caffeine taken this long before the period still counts (at a 10 h half-life, 48 h leaves 4 %).
CAFFEINE_LOOKBACK: Final = timedelta(hours=48)
#: Resolution of the caffeine curve.
CAFFEINE_STEP: Final = timedelta(minutes=10)
EVENT_KINDS: Final = (
    "CoffeeBrewed",
    "SubstanceLogged",
    "WorkoutStarted",
    "WorkoutEnded",
    "BedtimeChanged",
)
#: What a cell says where there were no readings.
NO_DATA: Final = "no data"
#: The version of the JSON document (`report --format json`); bumped when a field changes meaning.
JSON_VERSION: Final = 1
SCREENING_NOTE: Final = (
    "These figures come from a bed motion sensor, a coffee maker and a fitness tracker, not from "
    "a sleep study: they are screening, not a diagnosis. If you twitch or kick often at night, "
    "or often wake up unrefreshed, talk to a doctor."
)
PLOT_DPI: Final = 100


class ReportError(ProjectError):
    """The report cannot be made: an unknown person, a bad period, no history, an unwritable
    output folder."""


# -- what the report holds ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workout:
    """A workout that started on the evening's day."""

    start: datetime
    activity: str
    intensity: str
    minutes: int | None


@dataclass(frozen=True, slots=True)
class EveningEntry:
    """The evening before a night: what the coach recorded, and the day's caffeine and workouts.

    None is "no data": nothing was stored that says.
    """

    bedtime: datetime
    caffeine_mg: float | None
    caffeine_mg_at_bedtime: float | None
    caffeine_at_bedtime: bool | None
    late_workout: bool | None
    stress: bool | None
    alcohol: bool | None
    nicotine: bool | None
    workouts: tuple[Workout, ...] | None


@dataclass(frozen=True, slots=True)
class NudgeEntry:
    """A nudge the coach decided: sent, or dropped and why."""

    id: str
    rule: str
    title: str
    ts: datetime
    night: date
    dropped: str | None

    @property
    def sent(self) -> bool:
        """Whether it went out."""
        return self.dropped is None


@dataclass(frozen=True, slots=True)
class CheckinEntry:
    """A day's morning check-in, about the night before that day."""

    day: date
    ts: datetime
    rested: int | None
    daytime_twitching: bool | None
    rls: tuple[tuple[str, bool], ...]

    @property
    def night(self) -> date:
        """The night it tells of: the evening before its day."""
        return self.day - timedelta(days=1)


@dataclass(frozen=True, slots=True)
class NightEntry:
    """One night of the period, named by its evening, with that evening and its nudges.

    `status` is the stored summary's (`ok`, `no movement data`, `no data`) or `not recorded`
    when no summary was stored; a figure the night does not have is None.
    """

    night: date
    status: str
    time_in_bed_s: float | None
    sleep_onset: datetime | None
    time_to_settle_s: float | None
    movements: int | None
    lm: int | None
    plm: int | None
    plm_index: float | None
    hypnic_jerks: int | None
    evening: EveningEntry
    nudges: tuple[NudgeEntry, ...]
    checkin: CheckinEntry | None = None

    @property
    def has_data(self) -> bool:
        """Whether the bed sensor reported this night."""
        return self.status in ("ok", "no movement data")


@dataclass(frozen=True, slots=True)
class RuleRow:
    """The nudges of one rule over the period: how many went out, how many were dropped and why."""

    rule: str
    title: str
    sent: int
    dropped: int
    reasons: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class PersonReport:
    """Everything the report shows for one person over the period."""

    person: Person
    tz: ZoneInfo
    first_day: date
    last_day: date
    nights: tuple[NightEntry, ...]
    nudges: tuple[NudgeEntry, ...]
    checkins: tuple[CheckinEntry, ...]
    rules: tuple[RuleRow, ...]
    caffeine_curve: tuple[tuple[datetime, float], ...]
    doses: int
    caffeine_total_mg: float

    @property
    def has_history(self) -> bool:
        """True when there is anything to show: a night, drink, workout, nudge or caffeine left."""
        return bool(
            any(n.status != "not recorded" for n in self.nights)
            or self.doses
            or self.nudges
            or self.checkins
            or any(n.evening.workouts for n in self.nights)
            or any(mg >= NEGLIGIBLE_MG for _, mg in self.caffeine_curve)
        )


@dataclass(frozen=True, slots=True)
class Limits:
    """The lines drawn on the plots, from the config's rules."""

    plm_index: float
    bedtime_mg: float

    @classmethod
    def of(cls, config: Config) -> Limits:
        """The limits the person's coach uses (twitch.frequent, caffeine.cutoff)."""
        return cls(
            plm_index=config.rules.twitch_frequent.plm_index,
            bedtime_mg=config.rules.caffeine_cutoff.bedtime_limit_mg,
        )


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table of text cells, printed in the terminal and written into the HTML alike.

    A row may carry notes (the nudges of a night): printed indented under it, and in the HTML a
    row of their own under it.
    """

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    #: Columns aligned right (figures).
    numeric: frozenset[int] = frozenset()
    #: Rows drawn attention to in the HTML (a PLM index above the limit, say).
    marked: frozenset[int] = frozenset()
    #: Lines under a row, by row index.
    notes: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def to_text(self) -> str:
        """Fixed-width columns under the title, each row's notes indented under it."""
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))

        def line(cells: Sequence[str]) -> str:
            parts = [
                cell.rjust(widths[i]) if i in self.numeric else cell.ljust(widths[i])
                for i, cell in enumerate(cells)
            ]
            return "  ".join(parts).rstrip()

        out = [self.title, line(self.headers), "  ".join("-" * w for w in widths)]
        for r, row in enumerate(self.rows):
            out.append(line(row))
            out.extend(f"    · {note}" for note in self.notes.get(r, ()))
        return "\n".join(out)

    def to_html(self) -> str:
        """An HTML table with a caption; a row's notes in a row of their own under it."""
        e = html.escape
        head = "".join(f"<th>{e(h)}</th>" for h in self.headers)
        body = []
        for r, row in enumerate(self.rows):
            cells = "".join(
                f'<td class="num">{e(c)}</td>' if i in self.numeric else f"<td>{e(c)}</td>"
                for i, c in enumerate(row)
            )
            mark = ' class="marked"' if r in self.marked else ""
            body.append(f"<tr{mark}>{cells}</tr>")
            notes = self.notes.get(r)
            if notes:
                items = "".join(f"<li>{e(n)}</li>" for n in notes)
                body.append(
                    f'<tr class="notes"><td></td><td colspan="{len(self.headers) - 1}">'
                    f"<ul>{items}</ul></td></tr>"
                )
        return (
            f"<table>\n<caption>{e(self.title)}</caption>\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>\n{chr(10).join(body)}\n</tbody>\n</table>"
        )


# -- the period --------------------------------------------------------------------------------


def period(days: int, now: datetime, tz: ZoneInfo) -> tuple[date, date]:
    """The first and last local day of a report of `days` days ending today."""
    last = local_date(now, tz)
    return last - timedelta(days=days - 1), last


def choose_period(
    now: datetime,
    tz: ZoneInfo,
    *,
    days: int | None = None,
    since: date | None = None,
    until: date | None = None,
) -> tuple[date, date]:
    """The period asked for: `since` to `until` (local dates, both included); either one with
    `days` (default 14) counted from it; neither: the last `days` ending today."""
    if since is not None and until is not None:
        if days is not None:
            raise ReportError("give --days with --since or with --until, not with both")
    elif since is not None:
        until = since + timedelta(days=(days or DEFAULT_DAYS) - 1)
    elif until is not None:
        since = until - timedelta(days=(days or DEFAULT_DAYS) - 1)
    else:
        since, until = period(days or DEFAULT_DAYS, now, tz)
    assert since is not None
    assert until is not None
    if since > until:
        msg = f"--since {since.isoformat()} is after --until {until.isoformat()}: nothing to show"
        raise ReportError(msg)
    if (until - since).days + 1 > MAX_DAYS:
        msg = (
            f"{since.isoformat()} to {until.isoformat()} is {(until - since).days + 1} days; "
            f"a report covers at most {MAX_DAYS}"
        )
        raise ReportError(msg)
    return since, until


# -- reading storage: the one builder ----------------------------------------------------------


def build_report(
    storage: Storage,
    config: Config,
    person: Person,
    first_day: date,
    last_day: date,
    *,
    now: datetime,
) -> PersonReport:
    """Read one person's history of `first_day` to `last_day` and work it out (`now` ends the
    caffeine curve, unless something later was stored)."""
    tz = config.tz
    start = at_local(first_day, time(0), tz)
    end = at_local(last_day + timedelta(days=1), time(0), tz)
    # The last night's drinks and nudges may come after midnight, up to its morning: read a day
    # further, and keep what belongs to the period's nights.
    until = at_local(last_day + timedelta(days=2), time(0), tz)
    try:
        events = list(
            storage.events(
                person.id, since=start - CAFFEINE_LOOKBACK, until=until, kinds=EVENT_KINDS
            )
        )
        stored_nudges = [
            n for n in storage.nudges(person.id, since=start - timedelta(days=1)) if n.ts < until
        ]
        stored_nights = [
            n
            for n in storage.nights(person.id, since=first_day.isoformat())
            if _is_iso_date(n.night) and date.fromisoformat(n.night) <= last_day
        ]
        # A check-in is about the night before its day.
        checkins = tuple(
            _checkin_entry(c, tz)
            for c in storage.checkins(person.id, since=(first_day + timedelta(days=1)).isoformat())
            if _is_iso_date(c.day) and date.fromisoformat(c.day) <= last_day + timedelta(days=1)
        )
    except SQLAlchemyError as err:
        msg = f"cannot read the history in {safe_url(storage.url)}: {_reason(err)}"
        raise StorageError(msg) from err

    history = _replay(events, person, tz, start)
    nudges = tuple(
        n
        for n in _nudge_entries(stored_nudges, person, tz, history.overrides)
        if first_day <= n.night <= last_day
    )
    taken = PersonState(doses=history.doses)
    half_life = person.caffeine_half_life_h
    # A drink belongs to the night in progress, or the next one (a coffee at 00:40 is
    # Saturday night's), as the core judges it.
    per_day: dict[date, float] = {}
    in_period = []
    for at, mg in history.doses:
        day = tonight(person, datetime.fromtimestamp(at, tz), tz, history.overrides).evening
        per_day[day] = per_day.get(day, 0.0) + mg
        if first_day <= day <= last_day:
            in_period.append(mg)
    by_night = {date.fromisoformat(n.night): n for n in stored_nights}
    nudges_by_night: dict[date, list[NudgeEntry]] = {}
    for nudge in nudges:
        nudges_by_night.setdefault(nudge.night, []).append(nudge)
    # The days something was stored for the person: their caffeine is known (0 mg is a figure).
    observed = set(history.days) | set(by_night) | set(nudges_by_night)
    observed.update(local_date(n.ts, tz) for n in nudges)
    checkin_by_night = {c.night: c for c in checkins}

    entries = []
    for offset in range((last_day - first_day).days + 1):
        day = first_day + timedelta(days=offset)
        bedtime = night_of(person, day, tz, history.overrides).bedtime
        known = day in observed
        replayed = caffeine_at(taken, bedtime, half_life) if known else None
        evening = _evening(
            by_night.get(day),
            bedtime=bedtime,
            caffeine_mg=per_day.get(day, 0.0) if known else None,
            at_bedtime=replayed,
            limit=config.rules.caffeine_cutoff.bedtime_limit_mg,
            workouts=tuple(history.workouts.get(day, ())) if known else None,
        )
        entry = _night_entry(day, by_night.get(day), evening, nudges_by_night, tz)
        entries.append(replace(entry, checkin=checkin_by_night.get(day)))
    # The curve runs until now, or until the last thing stored when that is later (a scenario
    # simulated ahead of the clock), within the period.
    latest = max(
        [now.timestamp(), *(at for at, _ in history.doses), *(n.ts.timestamp() for n in nudges)]
    )
    curve_end = min(end, datetime.fromtimestamp(latest, tz))
    curve = caffeine_curve(history.doses, start, curve_end, half_life)
    return PersonReport(
        person=person,
        tz=tz,
        first_day=first_day,
        last_day=last_day,
        nights=tuple(entries),
        nudges=nudges,
        checkins=checkins,
        rules=_rules(nudges),
        caffeine_curve=curve,
        doses=len(in_period),
        caffeine_total_mg=sum(in_period),
    )


def caffeine_curve(
    doses: Sequence[tuple[float, float]], start: datetime, end: datetime, half_life_h: float
) -> tuple[tuple[datetime, float], ...]:
    """Caffeine in the body every `CAFFEINE_STEP` from `start` to `end`, as `caffeine_at` says.

    Stepped rather than summed afresh at each point: the amount decays by one factor per step,
    and each dose joins at its own remainder, so a year of drinks stays fast.
    """
    hl_s = half_life_h * 3600.0
    pending = sorted(doses)
    i = 0
    carried = 0.0
    last_t: float | None = None
    out = []
    instant = start
    while instant <= end:
        t = instant.timestamp()
        if last_t is not None:
            carried *= 0.5 ** ((t - last_t) / hl_s)
        while i < len(pending) and pending[i][0] <= t:
            at, mg = pending[i]
            carried += mg * 0.5 ** ((t - at) / hl_s)
            i += 1
        out.append((instant, carried))
        last_t = t
        instant += CAFFEINE_STEP
    return tuple(out)


@dataclass(slots=True)
class _History:
    """What the stored events say: caffeine doses, bedtime changes, workouts per local day, and
    the local days anything was stored on."""

    doses: list[tuple[float, float]] = field(default_factory=list)
    overrides: dict[str, str] = field(default_factory=dict)
    workouts: dict[date, list[Workout]] = field(default_factory=dict)
    days: set[date] = field(default_factory=set)


def _replay(
    events: Iterable[StoredEvent], person: Person, tz: ZoneInfo, start: datetime
) -> _History:
    history = _History()
    open_workout: tuple[datetime, str, str] | None = None
    for ev in events:
        history.days.add(local_date(ev.ts, tz))
        if ev.kind == "CoffeeBrewed":
            mg = dose_mg(
                str(ev.data.get("drink", "other")),
                _float_or_none(ev.data.get("volume_ml")),
                _float_or_none(ev.data.get("caffeine_mg")),
            )
            history.doses.append((ev.ts.timestamp(), mg))
        elif ev.kind == "SubstanceLogged" and ev.data.get("what") == "caffeine":
            logged = _float_or_none(ev.data.get("caffeine_mg"))
            mg = DEFAULT_LOGGED_MG if logged is None else logged
            history.doses.append((ev.ts.timestamp(), mg))
        elif ev.kind == "BedtimeChanged" and isinstance(ev.data.get("time"), str):
            # As the core does: the change applies to the night in progress or the next one.
            night = tonight(person, ev.ts, tz, history.overrides)
            history.overrides[night.key] = ev.data["time"]
        elif ev.kind == "WorkoutStarted" and ev.ts >= start:
            if open_workout is not None:
                _add_workout(history, open_workout, None, person, tz)
            activity = str(ev.data.get("activity", "workout"))
            open_workout = (ev.ts, activity, str(ev.data.get("intensity", "?")))
        elif ev.kind == "WorkoutEnded" and open_workout is not None:
            _add_workout(history, open_workout, ev.ts, person, tz)
            open_workout = None
    if open_workout is not None:
        _add_workout(history, open_workout, None, person, tz)
    return history


def _add_workout(
    history: _History,
    started: tuple[datetime, str, str],
    ended: datetime | None,
    person: Person,
    tz: ZoneInfo,
) -> None:
    """A workout, under the night in progress or the next one when it started."""
    workouts, overrides = history.workouts, history.overrides
    at, activity, intensity = started
    minutes = None if ended is None else round((ended - at).total_seconds() / 60)
    workouts.setdefault(tonight(person, at, tz, overrides).evening, []).append(
        Workout(at.astimezone(tz), activity, intensity, minutes)
    )


def _nudge_entries(
    nudges: Iterable[StoredNudge], person: Person, tz: ZoneInfo, overrides: dict[str, str]
) -> list[NudgeEntry]:
    """The stored nudges with their titles and the night each belongs to."""
    out = []
    for nudge in nudges:
        payload = nudge.payload or {}
        title = payload.get("title")
        out.append(
            NudgeEntry(
                id=nudge.id,
                rule=nudge.rule,
                title=title if isinstance(title, str) and title else nudge.rule,
                ts=nudge.ts.astimezone(tz),
                night=_night_of_nudge(nudge, payload, person, tz, overrides),
                dropped=nudge.dropped,
            )
        )
    return out


def _night_of_nudge(
    nudge: StoredNudge,
    payload: dict[str, Any],
    person: Person,
    tz: ZoneInfo,
    overrides: dict[str, str],
) -> date:
    """The night a nudge was decided for.

    A dropped nudge's record names it; a sent one's evidence may. Otherwise the date in its id
    (`<rule>:<person>:<local date>`, which the rules give the night's evening) when that is the
    night in progress or ahead at its time, or the one before (a morning's word on last night);
    else the night in progress or ahead (`coach.clock.tonight`).
    """
    evidence = payload.get("evidence")
    named = payload.get("night")
    if named is None and isinstance(evidence, dict):
        named = evidence.get("night")
    if isinstance(named, str) and _is_iso_date(named):
        return date.fromisoformat(named)
    current = tonight(person, nudge.ts, tz, overrides).evening
    parts = nudge.id.split(":")
    if len(parts) >= 3 and _is_iso_date(parts[2]):
        day = date.fromisoformat(parts[2])
        if day in (current, current - timedelta(days=1)):
            return day
    return current


def _checkin_entry(stored: StoredCheckin, tz: ZoneInfo) -> CheckinEntry:
    return CheckinEntry(
        day=date.fromisoformat(stored.day),
        ts=stored.ts.astimezone(tz),
        rested=stored.rested,
        daytime_twitching=stored.daytime_twitching,
        rls=tuple(sorted((str(k), bool(v)) for k, v in stored.rls.items())),
    )


def _rules(nudges: Sequence[NudgeEntry]) -> tuple[RuleRow, ...]:
    """One row per rule that sent or dropped a nudge, by title (the latest one of the rule)."""
    titles: dict[str, str] = {}
    sent: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = {}
    for n in nudges:
        if n.title != n.rule or n.rule not in titles:
            titles[n.rule] = n.title
        if n.dropped is None:
            sent[n.rule] += 1
        else:
            dropped[n.rule] += 1
            reasons.setdefault(n.rule, Counter())[n.dropped] += 1
    rows = [
        RuleRow(
            rule, titles[rule], sent[rule], dropped[rule], _ordered(reasons.get(rule, Counter()))
        )
        for rule in titles
    ]
    return tuple(sorted(rows, key=lambda r: (r.title.lower(), r.rule)))


def _evening(
    stored: StoredNight | None,
    *,
    bedtime: datetime,
    caffeine_mg: float | None,
    at_bedtime: float | None,
    limit: float,
    workouts: tuple[Workout, ...] | None,
) -> EveningEntry:
    """The evening: the coach's record of it when the night was stored, else what the events
    say (caffeine), else nothing."""
    record = (stored.summary.get("evening") if stored is not None else None) or {}
    if not isinstance(record, dict):
        record = {}
    stored_mg = _float_or_none(record.get("caffeine_mg_at_bedtime"))
    mg = stored_mg if stored_mg is not None else at_bedtime
    high = _bool_or_none(record.get("caffeine_at_bedtime"))
    if high is None and mg is not None:
        high = mg > limit
    return EveningEntry(
        bedtime=bedtime,
        caffeine_mg=caffeine_mg,
        caffeine_mg_at_bedtime=mg,
        caffeine_at_bedtime=high,
        late_workout=_bool_or_none(record.get("late_workout")),
        stress=_bool_or_none(record.get("stress_evening")),
        alcohol=_bool_or_none(record.get("alcohol_evening")),
        nicotine=_bool_or_none(record.get("late_nicotine")),
        workouts=workouts,
    )


def _night_entry(
    day: date,
    stored: StoredNight | None,
    evening: EveningEntry,
    nudges: dict[date, list[NudgeEntry]],
    tz: ZoneInfo,
) -> NightEntry:
    mine = tuple(nudges.get(day, ()))
    if stored is None:
        return NightEntry(
            day, "not recorded", None, None, None, None, None, None, None, None, evening, mine
        )
    s = stored.summary
    has_data = bool(s.get("has_data", False))
    movements = _int_or_none(s.get("movements"))
    status = s.get("status")
    if not isinstance(status, str):
        status = "no data" if not has_data else "ok" if movements else "no movement data"
    if not has_data:
        return NightEntry(
            day, status, None, None, None, None, None, None, None, None, evening, mine
        )
    scored = status == "ok"
    onset = s.get("sleep_onset")
    return NightEntry(
        night=day,
        status=status,
        time_in_bed_s=_float_or_none(s.get("time_in_bed_s")),
        sleep_onset=_local_or_none(onset, tz),
        time_to_settle_s=_float_or_none(s.get("time_to_settle_s")),
        movements=movements if scored else None,
        lm=_int_or_none(s.get("limb_movements")) if scored else None,
        plm=_int_or_none(s.get("plm_count")) if scored else None,
        plm_index=_float_or_none(s.get("plm_index")) if scored else None,
        hypnic_jerks=_int_or_none(s.get("hypnic_jerks")) if scored else None,
        evening=evening,
        nudges=mine,
    )


def _ordered(counts: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items()))


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _bool_or_none(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _local_or_none(value: object, tz: ZoneInfo) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return None
    return instant.astimezone(tz) if instant.tzinfo is not None else None


def _is_iso_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _reason(err: SQLAlchemyError) -> str:
    """The database's own message, without SQL or parameters."""
    orig = getattr(err, "orig", None)
    lines = str(orig if orig is not None else err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


# -- the JSON document -------------------------------------------------------------------------


def report_json(
    reports: Sequence[PersonReport], first_day: date, last_day: date, generated: datetime
) -> dict[str, Any]:
    """The report as one JSON-able document (the schema in docs/report.md)."""
    return {
        "version": JSON_VERSION,
        "generated": generated.replace(microsecond=0).isoformat(),
        "since": first_day.isoformat(),
        "until": last_day.isoformat(),
        "people": [_person_json(r) for r in reports],
    }


def _person_json(report: PersonReport) -> dict[str, Any]:
    tz = report.tz
    return {
        "id": report.person.id,
        "name": report.person.display_name,
        "timezone": tz.key,
        "nights": [_night_json(n, tz) for n in report.nights],
        "nudges": [_nudge_json(n, tz) for n in report.nudges],
        "checkins": [_checkin_json(c, tz) for c in report.checkins],
    }


def _night_json(n: NightEntry, tz: ZoneInfo) -> dict[str, Any]:
    e = n.evening
    return {
        "night": n.night.isoformat(),
        "status": n.status,
        "time_in_bed_min": None if n.time_in_bed_s is None else round(n.time_in_bed_s / 60),
        "sleep_onset": None if n.sleep_onset is None else local_iso(n.sleep_onset, tz),
        "time_to_settle_min": _minutes_or_none(n.time_to_settle_s),
        "movements": n.movements,
        "lm": n.lm,
        "plm": n.plm,
        "plm_index": None if n.plm_index is None else round(n.plm_index, 1),
        "hypnic_jerks": n.hypnic_jerks,
        "evening": {
            "bedtime": local_iso(e.bedtime, tz),
            "caffeine_mg": None if e.caffeine_mg is None else round(e.caffeine_mg, 1),
            "caffeine_mg_at_bedtime": (
                None if e.caffeine_mg_at_bedtime is None else round(e.caffeine_mg_at_bedtime, 1)
            ),
            "caffeine_at_bedtime": e.caffeine_at_bedtime,
            "late_workout": e.late_workout,
            "stress": e.stress,
            "alcohol": e.alcohol,
            "nicotine": e.nicotine,
            "workouts": None
            if e.workouts is None
            else [
                {
                    "start": local_iso(w.start, tz),
                    "activity": w.activity,
                    "intensity": w.intensity,
                    "minutes": w.minutes,
                }
                for w in e.workouts
            ],
        },
        "nudges": [nudge.id for nudge in n.nudges],
        "checkin": None if n.checkin is None else n.checkin.day.isoformat(),
    }


def _checkin_json(c: CheckinEntry, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "day": c.day.isoformat(),
        "night": c.night.isoformat(),
        "ts": local_iso(c.ts, tz),
        "rested": c.rested,
        "daytime_twitching": c.daytime_twitching,
        "rls": dict(c.rls),
    }


def _nudge_json(n: NudgeEntry, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": n.id,
        "rule": n.rule,
        "title": n.title,
        "ts": local_iso(n.ts, tz),
        "night": n.night.isoformat(),
        "sent": n.sent,
        "dropped": n.dropped,
    }


def _minutes_or_none(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60.0, 1)


# -- the terminal and HTML tables --------------------------------------------------------------


def _day_label(day: date) -> str:
    return f"{day:%a} {day.isoformat()}"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _counts(items: Iterable[tuple[str, int]]) -> str:
    return ", ".join(name if n == 1 else f"{name} ×{n}" for name, n in items)


def _workout_text(w: Workout, tz: ZoneInfo) -> str:
    text = f"{hhmm(w.start, tz)} {w.activity} ({w.intensity})"
    return text if w.minutes is None else f"{text} {w.minutes} min"


def evening_text(evening: EveningEntry, tz: ZoneInfo) -> str:
    """The evening's exposures and workouts in a few words; "no data" when nothing says."""
    flags = (
        ("late workout", evening.late_workout),
        ("stress", evening.stress),
        ("alcohol", evening.alcohol),
        ("nicotine", evening.nicotine),
    )
    parts = [name for name, value in flags if value]
    parts.extend(_workout_text(w, tz) for w in evening.workouts or ())
    if parts:
        return ", ".join(parts)
    # "–" says nothing of note happened: only the coach's own record of the evening can say so.
    return "–" if any(value is not None for _, value in flags) else NO_DATA


def nudge_text(nudge: NudgeEntry, night: date, tz: ZoneInfo) -> str:
    """One nudge under its night: when (the day named when it is not the evening's), its title,
    and why it was not sent."""
    local = nudge.ts.astimezone(tz)
    when = hhmm(local, tz) if local.date() == night else f"{local:%a} {hhmm(local, tz)}"
    text = f"{when} {nudge.title}"
    if nudge.dropped is not None:
        text += f" (not sent: {nudge.dropped.replace('_', ' ')})"
    return text


def checkin_text(checkin: CheckinEntry, tz: ZoneInfo) -> str:
    """The morning's check-in in a few words, under the night it tells of."""
    parts = []
    if checkin.rested is not None:
        parts.append(f"rested {checkin.rested}/5")
    if checkin.daytime_twitching is not None:
        parts.append("twitching while awake" if checkin.daytime_twitching else "no twitching awake")
    yes = [name.replace("_", " ") for name, answer in checkin.rls if answer]
    if yes:
        parts.append("restless legs: " + ", ".join(yes))
    local = checkin.ts.astimezone(tz)
    return f"{local:%a} {hhmm(local, tz)} check-in: " + (", ".join(parts) or "answered")


def night_table(report: PersonReport, limits: Limits) -> Table:
    """One row per night (named by its evening): the evening beside the night's figures, and the
    nights' nudges under it."""
    rows: list[tuple[str, ...]] = []
    marked = set()
    notes = {}
    tz = report.tz
    for i, n in enumerate(report.nights):
        e = n.evening
        drunk = NO_DATA if e.caffeine_mg is None else f"{e.caffeine_mg:.0f} mg"
        at_bed = NO_DATA
        if e.caffeine_mg_at_bedtime is not None:
            at_bed = f"{e.caffeine_mg_at_bedtime:.0f} mg"
            if e.caffeine_at_bedtime:
                at_bed += " high"
                marked.add(i)
        if n.has_data and n.time_in_bed_s is not None:
            in_bed = _duration(n.time_in_bed_s)
        else:
            in_bed = NO_DATA
        settle = NO_DATA if n.time_to_settle_s is None else _duration(n.time_to_settle_s)
        plm = NO_DATA if n.plm_index is None else f"{n.plm_index:.1f}"
        if n.plm_index is not None and n.plm_index > limits.plm_index:
            plm += " high"
            marked.add(i)
        rows.append(
            (
                _day_label(n.night),
                hhmm(e.bedtime, tz),
                drunk,
                at_bed,
                evening_text(e, tz),
                in_bed,
                settle,
                plm,
                NO_DATA if n.hypnic_jerks is None else str(n.hypnic_jerks),
                NO_DATA if n.movements is None else str(n.movements),
            )
        )
        lines = [nudge_text(nudge, n.night, tz) for nudge in n.nudges]
        if n.checkin is not None:
            lines.append(checkin_text(n.checkin, tz))
        if lines:
            notes[i] = tuple(lines)
    return Table(
        "Nights (named by their evening), with the evening, the nudges and the check-in",
        (
            "night of",
            "bedtime",
            "caffeine",
            "at bedtime",
            "evening",
            "time in bed",
            "to settle",
            "PLM index /h",
            "hypnic jerks",
            "movements",
        ),
        tuple(rows),
        numeric=frozenset({2, 3, 5, 6, 7, 8, 9}),
        marked=frozenset(marked),
        notes=notes,
    )


def rule_table(report: PersonReport) -> Table:
    """Per nudge: sent and dropped over the period, and why they were dropped."""
    rows = tuple(
        (
            r.title,
            str(r.sent),
            str(r.dropped),
            _counts((why.replace("_", " "), n) for why, n in r.reasons),
        )
        for r in report.rules
    )
    return Table(
        "Nudges over the period",
        ("nudge", "sent", "not sent", "why not sent"),
        rows,
        numeric=frozenset({1, 2}),
    )


def summary_lines(report: PersonReport, limits: Limits) -> list[str]:
    """A few plain sentences over the whole period."""
    lines = []
    scored = [n for n in report.nights if n.has_data and n.time_in_bed_s is not None]
    if scored:
        with_index = [n.plm_index for n in scored if n.plm_index is not None]
        high = sum(1 for v in with_index if v > limits.plm_index)
        lines.append(
            f"{len(scored)} night(s) with bed data; median time in bed "
            f"{_duration(median(n.time_in_bed_s or 0.0 for n in scored))}; PLM index above "
            f"{limits.plm_index:g}/h on {high} of {len(with_index)} night(s)."
        )
    else:
        lines.append("No night with bed-sensor data in this period.")
    late = sum(1 for n in report.nights if n.evening.caffeine_at_bedtime)
    lines.append(
        f"Caffeine: {report.caffeine_total_mg:.0f} mg in {report.doses} drink(s); more than "
        f"{limits.bedtime_mg:g} mg left at bedtime on {late} evening(s)."
    )
    sent = sum(r.sent for r in report.rules)
    dropped = sum(r.dropped for r in report.rules)
    lines.append(f"Nudges: {sent} sent, {dropped} not sent.")
    return lines


# -- plots -------------------------------------------------------------------------------------


def plot_names(person_id: str) -> tuple[str, str, str]:
    """The PNG file names of one person's plots: PLM index, caffeine, nudges."""
    return (f"{person_id}-plm-index.png", f"{person_id}-caffeine.png", f"{person_id}-nudges.png")


def _figure() -> tuple[Figure, Axes]:
    # The object API renders with Agg on savefig and leaves pyplot's global state alone.
    from matplotlib.figure import Figure  # noqa: PLC0415 (matplotlib only loads for a report)

    fig = Figure(figsize=(8.0, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _days_since(start: datetime, instant: datetime) -> float:
    """Elapsed days (real time) from `start`: the caffeine plot's x axis."""
    return (instant - start).total_seconds() / 86400.0


def _label_step(days: int) -> int:
    """Label every day up to a fortnight, then every n-th day, so labels never overlap."""
    return max(1, -(-days // 14))


def _tick_label(day: date) -> str:
    return f"{day:%a}\n{day:%d %b}"


def _day_ticks(ax: Axes, report: PersonReport, start: datetime) -> None:
    """Ticks at local midnights; day names centred at noon (exact across daylight saving)."""
    days = [report.first_day + timedelta(days=i) for i in range(len(report.nights) + 1)]
    midnights = days if len(days) <= DETAILED_DAYS + 1 else days[:: _label_step(len(days) - 1)]
    ax.set_xticks([_days_since(start, at_local(d, time(0), report.tz)) for d in midnights], [])
    shown = days[:-1][:: _label_step(len(days) - 1)]
    ax.set_xticks(
        [_days_since(start, at_local(d, time(12), report.tz)) for d in shown],
        [_tick_label(d) for d in shown],
        minor=True,
        fontsize=7,
    )
    ax.tick_params(axis="x", which="minor", length=0)


def plot_plm_index(report: PersonReport, limits: Limits, path: Path | IO[bytes]) -> None:
    """Bars of the PLM index per night, with the limit (15/h by default) as a dashed line.

    A night without an index (not stored, no bed data, no movement data) says "no data".
    """
    fig, ax = _figure()
    days = [n.night for n in report.nights]
    xs = list(range(len(days)))
    values = [n.plm_index for n in report.nights]
    heights = [v or 0.0 for v in values]
    colours = ["#d1495b" if v is not None and v > limits.plm_index else "#30638e" for v in values]
    ax.bar(xs, heights, color=colours, width=0.7)
    top = max([*heights, limits.plm_index]) * 1.15
    small = len(days) <= DETAILED_DAYS  # room to write on every bar
    for x, value in zip(xs, values, strict=True):
        if value is not None:
            if small:
                ax.text(x, value, f"{value:.1f}", ha="center", va="bottom", fontsize=7)
            continue
        if small:
            ax.text(
                x,
                top * 0.02,
                NO_DATA,
                rotation=90,
                ha="center",
                va="bottom",
                fontsize=7,
                color="#888888",
            )
    ax.axhline(limits.plm_index, color="#d1495b", linestyle="--", linewidth=1)
    ax.text(
        len(days) - 0.5,
        limits.plm_index,
        f" {limits.plm_index:g}/h (ICSD-3 adult limit)",
        color="#d1495b",
        ha="right",
        va="bottom",
        fontsize=8,
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        zorder=4,
    )
    ax.set_ylim(0, top)
    ax.set_xlim(-0.6, len(days) - 0.4)
    step = _label_step(len(days))
    ax.set_xticks(xs[::step], [_tick_label(d) for d in days[::step]], fontsize=7)
    ax.set_ylabel("PLM per hour")
    ax.set_title(f"{report.person.display_name}: periodic limb movements per hour (by evening)")
    fig.savefig(path, dpi=PLOT_DPI, format="png")


def plot_caffeine(report: PersonReport, limits: Limits, path: Path | IO[bytes]) -> None:
    """Caffeine in the body over the period, the bedtime limit and each bedtime's amount."""
    fig, ax = _figure()
    start = at_local(report.first_day, time(0), report.tz)
    xs = [_days_since(start, t) for t, _ in report.caffeine_curve]
    values = [mg for _, mg in report.caffeine_curve]
    end = report.caffeine_curve[-1][0] if report.caffeine_curve else start
    beds = [
        (n.evening.bedtime, mg)
        for n in report.nights
        if n.evening.bedtime <= end and (mg := n.evening.caffeine_mg_at_bedtime) is not None
    ]
    bed_xs = [_days_since(start, b) for b, _ in beds]
    bed_mg = [mg for _, mg in beds]
    if len(report.nights) <= DETAILED_DAYS:
        ax.fill_between(xs, values, color="#8c6239", alpha=0.25, linewidth=0)
        ax.plot(xs, values, color="#8c6239", linewidth=1.2, label="caffeine in the body")
    else:
        # Months of daily peaks drawn as a curve are a solid block: show each day's peak.
        peaks = [0.0] * len(report.nights)
        for x, mg in zip(xs, values, strict=True):
            index = min(int(x), len(peaks) - 1)
            peaks[index] = max(peaks[index], mg)
        ax.bar(
            [i + 0.5 for i in range(len(peaks))],
            peaks,
            width=1.0,
            color="#8c6239",
            alpha=0.3,
            label="the day's peak",
        )
        ax.plot(bed_xs, bed_mg, color="#222222", linewidth=0.6)
    if beds:
        ax.scatter(
            bed_xs,
            bed_mg,
            s=16 if len(report.nights) <= DETAILED_DAYS else 4,
            c=["#d1495b" if mg > limits.bedtime_mg else "#222222" for mg in bed_mg],
            zorder=3,
            label="at bedtime",
        )
    ax.axhline(
        limits.bedtime_mg,
        color="#d1495b",
        linestyle="--",
        linewidth=1,
        label=f"{limits.bedtime_mg:g} mg bedtime limit",
    )
    ax.set_ylim(0, max([*values, limits.bedtime_mg]) * 1.15)
    ax.set_xlim(0, len(report.nights))
    _day_ticks(ax, report, start)
    ax.grid(axis="x", alpha=0.15)
    ax.set_ylabel("mg")
    ax.set_title(
        f"{report.person.display_name}: caffeine in the body "
        f"(half-life {report.person.caffeine_half_life_h:g} h)"
    )
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    fig.savefig(path, dpi=PLOT_DPI, format="png")


def plot_nudges(report: PersonReport, path: Path | IO[bytes]) -> None:
    """Horizontal bars: nudges sent and not sent, by title."""
    fig, ax = _figure()
    ax.grid(axis="y", alpha=0.0)
    ax.grid(axis="x", alpha=0.3)
    rules = [r.title for r in report.rules]
    if rules:
        ys = list(range(len(rules)))
        sent = [r.sent for r in report.rules]
        dropped = [r.dropped for r in report.rules]
        ax.barh(ys, sent, color="#30638e", label="sent", height=0.6)
        ax.barh(ys, dropped, left=sent, color="#bbbbbb", label="not sent", height=0.6)
        ax.set_yticks(ys, rules, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(s + d for s, d in zip(sent, dropped, strict=True)) * 1.1)
        from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 (see _figure)

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize=7, frameon=False)
    else:
        ax.set_yticks([])
        ax.text(
            0.5,
            0.5,
            "no nudges in this period",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="#888888",
        )
    ax.set_xlabel("nudges")
    ax.set_title(f"{report.person.display_name}: nudges")
    fig.savefig(path, dpi=PLOT_DPI, format="png")


# -- the page ----------------------------------------------------------------------------------

_CSS: Final = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222;
       padding: 0 1em; line-height: 1.4; }
.note { background: #fff6e0; border-left: 4px solid #e0a800; padding: 0.6em 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.3em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num, td:first-child, th { white-space: nowrap; }
tr.marked td { background: #fde8ea; }
tr.notes td { border-bottom: 1px solid #bbb; color: #444; font-size: 0.95em; }
tr.notes ul { margin: 0; padding-left: 1.2em; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
"""


@dataclass(frozen=True, slots=True)
class Plots:
    """One person's plots as PNG bytes: PLM index, caffeine, nudges."""

    plm_index: bytes
    caffeine: bytes
    nudges: bytes

    @classmethod
    def draw(cls, report: PersonReport, limits: Limits) -> Plots:
        """Draw the three plots of a report."""
        plm, caffeine, nudges = io.BytesIO(), io.BytesIO(), io.BytesIO()
        plot_plm_index(report, limits, plm)
        plot_caffeine(report, limits, caffeine)
        plot_nudges(report, nudges)
        return cls(plm.getvalue(), caffeine.getvalue(), nudges.getvalue())


def data_uri(png: bytes) -> str:
    """A PNG as a `data:` URI, so the page carries its images with it."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(
    reports: Sequence[PersonReport],
    limits: Limits,
    generated: datetime,
    plots: dict[str, Plots] | None = None,
) -> str:
    """The whole page: the screening note, then per person the summary, plots and tables; the
    plots (`plots` by person id, drawn here when not given) embedded as data: URIs."""
    e = html.escape
    first = min(r.first_day for r in reports)
    last = max(r.last_day for r in reports)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>sleepcoach report {first.isoformat()} to {last.isoformat()}</title>",
        f"<style>{_CSS}</style></head>",
        "<body>",
        f"<h1>Sleep report, {first:%d %b %Y} to {last:%d %b %Y}</h1>",
        f'<p class="note">{e(SCREENING_NOTE)}</p>',
    ]
    for report in reports:
        person = report.person
        parts.append(f"<h2>{e(person.display_name)}</h2>")
        if not report.has_history:
            parts.append(f"<p>{e(empty_message(report))}</p>")
            continue
        drawn = (plots or {}).get(person.id) or Plots.draw(report, limits)
        parts.extend(f"<p>{e(line)}</p>" for line in summary_lines(report, limits))
        parts.append(
            f'<img src="{data_uri(drawn.plm_index)}" alt="PLM index per night for '
            f'{e(person.display_name)}, with the {limits.plm_index:g}/h line">'
        )
        parts.append(
            f'<img src="{data_uri(drawn.caffeine)}" alt="caffeine in the body over time for '
            f'{e(person.display_name)}, with the {limits.bedtime_mg:g} mg bedtime limit">'
        )
        parts.append(night_table(report, limits).to_html())
        parts.append(
            f'<img src="{data_uri(drawn.nudges)}" alt="nudges sent and not sent for '
            f'{e(person.display_name)}">'
        )
        parts.append(rule_table(report).to_html())
    parts.append(
        f"<p><small>Made by sleepcoach on {generated.replace(microsecond=0).isoformat()} "
        f"from the stored history. A night is named by its evening; its nudges are listed under "
        f"it. PLM index: leg movements in series per hour after falling asleep (WASM/AASM "
        f"counting); {limits.plm_index:g}/h is the ICSD-3 adult limit. Caffeine: first-order "
        f"decay from each drink. “{NO_DATA}”: nothing was recorded.</small></p>"
    )
    parts.extend(["</body>", "</html>", ""])
    return "\n".join(parts)


def empty_message(report: PersonReport) -> str:
    """What the report says for a person with nothing stored in the period."""
    return (
        f"No stored history for {report.person.id} from {report.first_day.isoformat()} to "
        f"{report.last_day.isoformat()}: no nights, drinks, workouts or nudges."
    )


def render_text(report: PersonReport, limits: Limits) -> str:
    """The terminal part of one person's report."""
    head = (
        f"{report.person.display_name} ({report.person.id}), {report.first_day.isoformat()} to "
        f"{report.last_day.isoformat()}"
    )
    if not report.has_history:
        return f"{head}\n{empty_message(report)}"
    blocks = [
        head + "\n" + "\n".join(summary_lines(report, limits)),
        night_table(report, limits).to_text(),
        rule_table(report).to_text() if report.rules else "No nudges in this period.",
    ]
    return "\n\n".join(blocks)


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read: it holds health data."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # a file already there keeps its mode otherwise
        f.write(data)


def write_report(
    reports: Sequence[PersonReport], limits: Limits, out: Path, generated: datetime
) -> Path:
    """Write `index.html` (its plots inside) and the plots as PNG files beside it into `out`."""
    plots = {r.person.id: Plots.draw(r, limits) for r in reports if r.has_history}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for person_id, drawn in plots.items():
            plm, caffeine, nudges = plot_names(person_id)
            _write_private(out / plm, drawn.plm_index)
            _write_private(out / caffeine, drawn.caffeine)
            _write_private(out / nudges, drawn.nudges)
        page = out / "index.html"
        _write_private(page, render_html(reports, limits, generated, plots).encode())
    except OSError as err:
        raise ReportError(f"cannot write the report to {out}: {err.strerror or err}") from err
    return page


# -- the command -------------------------------------------------------------------------------


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_DAYS:
        msg = f"expected a whole number of days from 1 to {MAX_DAYS}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        msg = f"expected a date as YYYY-MM-DD, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the YAML config (default: $SLEEPCOACH_CONFIG, else the example config, as `run`)",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="the database to read (default: the one `run` stores into with this config)",
    )
    parser.add_argument("--person", metavar="ID", help="one person's report (default: everyone)")
    parser.add_argument(
        "--days",
        metavar="N",
        type=_days,
        help=f"N days: the last N, today included, or N from --since or up to --until "
        f"(default: {DEFAULT_DAYS})",
    )
    parser.add_argument(
        "--since",
        metavar="DATE",
        type=_date,
        help="the first day (YYYY-MM-DD, local; its night is the one that starts that evening)",
    )
    parser.add_argument(
        "--until", metavar="DATE", type=_date, help="the last day (YYYY-MM-DD, local), included"
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: tables in the terminal, plots and index.html in --out (default); json: one "
        "JSON document on stdout, no files",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_OUT,
        help=f"where index.html and the PNG plots go (default: ./{DEFAULT_OUT})",
    )


def select_people(config: Config, person_id: str | None) -> list[Person]:
    """Everyone in the config, or the one asked for (an unknown id is an error)."""
    if person_id is None:
        return list(config.people)
    for person in config.people:
        if person.id == person_id:
            return [person]
    known = ", ".join(p.id for p in config.people) or "none"
    raise ReportError(f"no person {person_id!r} in the config (people: {known})")


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file a URL names when it does not exist yet (nothing stored), else None."""
    try:
        sa_url = make_url(engine_url(url))
    except ArgumentError:
        return None  # Storage.open says what is wrong with it
    if sa_url.get_backend_name() != "sqlite" or sa_url.database in (None, "", ":memory:"):
        return None
    path = Path(sa_url.database).expanduser()
    return None if path.exists() else path


def open_history(url: str, keep_days: int) -> Storage:
    """The storage to report from; a database not there yet, or one that holds no history at
    all, is an error (there is nothing to report)."""
    hint = (
        "`sleepcoach run` stores history as it happens; `sleepcoach simulate --storage URL` "
        "stores a scenario's"
    )
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise ReportError(f"no stored history: {missing} does not exist. {hint}")
    storage = Storage.open(url, keep_days)
    try:
        tables = ("events", "nudges", "nights", "checkins")
        empty = all(storage.count(table) == 0 for table in tables)
    except SQLAlchemyError as err:
        storage.close()
        msg = f"cannot read the history in {safe_url(url)}: {_reason(err)}"
        raise StorageError(msg) from err
    if empty:
        storage.close()
        raise ReportError(f"no stored history: {safe_url(url)} is empty. {hint}")
    return storage


def make_report(
    config: ConfigFile,
    person_id: str | None,
    first_day: date,
    last_day: date,
    now: datetime,
    *,
    out: Path = Path(DEFAULT_OUT),
    fmt: str = "text",
    database: str | None = None,
    stream: IO[str] | None = None,
) -> int:
    """Read the history and show it: tables in the terminal and the page in `out`, or the JSON
    document on `stream` (stdout); the exit code."""
    people = select_people(config, person_id)
    storage = open_history(database or storage_url(config), config.storage.keep_days)
    try:
        reports = [
            build_report(storage, config, person, first_day, last_day, now=now) for person in people
        ]
    finally:
        storage.close()
    generated = now.astimezone(config.tz)
    if fmt == "json":
        doc = report_json(reports, first_day, last_day, generated)
        target = stream if stream is not None else sys.stdout
        json.dump(doc, target, ensure_ascii=False, indent=2)
        target.write("\n")
        target.flush()
        return 0
    limits = Limits.of(config)
    say("\n\n".join(render_text(report, limits) for report in reports))
    if not any(report.has_history for report in reports):
        say(f"\nNothing to plot: no report written to {out}.")
        return 0
    page = write_report(reports, limits, out, generated)
    say(f"\n{SCREENING_NOTE}")
    say(f"\nThe page (plots inside, it can be moved or mailed): {page}")
    return 0


def report_command(args: argparse.Namespace) -> int:
    """`sleepcoach report`: the tables in the terminal and index.html in --out, or JSON."""
    try:
        # The report reads storage only: MQTT and Home Assistant secrets need not be present.
        choice = choose_config(args.config)
        if choice.notice is not None:
            say(choice.notice, err=True)
        config = with_env_overrides(load_config(choice.path, resolve_secrets=False), os.environ)
    except ConfigError as err:
        for problem in err.problems:
            say(problem, err=True)
        return 1
    now = datetime.now(config.tz)
    first_day, last_day = choose_period(
        now, config.tz, days=args.days, since=args.since, until=args.until
    )
    return make_report(
        config,
        args.person,
        first_day,
        last_day,
        now,
        out=Path(args.out),
        fmt=args.format,
        database=args.storage,
    )


COMMAND: Final = Command(
    "report",
    "the sleep report from stored history: tables in the terminal and an HTML page with its "
    "plots, or one JSON document (--format json)",
    _arguments,
    report_command,
)


def register(subparsers: SubParsers) -> None:
    """Add `sleepcoach report` to the command line."""
    COMMAND.register(subparsers)
