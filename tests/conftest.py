"""Shared pytest set-up for sleepcoach's tests: registers the real-server fixture plugins (a
Mosquitto broker, `tests/broker.py`; Home Assistant, `tests/e2e/homeassistant.py`)."""

import sys
from pathlib import Path

# tests/ is not an installed package, and pytest puts only the test files' own folders on
# sys.path: make the repository root importable so the plugins below resolve however pytest was
# started (`pytest`, `python -m pytest`, one file or the whole tree).
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

pytest_plugins = ["tests.broker", "tests.browser", "tests.e2e.homeassistant"]
