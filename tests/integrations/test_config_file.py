"""Tests of config loading: the example, errors by path and line, secrets, and the CLI commands."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import time
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from coach.config import Config, Rules
from integrations.cli import main
from integrations.config_file import (
    ConfigError,
    ConfigFile,
    Problem,
    config_from_yaml,
    load_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"
SECRET = "s3cr3t-Hunter2-do-not-print"

VALID = """\
timezone: Europe/Berlin
mqtt:
  topic_prefix: sleepcoach
people:
  - id: alex
    bedtime: "22:30"
    wake: "06:30"
  - id: sam
    bedtime: "00:45"
    wake: "08:30"
devices:
  - id: bed
    kind: bed_motion
    topic: home/bedroom/bed
    person: alex
rules:
  caffeine.cutoff:
    cutoff_hours: 8
"""


@pytest.fixture(autouse=True)
def _no_secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own environment must not leak into these tests."""
    monkeypatch.delenv("SLEEPCOACH_MQTT_PASSWORD", raising=False)
    monkeypatch.delenv("SLEEPCOACH_HA_TOKEN", raising=False)


def problems_of(text: str, **kwargs: object) -> list[Problem]:
    """The problems ConfigError reports for YAML text (failing if it loads)."""
    with pytest.raises(ConfigError) as caught:
        config_from_yaml(textwrap.dedent(text), file="c.yaml", **kwargs)  # type: ignore[arg-type]
    return list(caught.value.problems)


# -- the example ------------------------------------------------------------------------------


def test_example_config_loads() -> None:
    """config/example.yaml is valid and has the two people and the contract's devices."""
    config = load_config(EXAMPLE, env={})
    assert [p.id for p in config.people] == ["alex", "sam"]
    alex, sam = config.people
    assert alex.bedtime.on(0) == time(22, 30)  # Monday
    assert alex.bedtime.on(4) == time(23, 30)  # Friday
    assert sam.bedtime.on(0) == time(0, 45)
    assert {d.id: d.kind for d in config.devices} == {
        "bed": "bed_motion",
        "coffee": "coffee_maker",
        "espresso": "coffee_maker",
        "watch": "fitness_tracker",
        "sam-watch": "fitness_tracker",
    }
    shared = {d.id: d.people for d in config.devices if d.shared}
    assert shared == {"espresso": ("alex", "sam")}
    assert config.tz.key == "Europe/Berlin"


def test_example_shows_every_rule_at_its_default() -> None:
    """Every rule id and every setting appears in the example, with the model's default."""
    written = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["rules"]
    for name, field in Rules.model_fields.items():
        alias = field.alias or name
        assert alias in written, f"{alias} missing from the example"
        settings_model = field.annotation
        assert settings_model is not None
        assert set(written[alias]) == set(settings_model.model_fields), alias
    assert load_config(EXAMPLE, env={}).rules == Rules()


