"""Benchmark: how many nudges a person gets per day in a realistic week, by rule.

Run `python bench/week.py [--seed 7] [--baseline REF] [--keep DIR]`. It generates a seeded week
(Monday to Sunday, plus the Sunday night) of a household of two, each with their own devices:

- alex (bedtime 22:30, wake 06:30, at the weekend 08:00) with a bed sensor, a coffee maker and a
  watch; sam (bedtime 23:15, wake 07:15, at the weekend 08:30) with a bed sensor, a coffee maker
  at the office and a watch, and a cola or tea logged by hand now and then;
- heart rate every 5 minutes awake and every minute in a workout, stress every 15 minutes,
  occupancy and small bed movements through the night;
- coffees in the morning and after lunch, some too late (a 14:00 espresso); alex's Saturday
  coffee at 07:30, after getting up, before the weekend wake time;
- workouts: moderate early-evening sessions, a vigorous one starting 2.5 h before bed and a
  vigorous one still going in the last hour before bed, a long weekend run;
- two evenings of stress held high, daylight readings (alex's watch reports daylight every day,
  once 0 minutes; sam's only at the weekend), alcohol logged three times.

It writes the config and the scenario, runs `sleepcoach simulate` on them in a subprocess (the
command's own engine, from this checkout), and prints nudges per person per day: overall, by
rule, and day by day. With `--baseline REF` it also runs the same week through the code of git
revision REF (exported to a temporary directory) and prints both side by side, measured in the
same run.

The household is data (`HOUSEHOLD`: people, their schedules and devices) and every message goes
through `Week.emit(person, kind, ...)`, which looks the device up by person and kind: a household
that shares a device needs a new entry there, not a new generator.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Europe/Berlin")
REPO = Path(__file__).resolve().parent.parent
#: A winter week, Monday to Sunday (no daylight-saving change in it).
MONDAY = date(2026, 11, 23)
DAYS = 7


@dataclass(frozen=True)
class Device:
    """A device of the household: its kind, its topic, and who uses it (several: shared)."""

    id: str
    kind: str
    topic: str
    person: str | tuple[str, ...]

    @property
    def people(self) -> tuple[str, ...]:
        """Who uses it."""
        return self.person if isinstance(self.person, tuple) else (self.person,)

    def yaml_person(self) -> str:
        """`person:` as the config writes it."""
        return f"[{', '.join(self.people)}]" if isinstance(self.person, tuple) else self.person


@dataclass(frozen=True)
class Person:
    """Someone in the household, with a weekday and a weekend schedule ("HH:MM")."""

    id: str
    age: int
    bedtime: str
    wake: str
    weekend_wake: str

    def at(self, day: date, clock: str) -> datetime:
        """The local instant of a wall-clock time on `day`."""
        return datetime.combine(day, time.fromisoformat(clock), tzinfo=TZ)

    def bedtime_on(self, day: date) -> datetime:
        """Bedtime of the evening of `day`."""
        return self.at(day, self.bedtime)

    def wake_on(self, day: date) -> datetime:
        """Wake time on the morning of `day`."""
        return self.at(day, self.weekend_wake if day.weekday() >= 5 else self.wake)

    @property
    def max_hr(self) -> int:
        """220 − age, as the coach estimates it."""
        return 220 - self.age


@dataclass(frozen=True)
class Household:
    """The people and their devices."""

    people: tuple[Person, ...]
    devices: tuple[Device, ...]

    def device(self, person: str, kind: str) -> Device:
        """The device of this kind that `person` uses."""
        for d in self.devices:
            if person in d.people and d.kind == kind:
                return d
        msg = f"{person} has no {kind}"
        raise LookupError(msg)

    def config_yaml(self, *, phones: str = "none") -> str:
        """The coach's config for this household (every rule at its default).

        `phones`: "none" (no Home Assistant), "global" (every phone in `homeassistant.notify`, as
        a config before per-person phones had to) or "own" (`people[].notify`).
        """
        lines = ["timezone: Europe/Berlin"]
        if phones != "none":
            lines += ["homeassistant:", "  url: http://127.0.0.1:8123"]
            if phones == "global":
                every = ", ".join(phone(p.id) for p in self.people)
                lines.append(f"  notify: [{every}]")
        lines.append("people:")
        for p in self.people:
            lines += [
                f"  - id: {p.id}",
                f'    bedtime: "{p.bedtime}"',
                f'    wake: {{default: "{p.wake}", sat: "{p.weekend_wake}", '
                f'sun: "{p.weekend_wake}"}}',
                f"    age: {p.age}",
            ]
            if phones == "own":
                lines.append(f"    notify: [{phone(p.id)}]")
        lines.append("devices:")
        lines += [
            f"  - {{id: {d.id}, kind: {d.kind}, topic: {d.topic}, person: {d.yaml_person()}}}"
            for d in self.devices
        ]
        return "\n".join(lines) + "\n"


def phone(person: str) -> str:
    """The notify service of a person's phone."""
    return f"notify.mobile_app_{person}_phone"


