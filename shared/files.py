"""Files Seamline keeps on disk hold password hashes, tokens and every conversation: they are for
the user Seamline runs as only. A directory Seamline creates is 0700 and its SQLite database 0600
(SQLite gives the -wal/-shm/-journal files the database's own mode). A directory that already
exists is left as its owner made it; the database files are tightened at every start."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")
log = logging.getLogger(__name__)


def private_dir(path: Path) -> Path:
    """``path`` exists; what of it was missing is created 0700 (whatever the umask)."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue
        try:
            os.chmod(directory, 0o700)  # mkdir's mode went through the umask
        except OSError as exc:  # a file system without Unix modes: say so rather than not start
            log.warning("could not make %s private (0700): %s", directory, exc)
    return missing[0] if missing else path


def private_sqlite(database: str | os.PathLike[str]) -> None:
    """Before SQLite opens ``database``: its directory exists (created 0700), the file exists 0600
    (created empty, which SQLite takes as a new database), and files of ours left 0644 by an older
    Seamline are made 0600."""
    path = Path(database)
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        with contextlib.suppress(OSError):  # absent, or not ours to change: leave it
            if companion.stat().st_uid == os.getuid() and companion.stat().st_mode & 0o077:
                os.chmod(companion, 0o600)
