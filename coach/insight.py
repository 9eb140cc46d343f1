"""Insights: which evening factors go with worse nights, with false discoveries held down.

How it works. Every stored night is a row: the factors its evening had (``{"late_workout": True,
...}``, under ``"exposures"``) and its outcomes (``"plm_index": 12.5``, ...). For every factor and
outcome with at least ``min_group`` nights on each side, the mean outcome of the nights with the
factor is compared with the mean of the nights without it. The difference of the two means is the
effect: unlike a ratio it exists when the nights without the factor average zero (no periodic
movements at all), and it reads in the outcome's own unit ("8 per hour more").

Whether a difference is more than chance is decided by a permutation test (Good 2005,
Permutation, Parametric and Bootstrap Tests of Hypotheses, Springer): the labels "with" and
"without" are shuffled many times and the p-value is the share of shuffles whose difference is at
least as large either way, counting the observed one, so it is never 0 (Phipson & Smyth 2010,
Stat Appl Genet Mol Biol 9(1):39). It assumes nothing about the shape of the outcome, which for a
PLM index is skewed and often zero. The shuffles are seeded from the person, the date, the factor
and the outcome, so a replay reports the same figures.

One test per factor and outcome makes many tests a week; at 5 % each, 12 of them find "something"
in almost half the weeks of a person whose evenings change nothing. The p-values of all the
comparisons made are therefore adjusted together by the Benjamini-Hochberg step-up procedure
(Benjamini & Hochberg 1995, J R Stat Soc B 57(1):289-300), which keeps the expected share of
false findings among those reported at the chosen rate; when no factor has any effect, it keeps
the chance of reporting anything at all at that rate (for independent or positively related
tests, Simes 1986, Biometrika 73(3):751-754). A finding is reported only when its
adjusted p-value is within the rate **and** the difference is at least the outcome's minimum
effect: a difference too small to matter to a sleeper is not worth a message even when it is
real.

Factors and outcomes are data (:class:`Factor`, :class:`Outcome`): a new one is a row in
:data:`FACTORS` or :data:`OUTCOMES` and a value stored with each night. A night that did not
record a factor or an outcome (stored before it existed, or unknown that night) is left out of
that comparison: unknown is not "without" and not zero.

The module is pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np

#: Shuffles per comparison (Phipson & Smyth 2010: the smallest p-value is 1/(n+1), here about
#: 0.0005, well below the 0.1/12 the first of 12 Benjamini-Hochberg steps needs).
PERMUTATIONS: Final = 2000
#: The false-discovery rate: Benjamini & Hochberg's q.
FALSE_DISCOVERY_RATE: Final = 0.10
#: Fewest nights on each side of a comparison.
MIN_GROUP_NIGHTS: Final = 5
#: Relative tolerance when a shuffled difference ties the observed one (sums in another order).
_TIE: Final = 1e-9


@dataclass(frozen=True, slots=True)
class Factor:
    """Something an evening can have, with the words a message uses for it."""

    key: str
    #: A noun phrase that can start a sentence once capitalised: "a late intense workout".
    words: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """A figure of each night, with its unit, its words and the smallest difference that matters."""

    key: str
    #: "a higher PLM-like index", "a lower PLM-like index".
    higher: str
    lower: str
    #: How a mean reads: "{:.1f} per hour"; the stored value is multiplied by ``scale`` first.
    template: str
    #: The smallest difference of means worth reporting, in the stored unit.
    min_effect: float
    scale: float = 1.0

    def show(self, value: float) -> str:
        """A stored value as a message shows it."""
        return self.template.format(value * self.scale)


#: The evening factors the coach records with each night.
FACTORS: Final[tuple[Factor, ...]] = (
    Factor("caffeine_at_bedtime", "caffeine still high at bedtime"),
    Factor("late_workout", "a late intense workout"),
    Factor("stress_evening", "a high-stress evening"),
    Factor("late_nicotine", "nicotine close to bed"),
    Factor("alcohol_evening", "alcohol close to bed"),
)

#: The outcomes compared. The minimum effects are the project's choice of a difference a sleeper
#: would notice: 5/h is a third of the ICSD-3 limit of 15/h for the PLM index; one hypnic jerk a
#: night; ten minutes to settle.
OUTCOMES: Final[tuple[Outcome, ...]] = (
    Outcome(
        "plm_index",
        "a higher PLM-like index",
        "a lower PLM-like index",
        "{:.1f} per hour",
        min_effect=5.0,
    ),
    Outcome(
        "hypnic_jerks",
        "more hypnic jerks",
        "fewer hypnic jerks",
        "{:.1f} a night",
        min_effect=1.0,
    ),
    Outcome(
        "time_to_settle_s",
        "a longer time to settle",
        "a shorter time to settle",
        "{:.0f} min",
        min_effect=600.0,
        scale=1 / 60,
    ),
    # How rested the person said they felt the morning after (the check-in, 1-5); a night
    # without an answer is left out. One step of the scale is the smallest difference reported.
    Outcome(
        "rested",
        "feeling more rested the morning after",
        "feeling less rested the morning after",
        "{:.1f} of 5",
        min_effect=1.0,
    ),
)


@dataclass(frozen=True, slots=True)
class Comparison:
    """One factor against one outcome: both sides, the difference and how sure it is."""

    factor: str
    outcome: str
    nights_with: int
    nights_without: int
    mean_with: float
    mean_without: float
    #: ``mean_with - mean_without``, in the outcome's stored unit.
    difference: float
    p_value: float
    #: The Benjamini-Hochberg adjusted p-value across every comparison of the same run.
    q_value: float
    #: ``q_value`` within the false-discovery rate and ``|difference|`` at least the minimum effect.
    is_reported: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict, the figures rounded for a message's evidence."""
        doc = asdict(self)
        for key in ("mean_with", "mean_without", "difference"):
            doc[key] = round(doc[key], 2)
        doc["p_value"] = round(self.p_value, 4)
        doc["q_value"] = round(self.q_value, 4)
        return doc


