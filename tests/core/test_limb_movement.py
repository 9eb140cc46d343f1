"""Tests for coach.limb_movement: the raw detector, PLM series, hypnic jerks and the night.

Every instant is POSIX seconds, as the module takes them; `at(s)` is a Berlin night's instant.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from coach.limb_movement import (
    DetectorConfig,
    LimbMovementDetector,
    Movement,
    MovementKind,
    NightConfig,
    bed_intervals,
    classify_duration,
    detect_movements,
    find_hypnic_jerks,
    find_night_end,
    find_series,
    find_sleep_onset,
    summarize_night,
)

ZONE = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 11, 24, 23, 0, tzinfo=ZONE)
RATE = 50.0


def at(seconds: float) -> float:
    """T0 plus elapsed seconds, to the microsecond (as an event's `ts` gives an instant)."""
    return datetime.fromtimestamp(T0.timestamp() + seconds, ZONE).timestamp()


def lm(onset_s: float, duration_s: float = 1.5, intensity: float = 0.3) -> Movement:
    """A movement ``onset_s`` seconds after T0."""
    return Movement(at(onset_s), duration_s, intensity)


def train(count: int, interval_s: float, first_s: float = 0.0, **kw: float) -> list[Movement]:
    """``count`` LMs every ``interval_s`` seconds."""
    return [lm(first_s + i * interval_s, **kw) for i in range(count)]


# --- Durations and series ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration_s", "kind"),
    [
        pytest.param(0.49, MovementKind.BRIEF, id="0.49 s is too short to be a limb movement"),
        pytest.param(0.5, MovementKind.LIMB, id="0.5 s is the shortest limb movement"),
        pytest.param(10.0, MovementKind.LIMB, id="10 s is the longest limb movement"),
        pytest.param(10.1, MovementKind.POSTURE, id="10.1 s is a posture change"),
    ],
)
def test_duration_decides_the_kind(duration_s: float, kind: MovementKind) -> None:
    assert classify_duration(duration_s) is kind
    assert lm(0, duration_s).kind is kind


@pytest.mark.parametrize(
    ("interval_s", "rules", "expected"),
    [
        pytest.param(9.9, "wasm", 0, id="wasm: LMs 9.9 s apart are no series"),
        pytest.param(10.0, "wasm", 1, id="wasm: LMs 10 s apart are a series"),
        pytest.param(90.0, "wasm", 1, id="wasm: LMs 90 s apart are a series"),
        pytest.param(90.1, "wasm", 0, id="wasm: LMs 90.1 s apart are no series"),
        pytest.param(4.9, "aasm", 0, id="aasm: LMs 4.9 s apart are no series"),
        pytest.param(5.0, "aasm", 1, id="aasm: LMs 5 s apart are a series"),
        pytest.param(9.9, "aasm", 1, id="aasm: LMs 9.9 s apart are a series"),
        pytest.param(90.1, "aasm", 0, id="aasm: LMs 90.1 s apart are no series"),
    ],
)
def test_interval_limits(interval_s: float, rules: str, expected: int) -> None:
    found = find_series(train(4, interval_s), rules)  # type: ignore[arg-type]
    assert len(found) == expected
    if expected:
        assert len(found[0]) == 4


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        pytest.param(3, [], id="three LMs are not a series"),
        pytest.param(4, [4], id="four LMs are a series"),
        pytest.param(12, [12], id="twelve LMs are one series of twelve"),
    ],
)
def test_series_needs_four(count: int, expected: list[int]) -> None:
    assert [len(s) for s in find_series(train(count, 20))] == expected


@pytest.mark.parametrize(
    ("odd_duration", "expected"),
    [
        pytest.param(0.49, [], id="a 0.49 s movement is no LM, leaving three"),
        pytest.param(0.5, [4], id="a 0.5 s movement is the fourth LM"),
        pytest.param(10.0, [4], id="a 10 s movement is the fourth LM"),
        pytest.param(10.1, [], id="a 10.1 s movement is a posture change and ends the series"),
    ],
)
def test_duration_inside_a_series(odd_duration: float, expected: list[int]) -> None:
    movements = [lm(0), lm(20), lm(40, odd_duration), lm(60)]
    assert [len(s) for s in find_series(movements)] == expected


