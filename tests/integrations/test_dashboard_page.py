"""The dashboard page in a real browser (Debian's headless Chromium), behind a sub-path proxy.

The state is a fortnight that the very engine lived through: fourteen synthetic nights of bed
movements (`integrations.night_synth`) with coffees every day, replayed by the simulator, handed
to the dashboard as the daemon's consumer hands it over, with the dashboard's clock at 17:30 on the
last day. The page is opened through a proxy that serves it under a sub-path, as nginx or Home
Assistant's ingress would. The same page fed by a live `sleepcoach run` is
tests/e2e/test_dashboard_browser.py.

With `SLEEPCOACH_SCREENSHOTS=DIR` set, the test saves the page as DIR/dashboard.png (the
screenshot in the README and docs/report.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from coach.action import Action, RecordNight
from coach.config import Config
from coach.dashboard import snapshot
from coach.engine import decide
from coach.event import CoffeeBrewed, Event
from coach.state import CoachState, dump_state, load_state
from integrations.config_file import ConfigFile
from integrations.dashboard import Dashboard
from integrations.night_synth import nightly_starts, random_night, scenario_lines
from integrations.settings import DashboardSettings
from integrations.simulator import Simulation
from tests.broker import free_port
from tests.browser import Browser, SubPathProxy

TZ = ZoneInfo("Europe/Berlin")
FIRST_EVENING = datetime(2026, 11, 10, 22, 0, tzinfo=TZ)
NIGHTS = 14
NOW = datetime(2026, 11, 24, 17, 30, tzinfo=TZ)
FILE = ConfigFile.model_validate(
    {
        "timezone": "Europe/Berlin",
        "people": [{"id": "alex", "bedtime": "22:30", "wake": "06:30", "age": 38}],
        "devices": [
            {"id": "bed", "kind": "bed_motion", "topic": "home/bedroom/bed", "person": "alex"},
            {
                "id": "coffee",
                "kind": "coffee_maker",
                "topic": "home/kitchen/coffee",
                "person": "alex",
            },
            {"id": "watch", "kind": "fitness_tracker", "topic": "tracker/alex", "person": "alex"},
        ],
    }
)
CONFIG = FILE.core
TODAYS_COFFEES = (("07:40", "coffee", 240), ("12:30", "espresso", 40), ("15:10", "espresso", 40))


def line(at: datetime, topic: str, payload: dict[str, object]) -> str:
    return json.dumps({"ts": at.isoformat(), "topic": topic, "payload": payload})


def coffee_line(day: datetime, hhmm: str, drink: str, ml: int) -> str:
    hour, minute = map(int, hhmm.split(":"))
    at = day.replace(hour=hour, minute=minute)
    return line(at, "home/kitchen/coffee", {"event": "brew", "drink": drink, "volume_ml": ml})


def fortnight() -> tuple[CoachState, list[dict[str, Any]]]:
    """Fourteen nights and days, and today until 17:30, through the simulator; with the nights
    the coach asked to store (`RecordNight`), as the daemon stores them."""
    recorded: list[dict[str, Any]] = []

    def deciding(state: CoachState, event: Event, now: datetime, config: Config) -> list[Action]:
        actions = decide(state, event, now, config)
        recorded.extend(a.summary for a in actions if isinstance(a, RecordNight))
        return actions

    sim = Simulation(FILE, decide=deciding)
    lines: list[tuple[float, str]] = []
    for i, start in enumerate(nightly_starts(FIRST_EVENING, NIGHTS)):
        plm = (2.0, 8.0, 22.0, 35.0)[i % 4]
        night = random_night(100 + i, start, plm_index=plm, with_accel=False)
        for record in scenario_lines(night, "home/bedroom/bed"):
            ts = datetime.fromisoformat(str(record["ts"]))
            lines.append((ts.timestamp(), json.dumps(record)))
        day = start.replace(hour=0, minute=0)
        coffees = [("07:30", "coffee", 240), ("13:00", "espresso", 30)]
        if i % 3 == 0:
            coffees.append(("16:30", "espresso", 40))  # a late one now and then
        for hhmm, drink, ml in coffees:
            text = coffee_line(day, hhmm, drink, ml)
            lines.append((datetime.fromisoformat(json.loads(text)["ts"]).timestamp(), text))
    today = NOW.replace(hour=0, minute=0)
    for hhmm, drink, ml in TODAYS_COFFEES:
        text = coffee_line(today, hhmm, drink, ml)
        lines.append((datetime.fromisoformat(json.loads(text)["ts"]).timestamp(), text))
    # A last reading at 17:30 brings the virtual clock (and every timer due) up to now.
    lines.append((NOW.timestamp(), line(NOW, "tracker/alex", {"event": "heart_rate", "bpm": 64})))
    for _t, text in sorted(lines, key=lambda item: item[0]):
        sim.feed_line(text)
    return sim.state, recorded


@pytest.fixture(scope="module")
def lived() -> tuple[CoachState, list[dict[str, Any]]]:
    return fortnight()


@pytest.fixture
def state(lived: tuple[CoachState, list[dict[str, Any]]]) -> CoachState:
    return lived[0]


@pytest.fixture
def served(
    lived: tuple[CoachState, list[dict[str, Any]]],
) -> Iterator[tuple[Dashboard, SubPathProxy]]:
    state, nights = lived
    board = Dashboard(
        CONFIG, DashboardSettings(listen=f"127.0.0.1:{free_port()}"), clock=lambda: NOW
    )
    board.start()
    for night in nights:
        board.record_night("alex", night)
    board.publish("alex", snapshot(state, "alex"))
    proxy = SubPathProxy(int(board.url.rsplit(":", 1)[1].rstrip("/")))
    yield board, proxy
    proxy.close()
    board.stop()


def test_the_page_shows_the_day_the_night_and_the_fortnight_and_follows_new_drinks(
    browser: Browser, served: tuple[Dashboard, SubPathProxy], state: CoachState
) -> None:
    board, proxy = served
    tab = browser.open(proxy.url)  # the root redirects (relatively) to the only person's page
    page = tab.page
    page.wait_for_selector("#live.on", timeout=5000)
    assert page.url == proxy.url + "person/alex"
    assert all(r.startswith(proxy.prefix) for r in proxy.requests), proxy.requests

    # Caffeine: today's curve with a dot for each of today's drinks, and the figures.
    curve = page.locator("#caffeine-chart path.caffeine.curve")
    assert int(curve.get_attribute("data-points") or 0) > 200
    assert page.locator("#caffeine-chart circle.dose").count() == len(TODAYS_COFFEES)
    for mark in ("bedtime", "cutoff", "last-call", "now", "limit"):
        assert page.locator(f"#caffeine-chart g.mark.{mark}").count() == 1, mark
    now_mg = page.locator('[data-figure="now"]').inner_text()
    assert now_mg.endswith(" mg")
    assert int(now_mg.removesuffix(" mg")) > 0
    # Tonight's schedule in the coach's zone (the browser's is New York): 17:30 is past the cutoff.
    items = page.locator("#planned-list li")
    assert items.count() == 6
    # The caffeine check comes with the wind-down (15 min apart by default): one entry.
    winddown = page.locator('#planned-list li[data-id="winddown.stretch"]').inner_text()
    assert "with the caffeine check" in winddown
    assert page.locator("#planned-list li.next").get_attribute("data-id") == "exercise.late_intense"
    assert page.locator('#planned-list li[data-id="caffeine.cutoff"] time').inner_text() == "13:30"
    assert page.locator('#planned-list li[data-id="bedtime"] time').inner_text() == "22:30"
    # The 15:10 espresso came after the cutoff: its nudge is listed with the evidence it carried.
    cutoff = page.locator('#nudge-list li[data-rule="caffeine.cutoff"]').first
    assert "No caffeine now" in cutoff.inner_text()
    cutoff.locator("summary").click()
    assert "drink at" in cutoff.locator("table.evidence").inner_text()

    # Last night: its figures and its movements on a timeline.
    last = state.people["alex"].nights.last_night
    assert last is not None
    assert last["night"] == "2026-11-23"
    figures = page.locator("#night-figures").inner_text()
    assert f"{last['hypnic_jerks']}" in page.locator('[data-figure="hypnic_jerks"]').inner_text()
    assert "/h" in page.locator('[data-figure="plm_index"]').inner_text()
    assert "Time in bed" in figures
    assert page.locator("#night-chart path.jerk").count() == last["hypnic_jerks"]
    assert page.locator("#night-chart g.mark.onset").count() == 1
    assert page.locator("#night-chart .in-bed rect").count() >= 1
    assert page.locator("#night-chart .series rect").count() == last["series"]
    assert page.locator("#night-chart .movements line").count() > 20
    assert page.locator("#night-chart .movements line.series").count() >= last["plm_count"]

    # The fortnight: four charts of 14 evenings; tonight is not slept yet (no data, not zero).
    for trend in ("plm_index", "hypnic_jerks", "time_in_bed_h", "caffeine_at_bedtime_mg"):
        chart = page.locator(f'svg[data-trend="{trend}"]')
        bars = chart.locator("rect.value").count()
        gaps = chart.locator("line.nodata").count()
        assert bars + gaps == 14, trend
    assert page.locator('svg[data-trend="plm_index"] line.nodata').count() >= 1
    caffeine = page.locator('svg[data-trend="caffeine_at_bedtime_mg"] rect.value')
    assert caffeine.count() == 14  # thirteen stored evenings and tonight's prediction
    assert caffeine.last.get_attribute("class") == "value over predicted"  # 65 mg > 50 mg

    screenshots = os.environ.get("SLEEPCOACH_SCREENSHOTS")
    if screenshots:
        page.set_viewport_size({"width": 1200, "height": 900})
        page.screenshot(path=str(Path(screenshots) / "dashboard.png"), full_page=True)

    # A new drink reaches the open page without a reload.
    later = load_state(dump_state(state))
    at = NOW - timedelta(minutes=1)
    decide(later, CoffeeBrewed(person="alex", ts=at, drink="espresso", volume_ml=40), at, CONFIG)
    board.publish("alex", snapshot(later, "alex"))
    # (Playwright's wait_for_function would need eval, which the page's policy forbids.)
    expect(page.locator("#caffeine-chart circle.dose")).to_have_count(4, timeout=1000)
    assert tab.errors == []