def seed_of(*parts: str) -> int:
    """A 64-bit seed from strings (person, date, factor, outcome): the same parts, the same seed."""
    return int.from_bytes(hashlib.sha256(":".join(parts).encode()).digest()[:8], "big")


def permutation_p(
    with_values: Sequence[float],
    without_values: Sequence[float],
    *,
    permutations: int = PERMUTATIONS,
    seed: int,
) -> float:
    """Two-sided permutation p-value of the difference of means, in (0, 1].

    The pooled values are shuffled ``permutations`` times; the p-value is (1 + the shuffles whose
    difference is at least as far from zero as the observed one) / (1 + ``permutations``).
    """
    a = np.asarray(with_values, dtype=np.float64)
    b = np.asarray(without_values, dtype=np.float64)
    k, n = a.size, a.size + b.size
    if k in (0, n):
        raise ValueError("both groups need at least one value")
    observed = abs(float(a.mean() - b.mean()))
    pooled = np.concatenate([a, b])
    total = float(pooled.sum())
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.broadcast_to(pooled, (permutations, n)), axis=1)
    sums = shuffled[:, :k].sum(axis=1)
    differences = np.abs(sums / k - (total - sums) / (n - k))
    # Shuffles that reproduce the observed split give the same difference up to rounding.
    hits = int(np.count_nonzero(differences >= observed - _TIE * max(observed, 1.0)))
    return (1 + hits) / (1 + permutations)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values, in the order given.

    A hypothesis is rejected at false-discovery rate q exactly when its adjusted value is <= q
    (the step-up procedure: the largest i with p_(i) <= i q / m, and every smaller p).
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = running
    return adjusted


def _sides(
    nights: Sequence[Mapping[str, Any]], factor: str, outcome: str
) -> tuple[list[float], list[float]]:
    """The outcome's values on nights with and without the factor; unknowns left out."""
    with_values: list[float] = []
    without_values: list[float] = []
    for night in nights:
        exposed = night.get("exposures", {}).get(factor)
        value = night.get(outcome)
        if exposed is None or value is None or not math.isfinite(value):
            continue
        (with_values if exposed else without_values).append(float(value))
    return with_values, without_values


def compare(
    nights: Sequence[Mapping[str, Any]],
    *,
    seed: Sequence[str],
    factors: Sequence[Factor] = FACTORS,
    outcomes: Sequence[Outcome] = OUTCOMES,
    min_group: int = MIN_GROUP_NIGHTS,
    permutations: int = PERMUTATIONS,
    fdr: float = FALSE_DISCOVERY_RATE,
) -> list[Comparison]:
    """Every factor against every outcome with ``min_group`` nights on each side.

    ``seed`` are the strings each comparison's shuffles are seeded from (the person and the date),
    with the factor and the outcome appended. The Benjamini-Hochberg adjustment runs over all the
    comparisons returned.
    """
    made: list[tuple[Factor, Outcome, list[float], list[float], float]] = []
    for factor in factors:
        for outcome in outcomes:
            with_values, without_values = _sides(nights, factor.key, outcome.key)
            if min(len(with_values), len(without_values)) < min_group:
                continue
            p = permutation_p(
                with_values,
                without_values,
                permutations=permutations,
                seed=seed_of(*seed, factor.key, outcome.key),
            )
            made.append((factor, outcome, with_values, without_values, p))
    adjusted = benjamini_hochberg([p for *_, p in made])
    out: list[Comparison] = []
    for (factor, outcome, with_values, without_values, p), q in zip(made, adjusted, strict=True):
        mean_with = math.fsum(with_values) / len(with_values)
        mean_without = math.fsum(without_values) / len(without_values)
        difference = mean_with - mean_without
        out.append(
            Comparison(
                factor=factor.key,
                outcome=outcome.key,
                nights_with=len(with_values),
                nights_without=len(without_values),
                mean_with=mean_with,
                mean_without=mean_without,
                difference=difference,
                p_value=p,
                q_value=q,
                is_reported=q <= fdr and abs(difference) >= outcome.min_effect,
            )
        )
    return out


def _night_count(n: int) -> str:
    return f"{n} night" if n == 1 else f"{n} nights"


def sentence(
    comparison: Comparison,
    factors: Sequence[Factor] = FACTORS,
    outcomes: Sequence[Outcome] = OUTCOMES,
) -> str:
    """One finding in words: the association, both means and how many nights each side had."""
    factor = next(f for f in factors if f.key == comparison.factor)
    outcome = next(o for o in outcomes if o.key == comparison.outcome)
    direction = outcome.higher if comparison.difference > 0 else outcome.lower
    subject = factor.words[:1].upper() + factor.words[1:]
    return (
        f"{subject} was associated with {direction}: {outcome.show(comparison.mean_with)} on "
        f"average on the {_night_count(comparison.nights_with)} with it, "
        f"{outcome.show(comparison.mean_without)} on the "
        f"{_night_count(comparison.nights_without)} without."
    )
