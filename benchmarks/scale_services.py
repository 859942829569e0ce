"""Redis and PostgreSQL for benchmarks/scale.py: the ones named by the environment, else our own.

SEAMLINE_TEST_REDIS_URL and SEAMLINE_TEST_DATABASE_URL (what tests/services.sh exports) are used when
both are set; otherwise a redis-server and a PostgreSQL cluster (Debian's packages, as
tests/services.sh starts them) run on free ports of 127.0.0.1 from a temporary folder that is removed
afterwards. Each benchmark run gets a database of its own (created, then dropped), so runs never see
each other's customers.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not found:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql), and no URL was given")
    return found[-1]


@contextlib.contextmanager
def services() -> Iterator[tuple[str, str]]:
    """(redis URL, database URL): from the environment, or servers started here and stopped after."""
    redis_url, database_url = os.environ.get("SEAMLINE_TEST_REDIS_URL"), os.environ.get("SEAMLINE_TEST_DATABASE_URL")
    if redis_url and database_url:
        yield redis_url, database_url
        return
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed (apt-get install redis-server), and no URL was given")
    folder = Path(tempfile.mkdtemp(prefix="seamline-scale-services-"))
    folder.chmod(0o755)
    as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    pg, redis_port, pg_port = _pg_bin(), free_port(), free_port()
    started_pg = False
    try:
        redis_conf = ["--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--appendonly", "no"]
        files = ["--dir", str(folder), "--logfile", str(folder / "redis.log"), "--pidfile", str(folder / "redis.pid")]
        subprocess.run(["redis-server", *redis_conf, *files, "--daemonize", "yes"], check=True)
        (folder / "pg").mkdir()
        if os.getuid() == 0:
            shutil.chown(folder / "pg", "postgres")
        subprocess.run(
            [*as_pg, str(pg / "initdb"), "-D", str(folder / "pg"), "-A", "trust", "-U", "seamline", "-E", "UTF8"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        options = f"-p {pg_port} -k {folder / 'pg'} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        log = str(folder / "pg" / "server.log")
        subprocess.run(
            [*as_pg, str(pg / "pg_ctl"), "-D", str(folder / "pg"), "-l", log, "-w", "start", "-o", options],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        started_pg = True
        for _ in range(50):
            if subprocess.run(["redis-cli", "-p", str(redis_port), "ping"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{redis_port}/0", f"postgresql+asyncpg://seamline@127.0.0.1:{pg_port}/postgres"
    finally:
        if started_pg:
            subprocess.run(
                [*as_pg, str(pg / "pg_ctl"), "-D", str(folder / "pg"), "-m", "immediate", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((folder / "redis.pid").read_text()), 15)
        shutil.rmtree(folder, ignore_errors=True)


def _plain(url: str) -> str:
    """asyncpg's spelling of a SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@contextlib.asynccontextmanager
async def fresh_database(url: str):
    """A new, empty database on the server of ``url`` (its SQLAlchemy URL), dropped afterwards."""
    name = f"seamline_scale_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_plain(url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(_plain(url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def redis_db(url: str, db: int) -> str:
    """The same Redis server, another logical database (the benchmark flushes it, never db 0's keys)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))
