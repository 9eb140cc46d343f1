"""Limb movements in bed: bursts from raw acceleration, PLM series, hypnic jerks and the night.

How it works. A bed sensor gives either raw three-axis acceleration or ready-made ``movement``
events. Raw samples go through :class:`LimbMovementDetector`. Each axis is high-passed at about
0.5 Hz (a centred moving average, applied three times, is subtracted), which removes gravity and
most of the 0.2–0.3 Hz breathing motion; the energy of the remaining vector, averaged over a
0.25 s window, is the RMS envelope. (Each axis rather than the magnitude: the magnitude of
gravity plus a small vibration changes only by the vibration's component along gravity, so it
misses sideways motion.) The noise floor is learned as it goes: every 10 s block contributes its
median and its median absolute deviation (MAD), and a block's onset level is the rolling median
of the last 15 blocks' medians plus k times their MAD. This is the accelerometer twin of the EMG
rule "8 µV above resting" (Berry et al., AASM Manual for the Scoring of Sleep 2.5, 2018; Ferri et
al., WASM 2016 standards, Sleep Med 26:86-95) and of the noise-floor-adjusted thresholds of the
S-PLMAD detector (Moore et al., PLoS One 2014, 9:e114565). A burst starts at the onset level and,
like the AASM onset and offset levels, lasts while it stays above half of it; bursts closer than
0.5 s merge, since an LM ends only at the start of 0.5 s below the offset level (AASM 2018, WASM
2016); a faint echo within 1.5 s of a strong burst is ignored. A burst of 0.5–10 s is a
candidate limb movement (LM), a longer one a posture change, a shorter one a brief twitch.

Movements, from either source, are then scored by the sleep-medicine rules. Movements that
overlap or lie less than 0.5 s apart are one (the same rule as the detector's merge: a device's
events may split a movement or nest one in another). A periodic limb-movement (PLM) series is
at least 4 consecutive candidate LMs whose onset-to-onset intervals lie in 10–90 s (WASM 2016)
or 5–90 s (AASM 2018); an interval outside that range or a movement longer than 10 s ends the
series, and the LM after it may start the next (WASM 2016, read as PLMScoRe reads it). The PLM
index is the LMs in series per hour asleep; above 15/h is the adult
cut-off of ICSD-3 (AASM 2014) for periodic limb movements in sleep, which alone is not a
diagnosis: this is screening. Sleep onset is the start of the first 10 minutes in bed without a
movement above a low intensity (LMs in a PLM series do not count as movement here, see
:data:`QUIET_IGNORES_SERIES`); a strong movement within 30 minutes of it that is not part of a
series is a hypnic jerk (a benign "sleep start", ICSD-3 "isolated symptoms and normal variants").

Times. Every instant this module takes or returns is POSIX seconds (``datetime.timestamp()``,
a float), so nights across a daylight-saving change are measured in elapsed time, never in
wall-clock time, and a night's thousands of movements need no datetime each; only
:meth:`NightSummary.to_dict` turns instants into local ISO text, in the zone it is given.
Durations are float seconds. The module does no I/O, keeps no clock and logs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Any, Final, Literal, NamedTuple, cast

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

# --- Limb movements and series: the sleep-medicine rules --------------------------------------

#: A candidate LM lasts at least 0.5 s (AASM 2018 rule 2.5; WASM 2016, Ferri et al.).
LM_MIN_S: Final = 0.5
#: ... and at most 10 s for one leg (AASM 2018; WASM 2016 candidate LM). Longer is not a CLM.
LM_MAX_S: Final = 10.0
#: A PLM series is at least 4 consecutive LMs (AASM 2018; WASM 2016).
PLM_MIN_SERIES: Final = 4
#: Longest onset-to-onset interval inside a series (AASM 2018 and WASM 2016 agree).
IMI_MAX_S: Final = 90.0
#: Shortest onset-to-onset interval inside a series: WASM 2016 10 s, AASM 2018 5 s.
IMI_MIN_S: Final[dict[str, float]] = {"wasm": 10.0, "aasm": 5.0}
#: ICSD-3 (AASM 2014): a PLMS index above 15/h in adults is significant (>5/h in children).
PLMS_INDEX_LIMIT: Final = 15.0

PlmRules = Literal["wasm", "aasm"]

# --- The night ---------------------------------------------------------------------------------

#: Sleep onset: the first 10 minutes in bed without a movement above a low threshold (project
#: default; actigraphy scores sleep onset after a comparable stretch of immobility).
SLEEP_ONSET_QUIET_S: Final = 600.0
#: "A low threshold" for that quiet window (project default, configurable): on the 0..1 scale a
#: device or the raw detector reports, 0.1 is a small fidget; sleep twitches mostly stay below.
QUIET_MAX_INTENSITY: Final = 0.1
#: LMs that belong to a PLM series do not break that quiet: periodic LMs are a sleep phenomenon
#: (PLMS, most frequent in light sleep early in the night), and counting them as wake would push
#: sleep onset past every early train and drop it from the index, most for the people with the
#: most PLMs. The price: periodic movements while lying awake (PLMW, common in restless legs)
#: let the night start early and count as PLMS (project choice; set False for the plain rule).
QUIET_IGNORES_SERIES: Final = True
#: Hypnic jerks happen at the sleep-onset transition; the coach looks 30 min either side of the
#: detected onset (sleep starts come in about the first 15-30 min; ICSD-3 lists them under
#: isolated symptoms and normal variants). Either
#: side, because a jerk at the transition itself breaks the quiet window and so precedes the
#: detected onset.
HYPNIC_WINDOW_S: Final = 1800.0
#: A hypnic jerk is a strong, whole-body start (project default, configurable).
HYPNIC_MIN_INTENSITY: Final = 0.5
#: The night ends at the last bed exit after wake − 2 h, or at wake + 3 h (project choice:
#: a morning bathroom trip near wake ends the night; a late sleeper's night ends by wake + 3 h).
NIGHT_END_EXIT_AFTER_WAKE_S: Final = -2 * 3600.0
NIGHT_END_LATEST_AFTER_WAKE_S: Final = 3 * 3600.0
#: Where a night begins when the caller does not say: 12 h before wake (project choice: later
#: than an afternoon nap, earlier than any plausible bedtime).
NIGHT_START_BEFORE_WAKE_S: Final = 12 * 3600.0

# --- The raw-acceleration detector -------------------------------------------------------------

#: High-pass corner: keep the 0.5-10 Hz movement band, drop gravity and breathing at 0.2-0.3 Hz
#: (as ankle-actigraphy PLM detectors do; see docs/nights.md, "The raw detector").
HIGHPASS_HZ: Final = 0.5
#: RMS envelope window (docs/nights.md, "The raw detector", step 2).
ENVELOPE_S: Final = 0.25
#: Bursts, and movement events, closer than this merge: an LM ends at the start of >= 0.5 s
#: below threshold (AASM 2018, WASM 2016).
MERGE_GAP_S: Final = 0.5
#: Instants are held to the microsecond: a gap within this of MERGE_GAP_S is MERGE_GAP_S.
_INSTANT_S: Final = 1e-6
#: Noise-floor statistics are taken per 10 s block (project choice: long enough for a stable
#: median, short next to the minutes over which the floor drifts).
BASELINE_BLOCK_S: Final = 10.0
#: ... and the rolling median runs over the last 15 blocks (150 s): movements, even a 60 s
#: posture change, fill fewer than half of them, so the median stays on the floor.
BASELINE_BLOCKS: Final = 15
#: Onset level = floor + k * 1.4826 * MAD, k = 5 (project choice, tuned on synthetic nights: at
#: 4 noise crosses it often enough to break the sleep-onset quiet; at 6 faint LMs on a noisy
#: sensor are lost; Gaussian noise passes 5 SD about once in 10^6 windows). S-PLMAD (Moore
#: 2014) also sets its threshold from the noise floor.
K_MAD: Final = 5.0
#: Hysteresis, after AASM 2018: an LM starts 8 µV above resting EMG and ends at the start of
#: 0.5 s within 2 µV of it. Here a burst must reach the onset level and lasts while it stays
#: above half of that rise (project choice: AASM's quarter lets the noise of an accelerometer
#: stretch movements by about half a second; no hysteresis splits faint LMs into fragments).
OFFSET_RATIO: Final = 0.5
#: MAD of a normal distribution times 1.4826 is its standard deviation.
MAD_TO_SD: Final = 1.4826
#: An absolute floor under the threshold, in g RMS, so that a perfectly quiet sensor (MAD 0)
#: does not report its quantisation steps (project choice, about one LSB of a 2 g MEMS part).
MIN_THRESHOLD_G: Final = 0.002
#: Intensity 1.0 is a burst of 0.2 g RMS above the floor (project calibration for a sensor on
#: the bed frame; set it for your bed; the synthetic generator uses the same scale).
FULL_SCALE_G: Final = 0.2
#: Echo suppression: a sample counts only if its envelope energy is at least 1 % (-20 dB) of
#: the strongest within 1.5 s. The high-pass reaches about 1.4 s either side, and the
#: low-frequency part of a strong movement (the bed settling under a shifted weight) leaks
#: through it as a faint pre- and after-echo that would stretch the movement on a quiet sensor
#: (project choice, like the relative onset criteria of EMG burst detectors).
ECHO_S: Final = 1.5
ECHO_RATIO: Final = 0.01
#: A burst shorter than 50 ms is a sensor glitch (a bus error, a knock on the frame), not a
#: movement: even fragmentary myoclonus, the briefest physiological twitch, lasts 75-150 ms.
#: (Filtering glitches out with a median before the high-pass would also take about 8 % off
#: the amplitude of every real movement.)
MIN_MOVEMENT_S: Final = 0.05
#: Work in batches of at least 60 s of samples: movements come out up to about a minute late,
#: which a sleep summary does not mind, and feeding 1 s chunks costs little more than one batch.
PROCESS_EVERY_S: Final = 60.0
#: A chunk whose start is more than 1 s off the sample clock starts a new stream.
MAX_CLOCK_GAP_S: Final = 1.0
#: A 0.5 s LM cannot be resolved below 10 Hz (Nyquist: 0.5 s bursts need ≥ 4 samples
#: each, and research accelerometers sample at 30-100 Hz).
MIN_RATE_HZ: Final = 10.0
#: The high-pass subtracts a boxcar of T seconds applied three times (a quadratic B-spline
#: low-pass): its -3 dB corner lies at about 0.478 / T, and above 1 Hz less than 0.05 % of a
#: movement leaks into the low-pass, so a strong burst does not smear into its neighbourhood
#: (twice leaked about 1 %, which stretched strong bursts by half a second on a quiet sensor).
_BOXCAR_PASSES: Final = 3
_BOXCAR_CORNER: Final = 0.478

_STATE_VERSION: Final = 2


class MovementKind(StrEnum):
    """What a movement is, by its duration (AASM 2018 / WASM 2016 candidate LM limits)."""

    BRIEF = "brief"
    LIMB = "limb"
    POSTURE = "posture"


def classify_duration(duration_s: float) -> MovementKind:
    """Return the kind of a movement of this duration: brief < 0.5 s <= limb <= 10 s < posture."""
    if duration_s < LM_MIN_S:
        return MovementKind.BRIEF
    if duration_s <= LM_MAX_S:
        return MovementKind.LIMB
    return MovementKind.POSTURE


def _rounded(t: float) -> float:
    """``t`` to the microsecond (as an aware datetime holds it), in POSIX seconds.

    The instants the coach gets carry microseconds (`datetime.timestamp()` of an event's `ts`),
    and the summary's instants are written as ISO text to the microsecond; instants the scoring
    computes (a night's end, a sleep onset, a detected movement's onset) are held the same way,
    so they compare with the given ones exactly and read back from the text unchanged.
    """
    return datetime.fromtimestamp(t, UTC).timestamp()


class Movement(NamedTuple):
    """One movement in bed: onset in POSIX seconds, duration in seconds, intensity on 0..1.

    Any ``(onset, duration_s, intensity)`` sequence of numbers is taken where a movement is (the
    coach keeps a night's movements as such rows); they are taken as valid, as the payload
    checks make them.
    """

    onset: float
    duration_s: float
    intensity: float

    @property
    def kind(self) -> MovementKind:
        """Brief twitch, candidate limb movement or posture change, by duration."""
        return classify_duration(self.duration_s)


# --- Series ------------------------------------------------------------------------------------
#
# Every function here takes instants as POSIX seconds and durations as float seconds, and gives
# movements back as indices into the sequence it was given: the caller keeps its own rows.


def _series_in(
    indices: Sequence[int], onsets: Sequence[float], durations: Sequence[float], imi_min: float
) -> list[list[int]]:
    """:func:`find_series` on movements given by index, ``indices`` in onset order."""
    found: list[list[int]] = []
    run: list[int] = []
    previous: float | None = None
    for i in indices:
        duration = durations[i]
        if duration < LM_MIN_S:  # brief: not an LM
            continue
        if duration > LM_MAX_S:  # posture change: ends the series
            if len(run) >= PLM_MIN_SERIES:
                found.append(run)
            run = []
            previous = None
            continue
        onset = onsets[i]
        # An interval out of range ends the series, and this LM may start the next: after a
        # short interval too, as PLMScoRe and RestEaze's scorer read WASM 2016.
        if previous is not None and not imi_min <= onset - previous <= IMI_MAX_S:
            if len(run) >= PLM_MIN_SERIES:
                found.append(run)
            run = []
        run.append(i)
        previous = onset
    if len(run) >= PLM_MIN_SERIES:
        found.append(run)
    return found


def _check_rules(rules: str) -> float:
    """The shortest interval inside a series under these rules; ValueError for unknown rules."""
    if rules not in IMI_MIN_S:
        raise ValueError(f"plm_rules must be 'wasm' or 'aasm', got {rules!r}")
    return IMI_MIN_S[rules]


def find_series(movements: Sequence[Sequence[float]], rules: PlmRules = "wasm") -> list[list[int]]:
    """Return the PLM series among the movements, each as the indices of its LMs, in time order.

    Movements that overlap or lie less than 0.5 s apart are first made one (see
    :func:`_one_each`; the index of its earliest row stands for it). Candidate LMs (0.5–10 s)
    join a series while each onset-to-onset interval is within 10–90 s (``"wasm"``) or 5–90 s
    (``"aasm"``). An interval outside that range ends the series and the LM after it may start
    the next (WASM 2016: "without any CLM preceded by an interval < 10 s"; whether that LM may
    begin a series the text leaves open, and PLMScoRe, by one of its authors, lets it; AASM
    gives no end rule, so the same logic runs with its 5 s minimum). A movement longer than
    10 s ends the series (WASM 2016: "LM that are not CLM"). Brief movements (< 0.5 s) are not
    LMs and are ignored.
    """
    imi_min = _check_rules(rules)
    moves = _Moves.of(movements)
    order = sorted(range(len(movements)), key=moves.onsets.__getitem__)
    kept, moves = _one_each(order, moves)
    return _series_in(kept, moves.onsets, moves.durations, imi_min)


class _Moves(NamedTuple):
    """Movements as parallel lists: onsets in POSIX seconds, durations, intensities."""

    onsets: Sequence[float]
    durations: Sequence[float]
    intensities: Sequence[float]

    @classmethod
    def of(cls, movements: Iterable[Sequence[float]]) -> _Moves:
        """Split ``(onset, duration_s, intensity)`` rows into columns."""
        rows = list(movements)
        return cls([m[0] for m in rows], [m[1] for m in rows], [m[2] for m in rows])


def _one_each(order: Sequence[int], moves: _Moves) -> tuple[list[int], _Moves]:
    """Movements that overlap or lie less than 0.5 s apart, as one (``order``: indices in onset
    order).

    An LM ends only at the start of at least 0.5 s below the offset level (AASM 2018, WASM
    2016), so a device's two events 0.3 s apart are one movement, and a short one inside a
    posture change is part of it. The earliest row of each group stands for the group, with its
    whole span as duration and its greatest intensity; the other rows are left out. Returns the
    indices kept, in onset order, and the movements with those rows' durations and intensities
    (every other row as given).
    """
    onsets, durations, intensities = moves
    kept: list[int] = []
    merged: dict[int, tuple[float, float]] = {}
    end = -math.inf
    for i in order:
        t = onsets[i]
        if kept and t - end < MERGE_GAP_S - _INSTANT_S:
            first = kept[-1]
            end = max(end, t + durations[i])
            strongest = max(merged.get(first, (0.0, intensities[first]))[1], intensities[i])
            merged[first] = (end - onsets[first], strongest)
            continue
        kept.append(i)
        end = t + durations[i]
    if not merged:
        return kept, moves
    new_durations = list(durations)
    new_intensities = list(intensities)
    for i, (duration, intensity) in merged.items():
        new_durations[i] = duration
        new_intensities[i] = intensity
    return kept, _Moves(onsets, new_durations, new_intensities)


def _jerks_in(
    indices: Sequence[int],
    moves: _Moves,
    *,
    in_series: Iterable[int],
    sleep_onset: float,
    window_s: float,
    min_intensity: float,
) -> list[int]:
    """:func:`find_hypnic_jerks` on movements given by index; ``in_series`` are indices."""
    onsets, durations, intensities = moves
    excluded = set(in_series)
    return sorted(
        (
            i
            for i in indices
            if intensities[i] >= min_intensity
            and durations[i] <= LM_MAX_S  # not a posture change
            and i not in excluded
            and abs(onsets[i] - sleep_onset) <= window_s
        ),
        key=onsets.__getitem__,
    )


def find_hypnic_jerks(
    movements: Sequence[Sequence[float]],
    sleep_onset: float,
    in_series: Iterable[int] = (),
    *,
    window_s: float = HYPNIC_WINDOW_S,
    min_intensity: float = HYPNIC_MIN_INTENSITY,
) -> list[int]:
    """Return the hypnic jerks, as indices in time order: strong movements of at most 10 s, not
    among ``in_series`` (indices of LMs in a PLM series), whose onset lies within ``window_s``
    of sleep onset (before or after)."""
    return _jerks_in(
        range(len(movements)),
        _Moves.of(movements),
        in_series=in_series,
        sleep_onset=sleep_onset,
        window_s=window_s,
        min_intensity=min_intensity,
    )


# --- The night ---------------------------------------------------------------------------------


def _changes(changes: Iterable[tuple[float, bool]]) -> list[tuple[float, bool]]:
    """Occupancy changes to the microsecond, in time order (ties keep their order)."""
    return sorted(((_rounded(t), bool(occ)) for t, occ in changes), key=lambda c: c[0])


def _bed_stays(
    changes: Sequence[tuple[float, bool]], lo: float, hi: float
) -> list[tuple[float, float]]:
    """:func:`bed_intervals` on changes in time order; stays of positive length, in order."""
    stays: list[tuple[float, float]] = []
    entered: float | None = None
    for t, occupied in changes:
        if t > hi:
            break
        if occupied and entered is None:
            entered = t
        elif not occupied and entered is not None:
            if t > lo:
                stays.append((max(entered, lo), t))
            entered = None
    if entered is not None and hi > max(entered, lo):
        stays.append((max(entered, lo), hi))
    return [(a, b) for a, b in stays if b - a > 0]


def bed_intervals(
    changes: Iterable[tuple[float, bool]], start: float, end: float
) -> list[tuple[float, float]]:
    """Turn occupancy changes ``(seconds, occupied)`` into in-bed ``(start, end)`` intervals
    clipped to ``[start, end]``.

    The state at ``start`` is the last change before it (empty when there is none); repeated
    changes to the same state are ignored; a stay still open at ``end`` ends there.
    """
    return _bed_stays(_changes(changes), _rounded(start), _rounded(end))


def _night_end(changes: Sequence[tuple[float, bool]], w: float, begin: float) -> float:
    """:func:`find_night_end` on changes in time order; to be read to the microsecond."""
    latest = w + NIGHT_END_LATEST_AFTER_WAKE_S
    stays = _bed_stays(changes, begin, _rounded(latest))
    if not stays or stays[-1][1] >= latest:
        return latest
    exits = [b for _a, b in stays if b >= w + NIGHT_END_EXIT_AFTER_WAKE_S]
    return max(exits) if exits else latest


def find_night_end(
    changes: Iterable[tuple[float, bool]], wake: float, start: float | None = None
) -> float:
    """When the night ends: the last bed exit in ``[wake − 2 h, wake + 3 h]``, or wake + 3 h when
    the person is still in bed then or never got up in that window."""
    w = _rounded(wake)
    begin = _rounded(start if start is not None else w - NIGHT_START_BEFORE_WAKE_S)
    return _rounded(_night_end(_changes(changes), w, begin))


def _quiet_start(
    stays: Sequence[tuple[float, float]], loud: Sequence[tuple[float, float]], quiet_s: float
) -> tuple[float, int] | None:
    """:func:`find_sleep_onset` with the index of its stay; ``stays`` in order of start, ``loud``
    the sorted (onset, end) of the movements that break the quiet."""
    for k, (start, stay_end) in enumerate(stays):
        candidate = start
        for onset, end in loud:
            if end <= candidate:
                continue
            if onset >= stay_end:
                break
            if onset - candidate >= quiet_s:
                return candidate, k
            candidate = max(candidate, end)
        if stay_end - candidate >= quiet_s:
            return candidate, k
    return None


def find_sleep_onset(
    stays: Sequence[tuple[float, float]],
    movements: Iterable[Sequence[float]],
    *,
    quiet_s: float = SLEEP_ONSET_QUIET_S,
    quiet_max_intensity: float = QUIET_MAX_INTENSITY,
) -> float | None:
    """Return the start of the first ``quiet_s`` in one stay in bed (``(start, end)`` seconds)
    with no movement stronger than ``quiet_max_intensity``, or None when the person never lay
    that still."""
    loud = sorted((m[0], m[0] + m[1]) for m in movements if m[2] > quiet_max_intensity)
    found = _quiet_start(sorted(stays), loud, quiet_s)
    return None if found is None else _rounded(found[0])


@dataclass(frozen=True, slots=True)
class NightConfig:
    """Settings for scoring a night; the defaults are the sources' (see the constants)."""

    plm_rules: PlmRules = "wasm"
    quiet_s: float = SLEEP_ONSET_QUIET_S
    quiet_max_intensity: float = QUIET_MAX_INTENSITY
    quiet_ignores_series: bool = QUIET_IGNORES_SERIES
    hypnic_window_s: float = HYPNIC_WINDOW_S
    hypnic_min_intensity: float = HYPNIC_MIN_INTENSITY
    start_before_wake_s: float = NIGHT_START_BEFORE_WAKE_S

    def __post_init__(self) -> None:
        """Refuse unknown rules and thresholds outside their range."""
        if self.plm_rules not in IMI_MIN_S:
            raise ValueError(f"plm_rules must be 'wasm' or 'aasm', got {self.plm_rules!r}")
        if not 0.0 <= self.quiet_max_intensity <= 1.0:
            raise ValueError("quiet_max_intensity must be within 0..1")
        if not 0.0 <= self.hypnic_min_intensity <= 1.0:
            raise ValueError("hypnic_min_intensity must be within 0..1")
        if self.quiet_s <= 0 or self.hypnic_window_s < 0 or self.start_before_wake_s <= 0:
            raise ValueError("quiet_s and start_before_wake_s must be > 0, hypnic_window_s >= 0")


@dataclass(frozen=True, slots=True)
class NightSummary:
    """The scored night. ``has_data`` is False when the bed reported nothing: no data is not a
    good night, and then every count is 0 and every time None.

    Instants are POSIX seconds (to the microsecond). ``in_bed``, ``plm_series`` and ``jerks``
    name movements by their index in the sequence :func:`summarize_night` was given, for a
    caller that draws the night: the movements during a stay in bed (in onset order), the LMs
    each counted series contributes to the index, and the hypnic jerks.
    """

    has_data: bool
    night_start: float
    night_end: float
    plm_rules: PlmRules
    time_in_bed_s: float = 0.0
    sleep_onset: float | None = None
    time_to_settle_s: float | None = None
    asleep_s: float = 0.0
    movements: int = 0
    limb_movements: int = 0
    posture_changes: int = 0
    plm_count: int = 0
    plm_index: float | None = None
    series: int = 0
    hypnic_jerks: int = 0
    hypnic_jerk_onsets: tuple[float, ...] = ()
    stays: tuple[tuple[float, float], ...] = ()
    in_bed: tuple[int, ...] = ()
    plm_series: tuple[tuple[int, ...], ...] = ()
    jerks: tuple[int, ...] = ()

    @property
    def is_plm_index_high(self) -> bool:
        """True when the PLM index is above the ICSD-3 adult limit of 15/h (screening only)."""
        return self.plm_index is not None and self.plm_index > PLMS_INDEX_LIMIT

    def to_dict(self, tz: tzinfo) -> dict[str, Any]:
        """The figures as a JSON-compatible dict, instants as ISO 8601 in ``tz`` with offset."""

        def iso(t: float | None) -> str | None:
            return None if t is None else datetime.fromtimestamp(t, tz).isoformat()

        return {
            "has_data": self.has_data,
            "night_start": iso(self.night_start),
            "night_end": iso(self.night_end),
            "plm_rules": self.plm_rules,
            "time_in_bed_s": self.time_in_bed_s,
            "sleep_onset": iso(self.sleep_onset),
            "time_to_settle_s": self.time_to_settle_s,
            "asleep_s": self.asleep_s,
            "movements": self.movements,
            "limb_movements": self.limb_movements,
            "posture_changes": self.posture_changes,
            "plm_count": self.plm_count,
            "plm_index": self.plm_index,
            "series": self.series,
            "hypnic_jerks": self.hypnic_jerks,
            "hypnic_jerk_onsets": [iso(t) for t in self.hypnic_jerk_onsets],
        }


def summarize_night(
    occupancy: Iterable[tuple[float, bool]],
    movements: Iterable[Sequence[float]],
    wake: float,
    config: NightConfig | None = None,
    *,
    start: float | None = None,
    now: float | None = None,
) -> NightSummary:
    """Score one night from its occupancy changes and movements, all instants POSIX seconds.

    ``occupancy`` is ``(seconds, occupied)`` pairs in any order; ``movements`` are
    ``(onset, duration_s, intensity)`` rows (a :class:`Movement` is one). The night runs from
    ``start`` (default wake − 12 h) to :func:`find_night_end`, or to ``now`` when that is earlier
    (a summary at wake time covers what is known so far). Only movements during a stay in bed
    count, and movements that overlap or lie less than 0.5 s apart count as one (its earliest row
    stands for it in the indices returned, see :func:`_one_each`). The PLM index divides the LMs
    in series that begin after sleep onset by the hours in bed after sleep onset; series never
    span two stays.
    """
    cfg = config if config is not None else NightConfig()
    changes = _changes(occupancy)
    moves = _Moves.of(movements)
    by_onset, moves = _one_each(
        sorted(range(len(moves.onsets)), key=moves.onsets.__getitem__), moves
    )
    onsets, durations, intensities = moves
    w = _rounded(wake)
    begin = _rounded(start) if start is not None else _rounded(w - cfg.start_before_wake_s)
    end = _rounded(_night_end(changes, w, begin))
    if now is not None and _rounded(now) < end:
        end = _rounded(now)
    stays = _bed_stays(changes, begin, end) if end > begin else []
    if not stays:
        return NightSummary(
            has_data=False, night_start=begin, night_end=end, plm_rules=cfg.plm_rules
        )

    # Each movement into the first stay that holds its onset; the stays are in order and do
    # not overlap, so one pass over the movements in onset order does it.
    per_stay: list[list[int]] = [[] for _ in stays]
    k, last = 0, len(stays)
    for i in by_onset:
        t = onsets[i]
        while k < last and t >= stays[k][1]:
            k += 1
        if k == last:
            break
        if t >= stays[k][0]:
            per_stay[k].append(i)
    in_bed = [i for stay in per_stay for i in stay]
    imi_min = IMI_MIN_S[cfg.plm_rules]
    series = [s for stay in per_stay for s in _series_in(stay, onsets, durations, imi_min)]
    in_series = [i for s in series for i in s]

    periodic = set(in_series) if cfg.quiet_ignores_series else set()
    quiet_max = cfg.quiet_max_intensity
    loud = sorted(
        (onsets[i], onsets[i] + durations[i])
        for i in in_bed
        if i not in periodic and intensities[i] > quiet_max
    )
    found = _quiet_start(stays, loud, cfg.quiet_s)
    time_in_bed = sum(b - a for a, b in stays)
    onset: float | None = None
    jerks: list[int] = []
    counted: list[tuple[int, ...]] = []
    if found is None:
        asleep, plm_index = 0.0, None
        settle: float | None = None
    else:
        onset = _rounded(found[0])
        asleep = sum(max(0.0, b - max(a, onset)) for a, b in stays)
        counted = [
            tuple(i for i in s if onsets[i] >= onset) for s in series if onsets[s[-1]] >= onset
        ]
        plm_count = sum(len(s) for s in counted)
        plm_index = plm_count / (asleep / 3600.0) if asleep > 0 else None
        jerks = _jerks_in(
            in_bed,
            moves,
            in_series=in_series,
            sleep_onset=onset,
            window_s=cfg.hypnic_window_s,
            min_intensity=cfg.hypnic_min_intensity,
        )
        settle = onset - stays[0][0]
    return NightSummary(
        has_data=True,
        night_start=begin,
        night_end=end,
        plm_rules=cfg.plm_rules,
        time_in_bed_s=time_in_bed,
        sleep_onset=onset,
        time_to_settle_s=settle,
        asleep_s=asleep,
        movements=len(in_bed),
        limb_movements=sum(1 for i in in_bed if LM_MIN_S <= durations[i] <= LM_MAX_S),
        posture_changes=sum(1 for i in in_bed if durations[i] > LM_MAX_S),
        plm_count=sum(len(s) for s in counted),
        plm_index=plm_index,
        series=len(counted),
        hypnic_jerks=len(jerks),
        hypnic_jerk_onsets=tuple(_rounded(onsets[i]) for i in jerks),
        stays=tuple(stays),
        in_bed=tuple(in_bed),
        plm_series=tuple(counted),
        jerks=tuple(jerks),
    )


# --- The raw-acceleration detector -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Settings of the raw-acceleration detector; the defaults are the constants above."""

    highpass_hz: float = HIGHPASS_HZ
    envelope_s: float = ENVELOPE_S
    merge_gap_s: float = MERGE_GAP_S
    echo_s: float = ECHO_S
    echo_ratio: float = ECHO_RATIO
    min_movement_s: float = MIN_MOVEMENT_S
    baseline_block_s: float = BASELINE_BLOCK_S
    baseline_blocks: int = BASELINE_BLOCKS
    k_mad: float = K_MAD
    offset_ratio: float = OFFSET_RATIO
    min_threshold_g: float = MIN_THRESHOLD_G
    full_scale_g: float = FULL_SCALE_G
    process_every_s: float = PROCESS_EVERY_S
    max_clock_gap_s: float = MAX_CLOCK_GAP_S

    def __post_init__(self) -> None:
        """Refuse settings that would make the detector meaningless."""
        positive = {
            "highpass_hz": self.highpass_hz,
            "envelope_s": self.envelope_s,
            "baseline_block_s": self.baseline_block_s,
            "full_scale_g": self.full_scale_g,
            "max_clock_gap_s": self.max_clock_gap_s,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        if self.baseline_blocks < 1:
            raise ValueError("baseline_blocks must be >= 1")
        for name, value in {
            "merge_gap_s": self.merge_gap_s,
            "echo_s": self.echo_s,
            "echo_ratio": self.echo_ratio,
            "min_movement_s": self.min_movement_s,
            "k_mad": self.k_mad,
            "offset_ratio": self.offset_ratio,
            "min_threshold_g": self.min_threshold_g,
            "process_every_s": self.process_every_s,
        }.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")


class _Geometry(NamedTuple):
    """The detector's settings in samples, for one sample rate."""

    half_boxcar: int  # the high-pass boxcar is 2h+1 samples, applied three times
    half_window: int  # the envelope window is 2g+1 samples
    block: int  # samples per baseline block
    gap: int  # bursts closer than this many samples merge
    echo: int  # echo suppression looks this many samples either side
    quantum: int  # process at least this many samples at a time (a multiple of block)

    @property
    def context(self) -> int:
        """Samples needed on either side of an envelope value (high-pass and window)."""
        return _BOXCAR_PASSES * self.half_boxcar + self.half_window

    @property
    def reach(self) -> int:
        """Raw samples needed on either side of a decision (the envelope's context and echo)."""
        return self.context + self.echo

    @classmethod
    def of(cls, config: DetectorConfig, rate_hz: float) -> _Geometry:
        """Derive the sample counts; odd windows keep every filter centred."""
        boxcar = _BOXCAR_CORNER / config.highpass_hz * rate_hz
        block = max(1, round(config.baseline_block_s * rate_hz))
        return cls(
            half_boxcar=max(0, round((boxcar - 1) / 2)),
            half_window=max(0, round((config.envelope_s * rate_hz - 1) / 2)),
            block=block,
            gap=max(1, round(config.merge_gap_s * rate_hz)),
            echo=max(0, round(config.echo_s * rate_hz)),
            quantum=block * max(1, math.ceil(config.process_every_s * rate_hz / block)),
        )


def _moving_mean(x: NDArray[np.float64], width: int) -> NDArray[np.float64]:
    """Means of every run of ``width`` consecutive rows (the valid part only)."""
    if width <= 1:
        return x
    c = np.cumsum(x, axis=0)
    out = np.empty((x.shape[0] - width + 1, *x.shape[1:]))
    out[0] = c[width - 1]
    out[1:] = c[width:] - c[:-width]
    out /= width
    return out


def _envelope(seg: NDArray[np.float64], geo: _Geometry) -> NDArray[np.float64]:
    """Mean energy (g²) of the high-passed vector over the centred envelope window.

    The output is ``2 * geo.context`` samples shorter than ``seg`` and starts at its
    ``geo.context``-th sample.
    """
    h = geo.half_boxcar
    if h > 0:
        lowpass = seg
        for _ in range(_BOXCAR_PASSES):
            lowpass = _moving_mean(lowpass, 2 * h + 1)
        reach = _BOXCAR_PASSES * h
        hp = seg[reach : seg.shape[0] - reach] - lowpass
    else:
        hp = seg - seg.mean(axis=0)
    energy = np.einsum("ij,ij->i", hp, hp)
    return _moving_mean(energy, 2 * geo.half_window + 1)


def _sliding_max(x: NDArray[np.float64], width: int) -> NDArray[np.float64]:
    """Maximum of every run of ``width`` consecutive values, in O(n) (van Herk / Gil-Werman)."""
    if width <= 1:
        return x
    n = x.shape[0]
    padded = np.full(-(-n // width) * width, -np.inf)
    padded[:n] = x
    blocks = padded.reshape(-1, width)
    prefix = np.maximum.accumulate(blocks, axis=1).ravel()
    suffix = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.maximum(suffix[: n - width + 1], prefix[width - 1 : n])


def _rolling_median(
    history: list[float], new: NDArray[np.float64], width: int
) -> NDArray[np.float64]:
    """For each new value, the median of it and up to ``width - 1`` values before it."""
    values = np.concatenate([np.asarray(history, dtype=np.float64), new])
    lead = width - 1 - len(history)
    if lead <= 0:
        start = len(history) - (width - 1)
        return cast(
            NDArray[np.float64], np.median(sliding_window_view(values[start:], width), axis=1)
        )
    padded = np.concatenate([np.full(lead, np.nan), values])
    return cast(NDArray[np.float64], np.nanmedian(sliding_window_view(padded, width), axis=1))


#: A run of samples above the offset level: start, end (exclusive), excess energy, and whether
#: it reached the onset level.
_Burst = tuple[int, int, float, bool]


class LimbMovementDetector:
    """Streaming burst detector for raw three-axis acceleration in g (sans-I/O, like h11).

    Feed chunks of any size with :meth:`feed`; movements come out as soon as they are certain
    (up to about ``process_every_s`` plus 2 s late); :meth:`flush` ends the stream and returns
    the rest. A chunk that does not continue the sample clock (start more than
    ``max_clock_gap_s`` off, or another rate) flushes the old stream and starts a new one.
    :meth:`to_dict` / :meth:`from_dict` carry the whole state through JSON exactly, so a
    restarted daemon continues where it stopped. The object is mutable and owned by one consumer.
    """

    def __init__(self, config: DetectorConfig | None = None) -> None:
        """A detector with no stream open yet."""
        self.config = config if config is not None else DetectorConfig()
        self._reset()

    def _reset(self) -> None:
        self._rate: float | None = None
        self._geo: _Geometry | None = None
        self._t0 = 0.0
        self._n_in = 0
        self._n_done = 0
        self._buf: list[NDArray[np.float64]] = []
        self._buf_start = 0
        self._offset = np.zeros(3)
        self._meds: list[float] = []
        self._mads: list[float] = []
        self._open: _Burst | None = None

    @property
    def is_streaming(self) -> bool:
        """True while a stream is open (samples fed since the last flush)."""
        return self._rate is not None

    def feed(self, samples: ArrayLike, start: float, rate_hz: float) -> list[Movement]:
        """Take a chunk of ``(n, 3)`` samples in g whose first sample was taken at ``start``
        (POSIX seconds).

        Returns the movements that this chunk completed, in time order. Raises ValueError on a
        malformed chunk (wrong shape, non-finite values or start, a rate below 10 Hz).
        """
        # A copy: the buffer must not change if the caller reuses its array.
        arr = np.array(samples, dtype=np.float64)
        if arr.size == 0:
            arr = arr.reshape(0, 3)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"samples must be a list of [x, y, z], got shape {arr.shape}")
        if not math.isfinite(arr.sum()):  # NaN or inf anywhere makes the sum so
            raise ValueError("samples must be finite numbers")
        if not (math.isfinite(rate_hz) and rate_hz >= MIN_RATE_HZ):
            raise ValueError(f"rate_hz must be >= {MIN_RATE_HZ}, got {rate_hz}")
        t = float(start)
        if not math.isfinite(t):
            raise ValueError(f"start must be a finite number of seconds, got {start}")
        out: list[Movement] = []
        if self._rate is not None and (
            rate_hz != self._rate
            or abs(t - (self._t0 + self._n_in / self._rate)) > self.config.max_clock_gap_s
        ):
            out.extend(self.flush())
        if arr.shape[0] == 0:
            return out
        if self._rate is None:
            self._rate = float(rate_hz)
            self._geo = _Geometry.of(self.config, self._rate)
            self._t0 = t
            self._offset = arr[0].copy()
        self._buf.append(arr)
        self._n_in += arr.shape[0]
        geo = cast(_Geometry, self._geo)
        if self._n_in - geo.reach - self._n_done >= geo.quantum:
            out.extend(self._process(final=False))
        return out

    def flush(self) -> list[Movement]:
        """End the stream: score what is buffered and return the remaining movements."""
        if self._rate is None:
            return []
        out = self._process(final=True)
        self._reset()
        return out

    def _process(self, *, final: bool) -> list[Movement]:
        """Score every complete baseline block buffered (all of them when ``final``)."""
        geo = cast(_Geometry, self._geo)
        done = self._n_done
        if final:
            end = self._n_in
        else:
            end = done + (self._n_in - geo.reach - done) // geo.block * geo.block
        if end <= done:
            return self._emit_open() if final else []
        wide = _envelope(self._segment(done, end) - self._offset, geo)
        n, echo = end - done, geo.echo
        energy = wide[echo : echo + n]
        rms = np.sqrt(energy)
        floor, onset, offset, sizes = self._thresholds(rms, n)
        loud = energy >= self.config.echo_ratio * _sliding_max(wide, 2 * echo + 1)
        above = (rms > np.repeat(offset, sizes)) & loud
        strong = (rms > np.repeat(onset, sizes)) & loud
        excess = np.where(above, energy - np.repeat(floor * floor, sizes), 0.0)
        edges = np.diff(above.view(np.int8), prepend=np.int8(0), append=np.int8(0))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)
        cum = np.concatenate([[0.0], np.cumsum(excess)])
        hits = np.concatenate([[0], np.cumsum(strong)])
        bursts = list(
            zip(
                (starts + done).tolist(),
                (ends + done).tolist(),
                (cum[ends] - cum[starts]).tolist(),
                (hits[ends] > hits[starts]).tolist(),
                strict=True,
            )
        )
        if self._open is not None:
            bursts.insert(0, self._open)
            self._open = None
        self._n_done = end
        return self._merge(bursts, end, final=final)

    def _segment(self, done: int, end: int) -> NDArray[np.float64]:
        """Raw samples ``[done, end)`` plus the filters' reach on both sides.

        The stream's first sample is repeated before it and, on the final batch, its last after
        it. Afterwards only the samples the next batch needs are kept.
        """
        geo = cast(_Geometry, self._geo)
        raw = self._buf[0] if len(self._buf) == 1 else np.concatenate(self._buf)
        lo, hi = done - geo.reach - self._buf_start, end + geo.reach - self._buf_start
        seg = raw[max(lo, 0) : min(hi, raw.shape[0])]
        if lo < 0 or hi > raw.shape[0]:
            seg = np.concatenate(
                [
                    np.repeat(raw[:1], max(0, -lo), axis=0),
                    seg,
                    np.repeat(raw[-1:], max(0, hi - raw.shape[0]), axis=0),
                ]
            )
        keep_from = end - geo.reach
        if keep_from > self._buf_start:
            self._buf = [raw[keep_from - self._buf_start :].copy()]
            self._buf_start = keep_from
        else:
            self._buf = [raw]
        return seg

    def _thresholds(
        self, rms: NDArray[np.float64], n: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
        """Per block: the noise floor, the onset and offset levels and the block's length.

        Each block's median and MAD (taken every envelope window, so roughly independent
        values) join a rolling median over the last ``baseline_blocks`` blocks.
        """
        geo = cast(_Geometry, self._geo)
        cfg = self.config
        full, tail = divmod(n, geo.block)
        stride = 2 * geo.half_window + 1
        picked = rms[: full * geo.block].reshape(full, geo.block)[:, ::stride]
        med = np.median(picked, axis=1) if full else np.empty(0)
        mad = np.median(np.abs(picked - med[:, None]), axis=1) if full else np.empty(0)
        sizes = np.full(full + (tail > 0), geo.block, dtype=np.intp)
        if tail:
            last = rms[full * geo.block :][::stride]
            last_med = float(np.median(last))
            med = np.append(med, last_med)
            mad = np.append(mad, float(np.median(np.abs(last - last_med))))
            sizes[-1] = tail
        floor = _rolling_median(self._meds, med, cfg.baseline_blocks)
        spread = _rolling_median(self._mads, mad, cfg.baseline_blocks)
        keep = cfg.baseline_blocks - 1
        self._meds = (self._meds + med.tolist())[-keep:] if keep else []
        self._mads = (self._mads + mad.tolist())[-keep:] if keep else []
        rise = cfg.k_mad * MAD_TO_SD * spread
        onset = np.maximum(floor + rise, cfg.min_threshold_g)
        offset = np.maximum(floor + cfg.offset_ratio * rise, cfg.offset_ratio * cfg.min_threshold_g)
        return floor, onset, offset, sizes

    def _merge(self, bursts: list[_Burst], end: int, *, final: bool) -> list[Movement]:
        """Merge bursts less than the merge gap apart; keep the groups that reached the onset
        level; the last group may stay open for the next batch."""
        geo = cast(_Geometry, self._geo)
        movements: list[Movement] = []
        group: _Burst | None = None
        for burst in bursts:
            if group is not None and burst[0] - group[1] < geo.gap:
                group = (group[0], burst[1], group[2] + burst[2], group[3] or burst[3])
                continue
            if group is not None:
                movements.extend(self._movement(group))
            group = burst
        if group is not None:
            if final or end - group[1] >= geo.gap:
                movements.extend(self._movement(group))
            else:
                self._open = group
        return movements

    def _emit_open(self) -> list[Movement]:
        if self._open is None:
            return []
        group, self._open = self._open, None
        return self._movement(group)

    def _movement(self, burst: _Burst) -> list[Movement]:
        """A burst of samples [start, end) above the offset level, as a movement; none for a
        glitch or a burst that never reached the onset level.

        The centred window widens a burst by up to 2g samples, so that is taken off the span
        (onset moves g later). Intensity is the burst's RMS above the noise floor: its excess
        energy over its corrected length (at least half a window), on the ``full_scale_g``
        scale. The mean is steadier than the peak of a 0.25 s window, which wobbles by ±40 %
        within one burst of band-limited motion.
        """
        geo = cast(_Geometry, self._geo)
        rate = cast(float, self._rate)
        start, end, energy, confirmed = burst
        if not confirmed:
            return []
        span = end - start
        shrink = min(2 * geo.half_window, span - 1)
        length = span - shrink
        # A faint burst loses its edges below the offset level, so its corrected length can be
        # too short; dividing by at least half a window keeps a blip from looking strong.
        rms = math.sqrt(max(energy, 0.0) / max(length, geo.half_window + 1))
        if length / rate < self.config.min_movement_s:
            return []
        return [
            Movement(
                onset=_rounded(self._t0 + (start + shrink / 2) / rate),
                duration_s=length / rate,
                intensity=min(1.0, rms / self.config.full_scale_g),
            )
        ]

    def __eq__(self, other: object) -> bool:
        """Detectors are equal when their whole states are (what :meth:`to_dict` carries)."""
        if not isinstance(other, LimbMovementDetector):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable: equal by value, so not hashable

    def to_dict(self) -> dict[str, Any]:
        """The whole state as a JSON-compatible dict (buffered samples included)."""
        stream: dict[str, Any] | None = None
        if self._rate is not None:
            raw = self._buf[0] if len(self._buf) == 1 else np.concatenate(self._buf)
            stream = {
                "rate_hz": self._rate,
                "t0": self._t0,
                "n_in": self._n_in,
                "n_done": self._n_done,
                "buf_start": self._buf_start,
                "raw": raw.tolist(),
                "offset": self._offset.tolist(),
                "medians": list(self._meds),
                "mads": list(self._mads),
                "open": list(self._open) if self._open is not None else None,
            }
        return {"version": _STATE_VERSION, "config": asdict(self.config), "stream": stream}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LimbMovementDetector:
        """Rebuild a detector from :meth:`to_dict` output (after a JSON round trip too).

        Version 1 also kept the time zone of the chunks' start; movements no longer carry one.
        """
        if data.get("version") not in (1, _STATE_VERSION):
            raise ValueError(f"unknown detector state version {data.get('version')!r}")
        detector = cls(DetectorConfig(**data["config"]))
        stream = data.get("stream")
        if stream is None:
            return detector
        detector._rate = float(stream["rate_hz"])
        detector._geo = _Geometry.of(detector.config, detector._rate)
        detector._t0 = float(stream["t0"])
        detector._n_in = int(stream["n_in"])
        detector._n_done = int(stream["n_done"])
        detector._buf_start = int(stream["buf_start"])
        detector._buf = [np.asarray(stream["raw"], dtype=np.float64).reshape(-1, 3)]
        detector._offset = np.asarray(stream["offset"], dtype=np.float64)
        detector._meds = [float(v) for v in stream["medians"]]
        detector._mads = [float(v) for v in stream["mads"]]
        opened = stream.get("open")
        detector._open = (
            None
            if opened is None
            else (
                int(opened[0]),
                int(opened[1]),
                float(opened[2]),
                bool(opened[3]),
            )
        )
        return detector


def detect_movements(
    samples: ArrayLike,
    start: float,
    rate_hz: float,
    config: DetectorConfig | None = None,
) -> list[Movement]:
    """Detect the movements in one whole recording (feed it in one chunk, then flush)."""
    detector = LimbMovementDetector(config)
    return detector.feed(samples, start, rate_hz) + detector.flush()