# -- bad configs: the path and the line -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "path", "message"),
    [
        pytest.param(
            VALID.replace('bedtime: "22:30"', 'bedtime: "25:00"'),
            6,
            "people[0].bedtime",
            'expected a time as "HH:MM"',
            id="a bedtime of 25:00 names people[0].bedtime on its line",
        ),
        pytest.param(
            VALID.replace('bedtime: "00:45"', 'bedtime: {mon: "00:45", tue: "9:99"}'),
            9,
            "people[1].bedtime.tue",
            'expected a time as "HH:MM"',
            id="a bad weekday time names that weekday",
        ),
        pytest.param(
            VALID.replace('    wake: "08:30"\n', ""),
            8,
            "people[1].wake",
            "missing (required)",
            id="a missing wake time names the person's item",
        ),
        pytest.param(
            VALID.replace("    cutoff_hours: 8", "    cutoff_hours: 20"),
            18,
            'rules."caffeine.cutoff".cutoff_hours',
            "must be at most 16, got 20",
            id="a rule setting out of range quotes the rule id",
        ),
        pytest.param(
            VALID.replace("  caffeine.cutoff:", "  caffeine.cutof:"),
            17,
            'rules."caffeine.cutof"',
            "unknown key; did you mean 'caffeine.cutoff'?",
            id="a misspelt rule id suggests the right one",
        ),
        pytest.param(
            VALID.replace('    wake: "06:30"\n', '    wake: "06:30"\n    bedtme: x\n'),
            8,
            "people[0].bedtme",
            "unknown key; did you mean 'bedtime'?",
            id="a misspelt person key suggests the right one",
        ),
        pytest.param(
            VALID + "colour: blue\n",
            19,
            "colour",
            "unknown key; expected one of: timezone, people, devices, rules, mqtt, storage, "
            "homeassistant",
            id="an unknown top-level key lists the known ones",
        ),
        pytest.param(
            VALID.replace("kind: bed_motion", "kind: bed"),
            13,
            "devices[0].kind",
            "expected one of 'bed_motion', 'coffee_maker' or 'fitness_tracker', got 'bed'",
            id="an unknown device kind lists the kinds",
        ),
        pytest.param(
            VALID.replace("timezone: Europe/Berlin", "timezone: Mars/Olympus"),
            1,
            "timezone",
            "unknown time zone 'Mars/Olympus'",
            id="an unknown time zone is on line 1",
        ),
        pytest.param(
            VALID.replace("person: alex", "person: bob"),
            15,
            "devices[0].person",
            "device 'bed' names person 'bob', who is not in people (alex, sam)",
            id="a device of an unknown person points at its person line",
        ),
        pytest.param(
            VALID.replace("  topic_prefix: sleepcoach", "  topic_prefix: sleep#coach"),
            3,
            "mqtt.topic_prefix",
            "the topic prefix must not contain the wildcards + or #",
            id="a topic prefix with a wildcard is refused",
        ),
        pytest.param(
            VALID.replace("  topic_prefix: sleepcoach", "  topic_prefix: $SYS"),
            3,
            "mqtt.topic_prefix",
            "the topic prefix must not start with $",
            id="a topic prefix in the broker's $SYS is refused",
        ),
        pytest.param(
            VALID.replace("  topic_prefix: sleepcoach", "  topic_prefix: /"),
            3,
            "mqtt.topic_prefix",
            "the topic prefix must not have an empty level",
            id="a topic prefix of / is refused",
        ),
        pytest.param(
            VALID.replace("  topic_prefix: sleepcoach", "  topic_prefix: sc/"),
            3,
            "mqtt.topic_prefix",
            "the topic prefix must not have an empty level",
            id="a topic prefix ending in / is refused",
        ),
        pytest.param(
            VALID.replace("  topic_prefix: sleepcoach", "  topic_prefix: homeassistant")
            + "homeassistant: {discovery: true}\n",
            3,
            "mqtt.topic_prefix",
            "the coach's topics (homeassistant/...) would mix with homeassistant/status",
            id="a topic prefix on Home Assistant's topics is refused",
        ),
        pytest.param(
            VALID.replace("topic: home/bedroom/bed", "topic: sleepcoach/errors"),
            14,
            "devices[0].topic",
            "'sleepcoach/errors' overlaps sleepcoach/# (the coach's own topics",
            id="a device on the coach's error topic is refused",
        ),
        pytest.param(
            VALID.replace("topic: home/bedroom/bed", "topic: +/alex/+"),
            14,
            "devices[0].topic",
            "'+/alex/+' overlaps sleepcoach/#",
            id="a device filter overlapping the command topics is refused",
        ),
        pytest.param(
            VALID.replace("topic: home/bedroom/bed", "topic: '#'"),
            14,
            "devices[0].topic",
            "a bare # takes every message on the broker",
            id="a bare # is refused",
        ),
        pytest.param(
            VALID.replace("topic: home/bedroom/bed", "topic: '+'"),
            14,
            "devices[0].topic",
            "a bare + takes every message on the broker",
            id="a bare + is refused",
        ),
        pytest.param(
            VALID.replace("topic: home/bedroom/bed", "topic: $SYS/#"),
            14,
            "devices[0].topic",
            "topics starting with $ ($SYS/...) are the broker's own",
            id="a device on $SYS is refused",
        ),
        pytest.param(
            VALID.replace("topic: home/bedroom/bed", "topic: homeassistant/+/+/+/config")
            + "homeassistant: {discovery: true}\n",
            14,
            "devices[0].topic",
            "'homeassistant/+/+/+/config' overlaps homeassistant/+/sleepcoach/+/config",
            id="a device on the coach's discovery topics is refused when discovery is on",
        ),
        pytest.param(
            VALID.replace("topic: home/bedroom/bed", "topic: homeassistant/status")
            + "homeassistant: {discovery: false}\n",
            14,
            "devices[0].topic",
            "'homeassistant/status' overlaps homeassistant/status",
            id="a device on Home Assistant's status topic is refused",
        ),
        pytest.param(
            VALID.replace("topic: home/bedroom/bed", "topic: home/#/bed"),
            14,
            "devices[0].topic",
            "wildcards + and # must stand alone",
            id="a malformed topic filter is refused",
        ),
        pytest.param(
            VALID + "timezone: UTC\n",
            19,
            "timezone",
            "duplicate key (also given on line 1",
            id="a duplicate key is refused instead of silently overwritten",
        ),
        pytest.param(
            VALID.replace("people:\n", "people: [\n"),
            5,
            "",
            "not valid YAML:",
            id="a YAML syntax error has its line",
        ),
        pytest.param(
            "- a\n- b\n",
            1,
            "",
            "the top level must be a mapping (key: value lines), got a list",
            id="a list at the top level is refused",
        ),
        pytest.param(
            "people: [{id: alex, bedtime: '22:00', wake: '07:00'}]\n",
            1,
            "timezone",
            "missing (required)",
            id="a missing time zone names it",
        ),
    ],
)
def test_bad_config_names_path_and_line(text: str, line: int, path: str, message: str) -> None:
    """Each bad config gives a problem with the exact YAML path and line."""
    found = problems_of(text)
    matching = [p for p in found if p.path == path and p.line == line]
    assert matching, f"no problem at {path} line {line}: {[str(p) for p in found]}"
    assert matching[0].message.startswith(message), matching[0].message
    assert all(p.file == "c.yaml" for p in found)