def test_wasm_short_interval_ends_series_and_the_lm_after_it_starts_the_next() -> None:
    # 20 -> 25 is under 10 s: [0, 20] ends there (two LMs, no series) and 25 starts the next.
    movements = [lm(t) for t in (0, 20, 25, 45, 65, 85, 105)]
    wasm = find_series(movements, "wasm")
    assert [[round(movements[i].onset - at(0)) for i in s] for s in wasm] == [[25, 45, 65, 85, 105]]
    assert [len(s) for s in find_series(movements, "aasm")] == [7]


def test_long_interval_starts_a_new_series() -> None:
    movements = train(4, 20) + train(4, 20, first_s=160)
    assert [len(s) for s in find_series(movements)] == [4, 4]


def test_posture_change_in_a_train_splits_it() -> None:
    movements = [*train(5, 20), lm(101, 25.0), *train(5, 20, first_s=130)]
    assert [len(s) for s in find_series(movements)] == [5, 5]


def test_order_of_input_does_not_matter() -> None:
    movements = train(6, 30)
    backwards = list(reversed(movements))
    assert [[backwards[i] for i in s] for s in find_series(backwards)] == [movements]
    assert find_series(backwards) == [[5, 4, 3, 2, 1, 0]]


def test_unknown_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="plm_rules"):
        find_series([], "icsd")  # type: ignore[arg-type]


# --- Hypnic jerks ------------------------------------------------------------------------------

ONSET_S = 1800.0


@pytest.mark.parametrize(
    ("movement", "expected"),
    [
        pytest.param(
            lm(ONSET_S + 300, 0.4, 0.8), 1, id="a strong brief start 5 min after onset is a jerk"
        ),
        pytest.param(lm(ONSET_S + 300, 1.0, 0.5), 1, id="intensity 0.5 is strong enough"),
        pytest.param(lm(ONSET_S + 300, 1.0, 0.49), 0, id="intensity 0.49 is not"),
        pytest.param(lm(ONSET_S - 1200, 1.0, 0.9), 1, id="20 min before the detected onset counts"),
        pytest.param(lm(ONSET_S + 1800, 1.0, 0.9), 1, id="exactly 30 min after onset counts"),
        pytest.param(lm(ONSET_S + 1801, 1.0, 0.9), 0, id="30 min and 1 s after onset does not"),
        pytest.param(lm(ONSET_S + 300, 15.0, 0.9), 0, id="a strong posture change is no jerk"),
    ],
)
def test_hypnic_jerk_table(movement: Movement, expected: int) -> None:
    assert len(find_hypnic_jerks([movement], at(ONSET_S))) == expected


def test_a_strong_lm_inside_a_series_is_no_jerk() -> None:
    movements = train(5, 20, first_s=ONSET_S + 60, intensity=0.9)
    (series,) = find_series(movements)
    assert find_hypnic_jerks(movements, at(ONSET_S), series) == []
    assert find_hypnic_jerks(movements, at(ONSET_S)) == [0, 1, 2, 3, 4]


def test_hypnic_threshold_is_configurable() -> None:
    weak = [lm(ONSET_S + 60, 0.8, 0.35)]
    assert find_hypnic_jerks(weak, at(ONSET_S)) == []
    assert find_hypnic_jerks(weak, at(ONSET_S), min_intensity=0.3) == [0]


# --- Occupancy, sleep onset, night end ---------------------------------------------------------


def test_bed_intervals_ignore_repeats_and_clip_to_the_window() -> None:
    changes = [
        (at(-600), True),
        (at(-300), True),
        (at(3700), False),  # in any order
        (at(3600), False),
        (at(4000), True),
    ]
    stays = bed_intervals(changes, at(0), at(5000))
    assert stays == [(at(0), at(3600)), (at(4000), at(5000))]
    assert [end - start for start, end in stays] == [3600.0, 1000.0]


STAY = bed_intervals([(at(0), True), (at(4 * 3600), False)], at(-60), at(5 * 3600))