HOUSEHOLD = Household(
    people=(
        Person("alex", age=38, bedtime="22:30", wake="06:30", weekend_wake="08:00"),
        Person("sam", age=34, bedtime="23:15", wake="07:15", weekend_wake="08:30"),
    ),
    devices=(
        Device("bed-alex", "bed_motion", "home/bedroom/bed/alex", "alex"),
        Device("coffee-alex", "coffee_maker", "home/kitchen/coffee", "alex"),
        Device("watch-alex", "fitness_tracker", "tracker/alex", "alex"),
        Device("bed-sam", "bed_motion", "home/bedroom/bed/sam", "sam"),
        Device("coffee-sam", "coffee_maker", "office/coffee/sam", "sam"),
        Device("watch-sam", "fitness_tracker", "tracker/sam", "sam"),
    ),
)
#: The same two sharing one coffee maker in the kitchen, as the coach's config says it.
SHARED = Household(
    people=HOUSEHOLD.people,
    devices=(
        Device("bed-alex", "bed_motion", "home/bedroom/bed/alex", "alex"),
        Device("coffee", "coffee_maker", "home/kitchen/coffee", ("alex", "sam")),
        Device("watch-alex", "fitness_tracker", "tracker/alex", "alex"),
        Device("bed-sam", "bed_motion", "home/bedroom/bed/sam", "sam"),
        Device("watch-sam", "fitness_tracker", "tracker/sam", "sam"),
    ),
)
#: ... and as a config without shared devices has to say it: the machine is Alex's.
SHARED_AS_ALEXS = Household(
    people=HOUSEHOLD.people,
    devices=tuple(
        Device(d.id, d.kind, d.topic, "alex") if d.id == "coffee" else d for d in SHARED.devices
    ),
)


@dataclass(frozen=True)
class Workout:
    """A workout on a weekday (0 = Monday): start, minutes, intensity and activity."""

    weekday: int
    start: str
    minutes: int
    intensity: str
    activity: str


@dataclass(frozen=True)
class Habits:
    """What a person does in the week: drinks, workouts, stress, daylight, alcohol."""

    #: (weekday or None for every day, "HH:MM", drink, ml); weekend mornings are separate.
    coffees: tuple[tuple[int | None, str, str, int], ...]
    #: Minutes after getting up of the first coffee at the weekend.
    weekend_coffee_after_min: int
    #: (weekday, "HH:MM", caffeine mg) logged by command.
    logged_caffeine: tuple[tuple[int, str, int], ...]
    workouts: tuple[Workout, ...]
    #: (weekday, first "HH:MM", minutes) of stress held at about 80.
    stress: tuple[tuple[int, str, int], ...]
    #: Weekdays on which the watch reports daylight; a fixed reading on some days.
    daylight_days: tuple[int, ...]
    daylight_fixed: dict[int, int] = field(default_factory=dict)
    #: (weekday, "HH:MM") alcohol logged by command.
    alcohol: tuple[tuple[int, str], ...] = ()


