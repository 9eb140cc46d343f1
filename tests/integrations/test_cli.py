"""The `sleepcoach` command line as a person starts it: its version and its subcommands."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sleepcoach(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "integrations.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_version_says_the_version_the_package_was_built_with() -> None:
    built = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = sleepcoach("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"sleepcoach {built}\n", "")


def test_help_lists_every_subcommand_and_nothing_on_stderr() -> None:
    result = sleepcoach("--help")
    assert result.returncode == 0
    assert result.stderr == ""
    for name in ("check-config", "schema", "simulate", "run", "report", "devices", "synth"):
        assert f"\n    {name}" in result.stdout, name
