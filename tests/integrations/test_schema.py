"""`sleepcoach schema` accepts every config the repository ships, checked by a real JSON Schema
validator as an editor or a CI job would use the printed schema.

The shipped configs are the YAML files with `people` (config/example.yaml, the scenarios') and the
YAML blocks of the README and docs/: whole configs against the whole schema, a block of top-level
keys (`mqtt:`, `homeassistant:`) against the schema without its required keys, a list of devices
item by item against the device's schema.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from integrations.cli import main
from integrations.config_file import ConfigFile

ROOT = Path(__file__).resolve().parents[2]
#: YAML blocks in the docs that are not sleepcoach configs (Home Assistant's own files).
NOT_OURS = ("lovelace", "mqtt_statestream", "options")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """The schema exactly as `sleepcoach schema` prints it."""
    with pytest.MonkeyPatch.context() as patch:
        out: list[str] = []
        patch.setattr("integrations.cli.say", lambda text="", **_: out.append(str(text)))
        assert main(["schema"]) == 0
    printed: dict[str, Any] = json.loads("\n".join(out))
    jsonschema.Draft202012Validator.check_schema(printed)
    return printed


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def problems(schema: dict[str, Any], doc: Any) -> list[str]:
    found = validator(schema).iter_errors(doc)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def shipped_files() -> list[Path]:
    files = sorted(ROOT.glob("config/*.yaml")) + sorted(ROOT.glob("tests/**/*.yaml"))
    return [f for f in files if "people" in (yaml.safe_load(f.read_text()) or {})]


def doc_blocks() -> list[tuple[str, Any]]:
    blocks = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for n, match in enumerate(re.finditer(r"^( *)```yaml\n(.*?)^\1```", text, re.S | re.M)):
            indent = len(match.group(1))
            body = "\n".join(line[indent:] for line in match.group(2).splitlines())
            doc = yaml.safe_load(body)
            if isinstance(doc, dict) and set(doc) & set(NOT_OURS):
                continue
            blocks.append((f"{path.relative_to(ROOT)} block {n + 1}", doc))
    return blocks


def test_the_shipped_configs_are_found() -> None:
    names = {str(f.relative_to(ROOT)) for f in shipped_files()}
    assert {"config/example.yaml", "tests/scenarios/config.yaml"} <= names
    assert any(doc and "people" in doc for _, doc in doc_blocks() if isinstance(doc, dict))


@pytest.mark.parametrize("path", shipped_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_file_is_valid_against_the_printed_schema(
    schema: dict[str, Any], path: Path
) -> None:
    assert problems(schema, yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize(("where", "doc"), doc_blocks(), ids=[w for w, _ in doc_blocks()])
def test_every_config_block_of_the_docs_is_valid_against_the_printed_schema(
    schema: dict[str, Any], where: str, doc: Any
) -> None:
    del where
    if isinstance(doc, list):
        device = {**schema, "$ref": "#/$defs/Device"}
        for key in ("properties", "required", "additionalProperties", "type"):
            device.pop(key, None)
        for item in doc:
            assert problems(device, item) == []
    elif "people" in doc:
        assert problems(schema, doc) == []
    else:
        assert problems({**schema, "required": []}, doc) == []


@pytest.mark.parametrize(
    ("bedtime", "valid"),
    [
        ("22:30", True),
        ("0:45", True),
        ({"default": "22:30", "sat": "23:30"}, True),
        ("24:00", False),
        ("22:30:00", False),
        ("half past ten", False),
        ({"sat": "23:30", "someday": "22:00"}, False),
    ],
)
def test_the_schema_takes_a_bedtime_as_the_loader_does(
    schema: dict[str, Any], bedtime: Any, valid: bool
) -> None:
    doc = yaml.safe_load((ROOT / "config" / "example.yaml").read_text())
    doc["people"][0]["bedtime"] = bedtime
    assert (problems(schema, doc) == []) is valid
    try:
        ConfigFile.model_validate(doc)
    except ValidationError:
        loaded = False
    else:
        loaded = True
    assert loaded is valid
