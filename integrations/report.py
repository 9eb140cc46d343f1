"""`sleepcoach report`: a person's stored nights, caffeine, workouts and nudges, for people to read.

How it works: the report covers the last N local days (today included) in the configured time
zone. For each person it reads the stored night summaries whose evening falls in those days, the
drinks (`CoffeeBrewed`, and `SubstanceLogged` with caffeine), workouts, bedtime changes and the
nudges sent or dropped. Caffeine is replayed with the core's own model (`coach.caffeine.dose_mg`
and `caffeine_at`, the person's half-life), from two days before the period so that the first
morning starts with yesterday's remainder; bedtimes come from `coach.clock.night_of` with the
`bedtime_tonight` changes that were stored. Every figure goes into `Table`s, which are printed in
the terminal and written into `index.html` alike, so the two never disagree; three PNG plots per
person (PLM index per night, caffeine in the body, nudges per rule) are drawn with matplotlib's
object API (no pyplot, no global backend: `Figure.savefig` renders with Agg).

The figures are screening from consumer sensors, not a diagnosis; the page says so.
"""

from __future__ import annotations

import argparse
import html
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from coach.caffeine import DEFAULT_LOGGED_MG, NEGLIGIBLE_MG, caffeine_at, dose_mg
from coach.clock import at_local, hhmm, local_date, night_of, tonight
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
    StoredEvent,
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
SCREENING_NOTE: Final = (
    "These figures come from a bed motion sensor, a coffee maker and a fitness tracker, not from "
    "a sleep study: they are screening, not a diagnosis. If you twitch or kick often at night, "
    "or often wake up unrefreshed, talk to a doctor."
)
PLOT_DPI: Final = 100


class ReportError(ProjectError):
    """The report cannot be made: an unknown person, or the output folder cannot be written."""


# -- what the report holds ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NightRow:
    """One stored night summary, named by its evening."""

    evening: date
    has_data: bool
    time_in_bed_s: float
    time_to_settle_s: float | None
    plm_index: float | None
    hypnic_jerks: int
    movements: int
    limb_movements: int


