"""Benchmark: a generated year of one household through `decide()` alone and `sleepcoach simulate`.

Run `python bench/simulate.py [--days 365] [--seed 1] [--keep DIR]`. It generates a year of
messages for a household of two (alex with a coffee maker, sam who logs caffeine by command; each
with a watch and a bed sensor): heart rate every minute, stress every ten minutes awake, bed
movements about once a minute in bed, coffees in the morning and sometimes late, workouts (some
late and vigorous), evenings of high stress or a high heart rate without a workout, daylight
reports, a few nicotine logs, snoozes and acks: about 1.5 million messages. Then, in one run:

- baseline: a bare `json.loads` of every scenario line, the least any replay must do;
- `decide()` alone: the exact (event, now) sequence the simulator produced, replayed through
  `decide()` from a fresh state (timer firings included), in events per second;
- the simulator in-process (`write_run`: line parsing, payload parsing, the timer queue, nudge
  output) and the real `sleepcoach simulate` command in a subprocess (interpreter start-up and
  file I/O included).

The in-process figures run with the collector settings `sleepcoach simulate` uses
(`simulator.tuned_collector`). Timings are wall-clock; CPU time is printed beside them because
a shared machine's other work shows up as the difference.

Targets: ≥ 200,000 events/s through the core; the whole year in under 30 s.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from coach.action import Action
from coach.config import Config
from coach.engine import decide
from coach.event import Event
from coach.nudge import Nudge
from coach.state import CoachState
from integrations import simulator
from integrations.config_file import ConfigFile, load_config

TZ = ZoneInfo("Europe/Berlin")
TARGET_EVENTS_PER_S = 200_000
TARGET_YEAR_S = 30.0

CONFIG_YAML = """\
# The benchmark household: two people, five devices.
timezone: Europe/Berlin
people:
  - id: alex
    bedtime: {default: "22:30", fri: "23:30", sat: "23:30"}
    wake: {default: "06:30", sat: "08:00", sun: "08:00"}
    age: 34
  - id: sam
    bedtime: "23:15"
    wake: "07:15"
    max_hr: 182
devices:
  - {id: bed-alex, kind: bed_motion, topic: home/bedroom/bed/left, person: alex}
  - {id: bed-sam, kind: bed_motion, topic: home/bedroom/bed/right, person: sam}
  - {id: coffee, kind: coffee_maker, topic: home/kitchen/coffee, person: alex}
  - {id: watch-alex, kind: fitness_tracker, topic: tracker/alex, person: alex}
  - {id: watch-sam, kind: fitness_tracker, topic: tracker/sam, person: sam}
"""

# --------------------------------------------------------------------------------------------
# The generated year.


@dataclass
class Day:
    """One person's plan for one local day and the night that follows it."""

    bed_at: float
    wake_at: float
    # (start, end, kind) intervals while awake: "light", "moderate", "vigorous", "hr_high"
    active: list[tuple[float, float, str]] = field(default_factory=list)
    stress_high: tuple[float, float] | None = None
    # (instant, topic, payload) one-off messages
    messages: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)


