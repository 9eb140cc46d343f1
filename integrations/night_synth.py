"""Seeded synthetic nights with ground truth: raw bed acceleration and native bed events.

No public data set pairs bed or ankle acceleration with scored limb movements (none was found
for this project), so the tests, the benchmark and the rule scenarios use this generator.
It is deliberately independent of ``coach``: the truth it reports comes from its own small
implementation of the WASM 2016 / AASM 2018 series rules applied to the movements it placed, so
the coach's scorer is checked against a second implementation, not against itself.

A night: the recording starts, the person gets into bed and settles (fidgets, posture changes),
falls asleep, may have hypnic jerks in the first minutes, then sleeps with occasional posture
changes, random twitches and any number of periodic limb-movement trains, may get up for the
bathroom, and finally gets up around the wake time. Around it: sensor noise that drifts slowly,
breathing (0.2-0.3 Hz) and heartbeat (ballistocardiogram, about 1 Hz) motion while in bed,
single-sample glitches, and environmental bumps (a door, a truck, a partner) that are not body
movements but look like them.

Outputs: raw three-axis acceleration in g with gravity on z (``numpy`` array, ``rate_hz``), the
native events a bed device would publish (``movement`` with its own detection floor and
measurement error, ``occupancy``), and the truth as a :class:`NightTruth`. Intensity 1.0 is a
burst of 0.2 g RMS at the sensor (:data:`FULL_SCALE_G`, the same scale the coach's detector
assumes by default).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, TextIO

import numpy as np
from numpy.typing import NDArray

#: Intensity 1.0 is 0.2 g RMS at the sensor (matches coach.limb_movement.FULL_SCALE_G).
FULL_SCALE_G: Final = 0.2
#: WASM 2016 / AASM 2018 limits, restated here so the truth does not depend on the coach.
_LM_MIN_S, _LM_MAX_S, _IMI_MAX_S, _SERIES_MIN = 0.5, 10.0, 90.0, 4
#: An LM ends only at the start of 0.5 s of quiet (WASM 2016, AASM 2018).
_LM_GAP_S: Final = 0.5
_IMI_MIN_S: Final = {"wasm": 10.0, "aasm": 5.0}
#: Movement kinds the generator places; all but "bump" are the sleeper's own movements.
KINDS: Final = ("entry", "exit", "fidget", "posture", "hypnic", "plm", "twitch", "bump")


@dataclass(frozen=True, slots=True)
class NoiseProfile:
    """How hard a night is: sensor, body and environment noise, and the native device's errors."""

    name: str
    sensor_g: float  # white noise per axis, g RMS (MEMS parts at 50 Hz: about 1-5 mg)
    drift: float  # slow relative swing of the sensor noise over the night
    breathing_g: float  # breathing motion at the sensor, amplitude in g
    heartbeat_g: float  # ballistocardiogram, amplitude in g
    spikes_per_hour: float  # single-sample glitches (bus errors, knocks on the frame)
    spike_g: float  # their size
    bumps_per_hour: float  # environmental bumps that look like movements
    device_min_intensity: float  # a native device reports nothing weaker than this
    device_intensity_sd: float  # log-normal spread of the reported intensity
    device_duration_sd: float  # relative spread of the reported duration
    device_time_sd_s: float  # spread of the reported onset


#: Four levels, from a quiet sensor on a solid frame to a cheap, noisy one on a springy bed in a
#: house with traffic ("harsh": twice the sensor noise of "high", three bumps an hour, and a
#: device that misses movements below intensity 0.12 and misjudges the rest by ±35 %).
NOISE_PROFILES: Final[dict[str, NoiseProfile]] = {
    "low": NoiseProfile("low", 0.001, 0.1, 0.003, 0.0005, 0.0, 0.0, 0.2, 0.03, 0.10, 0.10, 0.05),
    "medium": NoiseProfile(
        "medium", 0.0025, 0.2, 0.006, 0.001, 2.0, 0.05, 0.5, 0.05, 0.15, 0.15, 0.10
    ),
    "high": NoiseProfile("high", 0.005, 0.3, 0.010, 0.002, 6.0, 0.08, 1.0, 0.08, 0.25, 0.20, 0.20),
    "harsh": NoiseProfile(
        "harsh", 0.010, 0.4, 0.015, 0.003, 12.0, 0.15, 3.0, 0.12, 0.35, 0.30, 0.30
    ),
}


