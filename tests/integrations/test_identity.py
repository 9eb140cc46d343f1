"""One install, one identity: the client id and the default database derived from the host and
the config's path, what overrides them, and an older version's shared database taken over by the
config whose history it holds (real SQLite files, written by `Storage`)."""

from __future__ import annotations

import json
import logging
import re
import socket
from pathlib import Path

import pytest

from integrations.config_file import ConfigFile, load_config
from integrations.identity import (
    LEGACY_DATABASE,
    adopt_legacy_database,
    default_database,
    derived_client_id,
    identity,
    storage_url,
)
from integrations.storage import Batch, EventRow, Storage

CONFIG = """\
timezone: Europe/Berlin
mqtt:
  topic_prefix: sleepcoach
{mqtt}people:
  - id: alex
    bedtime: "22:30"
    wake: "06:30"
  - id: sam
    bedtime: "23:30"
    wake: "07:30"
devices:
  - id: coffee
    kind: coffee_maker
    topic: home/kitchen/coffee
    person: alex
{storage}"""


def _config(path: Path, *, mqtt: str = "", storage: str = "") -> ConfigFile:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CONFIG.format(mqtt=mqtt, storage=storage))
    return load_config(path, env={})


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user data directory, in the test's own directory."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "sleepcoach"


def _history(url: str, *people: str) -> None:
    """A database as an older sleepcoach left it: a coffee for each of `people`."""
    storage = Storage.open(url)
    rows = [
        EventRow(
            ts=1.7e9 + n,
            received_at=1.7e9 + n,
            person=person,
            kind="CoffeeBrewed",
            source="coffee",
            topic="home/kitchen/coffee",
            data=json.dumps({"drink": "espresso"}),
        )
        for n, person in enumerate(people)
    ]
    storage.write(Batch(events=rows, state=b"{}"))
    storage.close()


def _count(url: str) -> int:
    storage = Storage.open(url)
    try:
        return storage.count()
    finally:
        storage.close()


# -- the client id --------------------------------------------------------------------------------


def test_the_same_host_and_config_always_get_the_same_client_id(tmp_path: Path) -> None:
    config = tmp_path / "a" / "sleepcoach.yaml"
    assert derived_client_id("vm", config) == derived_client_id("vm", config)
    assert re.fullmatch(r"sleepcoach-vm-[0-9a-f]{8}", derived_client_id("vm", config))


def test_another_config_path_or_host_gets_another_client_id(tmp_path: Path) -> None:
    one = tmp_path / "a" / "sleepcoach.yaml"
    other = tmp_path / "b" / "sleepcoach.yaml"
    ids = {
        derived_client_id("vm", one),
        derived_client_id("vm", other),
        derived_client_id("pi", one),
        derived_client_id("pi", other),
    }
    assert len(ids) == 4


def test_a_config_reached_through_a_link_or_a_relative_path_is_the_same_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "etc" / "sleepcoach.yaml"
    real.parent.mkdir()
    real.write_text("")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    monkeypatch.chdir(tmp_path / "etc")
    assert derived_client_id("vm", link) == derived_client_id("vm", real)
    assert derived_client_id("vm", Path("sleepcoach.yaml")) == derived_client_id("vm", real)
    assert default_database(link, tmp_path) == default_database(real, tmp_path)