HABITS = {
    "alex": Habits(
        coffees=(
            (None, "07:00", "coffee", 240),
            (None, "10:30", "espresso", 30),
            (1, "14:00", "espresso", 30),
            (3, "14:00", "espresso", 30),
        ),
        weekend_coffee_after_min=10,  # on Saturday up at 07:20, before the wake time (08:00)
        logged_caffeine=(),
        workouts=(
            Workout(1, "18:00", 45, "moderate", "running"),
            Workout(3, "20:00", 50, "vigorous", "running"),  # starts 2.5 h before bed
            Workout(5, "10:00", 90, "vigorous", "running"),
        ),
        stress=((2, "19:00", 60),),
        daylight_days=(0, 1, 2, 3, 4, 5, 6),
        daylight_fixed={0: 0},  # a dark, rainy Monday: a reading of 0 minutes
        alcohol=((4, "21:00"),),
    ),
    "sam": Habits(
        coffees=((None, "07:50", "coffee", 300), (None, "13:00", "coffee", 240)),
        weekend_coffee_after_min=30,
        logged_caffeine=((2, "16:30", 40), (4, "15:00", 47)),
        workouts=(
            Workout(0, "19:00", 60, "moderate", "gym"),
            Workout(2, "21:45", 45, "vigorous", "hiit"),  # still going an hour before bed
        ),
        stress=((4, "20:00", 50),),
        daylight_days=(5, 6),  # the watch reports daylight only at the weekend
        alcohol=((4, "18:30"), (5, "20:30")),
    ),
}


@dataclass
class Week:
    """The week's messages, in time order once `lines()` sorts them."""

    household: Household
    rng: random.Random
    messages: list[tuple[datetime, str, dict[str, Any]]] = field(default_factory=list)
    #: Every brew on a shared maker and who drank it: (when, person).
    shared_brews: list[tuple[datetime, str]] = field(default_factory=list)

    def emit(self, person: str, kind: str, at: datetime, payload: dict[str, Any]) -> None:
        """A message from the person's device of `kind` (or their command topic)."""
        if kind == "command":
            topic = f"sleepcoach/{person}/command"
        else:
            device = self.household.device(person, kind)
            topic = device.topic
            if len(device.people) > 1 and payload.get("event") == "brew":
                self.shared_brews.append((at, person))
        self.messages.append((at, topic, payload))

    def answer(self, seed: int, unanswered: float) -> int:
        """Whoever drank a shared maker's drink answers its question ("Mine" on the phone, with
        the question's id) 1-12 minutes later; a share `unanswered` of them never does. Drawn
        from a generator of its own, so the week itself stays the same. Returns how many."""
        rng = random.Random(seed)
        answered = 0
        for at, person in self.shared_brews:
            if rng.random() < unanswered:
                continue
            local = at.astimezone(TZ)
            question = f"household.whose:{person}:{local.date().isoformat()}:{local:%H%M}"
            when = at + timedelta(minutes=rng.randint(1, 12))
            self.emit(person, "command", when, {"command": "mine", "nudge_id": question})
            answered += 1
        return answered

    def jitter(self, at: datetime, minutes: int) -> datetime:
        """`at` moved by up to ± `minutes`, to the second."""
        return at + timedelta(seconds=self.rng.randint(-minutes * 60, minutes * 60))

    def lines(self) -> Iterator[str]:
        """The scenario, one JSON line per message, in time order."""
        for at, topic, payload in sorted(self.messages, key=lambda m: (m[0], m[1])):
            yield json.dumps({"ts": at.isoformat(), "topic": topic, "payload": payload})


def _every(first: datetime, last: datetime, step: timedelta) -> Iterator[datetime]:
    at = first
    while at < last:
        yield at
        at += step