@pytest.mark.parametrize(
    ("movements", "expected_s"),
    [
        pytest.param([], 0.0, id="lying still from the start means asleep at once"),
        pytest.param(
            [lm(t, 5.0, 0.4) for t in range(0, 1800, 300)],
            1505.0,
            id="fidgets every 5 minutes delay onset to the end of the last one",
        ),
        pytest.param(
            [lm(t, 5.0, 0.1) for t in range(0, 1800, 60)],
            0.0,
            id="movements at the low threshold do not break the quiet",
        ),
        pytest.param(
            [lm(0, 5.0, 0.4), lm(605, 2.0, 0.4)],
            5.0,
            id="exactly 600 s of quiet is enough",
        ),
        pytest.param(
            [lm(0, 5.0, 0.4), lm(604, 2.0, 0.4)],
            606.0,
            id="599 s of quiet is not enough",
        ),
        pytest.param(
            [lm(t, 2.0, 0.5) for t in range(0, 4 * 3600, 400)],
            None,
            id="a person who never lies still for 10 minutes never falls asleep",
        ),
    ],
)
def test_sleep_onset_table(movements: list[Movement], expected_s: float | None) -> None:
    onset = find_sleep_onset(STAY, movements)
    assert onset == (None if expected_s is None else at(expected_s))


def test_quiet_must_be_one_stay_in_bed() -> None:
    stays = bed_intervals(
        [(at(0), True), (at(400), False), (at(500), True), (at(3000), False)], at(0), at(4000)
    )
    assert find_sleep_onset(stays, []) == at(500)
    # A fidget in each stay: the first is too short after it, the second long enough.
    assert find_sleep_onset(stays, [lm(100, 1.0, 0.4), lm(1000, 1.0, 0.4)]) == at(1001)


WAKE = at(8 * 3600)
HOUR = 3600.0


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            [(at(0), True), (WAKE - HOUR, False)],
            WAKE - HOUR,
            id="getting up an hour before wake ends the night then",
        ),
        pytest.param(
            [(at(0), True), (WAKE - 3 * HOUR, False)],
            WAKE + 3 * HOUR,
            id="an exit before wake minus 2 h is not the end: wake plus 3 h is",
        ),
        pytest.param(
            [
                (at(0), True),
                (WAKE - 1800, False),
                (WAKE - 1200, True),
                (WAKE + 2 * HOUR, False),
            ],
            WAKE + 2 * HOUR,
            id="the last exit counts, not the first",
        ),
        pytest.param(
            [(at(0), True)],
            WAKE + 3 * HOUR,
            id="still in bed at wake plus 3 h ends the night then",
        ),
        pytest.param(
            [(at(0), True), (WAKE + 4 * HOUR, False)],
            WAKE + 3 * HOUR,
            id="an exit after wake plus 3 h is too late to count",
        ),
    ],
)
def test_night_end_table(changes: list[tuple[float, bool]], expected: float) -> None:
    assert find_night_end(changes, WAKE) == expected


# --- The night ---------------------------------------------------------------------------------


def test_no_bed_data_is_no_data_not_a_good_night() -> None:
    summary = summarize_night([], [lm(100)], WAKE)
    assert not summary.has_data
    assert summary.plm_index is None
    assert summary.sleep_onset is None
    assert (summary.movements, summary.hypnic_jerks, summary.time_in_bed_s) == (0, 0, 0.0)
    assert summary.to_dict(ZONE)["has_data"] is False


def night_movements() -> list[Movement]:
    """Settling for 20 min, a jerk, then 40 periodic LMs and a few other movements."""
    settle = [lm(t, 4.0, 0.3) for t in range(0, 1200, 240)]  # last ends at 964 s
    jerk = [lm(1200, 0.6, 0.9)]
    plms = train(40, 25, first_s=3600, intensity=0.25)
    other = [lm(7200, 20.0, 0.6), lm(9000, 1.0, 0.2), lm(9000.3, 0.2, 0.05)]
    return settle + jerk + plms + other


