"""`sleepcoach report` the way a person uses it: nights synthesised (`sleepcoach synth`), stored by
`sleepcoach simulate --storage`, then read back as JSON, as tables and as a page that still shows
its plots once moved on its own into another folder (headless Chromium). Bad input: an unknown
person, an empty database, `--since` after `--until`, storage that cannot be read. Every step a
`sleepcoach` command in a subprocess."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coach.caffeine import dose_mg
from tests.broker import ROOT
from tests.browser import Browser

CONFIG = """\
timezone: Europe/Berlin
people:
  - id: alex
    name: Alex
    bedtime: "22:30"
    wake: "06:30"
devices:
  - id: bed
    kind: bed_motion
    topic: home/bedroom/bed
    person: alex
  - id: coffee
    kind: coffee_maker
    topic: home/kitchen/coffee
    person: alex
"""
#: Three synthetic nights from Thursday 26 November 2026, 21:30.
FIRST = date(2026, 11, 26)
NIGHTS = 3
#: Saturday 28 November: an espresso at 15:00, and a coffee at 00:40 that night (Sunday's date).
SATURDAY = date(2026, 11, 28)
COFFEES = [
    ("2026-11-28T15:00:00+01:00", {"event": "brew", "drink": "espresso", "volume_ml": 30}),
    ("2026-11-29T00:40:00+01:00", {"event": "brew", "drink": "coffee", "volume_ml": 250}),
]
#: Saturday morning's check-in: about Friday's night.
CHECKIN = {
    "command": "checkin",
    "rested": 2,
    "daytime_twitching": True,
    "rls": {"urge_to_move": True, "worse_at_rest": False},
}
EVENING_KEYS = {
    "bedtime",
    "caffeine_mg",
    "caffeine_mg_at_bedtime",
    "caffeine_at_bedtime",
    "late_workout",
    "stress",
    "alcohol",
    "nicotine",
    "workouts",
}


def sleepcoach(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run a `sleepcoach` command in a subprocess, as a person would."""
    code = "import sys; from integrations.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=home,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(home)},
        check=False,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the config and `history.db`, stored by `simulate --storage`."""
    home = tmp_path_factory.mktemp("report-cli")
    (home / "coach.yaml").write_text(CONFIG, encoding="utf-8")
    made = sleepcoach(
        "synth",
        "--nights",
        str(NIGHTS),
        "--start",
        f"{FIRST.isoformat()}T21:30:00+01:00",
        "--out",
        "nights.jsonl",
        home=home,
    )
    assert made.returncode == 0, made.stderr
    lines = (home / "nights.jsonl").read_text(encoding="utf-8").splitlines()
    lines += [
        json.dumps({"ts": ts, "topic": "home/kitchen/coffee", "payload": payload})
        for ts, payload in COFFEES
    ]
    lines.append(
        json.dumps(
            {
                "ts": "2026-11-28T09:15:00+01:00",
                "topic": "sleepcoach/alex/command",
                "payload": CHECKIN,
            }
        )
    )
    lines.sort(key=lambda line: json.loads(line)["ts"])
    (home / "scenario.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ran = sleepcoach(
        "simulate",
        "--config",
        "coach.yaml",
        "--storage",
        "sqlite:///history.db",
        "--out",
        "nudges.jsonl",
        "scenario.jsonl",
        home=home,
    )
    assert ran.returncode == 0, ran.stderr
    return home


def report(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`sleepcoach report` of the stored history."""
    return sleepcoach(
        "report", "--config", "coach.yaml", "--storage", "sqlite:///history.db", *args, home=home
    )


def period_args(first: date, last: date) -> list[str]:
    return ["--since", first.isoformat(), "--until", last.isoformat()]


