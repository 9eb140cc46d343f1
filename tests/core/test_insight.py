"""The insight statistics, pinned: permutation p-values, Benjamini-Hochberg, effect sizes, words."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coach import insight
from coach.insight import (
    OUTCOMES,
    Comparison,
    Factor,
    Outcome,
    benjamini_hochberg,
    compare,
    permutation_p,
    seed_of,
    sentence,
)

SEED = ("alex", "2026-11-29")


def nights(
    with_values: list[float | None],
    without_values: list[float | None],
    *,
    factor: str = "late_workout",
    outcome: str = "plm_index",
) -> list[dict[str, Any]]:
    """Stored nights: the first list with the factor, the second without; other factors off."""
    out = []
    for exposed, values in ((True, with_values), (False, without_values)):
        for value in values:
            exposures = {f.key: False for f in insight.FACTORS}
            exposures[factor] = exposed
            out.append({"exposures": exposures, outcome: value})
    return out


def reported(found: list[Comparison]) -> list[tuple[str, str]]:
    return [(c.factor, c.outcome) for c in found if c.is_reported]


# -- permutation_p ---------------------------------------------------------------------------------

PERMUTATION_TABLE = [
    pytest.param([1.0] * 5, [1.0] * 10, 1.0, 1.0, id="all nights alike: p is 1"),
    pytest.param([30.0] * 5, [0.0] * 10, 0.0, 0.003, id="30/h against 0/h: p is tiny"),
    pytest.param([0.0] * 5, [30.0] * 10, 0.0, 0.003, id="the other way round: just as tiny"),
    pytest.param(
        [5.0, 9.0, 4.0, 8.0, 6.0], [6.0, 5.0, 8.0, 4.0, 9.0, 7.0], 0.5, 1.0, id="interleaved: large"
    ),
]


@pytest.mark.parametrize(("with_values", "without_values", "low", "high"), PERMUTATION_TABLE)
def test_permutation_p(
    with_values: list[float], without_values: list[float], low: float, high: float
) -> None:
    p = permutation_p(with_values, without_values, seed=1)
    assert low <= p <= high
    assert p >= 1 / (1 + insight.PERMUTATIONS)  # never 0: the observed split counts


def exact_p(a: list[float], b: list[float]) -> float:
    """The permutation p-value by enumerating every split (an independent check)."""
    pooled, k = a + b, len(a)
    observed = abs(sum(a) / k - sum(b) / len(b))
    splits = list(itertools.combinations(range(len(pooled)), k))
    extreme = 0
    for chosen in splits:
        s = sum(pooled[i] for i in chosen)
        rest = sum(pooled) - s
        extreme += abs(s / k - rest / (len(pooled) - k)) >= observed - 1e-9
    return extreme / len(splits)


EXACT_TABLE = [
    pytest.param([10.0, 12.0, 9.0, 14.0, 11.0], [5.0, 4.0, 6.0, 5.0, 5.0, 6.0, 9.0], id="apart"),
    pytest.param([7.0, 5.0, 9.0, 6.0, 8.0], [5.0, 4.0, 6.0, 5.0, 7.0, 6.0, 9.0], id="overlapping"),
    pytest.param([0.0, 0.0, 3.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0, 0.0, 0.0], id="mostly zeros"),
]


@pytest.mark.parametrize(("a", "b"), EXACT_TABLE)
def test_the_permutation_p_value_is_seeded_and_near_the_exact_one(
    a: list[float], b: list[float]
) -> None:
    p = permutation_p(a, b, permutations=4000, seed=7)
    assert p == permutation_p(a, b, permutations=4000, seed=7)
    exact = exact_p(a, b)
    # Monte Carlo error: 4 standard errors of a share out of 4000 draws, plus the +1.
    assert abs(p - exact) <= 4 * math.sqrt(exact * (1 - exact) / 4000) + 1 / 4001


def test_permutation_p_needs_both_groups() -> None:
    with pytest.raises(ValueError, match="both groups"):
        permutation_p([], [1.0, 2.0], seed=1)


values = st.lists(
    st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda v: round(v, 2)),
    min_size=2,
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(values, values, st.floats(min_value=-50, max_value=50), st.floats(0.1, 10))
def test_the_p_value_ignores_the_unit_and_the_zero_point(
    a: list[float], b: list[float], shift: float, factor: float
) -> None:
    p = permutation_p(a, b, permutations=200, seed=3)
    moved = permutation_p(
        [v * factor + shift for v in a], [v * factor + shift for v in b], permutations=200, seed=3
    )
    assert 0 < p <= 1
    assert moved == pytest.approx(p, abs=2 / 201)  # a tie may fall either side of rounding


# -- benjamini_hochberg ----------------------------------------------------------------------------

BH_TABLE = [
    pytest.param([], [], id="nothing compared: nothing to adjust"),
    pytest.param([0.03], [0.03], id="one comparison: its own p"),
    pytest.param(
        [0.01, 0.04, 0.03, 0.005], [0.02, 0.04, 0.04, 0.02], id="four: the step-up, in order given"
    ),
    pytest.param([0.02] + [0.5] * 11, [0.24] + [0.5] * 11, id="0.02 among 12: not significant"),
    pytest.param([0.9, 0.8], [0.9, 0.9], id="never below a larger p's adjusted value"),
]


@pytest.mark.parametrize(("p_values", "expected"), BH_TABLE)
def test_benjamini_hochberg(p_values: list[float], expected: list[float]) -> None:
    assert benjamini_hochberg(p_values) == pytest.approx(expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0001, max_value=1.0), min_size=1, max_size=20))
def test_benjamini_hochberg_rejects_what_the_step_up_procedure_rejects(p: list[float]) -> None:
    adjusted = benjamini_hochberg(p)
    m = len(p)
    assert all(pi <= qi + 1e-12 and qi <= 1.0 + 1e-12 for pi, qi in zip(p, adjusted, strict=True))
    for i in range(m):
        for j in range(m):
            if p[i] <= p[j]:
                assert adjusted[i] <= adjusted[j] + 1e-12
    for fdr in (0.05, 0.10, 0.25):
        ordered = sorted(p)
        passing = [k for k in range(1, m + 1) if ordered[k - 1] <= k * fdr / m]
        cut = ordered[max(passing) - 1] if passing else -1.0
        assert {i for i in range(m) if adjusted[i] <= fdr * (1 + 1e-12)} == {
            i for i in range(m) if p[i] <= cut
        }


# -- compare -----------------------------------------------------------------------------------

COMPARE_TABLE = [
    pytest.param(
        nights([30.0] * 5, [0.0] * 10),
        [("late_workout", "plm_index")],
        id="30/h with the factor, none without: found against a zero baseline",
    ),
    pytest.param(
        nights([12.0, 14.0, 11.0, 13.0, 12.5], [4.0, 5.0, 6.0, 4.5, 5.5, 5.0, 4.0, 6.0]),
        [("late_workout", "plm_index")],
        id="about 12/h against 5/h on 5 and 8 nights: found",
    ),
    pytest.param(
        nights([8.0, 9.0, 8.5, 9.5, 8.0], [5.0, 5.5, 6.0, 5.0, 6.0, 5.5, 5.0, 6.0]),
        [],
        id="a clear but small difference (3/h, under 5/h): not reported",
    ),
    pytest.param(
        nights([30.0] * 4, [0.0] * 10), [], id="only 4 nights with the factor: not compared"
    ),
    pytest.param(
        nights([5.0, 9.0, 4.0, 8.0, 6.0], [6.0, 5.0, 8.0, 4.0, 9.0, 7.0]),
        [],
        id="the same spread either side: nothing",
    ),
    pytest.param(
        nights([30.0] * 5 + [None] * 3, [0.0] * 10),
        [("late_workout", "plm_index")],
        id="nights without a score are left out, not zero",
    ),
    pytest.param(
        nights([600.0] * 5, [2400.0] * 6, outcome="time_to_settle_s"),
        [("late_workout", "time_to_settle_s")],
        id="10 min against 40 min to settle: found, lower",
    ),
    pytest.param(
        nights([1.0, 2.0, 1.0, 2.0, 1.0], [0.0] * 8, outcome="hypnic_jerks"),
        [("late_workout", "hypnic_jerks")],
        id="1-2 hypnic jerks against none: found",
    ),
    pytest.param(
        nights([0.4, 0.6, 0.4, 0.6, 0.4], [0.0] * 8, outcome="hypnic_jerks"),
        [],
        id="half a jerk more a night (under 1): not reported",
    ),
]


@pytest.mark.parametrize(("stored", "expected"), COMPARE_TABLE)
def test_compare(stored: list[dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    assert reported(compare(stored, seed=SEED)) == expected


def test_a_zero_baseline_gives_a_difference_and_both_sides() -> None:
    (found,) = compare(nights([30.0] * 5, [0.0] * 10), seed=SEED)
    assert found.difference == 30.0
    assert (found.mean_with, found.mean_without) == (30.0, 0.0)
    assert (found.nights_with, found.nights_without) == (5, 10)
    assert found.p_value < 0.002
    assert found.to_dict()["difference"] == 30.0


def test_every_comparison_made_is_adjusted_together() -> None:
    stored = nights([12.0, 14.0, 11.0, 13.0, 12.5], [4.0, 5.0, 6.0, 4.5, 5.5, 5.0, 4.0, 6.0])
    # Give every factor a value and every night every outcome: 4 x 3 comparisons.
    for i, night in enumerate(stored):
        night["exposures"] = {
            f.key: (i % (k + 2) == 0) if f.key != "late_workout" else night["exposures"][f.key]
            for k, f in enumerate(insight.FACTORS)
        }
        night["hypnic_jerks"] = i % 3
        night["time_to_settle_s"] = 600.0 + 30 * (i % 5)
    found = compare(stored, seed=SEED)
    made = {(c.factor, c.outcome) for c in found}
    assert len(found) == len(made)
    assert all(c.q_value >= c.p_value for c in found)
    assert benjamini_hochberg([c.p_value for c in found]) == [c.q_value for c in found]
    assert reported(found) == [("late_workout", "plm_index")]


def test_a_night_that_did_not_record_a_factor_is_on_neither_side() -> None:
    stored = nights([30.0] * 5, [0.0] * 10)
    stored.append({"exposures": {}, "plm_index": 50.0})  # before the factor was recorded
    (found,) = [c for c in compare(stored, seed=SEED) if c.factor == "late_workout"]
    assert (found.nights_with, found.nights_without) == (5, 10)


def test_the_same_person_and_day_report_the_same() -> None:
    stored = nights([12.0, 9.0, 11.0, 13.0, 7.0], [4.0, 5.0, 9.0, 4.5, 5.5, 5.0, 4.0, 6.0])
    assert compare(stored, seed=SEED) == compare(stored, seed=SEED)
    assert seed_of("alex", "2026-11-29") == seed_of("alex", "2026-11-29")
    assert seed_of("alex", "2026-11-29") != seed_of("sam", "2026-11-29")


def test_new_factors_and_outcomes_are_data() -> None:
    alcohol = Factor("alcohol_late", "alcohol close to bed")
    rested = Outcome(
        "rested", "feeling more rested", "feeling less rested", "{:.1f} of 5", min_effect=1.0
    )
    stored = nights([2.0, 1.0, 2.0, 2.0, 1.0], [4.0, 4.0, 5.0, 4.0, 3.0, 4.0], outcome="rested")
    for night in stored:
        night["exposures"] = {"alcohol_late": night["exposures"]["late_workout"]}
    found = compare(stored, seed=SEED, factors=[alcohol], outcomes=[rested])
    assert reported(found) == [("alcohol_late", "rested")]
    assert sentence(found[0], [alcohol], [rested]) == (
        "Alcohol close to bed was associated with feeling less rested: 1.6 of 5 on average on "
        "the 5 nights with it, 4.0 of 5 on the 6 nights without."
    )


# -- sentence --------------------------------------------------------------------------------------


def comparison(outcome: str, mean_with: float, mean_without: float, n: int = 5) -> Comparison:
    return Comparison(
        factor="caffeine_at_bedtime",
        outcome=outcome,
        nights_with=n,
        nights_without=9,
        mean_with=mean_with,
        mean_without=mean_without,
        difference=mean_with - mean_without,
        p_value=0.001,
        q_value=0.01,
        is_reported=True,
    )


SENTENCE_TABLE = [
    pytest.param(
        comparison("plm_index", 30.0, 0.0),
        "Caffeine still high at bedtime was associated with a higher PLM-like index: 30.0 per "
        "hour on average on the 5 nights with it, 0.0 per hour on the 9 nights without.",
        id="PLM index against a zero baseline",
    ),
    pytest.param(
        comparison("time_to_settle_s", 600.0, 1500.0),
        "Caffeine still high at bedtime was associated with a shorter time to settle: 10 min on "
        "average on the 5 nights with it, 25 min on the 9 nights without.",
        id="time to settle in minutes, lower",
    ),
    pytest.param(
        comparison("hypnic_jerks", 2.0, 0.25, n=1),
        "Caffeine still high at bedtime was associated with more hypnic jerks: 2.0 a night on "
        "average on the 1 night with it, 0.2 a night on the 9 nights without.",
        id="one night: singular",
    ),
]


@pytest.mark.parametrize(("found", "expected"), SENTENCE_TABLE)
def test_sentence(found: Comparison, expected: str) -> None:
    assert sentence(found) == expected
    assert "caus" not in expected


def test_every_outcome_has_a_positive_minimum_effect() -> None:
    assert all(o.min_effect > 0 and math.isfinite(o.min_effect) for o in OUTCOMES)