def test_a_scored_night() -> None:
    occupancy = [(at(0), True), (at(6 * 3600), False)]
    movements = night_movements()
    summary = summarize_night(occupancy, movements, WAKE)
    assert summary.has_data
    assert summary.night_end == at(6 * 3600)
    assert summary.time_in_bed_s == 6 * 3600
    assert summary.sleep_onset == at(1200.6)  # the jerk interrupted the quiet that began at 964 s
    assert summary.time_to_settle_s == pytest.approx(1200.6)
    assert summary.asleep_s == pytest.approx(6 * 3600 - 1200.6)
    assert summary.plm_count == 40
    assert summary.series == 1
    assert summary.plm_index == pytest.approx(40 / ((6 * 3600 - 1200.6) / 3600))
    assert not summary.is_plm_index_high
    assert summary.hypnic_jerks == 1
    assert summary.hypnic_jerk_onsets == (at(1200),)
    # The 0.2 s twitch at 9000.3 s lies inside the LM at 9000 s: one movement, not two.
    assert summary.movements == len(movements) - 1
    assert summary.limb_movements == 5 + 1 + 40 + 1
    assert summary.posture_changes == 1
    # What a timeline draws: the stay, every movement in bed, the counted series, the jerk.
    assert summary.stays == ((at(0), at(6 * 3600)),)
    assert summary.in_bed == tuple(range(len(movements) - 1))
    assert summary.plm_series == (tuple(range(6, 46)),)
    assert summary.jerks == (5,)
    doc = json.loads(json.dumps(summary.to_dict(ZONE)))
    assert doc["sleep_onset"] == "2026-11-24T23:20:00.600000+01:00"
    assert doc["hypnic_jerk_onsets"] == ["2026-11-24T23:20:00+01:00"]
    assert doc["night_end"] == "2026-11-25T05:00:00+01:00"


def test_without_series_exemption_an_early_train_delays_sleep_onset() -> None:
    occupancy = [(at(0), True), (at(6 * 3600), False)]
    movements = train(60, 20, first_s=120, intensity=0.3)
    plain = summarize_night(occupancy, movements, WAKE, NightConfig(quiet_ignores_series=False))
    default = summarize_night(occupancy, movements, WAKE)
    assert default.sleep_onset == at(0)
    assert default.plm_count == 60
    assert plain.sleep_onset == at(120 + 59 * 20 + 1.5)
    assert plain.plm_count == 0


def test_movements_out_of_bed_do_not_count() -> None:
    occupancy = [(at(0), True), (at(3600), False), (at(4000), True), (at(6 * 3600), False)]
    between = [lm(3700, 1.0, 0.9), lm(3800, 20.0, 0.9)]
    summary = summarize_night(occupancy, [*between, lm(7 * 3600, 1.0, 0.9)], WAKE)
    assert summary.movements == 0
    assert summary.in_bed == ()
    assert summary.time_in_bed_s == 6 * 3600 - 400


def test_a_night_without_a_still_stretch_has_no_sleep_onset_and_no_index() -> None:
    occupancy = [(at(0), True), (at(4 * 3600), False)]
    movements = [lm(t, 2.0, 0.5) for t in range(0, 4 * 3600, 400)]
    summary = summarize_night(occupancy, movements, WAKE)
    assert summary.has_data
    assert summary.sleep_onset is None
    assert (summary.time_to_settle_s, summary.plm_index) == (None, None)
    assert (summary.asleep_s, summary.plm_count, summary.series, summary.hypnic_jerks) == (
        0.0,
        0,
        0,
        0,
    )
    assert summary.movements == len(movements)


def test_a_series_never_spans_two_stays_in_bed() -> None:
    occupancy = [(at(0), True), (at(3650), False), (at(3660), True), (at(6 * 3600), False)]
    movements = train(3, 20, first_s=3600) + train(3, 20, first_s=3670)
    assert summarize_night(occupancy, movements, WAKE).plm_count == 0
    joined = [(at(0), True), (at(6 * 3600), False)]
    assert summarize_night(joined, movements, WAKE).plm_count == 6


def test_aasm_counts_what_wasm_refuses() -> None:
    occupancy = [(at(0), True), (at(6 * 3600), False)]
    movements = train(30, 7, first_s=3600)
    wasm = summarize_night(occupancy, movements, WAKE)
    aasm = summarize_night(occupancy, movements, WAKE, NightConfig(plm_rules="aasm"))
    assert (wasm.plm_count, aasm.plm_count) == (0, 30)