@dataclass(frozen=True, slots=True)
class PlmTrain:
    """A periodic limb-movement train: ``count`` LMs every ``interval_s`` (± ``jitter``)."""

    start_after_onset_s: float
    interval_s: float
    count: int
    intensity: float = 0.3  # the train's median intensity; each LM varies around it
    jitter: float = 0.12  # relative SD of each interval


@dataclass(frozen=True, slots=True)
class NightSpec:
    """Everything that defines a night; the same spec and seed give the same night."""

    start: datetime  # the recording's first sample (aware)
    wake: datetime  # the person's scheduled wake time (aware)
    bed_entry_s: float  # seconds after start when the person gets into bed
    settle_s: float  # at most this long from entry to sleep onset
    final_exit_s: float  # seconds after start when the person finally gets up
    plm_trains: tuple[PlmTrain, ...] = ()
    hypnic_jerks: int = 1
    twitches_per_hour: float = 3.0
    posture_changes_per_hour: float = 2.5
    bathroom_trips: int = 0
    noise: NoiseProfile = NOISE_PROFILES["medium"]
    rate_hz: float = 50.0
    seed: int = 0

    def __post_init__(self) -> None:
        """Refuse naive times and an impossible order of events."""
        for ts in (self.start, self.wake):
            if ts.tzinfo is None or ts.utcoffset() is None:
                raise ValueError("start and wake must be aware datetimes")
        if not 0 <= self.bed_entry_s < self.final_exit_s:
            raise ValueError("need 0 <= bed_entry_s < final_exit_s")
        if self.rate_hz <= 0:
            raise ValueError("rate_hz must be > 0")


@dataclass(frozen=True, slots=True)
class SynthMovement:
    """A movement the generator placed, with its true onset, duration, intensity and kind."""

    onset: datetime
    duration_s: float
    intensity: float
    kind: str

    @property
    def is_body(self) -> bool:
        """True for the sleeper's own movements (not environmental bumps)."""
        return self.kind != "bump"

    @property
    def is_limb_movement(self) -> bool:
        """True for a body movement of 0.5-10 s, a candidate LM by WASM 2016 / AASM 2018."""
        return self.is_body and _LM_MIN_S <= self.duration_s <= _LM_MAX_S


@dataclass(frozen=True, slots=True)
class NightTruth:
    """What really happened, scored by the generator's own reference implementation."""

    sleep_onset: datetime
    wake: datetime
    bed_stays: tuple[tuple[datetime, datetime], ...]
    time_in_bed_s: float
    asleep_s: float
    lm_onsets: tuple[datetime, ...]
    plm_onsets: tuple[datetime, ...]  # LMs in WASM series, after sleep onset
    plm_series: int
    plm_index: float  # WASM 2016, per hour asleep
    plm_index_aasm: float  # AASM 2018, per hour asleep
    hypnic_jerk_onsets: tuple[datetime, ...]

    @property
    def hypnic_jerks(self) -> int:
        """How many hypnic jerks were placed."""
        return len(self.hypnic_jerk_onsets)


@dataclass(frozen=True)
class SynthNight:
    """A generated night: its spec, truth, movements, raw acceleration and native events."""

    spec: NightSpec
    truth: NightTruth
    movements: tuple[SynthMovement, ...]
    events: tuple[dict[str, Any], ...]
    accel: NDArray[np.float64] | None = field(default=None, repr=False)

    @property
    def accel_start(self) -> datetime:
        """When the first raw sample was taken."""
        return self.spec.start

    @property
    def rate_hz(self) -> float:
        """The raw sample rate."""
        return self.spec.rate_hz

    def accel_chunks(self, chunk_s: float = 1.0) -> Iterable[tuple[datetime, NDArray[np.float64]]]:
        """The raw samples in chunks of ``chunk_s`` seconds, each with its start time."""
        if self.accel is None:
            return
        step = max(1, round(chunk_s * self.rate_hz))
        t0 = self.spec.start.timestamp()
        tz = self.spec.start.tzinfo
        for i in range(0, self.accel.shape[0], step):
            yield datetime.fromtimestamp(t0 + i / self.rate_hz, tz), self.accel[i : i + step]


# --- Drawing a night ---------------------------------------------------------------------------


