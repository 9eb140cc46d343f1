"""The coach's data directory, and owner-only modes for everything it keeps there.

What the coach stores is health data: the database (and SQLite's `-wal` and `-shm` beside it),
the broker's persistence. The data directory is 0700 and those files 0600, whatever the umask.
They are created so, and ones that already exist with looser modes (written by an older
sleepcoach, or under a umask of 022) are tightened when the coach opens them; each tightening is
logged, once: the next start finds them tight.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Final

import platformdirs

log = logging.getLogger(__name__)

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600
#: What SQLite keeps beside a database: the write-ahead log, its index, a rollback journal.
SQLITE_SIDE_FILES: Final = ("-wal", "-shm", "-journal")


def data_dir() -> Path:
    """The user's data directory for sleepcoach (`~/.local/share/sleepcoach` on Linux), 0700."""
    return private_dir(Path(platformdirs.user_data_dir("sleepcoach", appauthor=False)))


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner can enter: created 0700, or tightened to it."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """`path` as a file only its owner can read: created empty with 0600, or tightened to it."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    tighten(path, FILE_MODE)
    return path


def private_sqlite(path: Path) -> Path:
    """A SQLite database file and the files SQLite keeps beside it, owner-only.

    SQLite creates its `-wal`, `-shm` and journal with the database file's own mode, so a
    database created 0600 keeps them 0600; ones already there are tightened here.
    """
    private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        tighten(path.with_name(path.name + suffix), FILE_MODE)
    return path


def tighten(path: Path, allowed: int) -> None:
    """Take from `path` every permission bit beyond `allowed`, saying so; a missing path is
    left alone."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & ~allowed:
        path.chmod(mode & allowed)
        log.warning(
            "%s was %s to other users (mode %o): now %o, owner only (it holds health data)",
            path,
            "open" if path.is_dir() else "readable",
            mode,
            mode & allowed,
        )
