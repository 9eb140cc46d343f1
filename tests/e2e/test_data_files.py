"""Health data is owner-only through the real `sleepcoach run`: a data directory and database an
older sleepcoach left open to others (0755, 0644, with the -wal and -shm of a coach killed with
SIGKILL) are tightened to 0700 and 0600 at start, each said once; the next start finds nothing to
say. (A fresh first run's modes: tests/e2e/test_first_run.py.)"""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from integrations.identity import default_database
from tests.broker import Broker
from tests.e2e.conftest import DaemonProcess, config_yaml

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120)]

OWNER_ONLY = "owner only (it holds health data)"


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems give a user, which the coach inherits (files 0644 by default)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(data: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in [data, *data.iterdir()]}


def test_a_data_directory_left_open_to_others_is_made_owner_only_and_said_once(
    broker: Broker, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    # No storage.url: the default database in the data directory ($XDG_DATA_HOME/sleepcoach).
    text = config_yaml(broker, "unused").replace("storage:\n  url: unused\n", "")
    daemon = daemon_factory(text)
    data = daemon.home / "data" / "sleepcoach"
    daemon.start()
    daemon.signal(signal.SIGKILL)  # its -wal and -shm stay, as after a crash
    daemon.wait()
    data.chmod(0o755)
    loose = sorted(p.name for p in data.iterdir())
    db = default_database(daemon.config, data).name  # the config's own database
    assert loose == [db, f"{db}-shm", f"{db}-wal"]
    for name in loose:
        (data / name).chmod(0o644)

    daemon.start()
    try:
        modes = _modes(data)
        assert modes == {"sleepcoach": 0o700, **dict.fromkeys(loose, 0o600)}
        said = [line for line in daemon.log_text().splitlines() if OWNER_ONLY in line]
        assert len(said) == 4, said  # the directory and each file, once
        assert any(f"{data} was open to other users (mode 755): now 700" in s for s in said)
        for name in loose:
            assert any(f"{data / name} was readable to other users (mode 644)" in s for s in said)
    finally:
        daemon.stop()

    daemon.start()
    daemon.stop()
    said = [line for line in daemon.log_text().splitlines() if OWNER_ONLY in line]
    assert len(said) == 4, "a start that found everything owner-only said it again"