def _at(day: date, hour: float) -> float:
    """POSIX seconds of a local wall-clock time (hours, may exceed 24) on `day`."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=TZ)
    whole = timedelta(hours=hour)
    # Wall-clock arithmetic: add to the naive local time, then resolve the offset.
    local = (midnight.replace(tzinfo=None) + whole).replace(tzinfo=TZ)
    return local.timestamp()


def _local_iso(t: float) -> str:
    return datetime.fromtimestamp(t, TZ).isoformat(timespec="seconds")


def plan_year(start: date, days: int, rng: random.Random) -> dict[str, list[Day]]:
    """Each person's days: sleep, workouts, drinks, daylight, stress, commands."""
    plans: dict[str, list[Day]] = {"alex": [], "sam": []}
    for i in range(days):
        day = start + timedelta(days=i)
        weekend_night = day.weekday() in (4, 5)
        winter = day.month in (11, 12, 1, 2)
        for person in ("alex", "sam"):
            if person == "alex":
                bedtime = 23.5 if weekend_night else 22.5
                wake_next = 8.0 if (day + timedelta(days=1)).weekday() >= 5 else 6.5
            else:
                bedtime, wake_next = 23.25, 7.25
            bed_at = _at(day, bedtime + rng.uniform(-0.33, 0.4))
            wake_at = _at(day, 24 + wake_next + rng.uniform(-0.15, 0.25))
            plan = Day(bed_at=bed_at, wake_at=wake_at)
            # Drinks: one or two in the morning, now and then one in the afternoon or evening.
            drinks = [rng.uniform(7.2, 8.5)] + (
                [rng.uniform(9.5, 11.5)] if rng.random() < 0.7 else []
            )
            if rng.random() < 0.18:
                drinks.append(rng.uniform(15.0, 19.0))
            for hour in drinks:
                t = _at(day, hour)
                if person == "alex":
                    kind = rng.choice(["coffee", "coffee", "espresso", "cold_brew", "tea", "decaf"])
                    volume = {"espresso": rng.choice([30, 60])}.get(
                        kind, rng.choice([200, 240, 300])
                    )
                    payload = {"event": "brew", "drink": kind, "volume_ml": volume}
                    plan.messages.append((t, "home/kitchen/coffee", payload))
                else:
                    payload = {
                        "command": "log",
                        "what": "caffeine",
                        "caffeine_mg": rng.choice([63, 95, 120]),
                    }
                    plan.messages.append((t, "sleepcoach/sam/command", payload))
            # Workouts: about three a week; a fifth of them in the evening, some vigorous.
            if rng.random() < 0.43:
                evening = rng.random() < 0.2
                begin = rng.uniform(19.0, 21.0) if evening else rng.uniform(12.0, 18.0)
                minutes = rng.uniform(25, 70)
                intensity = rng.choice(["light", "moderate", "moderate", "vigorous"])
                activity = {"light": "yoga", "moderate": "cycling", "vigorous": "running"}[
                    intensity
                ]
                t0 = _at(day, begin)
                t1 = t0 + minutes * 60
                plan.active.append((t0, t1, intensity))
                topic = f"tracker/{person}"
                plan.messages.append(
                    (
                        t0,
                        topic,
                        {"event": "workout_start", "activity": activity, "intensity": intensity},
                    )
                )
                plan.messages.append((t1, topic, {"event": "workout_end"}))
            elif rng.random() < 0.05:
                # A hard ride without pressing start: only the heart rate shows it.
                t0 = _at(day, rng.uniform(20.0, 21.2))
                plan.active.append((t0, t0 + rng.uniform(12, 30) * 60, "hr_high"))
            # Daylight: a couple of reports; short in winter.
            for _ in range(rng.randint(1, 3)):
                t = _at(day, rng.uniform(8.0, 14.5))
                minutes = rng.uniform(0, 8) if winter else rng.uniform(3, 30)
                plan.messages.append(
                    (t, f"tracker/{person}", {"event": "sunlight", "minutes": round(minutes, 1)})
                )
            # A stressful evening now and then: high for 15-60 minutes.
            if rng.random() < 0.12:
                s0 = _at(day, rng.uniform(19.0, 21.5))
                plan.stress_high = (s0, s0 + rng.uniform(15, 60) * 60)
            if person == "sam" and rng.random() < 0.04:
                plan.messages.append(
                    (
                        _at(day, rng.uniform(20.0, 22.5)),
                        "sleepcoach/sam/command",
                        {"command": "log", "what": "nicotine"},
                    )
                )
            # Answers to the wind-down (45 min before bedtime): sam acks it, alex snoozes it.
            winddown = _at(day, bedtime - 0.75)
            nudge_id = f"winddown.stretch:{person}:{day.isoformat()}"
            if person == "sam" and rng.random() < 0.5:
                plan.messages.append(
                    (
                        winddown + 240,
                        "sleepcoach/sam/command",
                        {"command": "ack", "nudge_id": nudge_id},
                    )
                )
            elif person == "alex" and rng.random() < 0.2:
                plan.messages.append(
                    (
                        winddown + 180,
                        "sleepcoach/alex/command",
                        {"command": "snooze", "nudge_id": nudge_id, "minutes": 10},
                    )
                )
            plans[person].append(plan)
    return plans


Line = tuple[float, int, bytes]


def _line(t: float, topic: str, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload, separators=(",", ":"))
    return f'{{"ts":"{_local_iso(t)}","topic":"{topic}","payload":{body}}}\n'.encode()