def test_summary_at_wake_time_covers_what_is_known() -> None:
    occupancy = [(at(0), True)]
    summary = summarize_night(occupancy, [], WAKE, now=WAKE)
    assert summary.night_end == WAKE
    assert summary.time_in_bed_s == 8 * 3600


@pytest.mark.parametrize(
    ("bed", "wake", "hours"),
    [
        pytest.param(
            datetime(2026, 10, 24, 22, 0, tzinfo=ZONE),
            datetime(2026, 10, 25, 6, 0, tzinfo=ZONE),
            9,
            id="the night summer time ends lasts 9 hours from 22:00 to 06:00",
        ),
        pytest.param(
            datetime(2026, 3, 28, 22, 0, tzinfo=ZONE),
            datetime(2026, 3, 29, 6, 0, tzinfo=ZONE),
            7,
            id="the night summer time starts lasts 7 hours from 22:00 to 06:00",
        ),
    ],
)
def test_dst_nights_are_measured_in_elapsed_time(bed: datetime, wake: datetime, hours: int) -> None:
    summary = summarize_night(
        [(bed.timestamp(), True), (wake.timestamp(), False)], [], wake.timestamp()
    )
    assert summary.time_in_bed_s == hours * 3600
    assert summary.asleep_s == hours * 3600


# --- The raw detector --------------------------------------------------------------------------


def quiet(seconds: float, noise_g: float = 0.002, seed: int = 0) -> NDArray[np.float64]:
    """A bed at rest: gravity on z, white sensor noise, 0.25 Hz breathing."""
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    x = rng.normal(0.0, noise_g, (n, 3))
    x[:, 2] += 1.0 + 0.005 * np.sin(2 * np.pi * 0.25 * np.arange(n) / RATE)
    return x


def burst(x: NDArray[np.float64], at_s: float, duration_s: float, rms_g: float) -> None:
    """Add a 3-8 Hz vibration of ``rms_g`` RMS, mostly vertical, in place."""
    start, m = round(at_s * RATE), max(1, round(duration_s * RATE))
    t = np.arange(m) / RATE
    wave = np.sin(2 * np.pi * 5.3 * t) + 0.6 * np.sin(2 * np.pi * 3.1 * t + 1.0)
    wave *= rms_g / np.sqrt(np.mean(wave * wave))
    x[start : start + m] += wave[:, None] * np.array([0.3, 0.2, 0.93])


@pytest.mark.parametrize(
    ("duration_s", "kind"),
    [
        pytest.param(0.2, MovementKind.BRIEF, id="a 0.2 s start is a brief movement"),
        pytest.param(2.0, MovementKind.LIMB, id="a 2 s burst is a limb movement"),
        pytest.param(8.0, MovementKind.LIMB, id="an 8 s burst is still a limb movement"),
        pytest.param(20.0, MovementKind.POSTURE, id="a 20 s burst is a posture change"),
    ],
)
def test_detector_finds_one_burst(duration_s: float, kind: MovementKind) -> None:
    x = quiet(180)
    burst(x, 90.0, duration_s, 0.06)
    (found,) = detect_movements(x, at(0), RATE)
    assert found.kind is kind
    assert abs(found.onset - at(90.0)) <= 0.1
    assert found.duration_s == pytest.approx(duration_s, abs=0.15)
    assert found.intensity == pytest.approx(0.06 / 0.2, rel=0.1)


@pytest.mark.parametrize(
    "disturb",
    [
        pytest.param(lambda x: None, id="sensor noise and breathing alone are no movement"),
        pytest.param(
            lambda x: x.__setitem__((slice(4000, 4001), 2), x[4000, 2] + 0.3),
            id="a single-sample glitch is no movement",
        ),
        pytest.param(
            lambda x: x.__setitem__(
                (slice(None), 0),
                x[:, 0] + 0.05 * np.clip((np.arange(x.shape[0]) - 4500) / 1000, 0, 1),
            ),
            id="a slow 20 s change in tilt is no movement",
        ),
        pytest.param(
            lambda x: x.__setitem__(
                (slice(None), 2),
                x[:, 2] + 0.02 * np.sin(2 * np.pi * 0.3 * np.arange(x.shape[0]) / RATE),
            ),
            id="deep breathing at 0.3 Hz is no movement",
        ),
    ],
)
def test_detector_ignores_what_is_not_movement(disturb: object) -> None:
    x = quiet(180, seed=3)
    disturb(x)  # type: ignore[operator]
    assert detect_movements(x, at(0), RATE) == []


