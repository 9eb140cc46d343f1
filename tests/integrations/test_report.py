"""`sleepcoach report`: a week of stored history in a real SQLite file, read back as tables, PNGs
and a page; empty and unreadable storage; unknown people; a period across a DST change."""

from __future__ import annotations

import base64
import json
import re
import struct
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coach.caffeine import caffeine_at
from coach.clock import at_local
from coach.event import (
    BedtimeChanged,
    CoffeeBrewed,
    Event,
    SubstanceLogged,
    WorkoutEnded,
    WorkoutStarted,
)
from coach.limb_movement import NightSummary
from coach.state import PersonState
from integrations.cli import main
from integrations.config_file import load_config
from integrations.report import SCREENING_NOTE, caffeine_curve, make_report, plot_names
from integrations.storage import Batch, EventRow, NightRow, NudgeRow, Storage
from integrations.writer import event_data

TZ = ZoneInfo("Europe/Berlin")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _config(tmp_path: Path, db: Path) -> Path:
    path = tmp_path / "coach.yaml"
    path.write_text(
        f"""\
timezone: Europe/Berlin
storage:
  url: sqlite:///{db}
people:
  - id: alex
    name: Alex
    bedtime: "22:30"
    wake: "06:30"
  - id: sam
    bedtime: "23:00"
    wake: "07:00"
""",
        encoding="utf-8",
    )
    return path


def _at(day: date, hh: int, mm: int = 0) -> datetime:
    return at_local(day, time(hh, mm), TZ).astimezone(TZ)


def _event_row(event: Event) -> EventRow:
    """The row the daemon stores for an accepted event (its own `event_data` makes `data`)."""
    return EventRow(
        ts=event.ts.timestamp(),
        received_at=event.ts.timestamp(),
        person=event.person,
        kind=type(event).__name__,
        source="test",
        topic="test/topic",
        data=event_data(event),
    )


TITLES = {
    "winddown.stretch": "Time to wind down",
    "caffeine.cutoff": "Caffeine cutoff at 13:30",
    "twitch.night_summary": "Last night's movements",
}


def _nudge_row(
    nid: str, person: str, rule: str, at: datetime, dropped: str | None = None
) -> NudgeRow:
    """The row the daemon's writer stores: a sent nudge's payload as published, a dropped one's
    title and night (the id's date here)."""
    title = TITLES[rule]
    if dropped:
        payload = json.dumps({"title": title, "night": nid.split(":")[2]})
    else:
        payload = json.dumps({"id": nid, "rule": rule, "person": person, "title": title})
    return NudgeRow(
        id=nid,
        person=person,
        rule=rule,
        ts=at.timestamp(),
        severity=None if dropped else "info",
        payload=payload,
        dropped=dropped,
        published=dropped is None,
    )


def _night_row(person: str, evening: date, summary: NightSummary) -> NightRow:
    return NightRow(
        person=person,
        night=evening.isoformat(),
        ts=summary.night_end,
        summary=json.dumps(summary.to_dict(TZ)),
    )


def _summary(
    evening: date,
    *,
    in_bed_min: int,
    settle_min: int | None,
    plm: float | None,
    jerks: int,
    movements: int,
) -> NightSummary:
    start = _at(evening, 22, 30)
    return NightSummary(
        has_data=True,
        night_start=start.timestamp(),
        night_end=(start + timedelta(hours=9)).timestamp(),
        plm_rules="wasm",
        time_in_bed_s=in_bed_min * 60.0,
        time_to_settle_s=None if settle_min is None else settle_min * 60.0,
        plm_index=plm,
        hypnic_jerks=jerks,
        movements=movements,
    )


@dataclass(frozen=True)
class Week:
    """The stored week: which day is which, relative to today."""

    today: date

    def day(self, ago: int) -> date:
        """The local date `ago` days before today."""
        return self.today - timedelta(days=ago)