def stored_nights(home: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(home / "history.db") as conn:
        rows = conn.execute("SELECT night, summary FROM nights WHERE person = 'alex'").fetchall()
    return {night: json.loads(summary) for night, summary in rows}


def test_json_has_every_night_with_its_figures_evening_and_nudges(home: Path) -> None:
    last = FIRST + timedelta(days=NIGHTS)  # one evening more: nothing stored for its night
    shown = report(home, "--format", "json", *period_args(FIRST, last))
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)  # the whole of stdout is the document

    assert (doc["since"], doc["until"]) == (FIRST.isoformat(), last.isoformat())
    [person] = doc["people"]
    assert (person["id"], person["name"]) == ("alex", "Alex")
    # Saturday morning's check-in, under Friday's night.
    assert person["checkins"] == [
        {
            "day": "2026-11-28",
            "night": "2026-11-27",
            "ts": "2026-11-28T09:15:00+01:00",
            "rested": 2,
            "daytime_twitching": True,
            "rls": {"urge_to_move": True, "worse_at_rest": False},
        }
    ]
    assert [n["checkin"] for n in person["nights"]] == [None, "2026-11-28", None, None]
    nights = person["nights"]
    evenings = [(FIRST + timedelta(days=i)).isoformat() for i in range(NIGHTS + 1)]
    assert [n["night"] for n in nights] == evenings
    stored = stored_nights(home)
    assert sorted(stored) == evenings[:NIGHTS]
    for night in nights[:NIGHTS]:
        summary = stored[night["night"]]
        assert night["status"] == "ok"
        assert night["time_in_bed_min"] == summary["time_in_bed_min"]
        onset = datetime.fromisoformat(summary["sleep_onset"]).replace(microsecond=0)
        assert night["sleep_onset"] == onset.isoformat()  # to the second
        assert night["movements"] == summary["movements"]
        assert night["lm"] == summary["limb_movements"]
        assert night["plm"] == summary["plm_count"]
        assert night["plm_index"] == round(summary["plm_index"], 1)
        assert night["hypnic_jerks"] == summary["hypnic_jerks"]
        evening = night["evening"]
        assert set(evening) == EVENING_KEYS
        assert evening["caffeine_mg_at_bedtime"] == summary["evening"]["caffeine_mg_at_bedtime"]
        # The coach's own record of the evening (no tracker here: a late workout is unknown).
        recorded = summary["evening"]
        assert evening["late_workout"] == recorded["late_workout"]
        assert evening["stress"] == recorded["stress_evening"]
        assert evening["alcohol"] == recorded["alcohol_evening"]
        assert evening["nicotine"] == recorded["late_nicotine"]
        assert evening["bedtime"] == f"{night['night']}T22:30:00+01:00"
    # The evening after the last stored night: nothing recorded, every figure null, never 0.
    assert nights[-1]["status"] == "not recorded"
    assert all(nights[-1][k] is None for k in ("time_in_bed_min", "plm_index", "movements"))

    nudges = person["nudges"]
    sent = [json.loads(line) for line in (home / "nudges.jsonl").read_text().splitlines()]
    titles = {n["id"]: n["title"] for n in sent}
    for nudge in nudges:
        assert set(nudge) == {"id", "rule", "title", "ts", "night", "sent", "dropped"}
        if nudge["sent"]:
            assert nudge["dropped"] is None
            assert nudge["title"] == titles[nudge["id"]] != nudge["rule"]
        else:
            # In bed already at the wind-down's time: not sent, and shown by its title all the same.
            assert nudge["id"] not in titles
            assert (nudge["rule"], nudge["dropped"]) == ("winddown.stretch", "in_bed")
            assert nudge["title"] == "Time to wind down"
        [night] = [n for n in nights if n["night"] == nudge["night"]]
        assert nudge["id"] in night["nudges"]
    assert {n["rule"] for n in nudges if n["sent"]} >= {"twitch.night_summary"}
    assert not all(n["sent"] for n in nudges)
    # Each night's summary nudge (sent the next morning) is under that night.
    for night in nights[:NIGHTS]:
        assert f"twitch.night_summary:alex:{night['night']}" in night["nudges"]


def test_saturday_nights_nudges_are_under_saturday_in_json_and_tables(home: Path) -> None:
    sunday = SATURDAY + timedelta(days=1)
    doc = json.loads(report(home, "--format", "json", *period_args(SATURDAY, sunday)).stdout)
    [person] = doc["people"]
    assert person["checkins"] == []  # Saturday morning's tells of Friday's night
    late = [n for n in person["nudges"] if n["ts"] == "2026-11-29T00:40:00+01:00"]
    assert [n["night"] for n in late] == [SATURDAY.isoformat()]
    saturday, sunday_night = person["nights"]
    assert late[0]["id"] in saturday["nudges"]
    # Sunday night's own nudges came after Saturday night's wake (06:30), a Sunday's morning
    # word on Saturday night stays with Saturday.
    for nudge in person["nudges"]:
        if nudge["id"] in sunday_night["nudges"]:
            assert nudge["ts"] >= "2026-11-29T06:30:00+01:00"
            assert nudge["rule"] not in ("twitch.night_summary", "twitch.frequent")
    # Both drinks were Saturday evening's (the coach's own doses for them).
    drunk = dose_mg("espresso", 30.0, None) + dose_mg("coffee", 250.0, None)
    assert saturday["evening"]["caffeine_mg"] == round(drunk, 1)
    assert sunday_night["evening"]["caffeine_mg"] == 0

    shown = report(home, *period_args(SATURDAY, sunday), "--out", "saturday")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Sat 2026-11-28"))
    end = next(i for i, ln in enumerate(lines) if ln.startswith("Sun 2026-11-29"))
    under_saturday = lines[start + 1 : end]
    assert f"    · Sun 00:40 {late[0]['title']}" in under_saturday
    assert all(ln.startswith("    · ") for ln in under_saturday)