def test_a_raw_plm_train_is_scored_as_a_series() -> None:
    x = quiet(300)
    for i in range(6):
        burst(x, 30.0 + 25.0 * i, 1.5, 0.04)
    found = detect_movements(x, at(0), RATE)
    assert [len(s) for s in find_series(found)] == [6]


def test_a_perfectly_still_sensor_reports_nothing() -> None:
    x = np.tile([0.0, 0.0, 1.0], (3000, 1))
    assert detect_movements(x, at(0), RATE) == []


def signal_with_movements() -> NDArray[np.float64]:
    """Four minutes with weak and strong, short and long movements, some close together."""
    x = quiet(240, seed=7)
    for at_s, duration_s, rms_g in [
        (20, 1.0, 0.02),
        (45, 0.3, 0.1),
        (70, 3.0, 0.01),
        (72.2, 1.0, 0.05),
        (120, 15.0, 0.08),
        (150, 2.0, 0.008),
        (200, 9.0, 0.03),
    ]:
        burst(x, at_s, duration_s, rms_g)
    return x


SIGNAL = signal_with_movements()
BATCH = detect_movements(SIGNAL, at(0), RATE)


def stream(
    x: NDArray[np.float64], sizes: list[int], detector: LimbMovementDetector | None = None
) -> list[Movement]:
    """Feed ``x`` in chunks cycling through ``sizes``, then flush."""
    detector = detector or LimbMovementDetector()
    found: list[Movement] = []
    i, k = 0, 0
    while i < x.shape[0]:
        n = sizes[k % len(sizes)]
        found += detector.feed(x[i : i + n], at(i / RATE), RATE)
        i, k = i + n, k + 1
    return found + detector.flush()


def assert_same(a: list[Movement], b: list[Movement]) -> None:
    """Same movements up to floating-point noise: a sample in time, a millionth in intensity."""
    assert len(a) == len(b)
    for m, n in zip(a, b, strict=True):
        assert abs(m.onset - n.onset) <= 1 / RATE
        assert m.duration_s == pytest.approx(n.duration_s, abs=2 / RATE)
        assert m.intensity == pytest.approx(n.intensity, rel=1e-6, abs=1e-9)


def test_the_reference_signal_has_something_to_find() -> None:
    kinds = [m.kind for m in BATCH]
    assert kinds.count(MovementKind.LIMB) >= 4
    assert MovementKind.POSTURE in kinds
    assert MovementKind.BRIEF in kinds


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param([1], id="one sample at a time gives the batch result"),
        pytest.param([50], id="one-second chunks give the batch result"),
        pytest.param([37, 1, 503], id="ragged chunks give the batch result"),
        pytest.param([6000], id="two-minute chunks give the batch result"),
    ],
)
def test_streaming_equals_batch(sizes: list[int]) -> None:
    assert_same(stream(SIGNAL, sizes), BATCH)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=8))
def test_any_chunking_finds_the_same_movements(sizes: list[int]) -> None:
    assert_same(stream(SIGNAL, sizes), BATCH)


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(1234, id="a restart mid-stream"),
        pytest.param(3100, id="a restart after a batch"),
    ],
)
def test_state_survives_a_json_round_trip(cut: int) -> None:
    detector = LimbMovementDetector()
    first = detector.feed(SIGNAL[:cut], at(0), RATE)
    restored = LimbMovementDetector.from_dict(json.loads(json.dumps(detector.to_dict())))
    assert restored == detector
    rest = restored.feed(SIGNAL[cut:], at(cut / RATE), RATE) + restored.flush()
    assert first + rest == stream(SIGNAL, [cut, SIGNAL.shape[0]])
    assert_same(first + rest, BATCH)