def generate(seed: int, household: Household = HOUSEHOLD, days: int = DAYS) -> Week:
    """The seeded week (or `days` days from the Monday, the habits repeating every week) of
    every person in the household."""
    week = Week(household, random.Random(seed))
    for person in household.people:
        _person_week(week, person, HABITS[person.id], days)
    return week


def _person_week(week: Week, p: Person, habits: Habits, n_days: int = DAYS) -> None:
    rng = week.rng
    # Out of bed each morning (the Sunday night ends on the Monday after), into bed each evening.
    days = [MONDAY + timedelta(days=i) for i in range(n_days + 1)]
    ups = {d: week.jitter(p.wake_on(d), 10) for d in days}
    if p.id == "alex":  # up on Saturdays at 07:20, before the weekend wake time
        ups.update({d: p.at(d, "07:20") for d in days if d.weekday() == 5})
    beds = {d: week.jitter(p.bedtime_on(d), 15) for d in days[:-1]}
    workouts: list[tuple[datetime, datetime, Workout]] = []
    for first in range(0, n_days, 7):
        for w in habits.workouts:
            on = MONDAY + timedelta(days=first + w.weekday)
            start = week.jitter(p.at(on, w.start), 5)
            workouts.append((start, start + timedelta(minutes=w.minutes), w))
    for day in days[:-1]:
        wd = day.weekday()
        up, bed = ups[day], beds[day]
        week.emit(p.id, "bed_motion", up, {"event": "occupancy", "occupied": False})
        # Coffee.
        for when, clock, drink, ml in habits.coffees:
            if wd >= 5 and (when is None and clock < "09:00"):
                continue
            if when is None or when == wd:
                at = week.jitter(p.at(day, clock), 10)
                week.emit(
                    p.id, "coffee_maker", at, {"event": "brew", "drink": drink, "volume_ml": ml}
                )
        if wd >= 5:
            at = up + timedelta(minutes=habits.weekend_coffee_after_min)
            week.emit(
                p.id, "coffee_maker", at, {"event": "brew", "drink": "coffee", "volume_ml": 240}
            )
        for when, clock, mg in habits.logged_caffeine:
            if when == wd:
                week.emit(
                    p.id,
                    "command",
                    p.at(day, clock),
                    {"command": "log", "what": "caffeine", "caffeine_mg": mg},
                )
        for when, clock in habits.alcohol:
            if when == wd:
                week.emit(
                    p.id,
                    "command",
                    week.jitter(p.at(day, clock), 10),
                    {"command": "log", "what": "alcohol"},
                )
        # Heart rate while awake, every minute in a workout.
        todays = [(s, e, w) for s, e, w in workouts if s.date() == day]
        for s, e, w in todays:
            week.emit(
                p.id,
                "fitness_tracker",
                s,
                {"event": "workout_start", "activity": w.activity, "intensity": w.intensity},
            )
            week.emit(p.id, "fitness_tracker", e, {"event": "workout_end"})
        for at in _every(up, bed, timedelta(minutes=5)):
            if any(s <= at < e for s, e, _ in todays):
                continue
            week.emit(
                p.id, "fitness_tracker", at, {"event": "heart_rate", "bpm": rng.randint(58, 86)}
            )
        for s, e, w in todays:
            share = {"light": 0.55, "moderate": 0.68, "vigorous": 0.84}[w.intensity]
            for at in _every(s, e, timedelta(minutes=1)):
                bpm = round(p.max_hr * share + rng.uniform(-6, 6))
                week.emit(p.id, "fitness_tracker", at, {"event": "heart_rate", "bpm": bpm})
        # Stress every 15 minutes awake; held high on the stressful evenings.
        high = [
            (p.at(day, clock), p.at(day, clock) + timedelta(minutes=mins))
            for when, clock, mins in habits.stress
            if when == wd
        ]
        for at in _every(up, bed, timedelta(minutes=15)):
            held = any(a <= at <= b for a, b in high)
            level = rng.randint(78, 90) if held else rng.randint(15, 60)
            week.emit(p.id, "fitness_tracker", at, {"event": "stress", "level": level})
        # Daylight, reported around 13:00 (a lunch walk) where the watch reports it.
        if wd in habits.daylight_days:
            minutes = habits.daylight_fixed.get(wd, rng.choice((6, 10, 18, 25, 40)))
            week.emit(
                p.id,
                "fitness_tracker",
                week.jitter(p.at(day, "13:00"), 20),
                {"event": "sunlight", "minutes": minutes},
            )
        # The night: into bed, small movements every few minutes until getting up.
        week.emit(p.id, "bed_motion", bed, {"event": "occupancy", "occupied": True})
        nxt = ups[day + timedelta(days=1)]
        for at in _every(bed + timedelta(minutes=3), nxt, timedelta(minutes=4)):
            moved = week.jitter(at, 1)
            week.emit(
                p.id,
                "bed_motion",
                moved,
                {
                    "event": "movement",
                    "intensity": round(rng.uniform(0.05, 0.4), 2),
                    "duration_s": round(rng.uniform(0.6, 4.0), 1),
                },
            )
    last_up = ups[days[-1]]
    week.emit(p.id, "bed_motion", last_up, {"event": "occupancy", "occupied": False})