def heart_and_stress(
    person: str, days: list[Day], start: float, end: float, rng: random.Random
) -> Iterator[Line]:
    """A heart rate every minute and, while awake, stress every ten minutes, from the plan."""
    topic = f"tracker/{person}"
    intervals: list[tuple[float, float, str]] = []
    for d in days:
        intervals.extend(d.active)
        intervals.append((d.bed_at, d.wake_at, "asleep"))
    intervals.sort()
    stress = sorted(d.stress_high for d in days if d.stress_high is not None)
    bpm_of = {
        "asleep": (48, 60),
        "awake": (62, 88),
        "light": (92, 108),
        "moderate": (112, 136),
        "vigorous": (148, 172),
        "hr_high": (150, 165),
    }
    i = j = 0
    t = start
    n = 0
    while t < end:
        while i < len(intervals) and intervals[i][1] <= t:
            i += 1
        mode = intervals[i][2] if i < len(intervals) and intervals[i][0] <= t else "awake"
        lo, hi = bpm_of[mode]
        ts = _local_iso(t)
        bpm = rng.randint(lo, hi)
        yield (
            t,
            0,
            (
                f'{{"ts":"{ts}","topic":"{topic}","payload":{{"event":"heart_rate","bpm":{bpm},"ts":"{ts}"}}}}\n'
            ).encode(),
        )
        if mode != "asleep" and n % 10 == 0:
            while j < len(stress) and stress[j][1] <= t:
                j += 1
            high = j < len(stress) and stress[j][0] <= t
            level = rng.randint(78, 92) if high else rng.randint(15, 55)
            yield (
                t,
                1,
                (
                    f'{{"ts":"{ts}","topic":"{topic}","payload":{{"event":"stress","level":{level}}}}}\n'
                ).encode(),
            )
        t += 60.0
        n += 1


def bed(person: str, side: str, days: list[Day], rng: random.Random) -> Iterator[Line]:
    """Occupancy at bedtime and wake, a movement about once a minute in between."""
    topic = f"home/bedroom/bed/{side}"
    for d in days:
        yield d.bed_at, 2, _line(d.bed_at, topic, {"event": "occupancy", "occupied": True})
        t = d.bed_at + rng.uniform(20, 60)
        trip = d.bed_at + rng.uniform(3, 5) * 3600 if rng.random() < 0.25 else None
        while t < d.wake_at - 30:
            if trip is not None and t >= trip:
                yield t, 2, _line(t, topic, {"event": "occupancy", "occupied": False})
                t += rng.uniform(180, 420)
                yield t, 2, _line(t, topic, {"event": "occupancy", "occupied": True})
                trip = None
                continue
            twitch = rng.random() < 0.03
            intensity = round(rng.uniform(0.5, 0.95) if twitch else rng.uniform(0.02, 0.3), 2)
            duration = round(rng.uniform(0.3, 2.0) if twitch else rng.uniform(1.0, 20.0), 1)
            ts = _local_iso(t)
            yield (
                t,
                2,
                (
                    f'{{"ts":"{ts}","topic":"{topic}","payload":{{"event":"movement",'
                    f'"intensity":{intensity},"duration_s":{duration},"ts":"{ts}"}}}}\n'
                ).encode(),
            )
            t += rng.uniform(45, 75)
        yield d.wake_at, 2, _line(d.wake_at, topic, {"event": "occupancy", "occupied": False})


def one_offs(days: list[Day]) -> Iterator[Line]:
    """Drinks, workouts, daylight, logs and commands, in time order."""
    items = sorted(
        (t, topic, json.dumps(p, sort_keys=True)) for d in days for t, topic, p in d.messages
    )
    for t, topic, payload in items:
        yield t, 3, _line(t, topic, json.loads(payload))


def generate(path: Path, days: int, seed: int) -> int:
    """Write the household's year as a scenario file; return the number of lines."""
    rng = random.Random(seed)
    start = date(2026, 1, 1)
    plans = plan_year(start, days, rng)
    t0, t1 = _at(start, 0), _at(start + timedelta(days=days), 0)
    streams = [
        heart_and_stress("alex", plans["alex"], t0, t1, random.Random(seed + 1)),
        heart_and_stress("sam", plans["sam"], t0 + 17, t1, random.Random(seed + 2)),
        bed("alex", "left", plans["alex"], random.Random(seed + 3)),
        bed("sam", "right", plans["sam"], random.Random(seed + 4)),
        one_offs(plans["alex"]),
        one_offs(plans["sam"]),
    ]
    count = 0
    with path.open("wb") as out:
        for _, _, line in heapq.merge(*streams, key=lambda x: (x[0], x[1])):
            out.write(line)
            count += 1
    return count


# --------------------------------------------------------------------------------------------
# The measurements.


def timed(label: str, fn: Any) -> tuple[float, float, Any]:
    """Run fn() once; print and return wall and CPU seconds and its result."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  {label:<46} {wall:7.2f} s wall {cpu:7.2f} s CPU", flush=True)
    return wall, cpu, result


def baseline(path: Path) -> int:
    """A bare json.loads of every line."""
    n = 0
    loads = json.loads
    with path.open("rb") as f:
        for line in f:
            loads(line)
            n += 1
    return n


def simulate_in_process(config: ConfigFile, path: Path) -> tuple[int, int]:
    """The simulator's whole path, output discarded; (nudges, error records)."""
    out, err = io.StringIO(), io.StringIO()
    with path.open("rb") as f:
        nudges = simulator.write_run(config, f, out, err)
    return nudges, err.getvalue().count("\n")