def test_the_three_views_show_the_same_nights(home: Path) -> None:
    last = FIRST + timedelta(days=NIGHTS - 1)
    doc = json.loads(report(home, "--format", "json", *period_args(FIRST, last)).stdout)
    shown = report(home, *period_args(FIRST, last), "--out", "views")
    assert shown.returncode == 0, shown.stderr
    page = (home / "views" / "index.html").read_text(encoding="utf-8")
    for night in doc["people"][0]["nights"]:
        day = date.fromisoformat(night["night"])
        minutes = night["time_in_bed_min"]
        cells = [f"{day:%a} {day.isoformat()}", f"{minutes // 60} h {minutes % 60:02d} min"]
        plm = f"{night['plm_index']:.1f}" + (" high" if night["plm_index"] > 15 else "")
        row = re.compile(
            re.escape(cells[0]) + r".*" + re.escape(cells[1]) + r".*" + re.escape(plm) + r"\s"
        )
        assert row.search(shown.stdout), (cells, plm, shown.stdout)
        assert f"<td>{cells[0]}</td>" in page
        assert f'<td class="num">{plm}</td>' in page
    for nudge in doc["people"][0]["nudges"]:
        assert nudge["title"].replace("'", "&#x27;") in page
    told = "Sat 09:15 check-in: rested 2/5, twitching while awake, restless legs: urge to move"
    friday = shown.stdout.split("Fri 2026-11-27", 1)[1].split("Sat 2026-11-28", 1)[0]
    assert f"    · {told}\n" in friday
    assert f"<li>{told}</li>" in page


def test_the_page_moved_alone_shows_its_plots(home: Path, browser: Browser) -> None:
    shown = report(home, *period_args(FIRST, FIRST + timedelta(days=NIGHTS)), "--out", "made")
    assert shown.returncode == 0, shown.stderr
    elsewhere = home / "mailed"
    elsewhere.mkdir()
    moved = elsewhere / "report.html"
    shutil.move(home / "made" / "index.html", moved)
    shutil.rmtree(home / "made")  # the PNG files beside it are gone

    tab = browser.open(moved.as_uri())
    images = tab.page.eval_on_selector_all(
        "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
    )
    assert len(images) == 3
    assert all(done and width == 800 and height == 320 for done, width, height in images)
    sent = [json.loads(line) for line in (home / "nudges.jsonl").read_text().splitlines()]
    body = tab.page.inner_text("body")
    assert any(nudge["title"] in body for nudge in sent)
    assert tab.errors == []
    tab.page.close()


def test_an_unknown_person_is_an_error(home: Path) -> None:
    shown = report(home, "--person", "bob")
    assert shown.returncode == 1
    assert shown.stderr == "sleepcoach: no person 'bob' in the config (people: alex)\n"
    assert shown.stdout == ""


def test_an_empty_database_is_an_error(home: Path) -> None:
    (home / "nothing.jsonl").write_text("", encoding="utf-8")
    empty = sleepcoach(
        "simulate",
        "--config",
        "coach.yaml",
        "--storage",
        "sqlite:///empty.db",
        "nothing.jsonl",
        home=home,
    )
    assert empty.returncode == 0, empty.stderr
    for storage in ("sqlite:///empty.db", "sqlite:///never-made.db"):
        shown = sleepcoach("report", "--config", "coach.yaml", "--storage", storage, home=home)
        assert shown.returncode == 1
        assert shown.stderr.startswith("sleepcoach: no stored history: "), shown.stderr
        assert "`sleepcoach simulate --storage URL`" in shown.stderr
        assert shown.stdout == ""
    assert not (home / "never-made.db").exists()


def test_since_after_until_is_an_error(home: Path) -> None:
    shown = report(home, "--since", "2026-11-29", "--until", "2026-11-27", "--format", "json")
    assert shown.returncode == 1
    assert shown.stderr == (
        "sleepcoach: --since 2026-11-29 is after --until 2026-11-27: nothing to show\n"
    )
    assert shown.stdout == ""


@pytest.mark.parametrize(
    "url",
    ["sqlite:///not-a-database.txt", "nosuchdb://somewhere/x", "not a url at all"],
)
def test_unreadable_storage_is_an_error(home: Path, url: str) -> None:
    text = home / "not-a-database.txt"
    text.write_text("just some words, long enough to be no SQLite header\n" * 20)
    text.chmod(0o600)
    shown = sleepcoach("report", "--config", "coach.yaml", "--storage", url, home=home)
    assert shown.returncode == 1
    assert shown.stderr.startswith("sleepcoach: "), shown.stderr
    assert shown.stderr.count("\n") == 1
    assert "Traceback" not in shown.stderr
    assert shown.stdout == ""