def test_the_host_name_is_shown_in_letters_digits_and_dashes(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    assert derived_client_id("Kitchen_Pi.local", config).startswith("sleepcoach-kitchen-pi-local-")
    long_host = "h" * 100
    assert len(derived_client_id(long_host, config)) <= len("sleepcoach--") + 24 + 8
    assert re.fullmatch(r"sleepcoach-[0-9a-f]{8}", derived_client_id("___", config))


def test_a_loaded_config_connects_with_the_id_derived_from_this_host_and_its_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sleepcoach.yaml"
    config = _config(path)
    who = identity(config)
    assert who.client_id == derived_client_id(socket.gethostname(), path)
    assert who.describe() == (
        f"client id: {who.client_id} (derived from host {socket.gethostname()} and config "
        f"{path.resolve()}; mqtt.client_id sets another)"
    )


def test_mqtt_client_id_in_the_config_is_used_as_written(tmp_path: Path) -> None:
    config = _config(tmp_path / "c.yaml", mqtt="  client_id: coach-bedroom\n")
    assert identity(config).client_id == "coach-bedroom"
    assert identity(config).describe() == "client id: coach-bedroom (mqtt.client_id in the config)"


# -- the default database -------------------------------------------------------------------------


def test_each_config_gets_its_own_default_database_in_the_data_dir(
    tmp_path: Path, data: Path
) -> None:
    one = _config(tmp_path / "one" / "sleepcoach.yaml")
    two = _config(tmp_path / "two" / "sleepcoach.yaml")
    url_one, url_two = storage_url(one), storage_url(two)
    assert url_one != url_two
    for url in (url_one, url_two):
        assert re.fullmatch(rf"sqlite:///{data}/sleepcoach-[0-9a-f]{{8}}\.db", url), url
    assert storage_url(one) == url_one  # the same at every start
    assert oct(data.stat().st_mode & 0o777) == "0o700"


def test_storage_url_in_the_config_or_the_environment_names_the_database(
    tmp_path: Path, data: Path
) -> None:
    config = _config(tmp_path / "c.yaml", storage=f"storage:\n  url: sqlite:///{tmp_path}/x.db\n")
    assert storage_url(config) == f"sqlite:///{tmp_path}/x.db"
    assert not data.exists()


# -- an older version's shared database -----------------------------------------------------------


def test_the_old_shared_database_of_this_configs_people_is_moved_to_its_own_and_said(
    tmp_path: Path, data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    legacy = data / LEGACY_DATABASE
    data.mkdir(parents=True)
    _history(f"sqlite:///{legacy}", "alex", "sam", "alex")
    config = _config(tmp_path / "c.yaml")
    with caplog.at_level(logging.INFO, "integrations.identity"):
        url = storage_url(config)
    assert _count(url) == 3  # every row kept
    assert not legacy.exists()
    assert sorted(p.name for p in data.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        Path(url.removeprefix("sqlite:///")).name
    ]
    said = caplog.text
    assert f"moved the older default database {legacy} (the history of alex, sam) to " in said
    caplog.clear()
    with caplog.at_level(logging.INFO, "integrations.identity"):
        assert storage_url(config) == url  # the next start: nothing more to move or say
    assert not caplog.text


def test_a_move_interrupted_after_the_wal_finishes_at_the_next_start(
    tmp_path: Path, data: Path
) -> None:
    legacy = data / LEGACY_DATABASE
    data.mkdir(parents=True)
    _history(f"sqlite:///{legacy}", "alex")
    target = default_database(tmp_path / "c.yaml", data)
    wal = legacy.with_name(legacy.name + "-wal")
    wal.write_bytes(b"")  # a WAL already moved, as a stop half-way through leaves it
    wal.replace(target.with_name(target.name + "-wal"))
    assert adopt_legacy_database(legacy, target, {"alex"})
    assert _count(f"sqlite:///{target}") == 1


def test_the_old_shared_database_of_other_people_is_left_alone_and_said(
    tmp_path: Path, data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    legacy = data / LEGACY_DATABASE
    data.mkdir(parents=True)
    _history(f"sqlite:///{legacy}", "alex", "robin")
    config = _config(tmp_path / "c.yaml")
    with caplog.at_level(logging.INFO, "integrations.identity"):
        url = storage_url(config)
    assert legacy.exists()
    assert _count(f"sqlite:///{legacy}") == 2
    assert _count(url) == 0
    assert (
        f"an older default database {legacy} holds the history of people not in this config "
        f"(robin): left where it is" in caplog.text
    )
    assert f"set storage.url: sqlite:///{legacy}" in caplog.text


def test_the_old_shared_database_is_left_alone_once_the_config_has_its_own(
    tmp_path: Path, data: Path
) -> None:
    config = _config(tmp_path / "c.yaml")
    url = storage_url(config)
    _history(url, "alex")
    legacy = data / LEGACY_DATABASE
    _history(f"sqlite:///{legacy}", "alex", "sam")  # a second checkout's, written later
    assert storage_url(config) == url
    assert _count(url) == 1
    assert _count(f"sqlite:///{legacy}") == 2


def test_an_empty_or_unreadable_old_database_is_left_alone(tmp_path: Path, data: Path) -> None:
    data.mkdir(parents=True)
    legacy = data / LEGACY_DATABASE
    Storage.open(f"sqlite:///{legacy}").close()
    target = default_database(tmp_path / "c.yaml", data)
    assert not adopt_legacy_database(legacy, target, {"alex"})
    legacy.unlink()
    legacy.write_bytes(b"not a database, " * 100)
    assert not adopt_legacy_database(legacy, target, {"alex"})
    assert legacy.exists()
    assert not target.exists()