def random_spec(
    seed: int,
    start: datetime,
    *,
    noise: str | NoiseProfile = "medium",
    plm_index: float | None = None,
    hypnic_jerks: int | None = None,
    rate_hz: float = 50.0,
) -> NightSpec:
    """Draw a plausible night starting at ``start``; ``plm_index`` (per hour asleep) and
    ``hypnic_jerks`` are drawn too unless given. The same arguments give the same spec."""
    rng = np.random.default_rng([seed, 1])
    profile = NOISE_PROFILES[noise] if isinstance(noise, str) else noise
    entry = float(rng.uniform(60, 600))
    settle = float(rng.uniform(5, 40)) * 60
    in_bed_h = float(rng.uniform(6.5, 8.5))
    t0 = start.timestamp()
    wake_s = entry + in_bed_h * 3600
    wake = datetime.fromtimestamp(round((t0 + wake_s) / 900) * 900, start.tzinfo)
    final_exit = wake.timestamp() - t0 + float(rng.uniform(-40, 30)) * 60
    if plm_index is None:
        # A third without PLMs, a third around the 15/h limit, a third clearly above it.
        band = int(rng.integers(3))
        plm_index = float(rng.uniform(*((0, 3), (5, 25), (25, 60))[band]))
    if hypnic_jerks is None:
        hypnic_jerks = int(rng.choice([0, 1, 1, 2, 3]))
    asleep_h = (final_exit - entry - settle) / 3600
    trains = _draw_trains(rng, plm_index * asleep_h, (final_exit - entry - settle) - 2400)
    return NightSpec(
        start=start,
        wake=wake,
        bed_entry_s=entry,
        settle_s=settle,
        final_exit_s=final_exit,
        plm_trains=trains,
        hypnic_jerks=hypnic_jerks,
        twitches_per_hour=float(rng.uniform(0, 8)),
        posture_changes_per_hour=float(rng.uniform(1.5, 4)),
        bathroom_trips=int(rng.random() < 0.35),
        noise=profile,
        rate_hz=rate_hz,
        seed=seed,
    )


def _draw_trains(rng: np.random.Generator, total: float, room_s: float) -> tuple[PlmTrain, ...]:
    """Split about ``total`` LMs into trains of 4-120 placed in ``room_s`` after onset + 15 min."""
    counts: list[int] = []
    left = round(total)
    while left >= _SERIES_MIN:
        n = min(left, int(rng.integers(8, 121)))
        if 0 < left - n < _SERIES_MIN:
            n = left
        counts.append(n)
        left -= n
    intervals = rng.uniform(15, 45, len(counts))
    lengths = [c * i for c, i in zip(counts, intervals, strict=True)]
    slack = max(0.0, room_s - sum(lengths))
    gaps = rng.dirichlet(np.ones(len(counts) + 1)) * slack if counts else []
    trains: list[PlmTrain] = []
    at = 15 * 60.0
    for count, interval, length, gap in zip(counts, intervals, lengths, gaps, strict=False):
        at += float(gap)
        trains.append(PlmTrain(at, float(interval), count, intensity=float(rng.uniform(0.1, 0.5))))
        at += length
    return tuple(trains)


def random_night(
    seed: int,
    start: datetime,
    *,
    noise: str | NoiseProfile = "medium",
    plm_index: float | None = None,
    hypnic_jerks: int | None = None,
    with_accel: bool = True,
) -> SynthNight:
    """Draw and generate a night (see :func:`random_spec` and :func:`generate_night`)."""
    spec = random_spec(seed, start, noise=noise, plm_index=plm_index, hypnic_jerks=hypnic_jerks)
    return generate_night(spec, with_accel=with_accel)


# --- Generating it -----------------------------------------------------------------------------


class _Placed:
    """Movements in seconds after the recording start, while a night is being built."""

    def __init__(self) -> None:
        self.items: list[tuple[float, float, float, str]] = []

    def add(self, onset: float, duration: float, intensity: float, kind: str) -> float:
        self.items.append((onset, duration, float(min(1.0, max(0.0, intensity))), kind))
        return onset + duration


