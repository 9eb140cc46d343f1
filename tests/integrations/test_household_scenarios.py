"""Households through `sleepcoach simulate` and `check-config`: a shared coffee maker, answers.

The scenarios in tests/scenarios/household/ run with its config: Alex (bed 22:30) and Sam (bed
23:15) share the kitchen's coffee maker, Kim (bed 22:00) has only a watch. Each scenario's
expected nudges and errors are pinned byte for byte; the tests below say what each one shows.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from coach.nudge import Nudge
from coach.state import dump_state, load_state
from integrations.cli import main
from integrations.config_file import ConfigError, ConfigFile, config_from_yaml, load_config
from integrations.simulator import ErrorRecord, Simulation, write_run

FOLDER = Path(__file__).resolve().parent.parent / "scenarios" / "household"
CONFIG_FILE = FOLDER / "config.yaml"
NAMES = sorted(p.stem for p in FOLDER.glob("*.jsonl") if ".expected" not in p.name)
DAY = "2026-11-24"


@pytest.fixture(scope="module")
def config() -> ConfigFile:
    return load_config(CONFIG_FILE)


def run(config: ConfigFile, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The scenario's nudges and errors, as written by `sleepcoach simulate`."""
    out, err = io.StringIO(), io.StringIO()
    with (FOLDER / f"{name}.jsonl").open("rb") as lines:
        write_run(config, lines, out, err)
    for kind, text in (("expected", out.getvalue()), ("expected-errors", err.getvalue())):
        path = FOLDER / f"{name}.{kind}.jsonl"
        pinned = path.read_text(encoding="utf-8") if path.exists() else ""
        assert text.splitlines() == pinned.splitlines(), f"{name} {kind}"
    return (
        [json.loads(x) for x in out.getvalue().splitlines()],
        [json.loads(x) for x in err.getvalue().splitlines()],
    )


def of(nudges: list[dict[str, Any]], person: str, prefix: str = "") -> list[str]:
    """The ids of a person's nudges whose rule starts with `prefix`."""
    return [n["id"] for n in nudges if n["person"] == person and n["rule"].startswith(prefix)]


@pytest.mark.parametrize("name", NAMES)
def test_every_household_scenario_gives_its_pinned_output(config: ConfigFile, name: str) -> None:
    run(config, name)


def test_an_espresso_claimed_by_sam_moves_only_sam(config: ConfigFile) -> None:
    nudges, errors = run(config, "claimed_by_sam")
    assert errors == []
    assert of(nudges, "alex", "household.whose") == [
        f"household.whose:alex:{DAY}:0730",
        f"household.whose:alex:{DAY}:1505",
    ]
    assert of(nudges, "sam", "household.whose") == [
        f"household.whose:sam:{DAY}:0730",
        f"household.whose:sam:{DAY}:1505",
    ]
    assert of(nudges, "sam", "caffeine.") == [f"caffeine.cutoff:sam:{DAY}:1505"]
    # Alex's 07:30 coffee (claimed at 07:33) is Alex's: the last call before Alex's cutoff.
    assert of(nudges, "alex", "caffeine.") == [f"caffeine.last_call:alex:{DAY}"]
    cutoff = next(n for n in nudges if n["id"] == f"caffeine.cutoff:sam:{DAY}:1505")
    assert cutoff["ts"] == f"{DAY}T15:12:00+01:00"  # right after the answer
    assert cutoff["evidence"]["drink_at"] == f"{DAY}T15:05:00+01:00"  # the brew time
    assert cutoff["title"] == "Sam: No caffeine now"
    question = next(n for n in nudges if n["id"] == f"household.whose:sam:{DAY}:1505")
    assert question["title"] == "Sam: Whose espresso?"
    assert question["actions"] == ["mine"]
    assert question["severity"] == "info"
    assert "15:05" in question["message"]
    assert "126 mg" in question["message"]
    assert not of(nudges, "kim", "household.")  # not on that maker: never asked


def test_an_unanswered_drink_moves_nobody(config: ConfigFile) -> None:
    nudges, errors = run(config, "unanswered")
    assert not [n for n in nudges if n["rule"].startswith("caffeine.")]
    assert len(errors) == 1
    assert "expired at 15:35" in errors[0]["error"]
    assert "unattributed" in errors[0]["error"]


def test_when_both_answer_the_first_wins(config: ConfigFile) -> None:
    nudges, errors = run(config, "both_answer")
    assert of(nudges, "alex", "caffeine.") == [f"caffeine.cutoff:alex:{DAY}:1505"]
    assert of(nudges, "sam", "caffeine.") == []
    assert [e["topic"] for e in errors] == ["sleepcoach/sam/command"]
    assert "already claimed by alex" in errors[0]["error"]


