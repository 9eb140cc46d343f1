"""Wording, pinned: counts with the right plural, durations as people say them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coach.wording import before_bedtime, count, duration
from tests.core.conftest import TZ, t


@pytest.mark.parametrize(
    ("n", "text"),
    [
        pytest.param(0, "0 minutes", id="zero is plural"),
        pytest.param(1, "1 minute", id="one is singular"),
        pytest.param(1.4, "1 minute", id="rounded to a whole count first"),
        pytest.param(2, "2 minutes", id="two is plural"),
    ],
)
def test_count(n: float, text: str) -> None:
    assert count(n, "minute") == text


def test_count_with_an_irregular_plural() -> None:
    assert count(2, "night", "nights") == "2 nights"
    assert count(1, "series", "series") == "1 series"
    assert count(3, "series", "series") == "3 series"


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        pytest.param(-5, "0 minutes", id="a negative span is none"),
        pytest.param(1, "1 minute", id="one minute"),
        pytest.param(59.4, "59 minutes", id="under an hour to the minute"),
        pytest.param(60, "1 hour", id="one hour"),
        pytest.param(75, "1 hour 15 minutes", id="a quarter past is exact"),
        pytest.param(82, "about 1 hour 15 minutes", id="to the nearest quarter hour, about"),
        pytest.param(150, "2 hours 30 minutes", id="two and a half hours"),
        pytest.param(173, "about 3 hours", id="rounding up to a whole hour"),
    ],
)
def test_duration(minutes: float, text: str) -> None:
    assert duration(timedelta(minutes=minutes)) == text


@pytest.mark.parametrize(
    ("at", "text"),
    [
        pytest.param("22:29", "1 minute before your bedtime (22:30)", id="a minute before"),
        pytest.param("21:30", "1 hour before your bedtime (22:30)", id="an hour before"),
        pytest.param(
            "20:12", "about 2 hours 15 minutes before your bedtime (22:30)", id="rounded, about"
        ),
        pytest.param("22:30", "after your bedtime (22:30)", id="at bedtime is after it"),
        pytest.param("23:10", "after your bedtime (22:30)", id="after bedtime"),
    ],
)
def test_before_bedtime(at: str, text: str) -> None:
    assert before_bedtime(t(at), t("22:30"), TZ) == text
