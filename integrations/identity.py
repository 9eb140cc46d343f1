"""One install, one identity: the MQTT client id and the default database of a coach.

Two coaches on one broker must not share a client id: the id is the key of the broker's
persistent session, so the second to connect takes the first one's session and the messages
queued for it. Two checkouts (or a test install beside the real one) must not share a database
either. So both are derived from what tells installs apart:

- the client id, unless `mqtt.client_id` sets one, is `sleepcoach-<host>-<key>`, where `<key>`
  is the first 8 hex digits of the SHA-256 of the host name and the config file's resolved path;
- the default database, unless `storage.url` (or `SLEEPCOACH_STORAGE_URL`) names one, is
  `sleepcoach-<key>.db` in the user's data directory, `<key>` from the config's path alone (the
  data directory is the host's already, and a renamed host keeps its history).

The same config on the same host gets the same identity at every start, and `run` and `report`
find the same database. Older versions used the client id `sleepcoach` and `sleepcoach.db` for
every install: such a database is taken over by the config whose people it holds (see
`adopt_legacy_database`), and said so in the log.
"""

from __future__ import annotations

import hashlib
import logging
import re
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from integrations.data_dir import SQLITE_SIDE_FILES, data_dir

if TYPE_CHECKING:
    from integrations.config_file import ConfigFile

log = logging.getLogger(__name__)

#: What every install used before identities were derived.
LEGACY_CLIENT_ID: Final = "sleepcoach"
LEGACY_DATABASE: Final = "sleepcoach.db"
#: At most this much of the host name goes into a client id (MQTT brokers accept long ids, but
#: a short one reads well in their logs).
HOST_CHARS: Final = 24
KEY_CHARS: Final = 8


@dataclass(frozen=True, slots=True)
class Identity:
    """A coach's client id and where it came from, for the start-up line and `run --check`."""

    client_id: str
    source: str

    def describe(self) -> str:
        """`client id: X (where it came from)`."""
        return f"client id: {self.client_id} ({self.source})"


def host_name() -> str:
    """This machine's host name."""
    return socket.gethostname() or "localhost"


def config_location(path: Path | None) -> str:
    """The config's resolved path as text (symbolic links followed), or `<no file>`."""
    if path is None:
        return "<no file>"
    try:
        return str(path.resolve())
    except OSError:
        return str(path.absolute())


def install_key(*parts: str) -> str:
    """8 hex digits of SHA-256 over `parts`: the same for the same parts, different otherwise."""
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()
    return digest[:KEY_CHARS]


def derived_client_id(host: str, config: Path | None) -> str:
    """`sleepcoach-<host>-<key>`: the host name in letters, digits and dashes, and the key of the
    host and the config's resolved path."""
    shown = re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-")[:HOST_CHARS].strip("-")
    key = install_key(host, config_location(config))
    return f"sleepcoach-{shown}-{key}" if shown else f"sleepcoach-{key}"


def identity(config: ConfigFile, host: str | None = None) -> Identity:
    """The client id `config` connects with: `mqtt.client_id` when set, else derived."""
    if config.mqtt.client_id is not None:
        return Identity(config.mqtt.client_id, "mqtt.client_id in the config")
    host = host if host is not None else host_name()
    where = config_location(config.path)
    return Identity(
        derived_client_id(host, config.path),
        f"derived from host {host} and config {where}; mqtt.client_id sets another",
    )


def client_id(config: ConfigFile) -> str:
    """The client id `config` connects with."""
    return identity(config).client_id


def default_database(config_path: Path | None, directory: Path) -> Path:
    """The default SQLite file of a config: `sleepcoach-<key>.db` in `directory`."""
    return directory / f"sleepcoach-{install_key(config_location(config_path))}.db"


def storage_url(config: ConfigFile) -> str:
    """`storage.url` when set, else the config's own SQLite file in the user's data directory
    (taking over an older version's shared database when it is this config's)."""
    if config.storage.url:
        return config.storage.url
    directory = data_dir()
    database = default_database(config.path, directory)
    adopt_legacy_database(directory / LEGACY_DATABASE, database, {p.id for p in config.people})
    return f"sqlite:///{database}"


def adopt_legacy_database(legacy: Path, database: Path, people: set[str]) -> bool:
    """Move an older version's `sleepcoach.db` to `database` when it is this config's history.

    Only when `database` does not exist yet and `legacy` does, and every person `legacy` holds
    history for is one of `people`: then it was made by this config (or one with the same
    people), and moving it (with SQLite's -wal and -shm) keeps every night, nudge and state. A
    database holding other people's history is left where it is, and the log says so and how to
    use it. True when it was moved.
    """
    if database.exists() or not legacy.exists():
        return False
    try:
        held = _people_in(legacy)
    except sqlite3.Error as err:
        log.warning(
            "an older default database %s could not be read (%s): left where it is; "
            "storage.url: sqlite:///%s uses it",
            legacy,
            err,
            legacy,
        )
        return False
    if not held:
        log.info("an older default database %s holds no history: left where it is", legacy)
        return False
    if not held <= people:
        others = ", ".join(sorted(held - people))
        log.warning(
            "an older default database %s holds the history of people not in this config (%s): "
            "left where it is, and this config starts its own database %s; if it is this "
            "config's, set storage.url: sqlite:///%s",
            legacy,
            others,
            database,
            legacy,
        )
        return False
    # The side files first, the database last: interrupted half-way, the next start finds the
    # database still at its old name and moves the rest (SQLite finds its WAL by the name).
    for suffix in SQLITE_SIDE_FILES:
        side = legacy.with_name(legacy.name + suffix)
        if side.exists():
            side.replace(database.with_name(database.name + suffix))
    legacy.replace(database)
    log.warning(
        "moved the older default database %s (the history of %s) to %s, this config's own: "
        "each install and config now has its own database",
        legacy,
        ", ".join(sorted(held)),
        database,
    )
    return True


def _people_in(database: Path) -> set[str]:
    """The people a sleepcoach database holds history or state for (read-only)."""
    conn = sqlite3.connect(f"{database.absolute().as_uri()}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        held: set[str] = set()
        for table in ("events", "nudges", "nights"):
            if table in tables:
                query = f"SELECT DISTINCT person FROM {table} WHERE person IS NOT NULL"  # noqa: S608
                held.update(str(row[0]) for row in conn.execute(query))
        return held
    finally:
        conn.close()