# --------------------------------------------------------------------------------------------
# Running it.


def simulate(tree: Path, config: Path, scenario: Path, out: Path) -> list[dict[str, Any]]:
    """Run `sleepcoach simulate` from the code in `tree`; the nudges it wrote."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    code = "import sys; from integrations.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [
        sys.executable,
        "-c",
        code,
        "simulate",
        "--config",
        str(config),
        str(scenario),
        "--out",
        str(out),
    ]
    result = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"simulate failed in {tree}:\n{result.stderr}")
    errors = [line for line in result.stderr.splitlines() if line.startswith("{")]
    if errors:
        sys.exit(f"simulate refused lines in {tree}:\n" + "\n".join(errors[:5]))
    rows = [json.loads(line) for line in out.read_text().splitlines() if line]
    return [r for r in rows if "rule" in r and "reason" not in r and "message" in r]


@dataclass
class Tally:
    """Nudges counted per person, per local date and per rule, over the week's seven days."""

    by_day: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_rule: Counter[tuple[str, str]] = field(default_factory=Counter)

    @classmethod
    def of(cls, nudges: list[dict[str, Any]]) -> Tally:
        """Count the nudges dated Monday to Sunday."""
        tally = cls()
        first, last = MONDAY.isoformat(), (MONDAY + timedelta(days=DAYS - 1)).isoformat()
        for n in nudges:
            day = datetime.fromisoformat(n["ts"]).astimezone(TZ).date().isoformat()
            if first <= day <= last:
                tally.by_day[n["person"], day] += 1
                tally.by_rule[n["person"], n["rule"]] += 1
        return tally

    def per_day(self, person: str) -> float:
        """Mean nudges per day for a person."""
        return sum(v for (p, _), v in self.by_day.items() if p == person) / DAYS


def report(people: list[str], runs: dict[str, Tally]) -> None:
    """Print the figures of every run side by side."""
    names = list(runs)
    width = max(12, *(len(n) for n in names)) + 2
    head = "".join(f"{n:>{width}}" for n in names)
    print(f"\nnudges per person per day, {MONDAY} to {MONDAY + timedelta(days=DAYS - 1)}")
    print(f"{'person':<28}{head}")
    for p in people:
        print(f"{p:<28}" + "".join(f"{runs[n].per_day(p):>{width}.2f}" for n in names))
    both = [sum(runs[n].per_day(p) for p in people) / len(people) for n in names]
    print(f"{'both (mean)':<28}" + "".join(f"{v:>{width}.2f}" for v in both))
    for p in people:
        print(f"\n{p}: nudges per day by rule (week total in brackets)")
        rules = sorted({r for t in runs.values() for (q, r) in t.by_rule if q == p})
        for r in rules:
            cells = "".join(
                f"{f'{runs[n].by_rule[p, r] / DAYS:.2f} ({runs[n].by_rule[p, r]})':>{width}}"
                for n in names
            )
            print(f"  {r:<26}{cells}")
        print(f"  {'day by day':<26}")
        for i in range(DAYS):
            day = (MONDAY + timedelta(days=i)).isoformat()
            label = f"{day} {(MONDAY + timedelta(days=i)).strftime('%a')}"
            print(f"    {label:<24}" + "".join(f"{runs[n].by_day[p, day]:>{width}}" for n in names))


