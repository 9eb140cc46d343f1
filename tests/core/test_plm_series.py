"""PLM series at every boundary of WASM 2016, as an independent implementation scores them.

Each case below was also run through RestEaze's PLM scorer (the lab implementation of WASM 2016
for an ankle accelerometer, github.com/pakmar1/Resteaze-PLM, ``matlabcode/subroutines``:
``getLMiPod``, ``candidate_lms``, ``periodic_lms``, under GNU Octave 7.3 with its default
parameters), fed the same movements, both as a list of leg movements and rendered as an activity
signal at 100 Hz; the expected PLMs are what it found (its signal path puts onsets on its sample
grid, up to 0.01 s off). Where the standard's text leaves a choice, RestEaze and PLMScoRe
(Fulda, a WASM 2016 co-author) agree, and so does the coach: see docs/nights.md.
"""

from __future__ import annotations

import pytest

from coach.limb_movement import find_series

T0 = 1_795_000_000.0  # any instant: the scorer works in POSIX seconds


def train(start: float, n: int, every: float = 20.0, duration: float = 1.0) -> list[list[float]]:
    """``n`` movements of ``duration`` seconds, ``every`` seconds apart from ``start``."""
    return [[start + i * every, duration] for i in range(n)]


def plm_onsets(movements: list[list[float]], rules: str = "wasm") -> list[float]:
    """The onsets (seconds from T0) of every LM the scorer puts in a series."""
    rows = [(T0 + onset, duration, 0.05) for onset, duration in movements]
    return sorted(round(rows[i][0] - T0, 3) for s in find_series(rows, rules) for i in s)  # type: ignore[arg-type]


FOUR = [0.0, 20.0, 40.0, 60.0]
AFTER_100 = [100.0, 120.0, 140.0, 160.0]