def test_a_detector_kept_by_version_1_continues() -> None:
    """Version 1 also kept the chunks' time zone; a detector stored so goes on the same."""
    detector = LimbMovementDetector()
    first = detector.feed(SIGNAL[:3100], at(0), RATE)
    old = detector.to_dict()
    old["version"] = 1
    old["stream"]["tz"] = {"zone": "Europe/Berlin"}
    restored = LimbMovementDetector.from_dict(json.loads(json.dumps(old)))
    assert restored == detector
    rest = restored.feed(SIGNAL[3100:], at(3100 / RATE), RATE) + restored.flush()
    assert first + rest == stream(SIGNAL, [3100, SIGNAL.shape[0]])


def test_an_unknown_detector_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        LimbMovementDetector.from_dict({**LimbMovementDetector().to_dict(), "version": 3})


def test_an_idle_detector_round_trips() -> None:
    restored = LimbMovementDetector.from_dict(
        json.loads(json.dumps(LimbMovementDetector().to_dict()))
    )
    assert not restored.is_streaming
    assert restored.flush() == []


def test_a_gap_in_the_clock_starts_a_new_stream() -> None:
    x = quiet(60)
    burst(x, 30.0, 2.0, 0.06)
    detector = LimbMovementDetector()
    assert detector.feed(x, at(0), RATE) == []  # not yet certain: the batch is incomplete
    later = detector.feed(quiet(5), at(3600), RATE)
    assert [round(m.onset - at(0)) for m in later] == [30]
    assert detector.is_streaming


def test_small_jitter_in_chunk_times_is_tolerated() -> None:
    jittered = LimbMovementDetector()
    found: list[Movement] = []
    for k, i in enumerate(range(0, SIGNAL.shape[0], 50)):
        found += jittered.feed(
            SIGNAL[i : i + 50], at(i / RATE + (0.2 if k % 2 else -0.2 if k else 0.0)), RATE
        )
    assert_same(found + jittered.flush(), BATCH)


@pytest.mark.parametrize(
    ("samples", "start", "rate", "message"),
    [
        pytest.param(np.zeros((10, 2)), at(0), RATE, "shape", id="two axes are refused"),
        pytest.param(np.full((10, 3), np.nan), at(0), RATE, "finite", id="NaN samples are refused"),
        pytest.param(
            np.zeros((10, 3)), at(0), 5.0, "rate_hz", id="5 Hz is too slow for a 0.5 s LM"
        ),
        pytest.param(
            np.zeros((10, 3)), float("inf"), RATE, "start", id="an infinite start is refused"
        ),
    ],
)
def test_malformed_chunks_are_refused(
    samples: NDArray[np.float64], start: float, rate: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LimbMovementDetector().feed(samples, start, rate)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="highpass_hz"):
        DetectorConfig(highpass_hz=0)
    with pytest.raises(ValueError, match="baseline_blocks"):
        DetectorConfig(baseline_blocks=0)
    with pytest.raises(ValueError, match="plm_rules"):
        NightConfig(plm_rules="icsd")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    samples=arrays(
        np.float64,
        st.tuples(st.integers(0, 1500), st.just(3)),
        elements=st.floats(-8.0, 8.0, allow_nan=False, allow_infinity=False),
    ),
    rate=st.sampled_from([10.0, 25.0, 50.0, 100.0, 400.0]),
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=5),
)
def test_arbitrary_input_never_crashes(
    samples: NDArray[np.float64], rate: float, sizes: list[int]
) -> None:
    detector = LimbMovementDetector()
    found: list[Movement] = []
    i, k = 0, 0
    while i < samples.shape[0]:
        n = sizes[k % len(sizes)]
        found += detector.feed(samples[i : i + n], at(i / rate), rate)
        i, k = i + n, k + 1
    found += detector.flush()
    end = at(0) + samples.shape[0] / rate
    for m in found:
        assert at(0) <= m.onset <= end
        assert 0 < m.duration_s <= samples.shape[0] / rate
        assert 0.0 <= m.intensity <= 1.0