def export(ref: str, into: Path) -> Path:
    """The code of git revision `ref`, unpacked into `into`."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


#: Run in a tree: which notify services (phones) each nudge of a run goes to, as its Home
#: Assistant bridge decides (`people[].notify` where the config has it).
ROUTE = """
import json, sys
from integrations.config_file import load_config
from integrations.home_assistant import notification_calls
config = load_config(sys.argv[1], env={})
for line in open(sys.argv[2]):
    nudge = json.loads(line)
    if "message" not in nudge or "reason" in nudge:
        continue
    own = list(getattr(config.person(nudge["person"]), "notify", None) or [])
    if own:
        calls = notification_calls(config.homeassistant, nudge, own)
    else:
        calls = notification_calls(config.homeassistant, nudge)
    print(json.dumps([nudge["id"], nudge["person"], [c.service for c in calls]]))
"""


def route(tree: Path, config: Path, nudges: Path) -> list[tuple[str, str, list[str]]]:
    """(nudge id, person, phones) for each nudge of a run, by the tree's own bridge."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-c", ROUTE, str(config), str(nudges)]
    result = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"routing failed in {tree}:\n{result.stderr}")
    return [tuple(json.loads(line)) for line in result.stdout.splitlines()]  # type: ignore[misc]


@dataclass
class HouseRun:
    """One run of the shared-maker week: what it sent and to whom."""

    name: str
    tally: Tally
    #: Caffeine nudge ids the person should not have had (none in the truth), and truth's ids
    #: this run never sent.
    wrong: list[str]
    missed: list[str]
    #: Notifications per phone, and those on a phone that is not the nudge's person's.
    per_phone: Counter[str]
    wrong_phone: int
    questions: int