@pytest.mark.parametrize(
    "topic",
    [
        "homeassistant/+/+/state",  # mqtt_statestream beside the coach's discovery
        "sleepcoachx/bed",
        "home/#",
        "home/+/bed",
    ],
)
def test_a_device_topic_beside_the_coachs_own_is_accepted(topic: str) -> None:
    """Only an overlap is refused: Home Assistant's state stream, a longer first level, a
    subtree elsewhere."""
    text = VALID.replace("topic: home/bedroom/bed", f"topic: '{topic}'")
    config = config_from_yaml(text + "homeassistant: {discovery: true}\n", file="c.yaml")
    assert config.devices[0].topic == topic


def test_all_problems_are_reported_at_once() -> None:
    """Fixing one error at a time is tedious: every problem is listed."""
    text = VALID.replace('bedtime: "22:30"', 'bedtime: "25:00"').replace(
        "cutoff_hours: 8", "cutoff_hours: -1"
    )
    assert [(p.line, p.path) for p in problems_of(text)] == [
        (6, "people[0].bedtime"),
        (18, 'rules."caffeine.cutoff".cutoff_hours'),
    ]


MANY_MISTAKES = """\
timezone: Mars/Olympus
people:
  - id: sam
    bedtime: "25:00"
    wake: "06:30"
  - id: alex
    bedtime: "00:45"
    wake: "08:30"
  - id: sam
    bedtime: "22:00"
    wake: "07:00"
devices:
  - id: bed
    kind: bed
    topic: home/bedroom/bed
    person: bob
  - id: plug
    kind: coffee_maker
    topic: home/kitchen/plug
    person: alex
    profile: zigbee2mqtt_vibration
rules:
  insight.correlation:
    bootstrap_samples: 2000
    weekday: sunday
  caffeine.cutoff:
    cutoff_hours: 20
"""


