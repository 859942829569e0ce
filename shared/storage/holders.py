"""Who holds a leased row (an inbox update being processed, an outbox reply being sent).

A holder is named ``host:pid:boot``. Its lease runs out by itself when it dies anywhere; a holder
of this host whose process is gone can be told at once (``gone``), so a restarted worker's rows
need not wait for their lease. Several apps in one process (tests, an embedding host) each get a
holder of their own (``holder()``), kept apart as two workers would be.
"""

from __future__ import annotations

import os
import secrets
import socket

HOST = socket.gethostname()[:64]
LIVE: set[str] = set()  # the holders alive in this process


def holder() -> str:
    """A new holder name of this process, alive while it lives."""
    name = f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"
    LIVE.add(name)
    return name


def gone(name: str) -> bool:
    """A holder of this host whose process is gone (or whose pid this process has now: another
    boot of it, a restarted container's pid 1). Holders of other hosts are never said to be gone."""
    host, _, rest = name.partition(":")
    pid, _, _boot = rest.partition(":")
    if host != HOST or not pid.isdigit() or name in LIVE:
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, someone else's
        return False
    return False
