"""Health data is owner-only: the data directory 0700, a SQLite database and its -wal and -shm
0600, under the usual umask of 022; ones that exist with looser modes are tightened, and each
tightening is logged once. Through the real `sleepcoach run`: tests/e2e/test_data_files.py."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrations.data_dir import data_dir, private_dir
from integrations.storage import Batch, Storage
from tests.integrations.test_storage import NOW, _event


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems give a user (files 0644, directories 0755 unless asked)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _tightened(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "owner only" in r.getMessage()]


def test_the_user_data_dir_is_created_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "sleepcoach"
    assert _mode(tmp_path / "xdg" / "sleepcoach") == 0o700


def test_a_directory_open_to_others_is_tightened_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "data"
    path.mkdir(mode=0o755)
    private_dir(path)
    assert _mode(path) == 0o700
    assert _tightened(caplog) == [
        f"{path} was open to other users (mode 755): now 700, owner only (it holds health data)"
    ]
    caplog.clear()
    private_dir(path)
    assert _tightened(caplog) == []


def test_a_new_database_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "coach.db"
    storage = Storage.open(f"sqlite:///{path}")
    storage.write(Batch(events=[_event(NOW)], state=b"{}"))
    try:
        files = {p.name: _mode(p) for p in tmp_path.iterdir()}
        assert files == {"coach.db": 0o600, "coach.db-wal": 0o600, "coach.db-shm": 0o600}
    finally:
        storage.close()


def test_an_existing_database_readable_by_others_is_tightened_with_its_wal_and_shm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "coach.db"
    storage = Storage.open(f"sqlite:///{path}")
    storage.write(Batch(events=[_event(NOW)], state=b"{}"))
    # As an older sleepcoach left them, killed with its -wal and -shm still there.
    loose = [path, tmp_path / "coach.db-wal", tmp_path / "coach.db-shm"]
    for file in loose:
        file.chmod(0o644)
    again = Storage.open(f"sqlite:///{path}")
    try:
        assert again.count() == 1
        assert {p.name: _mode(p) for p in loose} == {p.name: 0o600 for p in loose}
        assert sorted(_tightened(caplog)) == sorted(
            f"{p} was readable to other users (mode 644): now 600, owner only (it holds health "
            "data)"
            for p in loose
        )
        caplog.clear()
        Storage.open(f"sqlite:///{path}").close()
        assert _tightened(caplog) == []
    finally:
        again.close()
        storage.close()