def household_week(args: argparse.Namespace, tmp: Path) -> int:
    """Two people, one coffee maker: before (a config without shared devices, every phone in one
    list) and after (`person: [alex, sam]`, the drinker answers, each phone its own), against
    the truth (each drink counted for who drank it)."""
    work = args.keep or tmp
    work.mkdir(parents=True, exist_ok=True)
    truth_week = generate(args.seed, HOUSEHOLD)
    before_week = generate(args.seed, SHARED)  # the same messages; its config says "alex"
    after_week = generate(args.seed, SHARED)
    answered = after_week.answer(args.seed + 1, args.unanswered)
    base = export(args.baseline, tmp / "baseline") if args.baseline else REPO
    label = f"base {args.baseline[:10]}" if args.baseline else "this tree"
    setups = [
        ("truth", REPO, HOUSEHOLD.config_yaml(), truth_week),
        (f"before ({label})", base, SHARED_AS_ALEXS.config_yaml(phones="global"), before_week),
        ("after (this tree)", REPO, SHARED.config_yaml(phones="own"), after_week),
    ]
    print(
        f"seed {args.seed}: two people, one coffee maker; {len(after_week.shared_brews)} brews on "
        f"it, {answered} answered by who drank it, the rest left unanswered"
    )
    truth_ids: set[str] = set()
    runs: list[HouseRun] = []
    for i, (name, tree, config_text, week) in enumerate(setups):
        config, scenario, out = (work / f"house-{i}.{x}" for x in ("yaml", "jsonl", "out.jsonl"))
        config.write_text(config_text)
        scenario.write_text("\n".join(week.lines()) + "\n")
        nudges = simulate(tree, config, scenario, out)
        caffeine = {n["id"] for n in nudges if n["rule"].startswith("caffeine.")}
        if i == 0:
            truth_ids = caffeine
            routed: list[tuple[str, str, list[str]]] = []
        else:
            routed = route(tree, config, out)
        per_phone: Counter[str] = Counter()
        wrong_phone = 0
        for _, person, phones in routed:
            for service in phones:
                per_phone[service] += 1
                wrong_phone += service != phone(person)
        runs.append(
            HouseRun(
                name,
                Tally.of(nudges),
                sorted(caffeine - truth_ids),
                sorted(truth_ids - caffeine),
                per_phone,
                wrong_phone,
                sum(1 for n in nudges if n["rule"] == "household.whose"),
            )
        )
        if args.show:
            print(f"\n== {name}")
            for n in nudges:
                print(f"{n['ts'][:16]} {n['person']:<5} {n['rule']:<22} {n['title']}")
    people = [p.id for p in HOUSEHOLD.people]
    report(people, {r.name: r.tally for r in runs})
    width = max(len(r.name) for r in runs) + 2
    print("\nreaching the wrong person (caffeine nudges the truth does not have) / missed")
    for r in runs[1:]:
        print(f"  {r.name:<{width}}wrong {len(r.wrong):>3}   missed {len(r.missed):>3}")
        for nudge_id in r.wrong:
            print(f"  {'':<{width}}  wrong: {nudge_id}")
        for nudge_id in r.missed:
            print(f"  {'':<{width}}  missed: {nudge_id}")
    print("\nHome Assistant notifications per phone per day, and on the wrong phone (week total)")
    for r in runs[1:]:
        phones = "  ".join(f"{p}: {r.per_phone[phone(p)] / DAYS:.2f}" for p in people)
        print(f"  {r.name:<{width}}{phones}   wrong phone {r.wrong_phone}")
    print(f"\nwhose-drink questions in the week (after): {runs[2].questions}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Generate the week, run it (and the baseline's), print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline", metavar="REF", help="also run git revision REF's code")
    parser.add_argument("--keep", type=Path, help="keep config, scenario and nudges here")
    parser.add_argument("--show", action="store_true", help="print every nudge of each run")
    parser.add_argument(
        "--shared",
        action="store_true",
        help="the two share one coffee maker: before (REF, or this tree) against after",
    )
    parser.add_argument(
        "--unanswered",
        type=float,
        default=0.15,
        help="with --shared: the share of shared drinks nobody answers (default 0.15)",
    )
    args = parser.parse_args(argv)
    if args.shared:
        with tempfile.TemporaryDirectory(prefix="sleepcoach-house-") as tmp:
            return household_week(args, Path(tmp))
    with tempfile.TemporaryDirectory(prefix="sleepcoach-week-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        config = work / "week.yaml"
        scenario = work / "week.jsonl"
        config.write_text(HOUSEHOLD.config_yaml())
        week = generate(args.seed)
        scenario.write_text("\n".join(week.lines()) + "\n")
        print(
            f"seed {args.seed}: {len(week.messages)} messages, "
            f"{len(HOUSEHOLD.people)} people, {len(HOUSEHOLD.devices)} devices"
        )
        trees: dict[str, Path] = {}
        if args.baseline:
            trees[f"base {args.baseline[:10]}"] = export(args.baseline, Path(tmp) / "baseline")
        trees["this tree"] = REPO
        runs: dict[str, Tally] = {}
        for i, (name, tree) in enumerate(trees.items()):
            nudges = simulate(tree, config, scenario, work / f"nudges-{i}.jsonl")
            runs[name] = Tally.of(nudges)
            if args.show:
                print(f"\n== {name}")
                for n in nudges:
                    print(f"{n['ts'][:16]} {n['person']:<5} {n['rule']:<22} {n['message']}")
        report([p.id for p in HOUSEHOLD.people], runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