@dataclass(frozen=True, slots=True)
class DayRow:
    """One local day: caffeine, the bedtime that evening, workouts and nudges."""

    day: date
    caffeine_mg: float
    bedtime: datetime
    caffeine_at_bedtime_mg: float
    workouts: tuple[str, ...]
    sent: tuple[tuple[str, int], ...]
    dropped: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class RuleRow:
    """The nudges of one rule over the period: how many went out, how many were dropped and why."""

    rule: str
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
    nights: tuple[NightRow, ...]
    days: tuple[DayRow, ...]
    rules: tuple[RuleRow, ...]
    caffeine_curve: tuple[tuple[datetime, float], ...]
    doses: int

    @property
    def has_history(self) -> bool:
        """True when there is anything to show: a night, drink, workout, nudge or caffeine left."""
        return bool(
            self.nights
            or self.doses
            or self.rules
            or any(d.workouts for d in self.days)
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
    """A titled table of text cells, printed in the terminal and written into the HTML alike."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    #: Columns aligned right (figures).
    numeric: frozenset[int] = frozenset()
    #: Rows drawn attention to in the HTML (a PLM index above the limit, say).
    marked: frozenset[int] = frozenset()

    def to_text(self) -> str:
        """Fixed-width columns under the title."""
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
        out.extend(line(row) for row in self.rows)
        return "\n".join(out)

    def to_html(self) -> str:
        """An HTML table with a caption."""
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
        return (
            f"<table>\n<caption>{e(self.title)}</caption>\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>\n{chr(10).join(body)}\n</tbody>\n</table>"
        )


# -- reading storage ---------------------------------------------------------------------------


def period(days: int, now: datetime, tz: ZoneInfo) -> tuple[date, date]:
    """The first and last local day of a report of `days` days ending today."""
    last = local_date(now, tz)
    return last - timedelta(days=days - 1), last


def build_report(
    storage: Storage, config: Config, person: Person, days: int, now: datetime
) -> PersonReport:
    """Read one person's history for the last `days` days up to `now` and work out the figures."""
    tz = config.tz
    first_day, last_day = period(days, now, tz)
    start = at_local(first_day, time(0), tz)
    try:
        events = list(
            storage.events(person.id, since=start - CAFFEINE_LOOKBACK, until=now, kinds=EVENT_KINDS)
        )
        nudges = [n for n in storage.nudges(person.id, since=start) if n.ts < now]
        stored_nights = list(storage.nights(person.id))
    except SQLAlchemyError as err:
        msg = f"cannot read the history in {safe_url(storage.url)}: {_reason(err)}"
        raise StorageError(msg) from err

    nights = tuple(
        _night_row(date.fromisoformat(n.night), n.summary)
        for n in stored_nights
        if _is_iso_date(n.night) and first_day <= date.fromisoformat(n.night) <= last_day
    )
    history = _replay(events, person, tz, start)
    taken = PersonState(doses=history.doses)
    half_life = person.caffeine_half_life_h
    per_day: dict[date, float] = {}
    for at, mg in history.doses:
        day = local_date(datetime.fromtimestamp(at, tz), tz)
        per_day[day] = per_day.get(day, 0.0) + mg
    tally = _Tally.of(nudges, tz)

    day_rows = []
    for offset in range((last_day - first_day).days + 1):
        day = first_day + timedelta(days=offset)
        bedtime = night_of(person, day, tz, history.overrides).bedtime
        day_rows.append(
            DayRow(
                day=day,
                caffeine_mg=per_day.get(day, 0.0),
                bedtime=bedtime,
                caffeine_at_bedtime_mg=caffeine_at(taken, bedtime, half_life),
                workouts=tuple(history.workouts.get(day, ())),
                sent=_ordered(tally.sent_by_day.get(day, Counter())),
                dropped=_ordered(tally.dropped_by_day.get(day, Counter())),
            )
        )
    curve = caffeine_curve(history.doses, start, now, half_life)
    return PersonReport(
        person=person,
        tz=tz,
        first_day=first_day,
        last_day=last_day,
        nights=nights,
        days=tuple(day_rows),
        rules=tally.rules(),
        caffeine_curve=curve,
        doses=sum(1 for at, _ in history.doses if at >= start.timestamp()),
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
    """What the stored events say: caffeine doses, bedtime changes, workouts per local day."""

    doses: list[tuple[float, float]] = field(default_factory=list)
    overrides: dict[str, str] = field(default_factory=dict)
    workouts: dict[date, list[str]] = field(default_factory=dict)


def _replay(
    events: Iterable[StoredEvent], person: Person, tz: ZoneInfo, start: datetime
) -> _History:
    history = _History()
    open_workout: tuple[datetime, str] | None = None
    for ev in events:
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
                _add_workout(history.workouts, open_workout, None, tz)
            label = f"{ev.data.get('activity', 'workout')} ({ev.data.get('intensity', '?')})"
            open_workout = (ev.ts, label)
        elif ev.kind == "WorkoutEnded" and open_workout is not None:
            _add_workout(history.workouts, open_workout, ev.ts, tz)
            open_workout = None
    if open_workout is not None:
        _add_workout(history.workouts, open_workout, None, tz)
    return history


@dataclass(slots=True)
class _Tally:
    """Nudges counted per day and per rule, sent and dropped apart."""

    sent_by_day: dict[date, Counter[str]] = field(default_factory=dict)
    dropped_by_day: dict[date, Counter[str]] = field(default_factory=dict)
    sent: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    reasons: dict[str, Counter[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, nudges: Iterable[StoredNudge], tz: ZoneInfo) -> _Tally:
        """Count the nudges by their local day and rule."""
        tally = cls()
        for nudge in nudges:
            day = local_date(nudge.ts, tz)
            if nudge.dropped is None:
                tally.sent_by_day.setdefault(day, Counter())[nudge.rule] += 1
                tally.sent[nudge.rule] += 1
            else:
                tally.dropped_by_day.setdefault(day, Counter())[nudge.rule] += 1
                tally.dropped[nudge.rule] += 1
                tally.reasons.setdefault(nudge.rule, Counter())[nudge.dropped] += 1
        return tally

    def rules(self) -> tuple[RuleRow, ...]:
        """One row per rule that sent or dropped a nudge, by rule id."""
        return tuple(
            RuleRow(
                rule,
                self.sent[rule],
                self.dropped[rule],
                _ordered(self.reasons.get(rule, Counter())),
            )
            for rule in sorted(set(self.sent) | set(self.dropped))
        )


def _night_row(evening: date, summary: dict[str, Any]) -> NightRow:
    return NightRow(
        evening=evening,
        has_data=bool(summary.get("has_data", False)),
        time_in_bed_s=float(summary.get("time_in_bed_s") or 0.0),
        time_to_settle_s=_float_or_none(summary.get("time_to_settle_s")),
        plm_index=_float_or_none(summary.get("plm_index")),
        hypnic_jerks=int(summary.get("hypnic_jerks") or 0),
        movements=int(summary.get("movements") or 0),
        limb_movements=int(summary.get("limb_movements") or 0),
    )


def _add_workout(
    workouts: dict[date, list[str]],
    started: tuple[datetime, str],
    ended: datetime | None,
    tz: ZoneInfo,
) -> None:
    at, label = started
    text = f"{hhmm(at, tz)} {label}"
    if ended is not None:
        text += f" {round((ended - at).total_seconds() / 60)} min"
    workouts.setdefault(local_date(at, tz), []).append(text)


def _ordered(counts: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items()))


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


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


# -- tables ------------------------------------------------------------------------------------


def _day_label(day: date) -> str:
    return f"{day:%a} {day.isoformat()}"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _counts(items: Iterable[tuple[str, int]]) -> str:
    return ", ".join(name if n == 1 else f"{name} ×{n}" for name, n in items)


def night_table(report: PersonReport, limits: Limits) -> Table:
    """Per night: time in bed, time to settle, PLM index, hypnic jerks and movements."""
    rows: list[tuple[str, ...]] = []
    marked = set()
    for i, n in enumerate(report.nights):
        if not n.has_data:
            rows.append((_day_label(n.evening), "no data", "", "", "", ""))
            continue
        plm = "–" if n.plm_index is None else f"{n.plm_index:.1f}"
        if n.plm_index is not None and n.plm_index > limits.plm_index:
            plm += " high"
            marked.add(i)
        settle = "–" if n.time_to_settle_s is None else _duration(n.time_to_settle_s)
        rows.append(
            (
                _day_label(n.evening),
                _duration(n.time_in_bed_s),
                settle,
                plm,
                str(n.hypnic_jerks),
                str(n.movements),
            )
        )
    return Table(
        "Nights (named by their evening)",
        ("night of", "time in bed", "to settle", "PLM index /h", "hypnic jerks", "movements"),
        tuple(rows),
        numeric=frozenset({1, 2, 3, 4, 5}),
        marked=frozenset(marked),
    )


def day_table(report: PersonReport, limits: Limits) -> Table:
    """Per day: caffeine total and at bedtime, workouts, nudges sent and dropped by rule."""
    rows: list[tuple[str, ...]] = []
    marked = set()
    for i, d in enumerate(report.days):
        at_bed = f"{d.caffeine_at_bedtime_mg:.0f} mg"
        if d.caffeine_at_bedtime_mg > limits.bedtime_mg:
            at_bed += " high"
            marked.add(i)
        rows.append(
            (
                _day_label(d.day),
                f"{d.caffeine_mg:.0f} mg",
                hhmm(d.bedtime, report.tz),
                at_bed,
                ", ".join(d.workouts),
                _counts(d.sent),
                _counts(d.dropped),
            )
        )
    return Table(
        "Days",
        ("day", "caffeine", "bedtime", "at bedtime", "workouts", "nudges sent", "dropped"),
        tuple(rows),
        numeric=frozenset({1, 2, 3}),
        marked=frozenset(marked),
    )


def rule_table(report: PersonReport) -> Table:
    """Per rule: nudges sent and dropped over the period, and why they were dropped."""
    rows = tuple(
        (
            r.rule,
            str(r.sent),
            str(r.dropped),
            _counts((why.replace("_", " "), n) for why, n in r.reasons),
        )
        for r in report.rules
    )
    return Table(
        "Nudges by rule",
        ("rule", "sent", "dropped", "why dropped"),
        rows,
        numeric=frozenset({1, 2}),
    )


def summary_lines(report: PersonReport, limits: Limits) -> list[str]:
    """A few plain sentences over the whole period."""
    lines = []
    scored = [n for n in report.nights if n.has_data]
    if scored:
        with_index = [n.plm_index for n in scored if n.plm_index is not None]
        high = sum(1 for v in with_index if v > limits.plm_index)
        lines.append(
            f"{len(scored)} night(s) with bed data; median time in bed "
            f"{_duration(median(n.time_in_bed_s for n in scored))}; PLM index above "
            f"{limits.plm_index:g}/h on {high} of {len(with_index)} night(s)."
        )
    else:
        lines.append("No night with bed-sensor data in this period.")
    total = sum(d.caffeine_mg for d in report.days)
    late = sum(1 for d in report.days if d.caffeine_at_bedtime_mg > limits.bedtime_mg)
    lines.append(
        f"Caffeine: {total:.0f} mg in {report.doses} drink(s); more than "
        f"{limits.bedtime_mg:g} mg left at bedtime on {late} day(s)."
    )
    sent = sum(r.sent for r in report.rules)
    dropped = sum(r.dropped for r in report.rules)
    lines.append(f"Nudges: {sent} sent, {dropped} dropped.")
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
    days = [report.first_day + timedelta(days=i) for i in range(len(report.days) + 1)]
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


def plot_plm_index(report: PersonReport, limits: Limits, path: Path) -> None:
    """Bars of the PLM index per night, with the limit (15/h by default) as a dashed line.

    A night stored without bed data says "no data"; a night not stored at all stays empty.
    """
    fig, ax = _figure()
    days = [report.first_day + timedelta(days=i) for i in range(len(report.days))]
    by_evening = {n.evening: n for n in report.nights}
    xs = list(range(len(days)))
    values = [
        n.plm_index if n is not None and n.has_data else None
        for n in (by_evening.get(day) for day in days)
    ]
    heights = [v or 0.0 for v in values]
    colours = ["#d1495b" if v is not None and v > limits.plm_index else "#30638e" for v in values]
    ax.bar(xs, heights, color=colours, width=0.7)
    top = max([*heights, limits.plm_index]) * 1.15
    small = len(days) <= DETAILED_DAYS  # room to write on every bar
    for x, day, value in zip(xs, days, values, strict=True):
        if day not in by_evening:
            continue
        if value is not None:
            if small:
                ax.text(x, value, f"{value:.1f}", ha="center", va="bottom", fontsize=7)
            continue
        ax.text(
            x,
            top * 0.02,
            "no data" if not by_evening[day].has_data else "no index",
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
    fig.savefig(path, dpi=PLOT_DPI)


def plot_caffeine(report: PersonReport, limits: Limits, path: Path) -> None:
    """Caffeine in the body over the period, the bedtime limit and each bedtime's amount."""
    fig, ax = _figure()
    start = at_local(report.first_day, time(0), report.tz)
    xs = [_days_since(start, t) for t, _ in report.caffeine_curve]
    values = [mg for _, mg in report.caffeine_curve]
    end = report.caffeine_curve[-1][0] if report.caffeine_curve else start
    beds = [(d.bedtime, d.caffeine_at_bedtime_mg) for d in report.days if d.bedtime <= end]
    bed_xs = [_days_since(start, b) for b, _ in beds]
    bed_mg = [mg for _, mg in beds]
    if len(report.days) <= DETAILED_DAYS:
        ax.fill_between(xs, values, color="#8c6239", alpha=0.25, linewidth=0)
        ax.plot(xs, values, color="#8c6239", linewidth=1.2, label="caffeine in the body")
    else:
        # Months of daily peaks drawn as a curve are a solid block: show each day's peak.
        peaks = [0.0] * len(report.days)
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
            s=16 if len(report.days) <= DETAILED_DAYS else 4,
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
    ax.set_xlim(0, len(report.days))
    _day_ticks(ax, report, start)
    ax.grid(axis="x", alpha=0.15)
    ax.set_ylabel("mg")
    ax.set_title(
        f"{report.person.display_name}: caffeine in the body "
        f"(half-life {report.person.caffeine_half_life_h:g} h)"
    )
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    fig.savefig(path, dpi=PLOT_DPI)


def plot_nudges(report: PersonReport, path: Path) -> None:
    """Horizontal bars: nudges sent and dropped per rule."""
    fig, ax = _figure()
    ax.grid(axis="y", alpha=0.0)
    ax.grid(axis="x", alpha=0.3)
    rules = [r.rule for r in report.rules]
    if rules:
        ys = list(range(len(rules)))
        sent = [r.sent for r in report.rules]
        dropped = [r.dropped for r in report.rules]
        ax.barh(ys, sent, color="#30638e", label="sent", height=0.6)
        ax.barh(ys, dropped, left=sent, color="#bbbbbb", label="dropped", height=0.6)
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
    ax.set_title(f"{report.person.display_name}: nudges per rule")
    fig.savefig(path, dpi=PLOT_DPI)


# -- the page ----------------------------------------------------------------------------------

_CSS: Final = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222;
       padding: 0 1em; line-height: 1.4; }
.note { background: #fff6e0; border-left: 4px solid #e0a800; padding: 0.6em 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.3em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num, td:first-child, th { white-space: nowrap; }
tr.marked td { background: #fde8ea; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
"""


def render_html(reports: Sequence[PersonReport], limits: Limits, generated: datetime) -> str:
    """The whole page: the screening note, then per person the summary, plots and tables."""
    e = html.escape
    first = min(r.first_day for r in reports)
    last = max(r.last_day for r in reports)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
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
        parts.extend(f"<p>{e(line)}</p>" for line in summary_lines(report, limits))
        plm, caffeine, nudges = plot_names(person.id)
        parts.append(
            f'<img src="{e(plm)}" alt="PLM index per night for {e(person.display_name)}, '
            f'with the {limits.plm_index:g}/h line">'
        )
        parts.append(night_table(report, limits).to_html())
        parts.append(
            f'<img src="{e(caffeine)}" alt="caffeine in the body over time for '
            f'{e(person.display_name)}, with the {limits.bedtime_mg:g} mg bedtime limit">'
        )
        parts.append(day_table(report, limits).to_html())
        parts.append(f'<img src="{e(nudges)}" alt="nudges per rule for {e(person.display_name)}">')
        parts.append(rule_table(report).to_html())
    parts.append(
        f"<p><small>Made by sleepcoach on {generated.replace(microsecond=0).isoformat()} "
        f"from the stored history. PLM index: leg movements in series per hour after falling "
        f"asleep (WASM/AASM counting); {limits.plm_index:g}/h is the ICSD-3 adult limit. "
        f"Caffeine: first-order decay from each drink.</small></p>"
    )
    parts.extend(["</body>", "</html>", ""])
    return "\n".join(parts)


def empty_message(report: PersonReport) -> str:
    """What the report says for a person with nothing stored in the period."""
    return (
        f"No stored history for {report.person.id} from {report.first_day.isoformat()} to "
        f"{report.last_day.isoformat()}: no nights, drinks, workouts or nudges. `sleepcoach run` "
        f"stores them as they happen."
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
        night_table(report, limits).to_text() if report.nights else "No night summaries stored.",
        day_table(report, limits).to_text(),
        rule_table(report).to_text() if report.rules else "No nudges in this period.",
    ]
    return "\n\n".join(blocks)


def write_report(
    reports: Sequence[PersonReport], limits: Limits, out: Path, generated: datetime
) -> Path:
    """Write the plots of every person with history and `index.html` into `out`."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for report in reports:
            if not report.has_history:
                continue
            plm, caffeine, nudges = plot_names(report.person.id)
            plot_plm_index(report, limits, out / plm)
            plot_caffeine(report, limits, out / caffeine)
            plot_nudges(report, out / nudges)
        page = out / "index.html"
        page.write_text(render_html(reports, limits, generated), encoding="utf-8")
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


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the YAML config (default: $SLEEPCOACH_CONFIG, else the example config, as `run`)",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="the database to read (default: the config's storage.url, as `run` stores)",
    )
    parser.add_argument("--person", metavar="ID", help="one person's report (default: everyone)")
    parser.add_argument(
        "--days",
        metavar="N",
        type=_days,
        default=DEFAULT_DAYS,
        help=f"the last N days, today included (default: {DEFAULT_DAYS})",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_OUT,
        help=f"where the PNG plots and index.html go (default: ./{DEFAULT_OUT})",
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


def make_report(
    config: ConfigFile,
    person_id: str | None,
    days: int,
    out: Path,
    now: datetime,
    *,
    database: str | None = None,
) -> int:
    """Read the history, print the tables and write the plots and page; the exit code."""
    people = select_people(config, person_id)
    url = database or storage_url(config)
    missing = missing_sqlite_file(url)
    if missing is not None:
        say(f"No stored history yet: {missing} does not exist. `sleepcoach run` creates it.")
        return 0
    storage = Storage.open(url, config.storage.keep_days)
    try:
        reports = [build_report(storage, config, person, days, now) for person in people]
    finally:
        storage.close()
    limits = Limits.of(config)
    say("\n\n".join(render_text(report, limits) for report in reports))
    if not any(report.has_history for report in reports):
        say(f"\nNothing to plot: no report written to {out}.")
        return 0
    page = write_report(reports, limits, out, now.astimezone(config.tz))
    say(f"\n{SCREENING_NOTE}")
    say(f"\nPlots and page: {page}")
    return 0


def report_command(args: argparse.Namespace) -> int:
    """`sleepcoach report`: the tables in the terminal, the plots and index.html in --out."""
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
    return make_report(
        config, args.person, args.days, Path(args.out), now, database=args.storage
    )


COMMAND: Final = Command(
    "report",
    "the sleep report from stored history: tables in the terminal, PNG plots and an HTML page",
    _arguments,
    report_command,
)


def register(subparsers: SubParsers) -> None:
    """Add `sleepcoach report` to the command line."""
    COMMAND.register(subparsers)