def test_check_config_gives_every_mistake_in_one_run_in_line_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file with many mistakes: every one in a single run, top to bottom, each at its own line
    (the device's `person:` line, not `devices:`), in plain words."""
    path = _write(tmp_path, MANY_MISTAKES)
    assert main(["check-config", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:1: timezone: unknown time zone 'Mars/Olympus': use an IANA name such as "
        "Europe/Berlin",
        f"{path}:4: people[0].bedtime: expected a time as \"HH:MM\" (00:00 to 23:59), got '25:00'",
        f"{path}:9: people: id 'sam' appears twice, lines 3 and 9",
        f"{path}:14: devices[0].kind: expected one of 'bed_motion', 'coffee_maker' or "
        "'fitness_tracker', got 'bed'",
        f"{path}:16: devices[0].person: device 'bed' names person 'bob', who is not in people "
        "(sam, alex)",
        f"{path}:18: devices[1].kind: profile zigbee2mqtt_vibration is for bed_motion devices, "
        "not coffee_maker",
        f'{path}:24: rules."insight.correlation".bootstrap_samples: renamed: the weekly insight '
        "now uses a permutation test; set `permutations` (shuffles per comparison, default "
        "2000) and `false_discovery_rate` (default 0.10) instead",
        f"{path}:25: rules.\"insight.correlation\".weekday: expected one of 'mon', 'tue', "
        "'wed', 'thu', 'fri', 'sat' or 'sun', got 'sunday'; did you mean 'sun'?",
        f'{path}:27: rules."caffeine.cutoff".cutoff_hours: must be at most 16, got 20',
    ]


def test_a_duplicated_person_id_is_named_with_both_lines() -> None:
    """Not "ids must be unique": which id, and where."""
    text = VALID.replace(
        "devices:\n", '  - id: alex\n    bedtime: "23:00"\n    wake: "07:00"\ndevices:\n'
    )
    (problem,) = problems_of(text)
    assert str(problem) == "c.yaml:11: people: id 'alex' appears twice, lines 5 and 11"


def test_a_device_id_given_three_times_lists_every_line() -> None:
    """Each repetition counts; the problem is at the first repeat."""
    bed = "  - {id: bed, kind: bed_motion, topic: home/b, person: alex}\n"
    text = VALID.replace("rules:\n", bed + bed + "rules:\n")
    (problem,) = problems_of(text)
    assert str(problem) == "c.yaml:16: devices: id 'bed' appears 3 times, lines 12, 16 and 17"


def test_a_device_of_an_unknown_person_is_found_beside_other_errors() -> None:
    """The person check no longer waits until everything else is valid."""
    text = VALID.replace("person: alex", "person: bob").replace(
        "cutoff_hours: 8", "cutoff_hours: x"
    )
    assert [(p.line, p.path, p.message) for p in problems_of(text)] == [
        (
            15,
            "devices[0].person",
            "device 'bed' names person 'bob', who is not in people (alex, sam)",
        ),
        (18, 'rules."caffeine.cutoff".cutoff_hours', "expected a number, got 'x'"),
    ]


def test_profile_options_are_checked_beside_other_errors() -> None:
    """A device's profile options are checked even when another part of the file is wrong."""
    text = VALID.replace(
        "    person: alex\n",
        "    person: alex\n    profile: zigbee2mqtt_vibration\n    options: {strength_max: 0}\n",
    ).replace('bedtime: "22:30"', 'bedtime: "22:61"')
    assert [(p.line, p.path, p.message) for p in problems_of(text)] == [
        (6, "people[0].bedtime", "expected a time as \"HH:MM\" (00:00 to 23:59), got '22:61'"),
        (17, "devices[0].options.strength_max", "must be more than 0, got 0"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        pytest.param(
            "    bootstrap_samples: 2000",
            ("rules", "insight.correlation"),
            'rules."insight.correlation".bootstrap_samples',
            "renamed: the weekly insight now uses a permutation test; set `permutations`",
            id="bootstrap_samples",
        ),
        pytest.param(
            "    moderate_hours_before_bed: 1",
            ("rules", "exercise.late_intense"),
            'rules."exercise.late_intense".moderate_hours_before_bed',
            "renamed: moderate exercise no longer counts; `alert_minutes_before_bed`",
            id="moderate_hours_before_bed",
        ),
    ],
)
def test_a_key_renamed_in_the_past_says_what_replaces_it(
    old: str, new: tuple[str, str], path: str, message: str
) -> None:
    """A config written for an earlier version is told what to write now, not "unknown key"."""
    text = VALID + f"  {new[1]}:\n{old}\n"
    (problem,) = problems_of(text)
    assert (problem.line, problem.path) == (20, path)
    assert problem.message.startswith(message), problem.message


#: One case per kind of pydantic error a config file can produce: the change to VALID, the
#: error type pydantic reports, and the plain words the reader gets instead.
ERROR_TYPES = [
    ("missing", '    wake: "08:30"\n', "", 8, "people[1].wake", "missing (required)"),
    (
        "extra_forbidden",
        '    wake: "08:30"\n',
        '    wake: "08:30"\n    wakeup: "08:30"\n',
        11,
        "people[1].wakeup",
        "unknown key; did you mean 'wake'?",
    ),
    ("string_type", "id: sam", "id: 12", 8, "people[1].id", "expected text, got 12"),
    (
        "int_parsing",
        '    wake: "08:30"\n',
        '    wake: "08:30"\n    age: forty\n',
        11,
        "people[1].age",
        "expected a whole number, got 'forty'",
    ),
    (
        "int_from_float",
        '    wake: "08:30"\n',
        '    wake: "08:30"\n    age: 40.5\n',
        11,
        "people[1].age",
        "expected a whole number, got 40.5",
    ),
    (
        "int_type",
        '    wake: "08:30"\n',
        '    wake: "08:30"\n    age: [40]\n',
        11,
        "people[1].age",
        "expected a whole number, got a list",
    ),
    (
        "float_parsing",
        "cutoff_hours: 8",
        "cutoff_hours: eight",
        18,
        'rules."caffeine.cutoff".cutoff_hours',
        "expected a number, got 'eight'",
    ),
    (
        "float_type",
        "cutoff_hours: 8",
        "cutoff_hours: {h: 8}",
        18,
        'rules."caffeine.cutoff".cutoff_hours',
        "expected a number, got a mapping (key: value lines)",
    ),
    (
        "bool_parsing",
        "cutoff_hours: 8",
        "enabled: maybe",
        18,
        'rules."caffeine.cutoff".enabled',
        "expected true or false, got 'maybe'",
    ),
    (
        "less_than_equal",
        "cutoff_hours: 8",
        "cutoff_hours: 17",
        18,
        'rules."caffeine.cutoff".cutoff_hours',
        "must be at most 16, got 17",
    ),
    (
        "greater_than_equal",
        "cutoff_hours: 8",
        "cutoff_hours: -1",
        18,
        'rules."caffeine.cutoff".cutoff_hours',
        "must be at least 0, got -1",
    ),
    (
        "greater_than",
        "  caffeine.cutoff:\n    cutoff_hours: 8",
        "  insight.correlation:\n    false_discovery_rate: 0",
        18,
        'rules."insight.correlation".false_discovery_rate',
        "must be more than 0, got 0",
    ),
    (
        "literal_error",
        "kind: bed_motion",
        "kind: bed-motion",
        13,
        "devices[0].kind",
        "expected one of 'bed_motion', 'coffee_maker' or 'fitness_tracker', got 'bed-motion'; "
        "did you mean 'bed_motion'?",
    ),
    (
        "too_short",
        VALID[VALID.index("people:") : VALID.index("devices:")],
        "people: []\n",
        4,
        "people",
        "needs at least 1 entry; it is empty",
    ),
    (
        "string_too_short",
        "topic: home/bedroom/bed",
        "topic: ''",
        14,
        "devices[0].topic",
        "must not be empty",
    ),
    (
        "string_pattern_mismatch",
        "id: sam",
        "id: sam smith",
        8,
        "people[1].id",
        "expected 1 to 32 letters, digits, _ or -, got 'sam smith'",
    ),
    (
        "model_type",
        "  caffeine.cutoff:\n    cutoff_hours: 8",
        "  caffeine.cutoff: 8",
        17,
        'rules."caffeine.cutoff"',
        "expected a mapping (key: value lines), got 8",
    ),
    (
        "dict_type",
        "    person: alex\n",
        "    person: alex\n    options: [strength]\n",
        16,
        "devices[0].options",
        "expected a mapping (key: value lines), got a list",
    ),
    (
        "list_type",
        "devices:\n  - id: bed\n    kind: bed_motion\n    topic: home/bedroom/bed\n"
        "    person: alex\n",
        "devices: bed\n",
        11,
        "devices",
        "expected a list (lines starting with -), got 'bed'",
    ),
    (
        "value_error",
        'bedtime: "22:30"',
        'bedtime: "10.30pm"',
        6,
        "people[0].bedtime",
        "expected a time as \"HH:MM\" (00:00 to 23:59), got '10.30pm'",
    ),
    (
        "value_error",
        "timezone: Europe/Berlin",
        "timezone: CEST",
        1,
        "timezone",
        "unknown time zone 'CEST': use an IANA name such as Europe/Berlin",
    ),
    (
        "value_error",
        'bedtime: "22:30"',
        "bedtime:",
        6,
        "people[0].bedtime",
        'expected a time as "HH:MM", or one per weekday, got nothing (an empty value)',
    ),
    (
        "value_error",
        'bedtime: "22:30"',
        'bedtime: {mon: "22:30"}',
        6,
        "people[0].bedtime",
        "no time for tue, wed, thu, fri, sat, sun: list every weekday or give a default",
    ),
]


@pytest.mark.parametrize(
    ("kind", "old", "new", "line", "path", "message"),
    [pytest.param(*case, id=f"{case[0]}: {case[5]}") for case in ERROR_TYPES],
)
def test_each_kind_of_error_is_said_in_plain_words(
    kind: str, old: str, new: str, line: int, path: str, message: str
) -> None:
    """pydantic's own wording ("Input should be ...", "List should have at least 1 item after
    validation") never reaches the reader: each error type has plain words and the value given."""
    text = VALID.replace(old, new, 1)
    assert text != VALID
    with pytest.raises(ValidationError) as raw:
        ConfigFile.model_validate(yaml.safe_load(text))
    assert kind in {e["type"] for e in raw.value.errors()}  # the case makes this error type
    problems = problems_of(text)
    assert [(p.line, p.path, p.message) for p in problems] == [(line, path, message)]


def test_no_message_is_in_pydantic_words() -> None:
    """Across every case, none of pydantic's phrasing is left."""
    for _, old, new, *_ in ERROR_TYPES:
        for problem in problems_of(VALID.replace(old, new, 1)):
            assert not re.search(
                r"Input should|should have|String should|Value error|validation", problem.message
            ), problem


def test_problem_reads_as_file_line_path_message() -> None:
    """The printed form is FILE:LINE: path: message."""
    (problem,) = problems_of(VALID.replace("cutoff_hours: 8", "cutoff_hours: 20"))
    assert str(problem) == (
        'c.yaml:18: rules."caffeine.cutoff".cutoff_hours: must be at most 16, got 20'
    )


def test_empty_file_is_refused(tmp_path: Path) -> None:
    """An empty file is a clean error, not None."""
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"empty\.yaml: the file is empty"):
        load_config(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    """A file that is not there names itself."""
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read the file: No such file"):
        load_config(path)


def test_directory_is_refused(tmp_path: Path) -> None:
    """A directory cannot be read as a config."""
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path)


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    """Latin-1 bytes are reported, not mis-decoded."""
    path = tmp_path / "latin.yaml"
    path.write_bytes(VALID.replace("alex", "al\xe9x").encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_python_tags_are_refused() -> None:
    """safe_load semantics: no arbitrary objects."""
    (problem,) = problems_of(VALID + "x: !!python/object/apply:os.system ['true']\n")
    assert "could not determine a constructor" in problem.message
    assert problem.line == 19


# -- secrets ----------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sleepcoach.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


WITH_SECRET_FILES = VALID.replace(
    "  topic_prefix: sleepcoach\n",
    "  topic_prefix: sleepcoach\n  username: coach\n  password_file: secrets/mqtt\n",
) + ("homeassistant:\n  token_file: secrets/ha\n")


def test_secrets_are_read_from_files_next_to_the_config(tmp_path: Path) -> None:
    """Relative secret files are relative to the config; a trailing newline is not the secret."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mqtt").write_text(SECRET + "\n", encoding="utf-8")
    (tmp_path / "secrets" / "ha").write_text("token-123\r\n", encoding="utf-8")
    config = load_config(_write(tmp_path, WITH_SECRET_FILES), env={})
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == SECRET
    assert config.homeassistant is not None
    assert config.homeassistant.token is not None
    assert config.homeassistant.token.get_secret_value() == "token-123"
    assert SECRET not in repr(config)


def test_the_core_is_given_the_coaching_config_without_any_setting_or_secret(
    tmp_path: Path,
) -> None:
    """`core` (what decide() gets) is a plain Config: no broker, storage or Home Assistant."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mqtt").write_text(SECRET, encoding="utf-8")
    (tmp_path / "secrets" / "ha").write_text("token-123", encoding="utf-8")
    config = load_config(_write(tmp_path, WITH_SECRET_FILES), env={})
    core = config.core
    assert type(core) is Config
    assert core is config.core  # derived once
    dumped = core.model_dump_json()
    assert SECRET not in dumped
    assert "token-123" not in dumped
    assert set(core.model_dump()) == {"timezone", "people", "devices", "rules"}
    assert core.people == config.people
    assert core.person("sam") is config.people[1]
    assert core.tz.key == "Europe/Berlin"
    assert config.settings.mqtt.password == config.mqtt.password
    assert not hasattr(core, "mqtt")


def test_tls_files_are_relative_to_the_config_and_absolute_ones_are_kept(tmp_path: Path) -> None:
    """A config in /etc/sleepcoach naming tls/ca.crt means /etc/sleepcoach/tls/ca.crt."""
    text = VALID.replace(
        "  topic_prefix: sleepcoach\n",
        "  topic_prefix: sleepcoach\n  ca_file: tls/ca.crt\n  cert_file: /abs/client.crt\n"
        "  key_file: ../k.pem\n",
    )
    assert text != VALID
    config = load_config(_write(tmp_path, text), env={})
    assert config.mqtt.ca_file == str(tmp_path / "tls" / "ca.crt")
    assert config.mqtt.cert_file == "/abs/client.crt"
    assert config.mqtt.key_file == str(tmp_path / ".." / "k.pem")


def test_environment_wins_over_files(tmp_path: Path) -> None:
    """SLEEPCOACH_MQTT_PASSWORD / SLEEPCOACH_HA_TOKEN override the files, which are not read."""
    env = {"SLEEPCOACH_MQTT_PASSWORD": SECRET, "SLEEPCOACH_HA_TOKEN": "from-env"}
    config = load_config(_write(tmp_path, WITH_SECRET_FILES), env=env)
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == SECRET
    assert config.homeassistant is not None
    assert config.homeassistant.token is not None
    assert config.homeassistant.token.get_secret_value() == "from-env"


def test_environment_is_read_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit env mapping, os.environ is used."""
    monkeypatch.setenv("SLEEPCOACH_MQTT_PASSWORD", SECRET)
    config = load_config(_write(tmp_path, VALID))
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == SECRET


def test_token_without_home_assistant_is_ignored(tmp_path: Path) -> None:
    """No homeassistant block: the token variable has nothing to fill."""
    config = load_config(_write(tmp_path, VALID), env={"SLEEPCOACH_HA_TOKEN": "x"})
    assert config.homeassistant is None
    assert config.mqtt.password is None


def test_missing_secret_file_names_the_file(tmp_path: Path) -> None:
    """The error says which file and which key; the line is the key's."""
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, WITH_SECRET_FILES), env={})
    mqtt, ha = caught.value.problems
    assert mqtt.path == "mqtt.password_file"
    assert mqtt.line == 5
    assert "cannot read the password file" in mqtt.message
    assert "secrets/mqtt" in mqtt.message
    assert ha.path == "homeassistant.token_file"


