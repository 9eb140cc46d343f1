"""A rule added from outside: written here, added to the rulebook here, replayed by the simulator.

This is the worked example of docs/architecture.md ("Add a rule"). A rule family is a `Family`:
the events it handles, the timers it plans for a night and their handlers; `RULES.with_family`
is the rulebook `decide(..., rules=...)` runs, and the simulator (like the daemon's runner) takes
any `decide`. A shipped rule is the same `FAMILY` in its own module under `coach/`, listed in
`coach.engine.FAMILIES`, with its settings model in `coach/config.py`.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from coach.clock import Night, hhmm, local_iso
from coach.engine import RULES, decide
from coach.event import Timer
from coach.nudge import Nudge
from coach.rule import Ctx, Family, Rulebook
from integrations.config_file import ConfigFile, load_config
from integrations.simulator import Simulation, nudge_line

RULE = "screens.away"
MINUTES_BEFORE_BED = 90


def plan(ctx: Ctx, night: Night) -> list[Timer]:
    """One reminder a night, 90 minutes before bedtime."""
    at = night.bedtime - timedelta(minutes=MINUTES_BEFORE_BED)
    return [Timer(RULE, ctx.person.id, at, night.key)]


def on_reminder(ctx: Ctx, timer: Timer) -> None:
    """Screens away, unless the person is already in bed."""
    if ctx.ps.in_bed:
        return
    night = ctx.tonight
    ctx.send(
        RULE,
        day=night.key,
        night=night.key,
        severity="info",
        title="Screens away soon",
        message=f"Bedtime is at {hhmm(night.bedtime, ctx.tz)}. Consider putting screens away.",
        evidence={
            "bedtime": local_iso(night.bedtime, ctx.tz),
            "minutes_before_bed": MINUTES_BEFORE_BED,
            "source": "Brown et al. 2022, PLoS Biol 20(3):e3001571 (dim light before bed)",
        },
        expires=night.bedtime,
        scheduled=True,
    )


FAMILY = Family(name="screens", timers={RULE: on_reminder}, plan=plan)

CONFIG_YAML = """\
timezone: Europe/Berlin
people:
  - id: alex
    bedtime: "22:30"
    wake: "06:30"
devices:
  - id: bed
    kind: bed_motion
    topic: home/bedroom/bed
    person: alex
"""


@pytest.fixture
def config(tmp_path: Path) -> ConfigFile:
    """One person with a bed sensor."""
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_YAML, encoding="utf-8")
    return load_config(path)


def _replay(
    config: ConfigFile, rules: Rulebook, lines: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The simulator deciding with `rules`: the nudges as `sleepcoach simulate` writes them."""
    sim = Simulation(config, decide=partial(decide, rules=rules))
    outputs = [o for n, line in enumerate(lines, 1) for o in sim.feed_line(json.dumps(line), n)]
    outputs += sim.finish()
    return [json.loads(nudge_line(o, config.core)) for o in outputs if isinstance(o, Nudge)]


def _occupancy(ts: str, occupied: bool) -> dict[str, Any]:
    payload = {"event": "occupancy", "occupied": occupied, "ts": ts}
    return {"ts": ts, "topic": "home/bedroom/bed", "payload": payload}


def test_the_added_rule_sends_its_nudge_at_its_planned_time(config: ConfigFile) -> None:
    """Planned at start, fired 90 minutes before bed under the usual id scheme, every night."""
    nudges = _replay(
        config,
        RULES.with_family(FAMILY),
        [_occupancy("2026-11-24T18:00:00+01:00", False)],
    )
    added = [n for n in nudges if n["rule"] == RULE]
    assert [(n["id"], n["ts"]) for n in added] == [
        ("screens.away:alex:2026-11-24", "2026-11-24T21:00:00+01:00")
    ]
    assert added[0]["message"] == "Bedtime is at 22:30. Consider putting screens away."
    # The shipped rules go on as before beside it.
    assert "winddown.stretch" in {n["rule"] for n in nudges}


def test_the_added_rule_reads_the_state_the_engine_keeps(config: ConfigFile) -> None:
    """In bed before 21:00 (the bed sensor's occupancy, kept by the engine): no reminder."""
    nudges = _replay(
        config,
        RULES.with_family(FAMILY),
        [_occupancy("2026-11-24T20:30:00+01:00", True)],
    )
    assert RULE not in {n["rule"] for n in nudges}


def test_the_shipped_rulebook_does_not_run_it(config: ConfigFile) -> None:
    """Without the family in the rulebook, nothing plans or handles its timer."""
    nudges = _replay(config, RULES, [_occupancy("2026-11-24T18:00:00+01:00", False)])
    assert RULE not in {n["rule"] for n in nudges}


def test_a_timer_kind_belongs_to_one_family() -> None:
    """Two families handling the same timer would make the order of families matter: refused."""
    with pytest.raises(
        ValueError, match=re.escape("timer kind 'winddown.stretch' of family 'copy' is taken")
    ):
        RULES.with_family(Family(name="copy", timers={"winddown.stretch": on_reminder}))
    with pytest.raises(ValueError, match="timer kind 'plan' of family 'engine' is taken"):
        Rulebook([Family(name="engine", timers={"plan": on_reminder})])