def test_bad_answers_are_refused_clearly_and_change_nothing(config: ConfigFile) -> None:
    nudges, errors = run(config, "bad_answers")
    reasons = [e["error"] for e in errors]
    assert "sam has no open question" in reasons[0]
    assert "no question about a shared drink with id" in reasons[1]
    assert "no person 'taylor' in the config" in reasons[2]
    assert "kim is not listed on device 'kitchen' (alex, sam)" in reasons[3]
    assert "nudge_id: must not be empty" in reasons[4]
    assert not [n for n in nudges if n["rule"].startswith("caffeine.")]
    # The same run without the bad lines sends exactly the same nudges.
    lines = (FOLDER / "bad_answers.jsonl").read_text().splitlines()
    out, err = io.StringIO(), io.StringIO()
    write_run(config, [lines[1]], out, err)
    assert [json.loads(x) for x in out.getvalue().splitlines()] == nudges


def line(ts: str, topic: str, payload: dict[str, Any]) -> str:
    return json.dumps({"ts": f"{DAY}T{ts}:00+01:00", "topic": topic, "payload": payload})


def test_an_answer_after_a_restart_still_counts(config: ConfigFile) -> None:
    first = Simulation(config)
    brew = {"event": "brew", "drink": "espresso", "volume_ml": 60}
    out = first.feed_line(line("15:05", "home/kitchen/coffee", brew), 1)
    assert [o.id for o in out if isinstance(o, Nudge)] == [
        f"household.whose:alex:{DAY}:1505",
        f"household.whose:sam:{DAY}:1505",
    ]
    # The coach stops with the question open; its state is stored and read back on start.
    second = Simulation(config, load_state(dump_state(first.state)))
    out = second.feed_line(line("15:20", "sleepcoach/sam/command", {"command": "mine"}), 1)
    out += second.finish()
    assert not [o for o in out if isinstance(o, ErrorRecord)]
    sent = [o for o in out if isinstance(o, Nudge)]
    assert [n.id for n in sent if n.rule == "caffeine.cutoff"] == [
        f"caffeine.cutoff:sam:{DAY}:1505"
    ]
    assert not [n for n in sent if n.person == "alex" and n.rule.startswith("caffeine.")]
    assert second.state.person("sam").doses[0][1] == pytest.approx(126.0)


# -- the config -------------------------------------------------------------------------------


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_from_yaml(textwrap.dedent(text), file="c.yaml")
    return [str(p) for p in caught.value.problems]


PEOPLE = """\
timezone: Europe/Berlin
people:
  - {id: alex, bedtime: "22:30", wake: "06:30"}
  - {id: sam, bedtime: "23:15", wake: "07:15"}
devices:
"""


def test_two_coffee_makers_on_one_topic_are_refused_naming_both_lines() -> None:
    (problem,) = problems_of(
        PEOPLE
        + """\
  - id: coffee
    kind: coffee_maker
    topic: home/kitchen/coffee
    person: alex
  - id: coffee-sam
    kind: coffee_maker
    topic: home/kitchen/coffee
    person: sam
"""
    )
    assert problem.startswith("c.yaml:12: devices[1].topic:")
    assert "the topic of device 'coffee' (line 8)" in problem
    assert "person: [alex, sam]" in problem


def test_two_trackers_on_one_topic_are_refused() -> None:
    (problem,) = problems_of(
        PEOPLE
        + """\
  - {id: w1, kind: fitness_tracker, topic: tracker/x, person: alex}
  - {id: w2, kind: fitness_tracker, topic: tracker/x, person: sam}
"""
    )
    assert "c.yaml:7:" in problem
    assert "the topic of device 'w1' (line 6)" in problem
    assert "give each its own topic" in problem


def test_a_list_of_people_on_a_bed_sensor_is_refused_at_its_line() -> None:
    (problem,) = problems_of(
        PEOPLE
        + """\
  - {id: bed, kind: bed_motion, topic: home/bed, person: [alex, sam]}
"""
    )
    assert problem.startswith("c.yaml:6: devices[0]")
    assert "a bed_motion measures one person" in problem


def test_a_shared_maker_naming_an_unknown_person_is_refused() -> None:
    (problem,) = problems_of(
        PEOPLE
        + """\
  - {id: k, kind: coffee_maker, topic: home/k, person: [alex, kim]}
"""
    )
    assert "names person 'kim', who is not in people" in problem


def test_check_config_accepts_the_household(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(CONFIG_FILE)]) == 0
    assert capsys.readouterr().out == "OK: 3 people, 4 devices\n"
