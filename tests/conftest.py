"""Shared pytest set-up for sleepcoach's tests: registers the real-server fixture plugins (a
Mosquitto broker, `tests/broker.py`; Home Assistant, `tests/e2e/homeassistant.py`)."""

import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# tests/ is not an installed package, and pytest puts only the test files' own folders on
# sys.path: make the repository root importable so the plugins below resolve however pytest was
# started (`pytest`, `python -m pytest`, one file or the whole tree).
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

pytest_plugins = ["tests.broker", "tests.browser", "tests.e2e.homeassistant"]

# Property tests check what holds, never how fast: hypothesis's per-example deadline and its
# "too slow" health check measure time, and on a shared 2-core machine under load they failed
# tests whose properties held. The number of examples and every assertion stay as each test says.
settings.register_profile("sleepcoach", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sleepcoach")
