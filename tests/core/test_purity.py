"""The core's import ban (coach/ruff.toml) stops each way the core could read the clock or do I/O.

Each line below is what a change to `coach/` might write; ruff, run on it as if it were a core
module, must refuse it and name the rule.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "the shell": "from integrations.storage import Storage",
    "sqlalchemy": "import sqlalchemy",
    "a sqlalchemy submodule": "from sqlalchemy.orm import Session",
    "MQTT": "import paho.mqtt.client",
    "HTTP": "import niquests",
    "logging": "import logging",
    "time.monotonic": "from time import monotonic",
    "time.time": "import time",
    "datetime.now": "from datetime import datetime\nNOW = datetime.now",
    "datetime.today": "from datetime import datetime\nNOW = datetime.today",
    "date.today": "from datetime import date\nTODAY = date.today",
    "date.today through the module": "import datetime\nTODAY = datetime.date.today",
    "the environment": "import os",
    "a file through pathlib": "from pathlib import Path",
    "a file through open()": 'TEXT = open("x").read()',
    "a thread": "import threading",
    "a socket": "import socket",
    "a subprocess": "import subprocess",
    "the system's entropy": "import random",
}


def ruff_on_core(source: str) -> subprocess.CompletedProcess[str]:
    """Ruff with the core's settings on `source`, as the module coach/probe.py."""
    return subprocess.run(
        [
            sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
            "--stdin-filename", str(ROOT / "coach" / "probe.py"), "-",
        ],
        input=f'"""A probe."""\n\n{source}\n',
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize(("what", "source"), FORBIDDEN.items(), ids=FORBIDDEN)
def test_the_core_may_not_reach(what: str, source: str) -> None:
    result = ruff_on_core(source)
    assert result.returncode == 1, f"{what} passed the ban: {result.stdout}{result.stderr}"
    assert "TID251" in result.stdout or "PTH123" in result.stdout, result.stdout


def test_what_the_core_does_use_passes() -> None:
    allowed = (
        "from datetime import date, datetime, time, timedelta\n"
        "from zoneinfo import ZoneInfo\n\n"
        "import numpy as np\n"
        "from pydantic import BaseModel\n\n"
        "__all__ = ['BaseModel', 'ZoneInfo', 'date', 'datetime', 'np', 'time', 'timedelta']"
    )
    result = ruff_on_core(allowed)
    assert result.returncode == 0, result.stdout + result.stderr