TABLE = [
    # Duration of a candidate LM: 0.5-10 s, both ends included.
    pytest.param(
        [*train(0, 4), [80, 0.4], *train(100, 4)],
        FOUR + AFTER_100,
        id="a 0.4 s movement is no LM: the 8 around it make one series",
    ),
    pytest.param(
        [*train(0, 4), [80, 0.5], *train(100, 4)],
        [*FOUR, 80.0, *AFTER_100],
        id="a 0.5 s movement is an LM: one series of 9",
    ),
    pytest.param(
        [*train(0, 4), [80, 10.0], *train(100, 4)],
        [*FOUR, 80.0, *AFTER_100],
        id="a 10 s movement is an LM: one series of 9",
    ),
    pytest.param(
        [*train(0, 4), [80, 10.1], *train(100, 4)],
        FOUR + AFTER_100,
        id="a 10.1 s movement is no CLM: it ends the series, the LM after it starts the next",
    ),
    # Onset-to-onset interval: 10-90 s, both ends included.
    pytest.param(
        train(0, 4) + train(69.9, 4),
        [*FOUR, 69.9, 89.9, 109.9, 129.9],
        id="9.9 s: the series ends and the LM after the short interval starts the next",
    ),
    pytest.param(
        train(0, 4) + train(70, 4),
        [*FOUR, 70.0, 90.0, 110.0, 130.0],
        id="10 s: one series of 8",
    ),
    pytest.param(
        train(0, 4) + train(150, 4),
        [*FOUR, 150.0, 170.0, 190.0, 210.0],
        id="90 s: one series of 8",
    ),
    pytest.param(
        train(0, 4) + train(150.1, 4),
        [*FOUR, 150.1, 170.1, 190.1, 210.1],
        id="90.1 s: two series of 4",
    ),
    pytest.param(train(0, 5, every=10.0), [0.0, 10.0, 20.0, 30.0, 40.0], id="5 LMs 10 s apart"),
    pytest.param(train(0, 5, every=9.9), [], id="5 LMs 9.9 s apart: no series"),
    pytest.param(train(0, 4, every=90.0), [0.0, 90.0, 180.0, 270.0], id="4 LMs 90 s apart"),
    pytest.param(train(0, 4, every=90.1), [], id="4 LMs 90.1 s apart: no series"),
    # Series length: at least 4.
    pytest.param(train(0, 4), FOUR, id="exactly 4 LMs: a series"),
    pytest.param(train(0, 3), [], id="3 LMs: no series"),
    pytest.param(
        [*train(0, 3), [60, 10.0], [200, 1.0]], FOUR, id="an LM of exactly 10 s completes 4"
    ),
    pytest.param(
        [*train(0, 4), [70, 15.0], *train(100, 4)],
        FOUR + AFTER_100,
        id="a posture change ends a series, the LM after it starts the next",
    ),
    pytest.param(
        [*train(0, 3), [45, 1.0], *train(65, 3)],
        [45.0, 65.0, 85.0, 105.0],
        id="an LM 5 s after the last starts a series with the 3 after it",
    ),
    pytest.param(
        [*train(0, 5), [85, 1.0], *train(105, 5)],
        [0.0, 20.0, 40.0, 60.0, 80.0, 85.0, 105.0, 125.0, 145.0, 165.0, 185.0],
        id="an LM 5 s into a long run: the run splits there, both halves count",
    ),
    pytest.param(
        [[0, 1], [5, 0.3], [20, 1], [25, 0.2], [40, 1], [60, 1]],
        FOUR,
        id="brief twitches between LMs are no LMs and break nothing",
    ),
    # An LM ends only after 0.5 s of quiet: closer events are one movement.
    pytest.param(
        [*train(0, 3), [60, 0.6], [60.9, 0.6], [80, 1.0]],
        [*FOUR, 80.0],
        id="one LM reported as two events 0.3 s apart: one LM, a series of 5",
    ),
    pytest.param(
        [*train(0, 3), [60, 0.6], [61.09, 0.6], [80, 1.0]],
        [*FOUR, 80.0],
        id="0.49 s apart: one LM",
    ),
    pytest.param(
        [*train(0, 3), [60, 0.6], [61.1, 0.6], [80, 1.0], [100, 1.0]],
        FOUR,
        id="exactly 0.5 s apart: two LMs 1.1 s apart, the series ends",
    ),
    pytest.param(
        [*train(0, 3), [60, 1.0], [60.5, 1.0], [80, 1.0]],
        [*FOUR, 80.0],
        id="overlapping events: one LM",
    ),
    pytest.param(
        [*train(0, 3), [60, 0.3], [60.5, 0.3], [80, 1.0]],
        [*FOUR, 80.0],
        id="two 0.3 s twitches 0.2 s apart: one 0.8 s LM",
    ),
    pytest.param(
        [*train(0, 4), [70, 20.0], [75, 1.0], *train(95, 3)],
        FOUR,
        id="an LM inside a posture change belongs to it and starts nothing",
    ),
    pytest.param(
        [*train(0, 4), [70, 6.0], [76.3, 6.0], *train(100, 3)],
        FOUR,
        id="two 6 s events 0.3 s apart: one 12.3 s movement, no CLM",
    ),
]


@pytest.mark.parametrize(("movements", "expected"), TABLE)
def test_series_agree_with_the_reference_implementation(
    movements: list[list[float]], expected: list[float]
) -> None:
    assert plm_onsets(movements) == expected


def test_the_order_of_the_rows_does_not_matter() -> None:
    movements = [*train(0, 3), [60, 0.6], [60.9, 0.6], [80, 1.0], [70, 20.0], [75, 1.0]]
    assert plm_onsets(movements[::-1]) == plm_onsets(movements)


def test_aasm_rules_use_the_same_logic_with_5_s() -> None:
    assert plm_onsets(train(0, 4, every=5.0), "aasm") == [0.0, 5.0, 10.0, 15.0]
    after_a_short_interval = [*train(0, 3), [42, 1.0], *train(62, 3)]
    assert plm_onsets(after_a_short_interval, "aasm") == [42.0, 62.0, 82.0, 102.0]