def generate_night(spec: NightSpec, *, with_accel: bool = True) -> SynthNight:
    """Generate the night a spec describes: movements, truth, native events and raw samples."""
    rng = np.random.default_rng([spec.seed, 2])
    placed = _Placed()
    stays, onset = _place_body(rng, spec, placed)
    _place_sleep(rng, spec, placed, stays, onset)
    end_s = spec.final_exit_s + float(rng.uniform(60, 300))
    for t in _poisson(rng, spec.noise.bumps_per_hour, 0.0, end_s):
        placed.add(t, float(rng.uniform(0.3, 3.0)), float(rng.uniform(0.04, 0.25)), "bump")
    items = sorted(placed.items)
    t0 = spec.start.timestamp()
    tz = spec.start.tzinfo

    def at(s: float) -> datetime:
        return datetime.fromtimestamp(t0 + s, tz)

    movements = tuple(SynthMovement(at(o), d, i, k) for o, d, i, k in items)
    truth = _truth(spec, movements, [(at(a), at(b)) for a, b in stays], at(onset))
    events = _device_events(rng, spec, items, stays, at)
    accel = _accel(rng, spec, items, stays, end_s) if with_accel else None
    return SynthNight(spec=spec, truth=truth, movements=movements, events=events, accel=accel)


def _poisson(rng: np.random.Generator, per_hour: float, a: float, b: float) -> list[float]:
    """Event times of a Poisson process in ``[a, b)`` seconds."""
    if per_hour <= 0 or b <= a:
        return []
    n = int(rng.poisson(per_hour * (b - a) / 3600))
    return sorted(rng.uniform(a, b, n).tolist())


def _place_body(
    rng: np.random.Generator, spec: NightSpec, placed: _Placed
) -> tuple[list[tuple[float, float]], float]:
    """Getting in, settling, bathroom trips and getting up; returns the stays and sleep onset."""
    entry = spec.bed_entry_s
    t = placed.add(entry, float(rng.uniform(8, 20)), float(rng.uniform(0.5, 1.0)), "entry")
    # Settling: no quiet stretch near 10 min, or the person would already be asleep.
    while True:
        gap = float(rng.uniform(15, 300))
        if t + gap > entry + spec.settle_s:
            break
        if rng.random() < 0.25:
            t = placed.add(
                t + gap, float(rng.uniform(10, 30)), float(rng.uniform(0.3, 0.8)), "posture"
            )
        else:
            t = placed.add(
                t + gap, float(rng.uniform(1, 6)), float(rng.uniform(0.12, 0.45)), "fidget"
            )
    onset = t
    stays: list[tuple[float, float]] = []
    stay_start = entry
    exit_final = spec.final_exit_s
    for _ in range(spec.bathroom_trips):
        # At least 1.5 h after falling asleep or coming back, and before getting up.
        lo, hi = max(onset, stay_start) + 5400, exit_final - 5400
        if hi <= lo:
            break
        out = float(rng.uniform(lo, hi))
        back = out + float(rng.uniform(120, 600))
        d_out = float(rng.uniform(5, 15))
        placed.add(out - d_out, d_out, float(rng.uniform(0.5, 1.0)), "exit")
        stays.append((stay_start, out))
        r = placed.add(back, float(rng.uniform(5, 15)), float(rng.uniform(0.5, 1.0)), "entry")
        for _ in range(int(rng.integers(1, 4))):
            r = placed.add(
                r + float(rng.uniform(20, 120)),
                float(rng.uniform(1, 6)),
                float(rng.uniform(0.12, 0.4)),
                "fidget",
            )
        stay_start = back
    # Waking up: a few posture changes in the last quarter hour, then getting out.
    d_out = float(rng.uniform(5, 15))
    for w in sorted(rng.uniform(exit_final - 900, exit_final - 60, int(rng.integers(1, 4)))):
        placed.add(
            float(w) - 30, float(rng.uniform(10, 25)), float(rng.uniform(0.3, 0.8)), "posture"
        )
    placed.add(exit_final - d_out, d_out, float(rng.uniform(0.5, 1.0)), "exit")
    stays.append((stay_start, exit_final))
    return stays, onset


