"""summarize_night_seconds (POSIX seconds in) scores a night exactly as summarize_night does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from coach.limb_movement import (
    Movement,
    NightConfig,
    NightSummary,
    OccupancyChange,
    summarize_night,
    summarize_night_seconds,
)
from integrations.night_synth import random_night

ZONE = ZoneInfo("Europe/Berlin")
#: Evening before the end of summer time: nights here cross the change.
EVENING = datetime(2026, 10, 24, 22, 0, tzinfo=ZONE)


def _same(by_datetime: NightSummary, by_seconds: NightSummary) -> None:
    """Equal summaries; the hypnic-jerk onsets are the same instants (in another zone)."""
    a, b = by_datetime.to_dict(), by_seconds.to_dict()
    onsets_a, onsets_b = a.pop("hypnic_jerk_onsets"), b.pop("hypnic_jerk_onsets")
    assert a == b
    assert [datetime.fromisoformat(t) for t in onsets_a] == [
        datetime.fromisoformat(t) for t in onsets_b
    ]
    assert by_datetime.sleep_onset == by_seconds.sleep_onset
    assert by_datetime.night_end == by_seconds.night_end


def _both(
    occupancy: list[tuple[float, bool]],
    movements: list[tuple[float, float, float]],
    wake: datetime,
    config: NightConfig,
    start: datetime | None,
    now: datetime | None,
) -> None:
    by_datetime = summarize_night(
        [OccupancyChange(datetime.fromtimestamp(t, UTC), occ) for t, occ in occupancy],
        [Movement(datetime.fromtimestamp(t, ZONE), d, i) for t, d, i in movements],
        wake,
        config,
        start=start,
        now=now,
    )
    by_seconds = summarize_night_seconds(
        occupancy, [list(m) for m in movements], wake, config, start=start, now=now
    )
    _same(by_datetime, by_seconds)


def _instant(seconds: float) -> float:
    """Seconds after the evening, to the microsecond (as datetime.timestamp() gives them)."""
    return (EVENING + timedelta(seconds=seconds)).timestamp()


moves = st.lists(
    st.tuples(
        st.floats(-3600, 12 * 3600).map(lambda s: round(s, 6)),
        st.sampled_from([0.2, 0.5, 1.0, 2.5, 10.0, 10.5, 40.0]),
        st.sampled_from([0.0, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0]),
    ),
    max_size=120,
)
stays = st.lists(
    st.tuples(st.floats(-7200, 14 * 3600).map(lambda s: round(s, 6)), st.booleans()),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(
    occupancy=stays,
    movements=moves,
    rules=st.sampled_from(["wasm", "aasm"]),
    ignores_series=st.booleans(),
    start_h=st.none() | st.floats(0, 4),
    now_h=st.none() | st.floats(-6, 4),
)
def test_seconds_and_datetimes_agree(
    occupancy: list[tuple[float, bool]],
    movements: list[tuple[float, float, float]],
    rules: str,
    ignores_series: bool,
    start_h: float | None,
    now_h: float | None,
) -> None:
    """Random nights across the DST change: both entry points give the same summary."""
    wake = EVENING + timedelta(hours=9)
    config = NightConfig(plm_rules=rules, quiet_ignores_series=ignores_series)  # type: ignore[arg-type]
    start = None if start_h is None else EVENING - timedelta(hours=start_h)
    now = None if now_h is None else wake + timedelta(hours=now_h)
    _both(
        [(_instant(s), occ) for s, occ in occupancy],
        [(_instant(s), d, i) for s, d, i in movements],
        wake,
        config,
        start,
        now,
    )


def test_synthetic_nights_agree() -> None:
    """Generated nights with PLM trains and hypnic jerks: the same summary both ways."""
    for i in range(12):
        night = random_night(i, EVENING + timedelta(days=i), noise=("low", "medium", "high")[i % 3])
        occupancy = [
            (datetime.fromisoformat(e["ts"]).timestamp(), bool(e["occupied"]))
            for e in night.events
            if e["event"] == "occupancy"
        ]
        movements = [
            (
                datetime.fromisoformat(e["ts"]).timestamp(),
                float(e["duration_s"]),
                float(e["intensity"]),
            )
            for e in night.events
            if e["event"] == "movement"
        ]
        for rules in ("wasm", "aasm"):
            _both(occupancy, movements, night.truth.wake, NightConfig(plm_rules=rules), None, None)