def _fill_week(db: Path, today: date) -> Week:
    """A week of Alex (and a little of Sam) in a real SQLite file, through `Storage.write`.

    The caffeine is spaced so that each bedtime figure can be worked out by hand (5 h half-life):
    6 days ago 100 mg at 12:30 (10 h before 22:30: 25 mg left); 4 days ago 200 mg logged at
    17:30 (5 h before: 100 mg, above the 50 mg limit); 2 days ago a 60 ml espresso at 07:30
    (USDA 63 mg / 30 ml: 126 mg; 15 h before: 15.75 mg, plus 0.13 mg from 4 days ago).
    """
    week = Week(today)
    d = week.day
    events: list[Event] = [
        CoffeeBrewed(person="alex", ts=_at(d(6), 12, 30), drink="coffee", caffeine_mg=100.0),
        SubstanceLogged(person="alex", ts=_at(d(4), 17, 30), what="caffeine", caffeine_mg=200.0),
        SubstanceLogged(person="alex", ts=_at(d(4), 19, 0), what="nicotine"),
        CoffeeBrewed(person="alex", ts=_at(d(2), 7, 30), drink="espresso", volume_ml=60.0),
        WorkoutStarted(
            person="alex", ts=_at(d(3), 18, 5), activity="running", intensity="vigorous"
        ),
        WorkoutEnded(person="alex", ts=_at(d(3), 18, 50)),
        # "bedtime_tonight" at 20:00 moves that evening's bedtime only.
        BedtimeChanged(person="alex", ts=_at(d(1), 20, 0), time="23:15"),
        # Sam's coffee is not Alex's.
        CoffeeBrewed(person="sam", ts=_at(d(2), 21, 0), drink="coffee", caffeine_mg=300.0),
        # Before the 14-day period: neither counted nor shown.
        CoffeeBrewed(person="alex", ts=_at(d(20), 21, 0), drink="coffee", caffeine_mg=300.0),
    ]
    nudges = [
        _nudge_row(f"winddown.stretch:alex:{d(n)}", "alex", "winddown.stretch", _at(d(n), 21, 45))
        for n in range(1, 8)
    ]
    nudges += [
        _nudge_row(f"caffeine.cutoff:alex:{d(4)}", "alex", "caffeine.cutoff", _at(d(4), 17, 31)),
        _nudge_row(
            f"twitch.night_summary:alex:{d(5)}",
            "alex",
            "twitch.night_summary",
            _at(d(4), 9, 0),
            dropped="expired",
        ),
        _nudge_row(f"caffeine.cutoff:sam:{d(2)}", "sam", "caffeine.cutoff", _at(d(2), 21, 1)),
        _nudge_row(f"winddown.stretch:alex:{d(20)}", "alex", "winddown.stretch", _at(d(20), 21)),
    ]
    no_data = NightSummary(
        has_data=False,
        night_start=_at(d(5), 18).timestamp(),
        night_end=_at(d(4), 6, 30).timestamp(),
        plm_rules="wasm",
    )
    nights = {
        ("alex", d(7).isoformat()): _night_row(
            "alex",
            d(7),
            _summary(d(7), in_bed_min=462, settle_min=14, plm=6.24, jerks=1, movements=23),
        ),
        ("alex", d(6).isoformat()): _night_row(
            "alex",
            d(6),
            _summary(d(6), in_bed_min=430, settle_min=25, plm=18.4, jerks=3, movements=41),
        ),
        ("alex", d(5).isoformat()): _night_row("alex", d(5), no_data),
        ("alex", d(4).isoformat()): _night_row(
            "alex",
            d(4),
            _summary(d(4), in_bed_min=395, settle_min=None, plm=None, jerks=0, movements=9),
        ),
        # Before the period: not shown.
        ("alex", d(20).isoformat()): _night_row(
            "alex",
            d(20),
            _summary(d(20), in_bed_min=300, settle_min=99, plm=77.0, jerks=9, movements=99),
        ),
        ("sam", d(4).isoformat()): _night_row(
            "sam",
            d(4),
            _summary(d(4), in_bed_min=480, settle_min=5, plm=30.0, jerks=0, movements=60),
        ),
    }
    storage = Storage.open(f"sqlite:///{db}")
    try:
        storage.write(Batch(events=[_event_row(e) for e in events], nudges=nudges, nights=nights))
    finally:
        storage.close()
    return week