def record_decisions(
    config: ConfigFile, path: Path
) -> tuple[list[tuple[Event, datetime]], Counter[str]]:
    """Every (event, now) the simulator hands to decide(), and the nudges by rule."""
    seen: list[tuple[Event, datetime]] = []

    def recording(state: CoachState, event: Event, now: datetime, cfg: Config) -> list[Action]:
        seen.append((event, now))
        return decide(state, event, now, cfg)

    rules: Counter[str] = Counter()
    with path.open("rb") as f:
        for item in simulator.simulate(config, f, decide=recording):
            if isinstance(item, Nudge):
                rules[item.rule] += 1
    return seen, rules


def decide_alone(config: Config, decisions: list[tuple[Event, datetime]]) -> int:
    """The recorded sequence through decide() from a fresh state."""
    state = CoachState()
    for event, now in decisions:
        decide(state, event, now, config)
    return len(decisions)


def best_of(runs: int, fn: Any) -> float:
    """The fastest of `runs` wall-clock timings of fn(), in seconds (others share this machine)."""
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    """Generate the year, run every measurement, print figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="days to generate (default 365)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--keep", type=Path, help="keep the config and scenario in this directory")
    parser.add_argument("--no-cli", action="store_true", help="skip the subprocess run")
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="sleepcoach-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "household.yaml"
    config_path.write_text(CONFIG_YAML, encoding="utf-8")
    scenario = workdir / "year.jsonl"
    config = load_config(config_path)

    print(
        f"sleepcoach simulate benchmark: {args.days} days, seed {args.seed}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    *_, messages = timed(
        "generate (not a figure)", lambda: generate(scenario, args.days, args.seed)
    )
    print(f"  {messages:,} messages, {scenario.stat().st_size / 1e6:.0f} MB, in {scenario}")

    base_wall, _, _ = timed("baseline: json.loads of every line", lambda: baseline(scenario))
    with simulator.tuned_collector():  # as `sleepcoach simulate` runs it
        sim_wall, sim_cpu, (nudges, error_records) = timed(
            "simulator in-process (write_run)", lambda: simulate_in_process(config, scenario)
        )
    *_, (decisions, rules) = timed(
        "record decide()'s inputs (not a figure)", lambda: record_decisions(config, scenario)
    )
    events = len(decisions)
    with simulator.tuned_collector():  # the recorded events are frozen out of collections too
        core_s = best_of(3, lambda: decide_alone(config.core, decisions))
    print(f"  {'decide() alone, recorded inputs, best of 3':<46} {core_s:7.2f} s wall")
    cli_s = None
    if not args.no_cli:
        script = str(Path(sys.executable).with_name("sleepcoach"))
        command = [script, "simulate", "--config", str(config_path), str(scenario)]
        start = time.perf_counter()
        done = subprocess.run([*command, "--out", os.devnull], capture_output=True, check=False)
        cli_s = time.perf_counter() - start
        label = "sleepcoach simulate (subprocess)"
        print(f"  {label:<46} {cli_s:7.2f} s wall, exit {done.returncode}")

    core_rate = events / core_s
    print()
    print(
        f"events decided (messages + timers): {events:,}; nudges {nudges:,}; errors {error_records}"
    )
    print("nudges by rule: " + ", ".join(f"{r} {n}" for r, n in sorted(rules.items())))
    print()
    print(
        f"decide() alone        {core_rate:10,.0f} events/s    target ≥ {TARGET_EVENTS_PER_S:,}"
        f"  ({core_rate / TARGET_EVENTS_PER_S:.2f}× the target)"
    )
    print(
        f"simulator in-process  {messages / sim_wall:10,.0f} messages/s  {sim_wall:5.1f} s wall, "
        f"{sim_cpu:5.1f} s CPU for {args.days} days"
    )
    if cli_s is not None:
        year_s = cli_s * 365 / args.days
        print(
            f"sleepcoach simulate   {messages / cli_s:10,.0f} messages/s  {cli_s:5.1f} s "
            f"(a year: {year_s:.1f} s, target < {TARGET_YEAR_S:.0f} s, "
            f"{year_s / TARGET_YEAR_S:.2f}× the budget)"
        )
    print(f"baseline json.loads   {messages / base_wall:10,.0f} lines/s     {base_wall:5.1f} s")
    print(
        f"ratios: simulator / json.loads {sim_wall / base_wall:.1f}×, decide() / simulator "
        f"{core_s / sim_wall:.0%}; µs per message: simulator {sim_wall / messages * 1e6:.1f}, "
        f"decide() {core_s / events * 1e6:.1f}, json.loads {base_wall / messages * 1e6:.2f}"
    )
    if args.keep is None:
        scenario.unlink()
        config_path.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