def _place_sleep(
    rng: np.random.Generator,
    spec: NightSpec,
    placed: _Placed,
    stays: list[tuple[float, float]],
    onset: float,
) -> None:
    """Hypnic jerks, posture changes, twitches and PLM trains while asleep and in bed."""

    def in_bed(t: float, margin: float = 0.0) -> bool:
        return any(a + margin <= t < b - margin for a, b in stays) and t >= onset

    jerks = sorted(rng.uniform(0, 600, spec.hypnic_jerks).tolist())
    last = -math.inf
    for j in jerks:
        t = max(onset + j, last + 20)
        last = placed.add(t, float(rng.uniform(0.25, 1.2)), float(rng.uniform(0.55, 1.0)), "hypnic")
    wake_period = spec.final_exit_s - 900
    for t in _poisson(rng, spec.posture_changes_per_hour, onset + 900, wake_period):
        if in_bed(t, 120):
            placed.add(t, float(rng.uniform(10, 40)), float(rng.uniform(0.25, 0.9)), "posture")
    for t in _poisson(rng, spec.twitches_per_hour, onset, wake_period):
        if in_bed(t, 60):
            brief = rng.random() < 0.5
            duration = float(rng.uniform(0.1, 0.45) if brief else rng.uniform(0.6, 3.0))
            intensity = float(min(1.0, 0.06 * math.exp(0.6 * rng.standard_normal())))
            placed.add(t, duration, intensity, "twitch")
    for train in spec.plm_trains:
        imis = train.interval_s * (1 + train.jitter * rng.standard_normal(train.count - 1))
        times = onset + train.start_after_onset_s + np.concatenate([[0.0], np.cumsum(imis)])
        durations = np.clip(1.8 * np.exp(0.4 * rng.standard_normal(train.count)), 0.6, 8.0)
        strengths = train.intensity * np.exp(0.35 * rng.standard_normal(train.count))
        for t, d, i in zip(times.tolist(), durations.tolist(), strengths.tolist(), strict=True):
            if in_bed(t, 60) and t < wake_period:
                placed.add(t, d, i, "plm")


def _truth(
    spec: NightSpec,
    movements: Sequence[SynthMovement],
    stays: list[tuple[datetime, datetime]],
    onset: datetime,
) -> NightTruth:
    """Score the placed movements with the generator's own reference rules."""
    t_on = onset.timestamp()
    bounds = [(a.timestamp(), b.timestamp()) for a, b in stays]
    asleep = sum(max(0.0, b - max(a, t_on)) for a, b in bounds)
    in_bed = [m for m in movements if any(a <= m.onset.timestamp() < b for a, b in bounds)]
    body = [m for m in in_bed if m.is_body]
    plm = {rules: _reference_plm(body, bounds, t_on, rules) for rules in _IMI_MIN_S}
    hours = asleep / 3600
    return NightTruth(
        sleep_onset=onset,
        wake=spec.wake,
        bed_stays=tuple(stays),
        time_in_bed_s=sum(b - a for a, b in bounds),
        asleep_s=asleep,
        lm_onsets=tuple(m.onset for m in body if m.is_limb_movement),
        plm_onsets=tuple(m.onset for m in plm["wasm"][0]),
        plm_series=plm["wasm"][1],
        plm_index=len(plm["wasm"][0]) / hours if hours > 0 else 0.0,
        plm_index_aasm=len(plm["aasm"][0]) / hours if hours > 0 else 0.0,
        hypnic_jerk_onsets=tuple(m.onset for m in movements if m.kind == "hypnic"),
    )


def _one_movement_each(stay: Sequence[SynthMovement]) -> list[tuple[SynthMovement, float]]:
    """Movements (in onset order) that overlap or lie less than 0.5 s apart, as one: the first
    of each group with the group's whole duration (WASM 2016: an LM ends only at the start of
    0.5 s below the offset level)."""
    merged: list[tuple[SynthMovement, float]] = []
    end = -math.inf
    for m in stay:
        t = m.onset.timestamp()
        if merged and t - end < _LM_GAP_S - 1e-6:
            end = max(end, t + m.duration_s)
            first = merged[-1][0]
            merged[-1] = (first, end - first.onset.timestamp())
        else:
            merged.append((m, m.duration_s))
            end = t + m.duration_s
    return merged