def _cells(output: str, label: str) -> list[str]:
    """The cells of the table row that starts with `label` (columns are 2+ spaces apart)."""
    for line in output.splitlines():
        if line.startswith(label):
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no row {label!r} in:\n{output}")


def _rows(output: str, label: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", ln.strip()) for ln in output.splitlines() if ln.startswith(label)]


def _label(day: date) -> str:
    return f"{day:%a} {day.isoformat()}"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def today() -> date:
    """Today in the config's zone (the report's period ends today)."""
    return datetime.now(TZ).date()


def test_a_week_of_history_becomes_tables_plots_and_a_page(
    tmp_path: Path, today: date, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "coach.db"
    week = _fill_week(db, today)
    out = tmp_path / "report"
    d = week.day

    code = main(
        ["report", "--config", str(_config(tmp_path, db)), "--person", "alex", "--out", str(out)]
    )
    captured = capsys.readouterr()
    text = captured.out
    assert code == 0, captured.err

    # One row per night, named by its evening: the evening (bedtime, caffeine drunk, caffeine
    # left at bedtime flagged above 50 mg, workouts) beside the night (time in bed, to settle,
    # PLM index flagged above 15/h, hypnic jerks, movements); "no data" where nothing was stored.
    nothing = ["no data"] * 5
    assert _cells(text, _label(d(7))) == [
        _label(d(7)),
        "22:30",
        "0 mg",
        "0 mg",
        "no data",
        "7 h 42 min",
        "14 min",
        "6.2",
        "1",
        "23",
    ]
    assert _cells(text, _label(d(6))) == [
        _label(d(6)),
        "22:30",
        "100 mg",
        "25 mg",
        "no data",
        "7 h 10 min",
        "25 min",
        "18.4 high",
        "3",
        "41",
    ]
    # A night stored without bed data; the evening's caffeine (34 h after 100 mg: 0.9 mg).
    assert _cells(text, _label(d(5))) == [
        _label(d(5)),
        "22:30",
        "0 mg",
        "1 mg",
        "no data",
        *nothing,
    ]
    assert _cells(text, _label(d(4))) == [
        _label(d(4)),
        "22:30",
        "200 mg",
        "100 mg high",
        "no data",
        "6 h 35 min",
        "no data",
        "no data",
        "0",
        "9",
    ]
    assert _cells(text, _label(d(3))) == [
        _label(d(3)),
        "22:30",
        "0 mg",
        "4 mg",  # 200 mg, 29 h earlier: 200 · 0.5^5.8
        "18:05 running (vigorous) 45 min",
        *nothing,
    ]
    assert _cells(text, _label(d(2)))[:4] == [_label(d(2)), "22:30", "126 mg", "16 mg"]
    assert _cells(text, _label(d(1)))[1] == "23:15"  # bedtime_tonight
    # Days nothing was stored for are "no data", never 0 mg.
    for ago in (0, 8, 13):
        assert _cells(text, _label(d(ago))) == [_label(d(ago)), "22:30", *["no data"] * 8]
    assert _label(d(14)) not in text
    assert _label(d(20)) not in text
    assert "77.0" not in text

    # Each night's nudges under it, by title; a morning's nudge under the night it spoke of.
    assert _notes(text, _label(d(4))) == [
        "17:31 Caffeine cutoff at 13:30",
        "21:45 Time to wind down",
    ]
    assert _notes(text, _label(d(5))) == [
        "21:45 Time to wind down",
        f"{d(4):%a} 09:00 Last night's movements (not sent: expired)",
    ]
    assert _notes(text, _label(d(8))) == []
    assert "winddown.stretch" not in text
    assert "caffeine.cutoff" not in text

    # The nudges over the period by title: Sam's and the old one are not counted.
    assert _cells(text, "Caffeine cutoff at 13:30 ") == ["Caffeine cutoff at 13:30", "1", "0"]
    assert _cells(text, "Last night's movements ") == [
        "Last night's movements",
        "0",
        "1",
        "expired",
    ]
    assert _cells(text, "Time to wind down ") == ["Time to wind down", "7", "0"]
    assert (
        "Caffeine: 426 mg in 3 drink(s); more than 50 mg left at bedtime on 1 evening(s)." in text
    )
    assert "PLM index above 15/h on 1 of 2 night(s)" in text
    assert SCREENING_NOTE in text

    # The plots: valid PNGs of a readable size, owner-only like the page (health data).
    for name in plot_names("alex"):
        width, height = _png_size(out / name)
        assert (width, height) == (800, 320)
        assert (out / name).stat().st_mode & 0o777 == 0o600
    assert not (out / plot_names("sam")[0]).exists()

    # The page carries the plots inside it (data: URIs, the same PNGs) and the same figures.
    page = (out / "index.html").read_text(encoding="utf-8")
    assert (out / "index.html").stat().st_mode & 0o777 == 0o600
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert [_embedded(src) for src in sources] == [
        (out / name).read_bytes() for name in plot_names("alex")
    ]
    assert '<td class="num">18.4 high</td>' in page
    assert '<td class="num">100 mg high</td>' in page
    assert "18:05 running (vigorous) 45 min" in page
    assert "<li>17:31 Caffeine cutoff at 13:30</li>" in page
    assert "winddown.stretch" not in page
    assert "screening, not a diagnosis" in page
    assert "talk to a doctor" in page
    assert "Sam" not in page


def _notes(output: str, label: str) -> list[str]:
    """The lines under a night's row (its nudges)."""
    lines = output.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(label))
    notes = []
    for line in lines[start + 1 :]:
        if not line.startswith("    · "):
            break
        notes.append(line.removeprefix("    · "))
    return notes


def _embedded(src: str) -> bytes:
    """The PNG a data: URI carries."""
    head, _, data = src.partition(",")
    assert head == "data:image/png;base64", head
    return base64.b64decode(data, validate=True)


def test_everyone_by_default(
    tmp_path: Path, today: date, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "coach.db"
    _fill_week(db, today)
    out = tmp_path / "report"

    code = main(
        ["report", "--config", str(_config(tmp_path, db)), "--out", str(out), "--days", "7"]
    )
    text = capsys.readouterr().out

    assert code == 0
    assert "Alex (alex)" in text
    assert "Sam (sam)" in text
    assert "Caffeine: 300 mg in 1 drink(s)" in text
    for name in (*plot_names("alex"), *plot_names("sam")):
        _png_size(out / name)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.index("<h2>Alex</h2>") < page.index("<h2>Sam</h2>")


def test_days_limits_the_period(
    tmp_path: Path, today: date, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "coach.db"
    week = _fill_week(db, today)

    code = main(
        [
            "report",
            "--config",
            str(_config(tmp_path, db)),
            "--person",
            "alex",
            "--days",
            "3",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    text = capsys.readouterr().out

    assert code == 0
    assert f"{week.day(2).isoformat()} to {today.isoformat()}" in text
    assert _label(week.day(3)) not in text
    assert _label(week.day(4)) not in text  # nor its night
    assert "No night with bed-sensor data in this period." in text
    assert "Caffeine: 126 mg in 1 drink(s)" in text
    assert _cells(text, "Time to wind down ") == ["Time to wind down", "2", "0"]


def test_a_person_without_history_in_the_period_says_so(
    tmp_path: Path, today: date, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "coach.db"
    _fill_week(db, today)
    out = tmp_path / "report"

    code = main(
        [
            "report",
            "--config",
            str(_config(tmp_path, db)),
            "--out",
            str(out),
            "--since",
            "2020-01-01",
            "--until",
            "2020-01-02",
        ]
    )
    text = capsys.readouterr().out

    assert code == 0
    assert "No stored history for alex from 2020-01-01 to 2020-01-02" in text
    assert "No stored history for sam from 2020-01-01 to 2020-01-02" in text
    assert "no report written" in text
    assert not out.exists()


def test_an_empty_database_is_an_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "coach.db"
    Storage.open(f"sqlite:///{db}").close()  # an empty, migrated database
    out = tmp_path / "report"

    code = main(["report", "--config", str(_config(tmp_path, db)), "--out", str(out)])
    captured = capsys.readouterr()

    assert code == 1
    assert captured.err.startswith(f"sleepcoach: no stored history: sqlite:///{db} is empty.")
    assert captured.out == ""
    assert not out.exists()


def test_a_database_not_there_yet_is_an_error_and_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "never" / "coach.db"

    code = main(["report", "--config", str(_config(tmp_path, db)), "--out", str(tmp_path / "r")])

    assert code == 1
    assert f"sleepcoach: no stored history: {db} does not exist." in capsys.readouterr().err
    assert not db.exists()


def test_unreadable_storage_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "coach.db"
    db.write_bytes(b"this is not a SQLite database, just some text long enough " * 20)

    code = main(["report", "--config", str(_config(tmp_path, db)), "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()

    assert code == 1
    assert captured.err.startswith("sleepcoach: cannot open storage sqlite:///")
    assert "not a database" in captured.err
    assert captured.out == ""


def test_an_unknown_person_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "coach.db"

    code = main(["report", "--config", str(_config(tmp_path, db)), "--person", "bob"])
    captured = capsys.readouterr()

    assert code == 1
    assert captured.err.strip() == "sleepcoach: no person 'bob' in the config (people: alex, sam)"


def test_a_bad_config_names_its_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("timezone: Mars/Olympus\npeople: []\n", encoding="utf-8")

    code = main(["report", "--config", str(bad)])

    assert code == 1
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err


@pytest.mark.parametrize("days", ["0", "-3", "many", "400"])
def test_days_must_be_a_sensible_number(days: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--days", days])
    assert exit_info.value.code == 2
    assert "expected a whole number of days from 1 to 366" in capsys.readouterr().err


def test_an_output_folder_that_cannot_be_made_is_an_error(
    tmp_path: Path, today: date, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "coach.db"
    _fill_week(db, today)
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way", encoding="utf-8")

    code = main(["report", "--config", str(_config(tmp_path, db)), "--out", str(blocker / "r")])

    assert code == 1
    assert f"sleepcoach: cannot write the report to {blocker / 'r'}" in capsys.readouterr().err


def test_a_period_across_the_autumn_clock_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Europe/Berlin leaves summer time on 2026-10-25: bedtimes stay 22:30 local, the caffeine
    model counts real hours (100 mg at 12:30 on the 25th: 10 h before bed, 25 mg left)."""
    db = tmp_path / "coach.db"
    storage = Storage.open(f"sqlite:///{db}")
    coffee = CoffeeBrewed(
        person="alex", ts=_at(date(2026, 10, 25), 12, 30), drink="coffee", caffeine_mg=100.0
    )
    storage.write(Batch(events=[_event_row(coffee)]))
    storage.close()
    config = load_config(_config(tmp_path, db))
    now = datetime(2026, 10, 27, 9, 0, tzinfo=TZ)

    code = make_report(
        config, "alex", date(2026, 10, 23), date(2026, 10, 27), now, out=tmp_path / "r"
    )
    text = capsys.readouterr().out

    assert code == 0
    assert [r[1] for r in _rows(text, "Sun 2026-10-2")] == ["22:30"]
    assert _cells(text, "Sun 2026-10-25")[:4] == ["Sun 2026-10-25", "22:30", "100 mg", "25 mg"]
    assert [r[0] for r in _rows(text, "") if re.match(r"\w{3} 2026-10-\d\d$", r[0])] == [
        "Fri 2026-10-23",
        "Sat 2026-10-24",
        "Sun 2026-10-25",
        "Mon 2026-10-26",
        "Tue 2026-10-27",
    ]
    _png_size(tmp_path / "r" / "alex-caffeine.png")


def test_caffeine_from_before_the_period_still_counts_at_bedtime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 100 mg coffee at 22:30 the evening before a one-day report: 24 h later, 100 · 0.5^4.8
    = 3.6 mg are left at bedtime, though the day itself (a workout, no drink) had no caffeine."""
    db = tmp_path / "coach.db"
    storage = Storage.open(f"sqlite:///{db}")
    day = date(2026, 11, 24)
    events: list[Event] = [
        CoffeeBrewed(
            person="alex",
            ts=_at(day - timedelta(days=1), 22, 30),
            drink="coffee",
            caffeine_mg=100.0,
        ),
        WorkoutStarted(person="alex", ts=_at(day, 7), activity="walking", intensity="light"),
        WorkoutEnded(person="alex", ts=_at(day, 7, 30)),
    ]
    storage.write(Batch(events=[_event_row(e) for e in events]))
    storage.close()
    config = load_config(_config(tmp_path, db))

    code = make_report(
        config, "alex", day, day, datetime(2026, 11, 24, 23, 0, tzinfo=TZ), out=tmp_path / "r"
    )
    text = capsys.readouterr().out

    assert code == 0
    assert _cells(text, "Tue 2026-11-24")[:5] == [
        "Tue 2026-11-24",
        "22:30",
        "0 mg",
        "4 mg",
        "07:00 walking (light) 30 min",
    ]
    assert "Caffeine: 0 mg in 0 drink(s)" in text


@settings(max_examples=50, deadline=None)
@given(
    doses=st.lists(
        st.tuples(
            st.floats(min_value=-3 * 86400, max_value=3 * 86400),
            st.floats(min_value=0, max_value=400),
        ),
        max_size=20,
    ),
    half_life=st.floats(min_value=2.0, max_value=10.0),
)
def test_the_stepped_caffeine_curve_is_the_core_model(
    doses: list[tuple[float, float]], half_life: float
) -> None:
    """Every point of the plotted curve is what `coach.caffeine.caffeine_at` says at that time."""
    start = datetime(2026, 10, 24, 0, 0, tzinfo=TZ)
    absolute = [(start.timestamp() + offset, mg) for offset, mg in doses]
    curve = caffeine_curve(absolute, start, start + timedelta(days=2), half_life)
    state = PersonState(doses=absolute)
    assert len(curve) == 2 * 24 * 6 + 1
    for instant, mg in curve:
        assert mg == pytest.approx(caffeine_at(state, instant, half_life), rel=1e-9, abs=1e-9)


def test_a_long_period_draws_daily_peaks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past a month the caffeine plot shows each day's peak; the report still has every day."""
    db = tmp_path / "coach.db"
    storage = Storage.open(f"sqlite:///{db}")
    first = date(2026, 9, 1)
    coffees = [
        CoffeeBrewed(person="alex", ts=_at(first + timedelta(days=n), 9), drink="coffee")
        for n in range(0, 90, 3)
    ]
    storage.write(Batch(events=[_event_row(c) for c in coffees]))
    storage.close()
    config = load_config(_config(tmp_path, db))

    code = make_report(
        config,
        "alex",
        date(2026, 9, 1),
        date(2026, 11, 29),
        datetime(2026, 11, 29, 23, 0, tzinfo=TZ),
        out=tmp_path / "r",
    )
    text = capsys.readouterr().out

    assert code == 0
    assert "Caffeine: 2850 mg in 30 drink(s)" in text  # USDA: 95 mg a coffee
    assert len([ln for ln in text.splitlines() if re.match(r"\w{3} 2026-\d\d-\d\d  ", ln)]) == 90
    for name in plot_names("alex"):
        assert _png_size(tmp_path / "r" / name) == (800, 320)
