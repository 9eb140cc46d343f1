"""Nights stored the way a person gets them: synthetic bed nights published to a real broker,
`sleepcoach run` scores and stores them, and after a SIGTERM `sleepcoach report` shows them with
the figures the coach published, as tables and as JSON; `sleepcoach simulate --storage` stores the
same history."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.broker import ROOT, Broker
from tests.e2e.conftest import TZ, DaemonProcess, Recorder, config_yaml, publisher

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(180)]

PREFIX = "sleepcoach"
BED = "home/bedroom/bed"


def sleepcoach(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run a `sleepcoach` command in a subprocess, as a person would."""
    code = "import sys; from integrations.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=home,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(home)},
        check=False,
    )


def _hhmm(instant: datetime) -> str:
    return instant.astimezone(ZoneInfo(TZ)).strftime("%H:%M")


def _duration(seconds: float) -> str:
    """How the report writes a duration."""
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def test_synthetic_nights_through_the_daemon_show_in_the_report(
    broker: Broker,
    daemon_factory: Callable[..., DaemonProcess],
    recorder_factory: Callable[..., Recorder],
    tmp_path: Path,
) -> None:
    # Two nights that began 46 h and 22 h ago, so every message is less than two days old.
    start = (datetime.now(ZoneInfo(TZ)) - timedelta(hours=46)).replace(second=0, microsecond=0)
    scenario = tmp_path / "nights.jsonl"
    made = sleepcoach(
        "synth",
        "--out",
        str(scenario),
        "--nights",
        "2",
        "--seed",
        "7",
        "--start",
        start.isoformat(),
        "--plm-index",
        "30",
        "--hypnic-jerks",
        "1",
        "--topic",
        BED,
        home=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    lines = [json.loads(line) for line in scenario.read_text().splitlines()]
    # The person's bedtime is half an hour after the recording starts; wake is set so that the
    # last time each night gets up counts as getting up for the day (within an hour of wake).
    exits = [
        datetime.fromisoformat(line["ts"])
        for line in lines
        if line["payload"]["event"] == "occupancy" and not line["payload"]["occupied"]
    ]
    # Measured from each night's start, so that a night getting up around midnight compares
    # right (the second night starts 24 h after the first).
    up_after = [
        max(e for e in exits if e < start + timedelta(days=1)) - start,
        max(e for e in exits if e >= start + timedelta(days=1)) - start - timedelta(days=1),
    ]
    wake = start + min(up_after) + timedelta(minutes=30)
    db = tmp_path / "coach.db"
    config = config_yaml(
        broker, f"sqlite:///{db}", bedtime=_hhmm(start + timedelta(minutes=30)), wake=_hhmm(wake)
    )
    rec = recorder_factory(broker, [f"{PREFIX}/alex/state"])
    daemon = daemon_factory(config)
    daemon.start()

    # A check-in the day after the first night's evening (at noon, dated by its own `ts`): it
    # tells of that night.
    bed_at = (start + timedelta(minutes=30)).astimezone(ZoneInfo(TZ))
    first_evening = bed_at.date() - timedelta(days=0 if bed_at.hour >= 12 else 1)
    checked = datetime.combine(
        first_evening + timedelta(days=1), time(12), ZoneInfo(TZ)
    ).isoformat()
    checkin = {"command": "checkin", "rested": 2, "daytime_twitching": True, "ts": checked}
    lines.append({"ts": checked, "topic": f"{PREFIX}/alex/command", "payload": checkin})
    bed = publisher(broker, "bed")
    for line in lines:
        # Compact JSON, as `sleepcoach simulate` sends a line's payload (the same bytes).
        payload = json.dumps(line["payload"], separators=(",", ":")).encode()
        bed.publish(line["topic"], payload, qos=1).wait_for_publish(5)

    def published() -> dict[str, dict[str, Any]]:
        """Every night the coach published as `last_night`, by its name."""
        docs = [s["last_night"] for s in rec.json_on(f"{PREFIX}/alex/state")]
        return {d["night"]: d for d in docs if d is not None and d["status"] == "ok"}

    assert rec.wait_for(lambda: len(published()) == 2, 60), daemon.log_text()
    bed.loop_stop()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0, daemon.log_text()

    report_dir = tmp_path / "report"
    shown = sleepcoach(
        "report",
        "--config",
        str(daemon.config),
        "--days",
        "5",
        "--out",
        str(report_dir),
        home=tmp_path,
    )
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "2 night(s) with bed data" in text, text
    for key, night in sorted(published().items()):
        day = datetime.fromisoformat(key)
        settle = _duration(night["time_to_settle_s"])
        cells = [
            f"{day:%a} {key}",
            _duration(night["time_in_bed_s"]),
            settle,
            f"{night['plm_index']:.1f}",
            str(night["hypnic_jerks"]),
            str(night["movements"]),
        ]
        # The night's row: its evening first (bedtime, caffeine, the evening), then the night.
        row = re.escape(cells[0]) + r"  .*  " + r"\s+".join(re.escape(c) for c in cells[1:4])
        row += r"(\s+high)?\s+" + r"\s+".join(re.escape(cell) for cell in cells[4:]) + "$"
        row = "^" + row
        assert re.search(row, text, re.MULTILINE), (cells, text)
        assert night["plm_index"] > 15  # 30/h put in: marked high in the report
    assert (report_dir / "index.html").exists()

    # The same nights as JSON, each under its evening with the figures the coach published.
    evenings = sorted(published())
    as_json = sleepcoach(
        "report",
        "--config",
        str(daemon.config),
        "--format",
        "json",
        "--since",
        evenings[0],
        "--until",
        evenings[-1],
        home=tmp_path,
    )
    assert as_json.returncode == 0, as_json.stderr
    [alex] = json.loads(as_json.stdout)["people"]
    assert [n["night"] for n in alex["nights"]] == evenings
    for shown_night in alex["nights"]:
        night = published()[shown_night["night"]]
        onset = datetime.fromisoformat(night["sleep_onset"]).replace(microsecond=0)
        assert shown_night["status"] == "ok"
        assert shown_night["sleep_onset"] == onset.isoformat()
        assert shown_night["time_in_bed_min"] == night["time_in_bed_min"]
        assert shown_night["plm_index"] == round(night["plm_index"], 1)
        assert shown_night["plm"] == night["plm_count"]
        assert shown_night["lm"] == night["limb_movements"]
        assert shown_night["movements"] == night["movements"]
        assert shown_night["hypnic_jerks"] == night["hypnic_jerks"]
        assert shown_night["evening"]["late_workout"] is False
    [told] = alex["checkins"]
    assert (told["rested"], told["daytime_twitching"], told["night"]) == (2, True, evenings[0])
    assert alex["nights"][0]["checkin"] == told["day"]

    # What is stored for a later history view: the figures and a bounded timeline.
    with sqlite3.connect(db) as conn:
        stored = dict(conn.execute("SELECT night, summary FROM nights").fetchall())
    assert sorted(stored) == sorted(published())
    for key, raw in stored.items():
        summary = json.loads(raw)
        night = published()[key]
        assert {k: summary[k] for k in night} == night
        drawn = summary["timeline"]
        assert len(drawn["movements"]) + drawn["omitted"] == night["movements"]
        assert sum(s[2] for s in drawn["series"]) == night["plm_count"]
        assert [m[3] for m in drawn["movements"]].count(2) == night["hypnic_jerks"]
        assert set(summary["evening"]) >= {"caffeine_mg_at_bedtime", "late_workout"}

    # The same scenario through `sleepcoach simulate --storage` writes the same history: the
    # daemon's writer under a virtual clock.
    sim_db = tmp_path / "simulated.db"
    with_checkin = tmp_path / "with-checkin.jsonl"
    ordered = sorted(lines, key=lambda line: datetime.fromisoformat(line["ts"]))
    with_checkin.write_text("".join(json.dumps(line) + "\n" for line in ordered))
    simulated = sleepcoach(
        "simulate",
        "--config",
        str(daemon.config),
        "--storage",
        f"sqlite:///{sim_db}",
        "--out",
        str(tmp_path / "nudges.jsonl"),
        str(with_checkin),
        home=tmp_path,
    )
    assert simulated.returncode == 0, simulated.stderr
    daemon_rows, sim_rows = _history(db), _history(sim_db)
    for table in ("events", "nights", "checkins"):
        assert daemon_rows[table] == sim_rows[table], table
    assert len(daemon_rows["checkins"]) == 1
    # The same nudges were decided, under the same ids. The daemon got the nights a day late
    # and dropped their summaries as expired; the simulator, on time, sent them (and its virtual
    # evening reached a wind-down the daemon's real one has not).
    decided = {row[0]: row[1:3] for row in sim_rows["nudges"]}
    assert daemon_rows["nudges"], "the daemon decided no nudge"
    for nudge_id, person, rule, *_ in daemon_rows["nudges"]:
        assert decided.get(nudge_id) == (person, rule), nudge_id


def _history(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The history a database holds, in a comparable order; the columns that say when it arrived
    (the daemon's wall clock, the broker's packet ids) left out."""
    with sqlite3.connect(db) as conn:
        return {
            "events": sorted(
                conn.execute(
                    "SELECT ts, person, kind, source, topic, data, error, dedup_key FROM events"
                ).fetchall(),
                key=repr,
            ),
            "nights": conn.execute(
                "SELECT person, night, ts, summary FROM nights ORDER BY person, night"
            ).fetchall(),
            "checkins": conn.execute(
                "SELECT person, day, ts, rested, daytime_twitching, rls FROM checkins "
                "ORDER BY person, day"
            ).fetchall(),
            "nudges": conn.execute(
                "SELECT id, person, rule, ts, severity, payload, dropped, published FROM nudges "
                "ORDER BY id"
            ).fetchall(),
        }