def _reference_plm(
    body: Sequence[SynthMovement], bounds: list[tuple[float, float]], t_on: float, rules: str
) -> tuple[list[SynthMovement], int]:
    """LMs in series after sleep onset, and the number of such series.

    Per stay in bed: movements closer than 0.5 s are one; walk them; a movement over 10 s
    closes the run; an interval under the minimum or over 90 s closes the run and the LM
    starts the next (WASM 2016; AASM 2018 with a 5 s minimum; PLMScoRe reads the standard so
    for the short interval).
    """
    imi_min = _IMI_MIN_S[rules]
    runs: list[list[SynthMovement]] = []
    for a, b in bounds:
        stay = sorted(
            (m for m in body if a <= m.onset.timestamp() < b), key=lambda m: m.onset.timestamp()
        )
        run: list[SynthMovement] = []
        prev: float | None = None
        for m, duration in _one_movement_each(stay):
            t = m.onset.timestamp()
            if duration < _LM_MIN_S:
                continue
            if duration > _LM_MAX_S:
                runs.append(run)
                run, prev = [], None
                continue
            if prev is not None and not imi_min <= t - prev <= _IMI_MAX_S:
                runs.append(run)
                run = []
            run.append(m)
            prev = t
        runs.append(run)
    series = [r for r in runs if len(r) >= _SERIES_MIN and r[-1].onset.timestamp() >= t_on]
    return [m for r in series for m in r if m.onset.timestamp() >= t_on], len(series)


def _device_events(
    rng: np.random.Generator,
    spec: NightSpec,
    items: Sequence[tuple[float, float, float, str]],
    stays: list[tuple[float, float]],
    at: Callable[[float], datetime],
) -> tuple[dict[str, Any], ...]:
    """What a native bed device would publish: its own detection floor and measurement error."""
    noise = spec.noise
    events: list[tuple[float, dict[str, Any]]] = []
    for a, b in stays:
        for t, occupied in (
            (a + float(rng.uniform(0, 1)), True),
            (b + float(rng.uniform(0, 1)), False),
        ):
            events.append((t, {"event": "occupancy", "occupied": occupied}))
    for onset, duration, intensity, _kind in items:
        seen = intensity * math.exp(noise.device_intensity_sd * float(rng.standard_normal()))
        if seen < noise.device_min_intensity:
            continue
        measured = duration * max(0.2, 1 + noise.device_duration_sd * float(rng.standard_normal()))
        t = onset + noise.device_time_sd_s * float(rng.standard_normal())
        events.append(
            (
                t,
                {
                    "event": "movement",
                    "intensity": round(min(1.0, seen), 3),
                    "duration_s": round(measured, 2),
                },
            )
        )
    events.sort(key=lambda e: e[0])
    return tuple({**e, "ts": at(t).isoformat(timespec="milliseconds")} for t, e in events)


def _accel(
    rng: np.random.Generator,
    spec: NightSpec,
    items: Sequence[tuple[float, float, float, str]],
    stays: list[tuple[float, float]],
    end_s: float,
) -> NDArray[np.float64]:
    """Raw samples in g, gravity on z: noise, breathing, heartbeat, movements, glitches."""
    noise, rate = spec.noise, spec.rate_hz
    n = round(end_s * rate)
    t = np.arange(n) / rate
    slow = 2 * np.pi * t / float(rng.uniform(3600, 3 * 3600)) + float(rng.uniform(0, 2 * np.pi))
    acc = rng.standard_normal((n, 3)) * (noise.sensor_g * (1 + noise.drift * np.sin(slow)))[:, None]

    # Gravity: a slight, fixed tilt that shifts a little with every posture change.
    knots, tilt_x, tilt_y = [0.0], [float(rng.normal(0, 0.02))], [float(rng.normal(0, 0.02))]
    for onset, duration, _i, kind in sorted(items):
        if kind in ("posture", "entry", "exit"):
            knots += [onset, onset + duration]
            tilt_x += [tilt_x[-1], tilt_x[-1] + float(rng.normal(0, 0.005))]
            tilt_y += [tilt_y[-1], tilt_y[-1] + float(rng.normal(0, 0.005))]
    gx, gy = np.interp(t, knots, tilt_x), np.interp(t, knots, tilt_y)
    acc[:, 0] += gx
    acc[:, 1] += gy
    acc[:, 2] += np.sqrt(1 - gx * gx - gy * gy)

    # Breathing and heartbeat while someone lies in bed.
    bed = np.zeros(n)
    for a, b in stays:
        bed[int(a * rate) : int(b * rate)] = 1.0
    breath_hz = float(rng.uniform(0.2, 0.3)) + 0.02 * np.sin(slow * 3.1)
    breath = np.sin(2 * np.pi * np.cumsum(breath_hz) / rate) * (1 + 0.2 * np.sin(slow * 5.3))
    heart_hz = float(rng.uniform(0.9, 1.2)) + 0.05 * np.sin(slow * 7.7)
    phase = 2 * np.pi * np.cumsum(heart_hz) / rate
    heart = np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase)
    body = bed * (noise.breathing_g * breath + noise.heartbeat_g * heart)
    acc += body[:, None] * np.array([0.15, 0.1, 1.0])

    for onset, duration, intensity, kind in items:
        start = int(onset * rate)
        if start >= n:
            continue
        acc_slice = acc[start : start + max(1, round(duration * rate))]
        acc_slice += _burst(rng, acc_slice.shape[0], rate, kind) * intensity * FULL_SCALE_G

    for at in _poisson(rng, noise.spikes_per_hour, 0.0, end_s):
        acc[min(n - 1, int(at * rate)), int(rng.integers(3))] += noise.spike_g * float(
            rng.choice([-1, 1])
        )
    return acc