def test_unreadable_secret_never_shows_its_content(tmp_path: Path) -> None:
    """An empty or undecodable secret file is reported without a byte of what is in it."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mqtt").write_bytes(SECRET.encode() + b"\xff")
    (tmp_path / "secrets" / "ha").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, WITH_SECRET_FILES), env={})
    text = str(caught.value)
    assert "password file" in text
    assert "is not UTF-8 text" in text
    assert "token file" in text
    assert "is empty" in text
    assert SECRET not in text
    assert "0xff" not in text
    assert "\\xff" not in text


@pytest.mark.parametrize(
    ("text", "path", "advice"),
    [
        pytest.param(
            VALID.replace(
                "  topic_prefix: sleepcoach\n",
                f"  topic_prefix: sleepcoach\n  password: {SECRET}\n",
            ),
            "mqtt.password",
            "`password_file`, or set the environment variable SLEEPCOACH_MQTT_PASSWORD",
            id="a literal MQTT password is refused with the way to do it",
        ),
        pytest.param(
            VALID + f"homeassistant:\n  token: {SECRET}\n",
            "homeassistant.token",
            "`token_file`, or set the environment variable SLEEPCOACH_HA_TOKEN",
            id="a literal Home Assistant token is refused with the way to do it",
        ),
    ],
)
def test_literal_secret_is_refused_without_echoing_it(text: str, path: str, advice: str) -> None:
    """Secrets stay out of config files; the error never repeats the secret."""
    found = problems_of(text, env={})
    assert [p.path for p in found] == [path]
    assert found[0].line is not None
    assert advice in found[0].message
    assert SECRET not in "\n".join(str(p) for p in found)


def test_misspelt_secret_key_does_not_echo_the_secret() -> None:
    """`pasword: …` is an unknown key; its value is not shown."""
    text = VALID.replace(
        "  topic_prefix: sleepcoach\n", f"  topic_prefix: sleepcoach\n  pasword: {SECRET}\n"
    )
    found = problems_of(text)
    assert [p.path for p in found] == ["mqtt.pasword"]
    assert SECRET not in str(found[0])


# -- the CLI ----------------------------------------------------------------------------------


def test_check_config_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 0 with a one-line summary."""
    assert main(["check-config", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out == "OK: 2 people, 5 devices\n"


def test_check_config_lists_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 1; each error on its own line as FILE:LINE: path: message."""
    path = _write(
        tmp_path,
        VALID.replace('bedtime: "22:30"', 'bedtime: "25:00"').replace(
            "cutoff_hours: 8", "cutoff_hours: 20"
        ),
    )
    assert main(["check-config", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:6: people[0].bedtime: expected a time")
    assert lines[1].startswith(f'{path}:18: rules."caffeine.cutoff".cutoff_hours: ')
    assert all(re.match(rf"{re.escape(str(path))}:\d+: \S+: .+", line) for line in lines)


def test_check_config_can_skip_secret_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In CI the secret files are absent: --no-secrets checks everything else."""
    path = _write(tmp_path, WITH_SECRET_FILES)
    assert main(["check-config", str(path)]) == 1
    assert "cannot read the password file" in capsys.readouterr().out
    assert main(["check-config", "--no-secrets", str(path)]) == 0
    assert capsys.readouterr().out == "OK: 2 people, 1 device\n"


def test_check_config_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing file is an error line and exit 1."""
    assert main(["check-config", str(tmp_path / "x.yaml")]) == 1
    assert "x.yaml: cannot read the file" in capsys.readouterr().out


def test_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """`sleepcoach schema` prints the models' JSON Schema, keys as written in YAML."""
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == ConfigFile.model_json_schema(by_alias=True)
    assert set(schema["properties"]) == {
        *("timezone", "people", "devices", "rules"),  # the core's
        *("mqtt", "storage", "homeassistant", "dashboard"),  # the shell's
    }
    assert "caffeine.cutoff" in schema["$defs"]["Rules"]["properties"]
    assert "topic_prefix" in schema["$defs"]["MqttSettings"]["properties"]
    assert schema["properties"]["timezone"]["description"]


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    """`sleepcoach` alone shows the commands."""
    assert main([]) == 2
    assert "check-config" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error() -> None:
    """argparse exits 2 on an unknown command."""
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == 2
