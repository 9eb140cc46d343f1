"""Benchmark: how often the weekly insight reports an association that is not there, and how often
it finds one that is (synthetic histories).

Run: ``.venv/bin/python bench/insights.py [--histories 200] [--seed 0] [--jobs N]``.

Each history is one person's 4 weeks (28 nights) of the figures the coach stores: a PLM-like
index, hypnic jerks, time to settle and how rested the morning after, and the five evening
factors. The insight runs on the
Sunday of weeks 2, 3 and 4 (14, 21 and 28 nights stored), as the coach runs it, so a history gives
3 weeks. Two sets of histories, drawn the same way:

- **no effect**: the factors change nothing. Every week that reports an association reports a
  false one. Target: at most 5 % of weeks.
- **planted effect**: caffeine still high at bedtime adds 8/h to that night's PLM-like index.
  The share of weeks (and of histories, by week 4) whose report names it.

Both figures are printed for the method the coach uses (``coach.insight``: a permutation test
per factor and outcome, Benjamini-Hochberg across all of them, a minimum effect) and, as the
baseline in the same run, for the method before it: the ratio of means with a 95 % percentile
bootstrap interval per factor and outcome, uncorrected, reported when the interval excludes 1.

How the nights are drawn (per person, then per night). PLM-like index: a third of people have
none to speak of (a mean of 0-3/h, half their nights 0), a third 5-25/h, a third 25-60/h; a
night's index is gamma-distributed around the person's mean with a coefficient of variation of
0.5 (night-to-night spread of the order sleep studies report). Hypnic jerks: Poisson with a
mean of 0.2-2 a night. Time to settle: log-normal around a median of 8-25 min (sigma 0.5).
Factors, independent from night to night: caffeine at bedtime on 10-50 % of evenings, a late
workout 5-40 %, a stressful evening 10-40 %, alcohol close to bed 0-30 %; one person in five
smokes, on 30-90 % of evenings. How rested (1-5): around a person's mean of 2.5-4 (sigma 0.8,
rounded), answered on 30-90 % of mornings (an unanswered morning is left out).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from coach import insight

NIGHTS = 28
#: The insight runs once 14 nights are stored, then weekly.
CHECKS = (14, 21, 28)
PLANTED_FACTOR = "caffeine_at_bedtime"
PLANTED_PLM = 8.0
FIRST_SUNDAY = date(2026, 1, 4)
# The method before: its settings as the coach had them.
BOOTSTRAP_SAMPLES = 2000
MIN_NIGHTS = 14


def draw_history(rng: np.random.Generator, *, planted: bool) -> tuple[float, list[dict[str, Any]]]:
    """One person's mean PLM-like index and 28 nights, as the coach stores them."""
    kind = rng.integers(3)
    if kind == 0:
        plm_mean, zero_share = rng.uniform(0, 3), 0.5
    elif kind == 1:
        plm_mean, zero_share = rng.uniform(5, 25), 0.0
    else:
        plm_mean, zero_share = rng.uniform(25, 60), 0.0
    jerk_mean = rng.uniform(0.2, 2.0)
    settle_median_min = rng.uniform(8, 25)
    shares = {
        "caffeine_at_bedtime": rng.uniform(0.1, 0.5),
        "late_workout": rng.uniform(0.05, 0.4),
        "stress_evening": rng.uniform(0.1, 0.4),
        "late_nicotine": rng.uniform(0.3, 0.9) if rng.random() < 0.2 else 0.0,
        "alcohol_evening": rng.uniform(0.0, 0.3),
    }
    rested_mean = rng.uniform(2.5, 4.0)
    answers_checkin = rng.uniform(0.3, 0.9)
    shape = 4.0  # gamma with shape 4: coefficient of variation 0.5
    nights = []
    for _ in range(NIGHTS):
        exposures = {name: bool(rng.random() < share) for name, share in shares.items()}
        plm = 0.0 if rng.random() < zero_share else rng.gamma(shape, plm_mean / shape)
        if planted and exposures[PLANTED_FACTOR]:
            plm += PLANTED_PLM
        nights.append(
            {
                "plm_index": float(plm),
                "hypnic_jerks": int(rng.poisson(jerk_mean)),
                "time_to_settle_s": float(60 * settle_median_min * rng.lognormal(0, 0.5)),
                "rested": _rested(rng, rested_mean) if rng.random() < answers_checkin else None,
                "exposures": exposures,
            }
        )
    return plm_mean, nights


def _rested(rng: np.random.Generator, mean: float) -> int:
    """A morning's "how rested" answer, 1-5, around the person's mean."""
    return int(np.clip(round(rng.normal(mean, 0.8)), 1, 5))


# --- The method before (the baseline) ---------------------------------------------------------


def _ratio_interval(
    with_values: list[float], without_values: list[float], seed: int
) -> tuple[float, float] | None:
    a = np.asarray(with_values)
    b = np.asarray(without_values)
    if b.mean() <= 0:
        return None
    rng = np.random.default_rng(seed)
    ma = a[rng.integers(0, a.size, size=(BOOTSTRAP_SAMPLES, a.size))].mean(axis=1)
    mb = b[rng.integers(0, b.size, size=(BOOTSTRAP_SAMPLES, b.size))].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(mb > 0, ma / np.where(mb > 0, mb, 1.0), np.where(ma > 0, np.inf, 1.0))
    ratios.sort()
    low = float(ratios[int(0.025 * BOOTSTRAP_SAMPLES)])
    high = float(ratios[min(BOOTSTRAP_SAMPLES - 1, int(np.ceil(0.975 * BOOTSTRAP_SAMPLES)) - 1)])
    return low, high