def _burst(rng: np.random.Generator, m: int, rate: float, kind: str) -> NDArray[np.float64]:
    """A movement's vibration at the sensor: 2-10 Hz band-limited noise along a random direction,
    unit RMS over its body, 50 ms raised-cosine edges; long movements wax and wane a little."""
    size = max(m, 64)
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.fft.rfftfreq(size, 1 / rate)
    spectrum[(freqs < 2.0) | (freqs > 10.0)] = 0
    carrier = np.fft.irfft(spectrum, size)[:m]
    carrier /= max(float(np.sqrt(np.mean(carrier * carrier))), 1e-12)
    envelope = np.ones(m)
    ramp = min(round(0.05 * rate), m // 4)
    if ramp > 0:
        edge = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
        envelope[:ramp] *= edge
        envelope[m - ramp :] *= edge[::-1]
    if kind in ("posture", "entry", "exit") and m > rate:
        wobble = np.interp(np.arange(m), np.linspace(0, m, 6), rng.uniform(0.7, 1.0, 6))
        envelope *= wobble
    direction = rng.standard_normal(3) * np.array([0.6, 0.6, 1.0])
    direction /= np.linalg.norm(direction)
    shaped: NDArray[np.float64] = (carrier * envelope)[:, None] * direction
    return shaped


# --- Scenario files ----------------------------------------------------------------------------


def scenario_lines(
    night: SynthNight, topic: str, *, include_accel: bool = False, accel_chunk_s: float = 1.0
) -> list[dict[str, Any]]:
    """The night as `simulate` scenario lines ``{"ts", "topic", "payload"}`` in time order.

    With ``include_accel`` the raw samples go along as ``accel`` payloads of ``accel_chunk_s``
    seconds, rounded to 10 µg (far below any sensor's noise); an 8 h night is then about 60 MB.
    """
    lines = [(e["ts"], {"ts": e["ts"], "topic": topic, "payload": e}) for e in night.events]
    if include_accel:
        for start, chunk in night.accel_chunks(accel_chunk_s):
            ts = start.isoformat(timespec="milliseconds")
            payload = {
                "event": "accel",
                "rate_hz": night.rate_hz,
                "samples": np.round(chunk, 5).tolist(),
                "ts": ts,
            }
            lines.append((ts, {"ts": ts, "topic": topic, "payload": payload}))
    lines.sort(key=lambda line: datetime.fromisoformat(line[0]).timestamp())
    return [line for _ts, line in lines]


def write_scenario(
    out: str | Path | TextIO,
    nights: SynthNight | Iterable[SynthNight],
    *,
    topic: str,
    include_accel: bool = False,
    accel_chunk_s: float = 1.0,
) -> int:
    """Write one or more nights as a ``sleepcoach simulate`` scenario (JSON lines) for the bed
    device on ``topic``; returns the number of lines written."""
    batch = [nights] if isinstance(nights, SynthNight) else list(nights)
    if isinstance(out, str | Path):
        with Path(out).open("w", encoding="utf-8") as stream:
            return write_scenario(
                stream, batch, topic=topic, include_accel=include_accel, accel_chunk_s=accel_chunk_s
            )
    written = 0
    for night in batch:
        for line in scenario_lines(
            night, topic, include_accel=include_accel, accel_chunk_s=accel_chunk_s
        ):
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
            written += 1
    return written


def nightly_starts(first: datetime, nights: int) -> list[datetime]:
    """Recording starts on consecutive evenings at the same local wall-clock time (DST-correct)."""
    return [
        (first.replace(tzinfo=None) + timedelta(days=i)).replace(tzinfo=first.tzinfo)
        for i in range(nights)
    ]
