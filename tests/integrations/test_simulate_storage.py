"""`sleepcoach simulate --storage`: a month of synthetic nights stored as the daemon stores them,
then `sleepcoach report` reads it; every step a `sleepcoach` command in a subprocess."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.broker import ROOT

TZ = "Europe/Berlin"
CONFIG = f"""\
timezone: {TZ}
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
"""


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


def test_synth_simulate_storage_report_shows_the_month(tmp_path: Path) -> None:
    config = tmp_path / "coach.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    # 28 nights ending last night, so the report's period (the last 30 days) holds them all.
    start = (datetime.now(ZoneInfo(TZ)) - timedelta(days=29)).replace(
        hour=21, minute=30, second=0, microsecond=0
    )
    made = sleepcoach(
        "synth", "--nights", "28", "--start", start.isoformat(), "--out", "s.jsonl", home=tmp_path
    )
    assert made.returncode == 0, made.stderr
    db = tmp_path / "month.db"
    ran = sleepcoach(
        "simulate",
        "--config",
        str(config),
        "--storage",
        f"sqlite:///{db}",
        "--out",
        "nudges.jsonl",
        "s.jsonl",
        home=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr == ""
    nudges = [json.loads(line) for line in (tmp_path / "nudges.jsonl").read_text().splitlines()]

    with sqlite3.connect(db) as conn:
        nights = dict(conn.execute("SELECT night, summary FROM nights").fetchall())
        stored = conn.execute(
            "SELECT id, payload FROM nudges WHERE dropped IS NULL AND published"
        ).fetchall()
        events = conn.execute("SELECT count(*) FROM events WHERE kind != 'refused'").fetchone()
        state = conn.execute("SELECT count(*) FROM state").fetchone()
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    # Every synthetic reading became a stored event; every night and sent nudge is stored.
    assert events == (len(lines),)
    evenings = [(start + timedelta(days=i)).date().isoformat() for i in range(28)]
    assert sorted(nights) == evenings
    assert all(json.loads(s)["status"] == "ok" for s in nights.values())
    assert sorted((i, json.loads(p)) for i, p in stored) == sorted((n["id"], n) for n in nudges)
    assert state == (0,)  # the replay's state is not the daemon's to restore

    shown = _report(tmp_path, config, db)
    assert shown.returncode == 0, shown.stderr
    assert "28 night(s) with bed data" in shown.stdout, shown.stdout
    for evening in evenings:
        assert evening in shown.stdout


def _report(tmp_path: Path, config: Path, db: Path) -> subprocess.CompletedProcess[str]:
    with_storage = tmp_path / "with-storage.yaml"
    with_storage.write_text(
        config.read_text() + f"storage:\n  url: sqlite:///{db}\n", encoding="utf-8"
    )
    return sleepcoach(
        "report", "--config", str(with_storage), "--days", "30", "--out", "report", home=tmp_path
    )


def test_simulate_into_unusable_storage_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "coach.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    (tmp_path / "s.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "not-a.db").write_text("this is not a database\n" * 100, encoding="utf-8")
    (tmp_path / "not-a.db").chmod(0o600)
    for url in ("mysql+nothing://x", f"sqlite:///{tmp_path / 'not-a.db'}"):
        ran = sleepcoach(
            "simulate", "--config", str(config), "--storage", url, "s.jsonl", home=tmp_path
        )
        assert ran.returncode == 1, ran.stderr
        assert ran.stderr.startswith("sleepcoach simulate: "), ran.stderr
        assert url in ran.stderr
        assert "Traceback" not in ran.stderr