def baseline_findings(nights: Sequence[dict[str, Any]], seed: Sequence[str]) -> set[str]:
    """The method before: every factor/outcome whose bootstrap ratio interval excludes 1."""
    found: set[str] = set()
    if len(nights) < MIN_NIGHTS:
        return found
    for factor in insight.FACTORS:
        for outcome in insight.OUTCOMES:
            known = [n for n in nights if n[outcome.key] is not None]
            with_values = [n[outcome.key] for n in known if n["exposures"][factor.key]]
            without_values = [n[outcome.key] for n in known if not n["exposures"][factor.key]]
            if min(len(with_values), len(without_values)) < insight.MIN_GROUP_NIGHTS:
                continue
            interval = _ratio_interval(
                with_values, without_values, insight.seed_of(*seed, factor.key, outcome.key)
            )
            if interval is not None and not interval[0] <= 1.0 <= interval[1]:
                found.add(f"{factor.key}/{outcome.key}")
    return found


def new_findings(nights: Sequence[dict[str, Any]], seed: Sequence[str]) -> set[str]:
    """The coach's method: what its weekly report would name."""
    if len(nights) < MIN_NIGHTS:
        return set()
    return {f"{c.factor}/{c.outcome}" for c in insight.compare(nights, seed=seed) if c.is_reported}


@dataclass(frozen=True)
class Weeks:
    """What one history's three weekly checks reported, per method."""

    plm_mean: float
    baseline: tuple[frozenset[str], ...]
    new: tuple[frozenset[str], ...]
    seconds_baseline: float
    seconds_new: float


def run_history(args: tuple[int, bool]) -> Weeks:
    """Draw one history and run both methods on each of its weeks."""
    index, planted = args
    rng = np.random.default_rng([index, int(planted)])
    plm_mean, nights = draw_history(rng, planted=planted)
    baseline, new = [], []
    spent_baseline = spent_new = 0.0
    for week, stored in enumerate(CHECKS):
        seed = (f"person{index}", (FIRST_SUNDAY + timedelta(days=7 * week)).isoformat())
        t0 = time.process_time()
        baseline.append(frozenset(baseline_findings(nights[:stored], seed)))
        t1 = time.process_time()
        new.append(frozenset(new_findings(nights[:stored], seed)))
        t2 = time.process_time()
        spent_baseline += t1 - t0
        spent_new += t2 - t1
    return Weeks(plm_mean, tuple(baseline), tuple(new), spent_baseline, spent_new)


def share(flags: Sequence[bool]) -> str:
    """A share as a percentage with its count."""
    return f"{100.0 * sum(flags) / len(flags):5.1f} % ({sum(flags)}/{len(flags)})"


def main() -> None:
    """Run both sets of histories and print the figures for both methods."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="offset of the history numbers")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    indices = range(args.seed, args.seed + args.histories)
    with ProcessPoolExecutor(args.jobs) as pool:
        null = list(pool.map(run_history, [(i, False) for i in indices], chunksize=8))
        planted = list(pool.map(run_history, [(i, True) for i in indices], chunksize=8))
    target = f"{PLANTED_FACTOR}/plm_index"
    print(
        f"{args.histories} synthetic histories of {NIGHTS} nights, checked after "
        f"{', '.join(map(str, CHECKS))} nights ({len(CHECKS) * args.histories} weeks per set)"
    )
    print()
    header = f"{'':44} {'before (bootstrap ratio)':>26} {'now (permutation + BH)':>26}"
    print(header)
    rows = [
        (
            "no effect: weeks reporting any association",
            [bool(w) for h in null for w in h.baseline],
            [bool(w) for h in null for w in h.new],
        ),
        (
            "no effect: histories with any, in 3 weeks",
            [any(h.baseline) for h in null],
            [any(h.new) for h in null],
        ),
        (
            "planted +8/h: weeks naming it",
            [target in w for h in planted for w in h.baseline],
            [target in w for h in planted for w in h.new],
        ),
        (
            "planted +8/h: week 4 (28 nights) naming it",
            [target in h.baseline[-1] for h in planted],
            [target in h.new[-1] for h in planted],
        ),
        (
            "  of them, people under 25/h on average",
            [target in h.baseline[-1] for h in planted if h.plm_mean < 25],
            [target in h.new[-1] for h in planted if h.plm_mean < 25],
        ),
        (
            "planted +8/h: weeks naming anything else",
            [bool(w - {target}) for h in planted for w in h.baseline],
            [bool(w - {target}) for h in planted for w in h.new],
        ),
    ]
    for label, before, now in rows:
        print(f"{label:44} {share(before):>26} {share(now):>26}")
    runs = len(CHECKS) * 2 * args.histories
    before_ms = 1000 * sum(h.seconds_baseline for h in null + planted) / runs
    now_ms = 1000 * sum(h.seconds_new for h in null + planted) / runs
    print(f"{'CPU time per weekly check':44} {before_ms:23.1f} ms {now_ms:23.1f} ms")


if __name__ == "__main__":
    main()
