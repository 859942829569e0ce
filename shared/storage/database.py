"""Building the SQLAlchemy engine and bringing the schema up to date with Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from seamline.shared.files import private_sqlite

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_engine(url: str) -> AsyncEngine:
    """An async engine; for SQLite, WAL journal and a busy timeout so readers never block the writer.
    A failed statement's error never shows its parameters (``hide_parameters``): they hold what
    customers wrote, and the error is logged (docs/operations.md)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            private_sqlite(parsed.database)  # 0600 in a 0700 directory: it holds every conversation
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # PostgreSQL: a pool large enough for the turns one worker runs at once, so connections are reused
    # rather than opened and closed under load (overflow connections are closed when given back: a
    # connect is a TLS attempt, a handshake and statements prepared again); no ping at every checkout
    # (three round trips each): a connection broken by a database restart fails its statement, which
    # invalidates the pool, and the work is retried (docs/degradation.md).
    return create_async_engine(url, pool_size=20, max_overflow=20, pool_timeout=10, hide_parameters=True)


_readers: WeakKeyDictionary[Engine, AsyncEngine] = WeakKeyDictionary()


def reading(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for reads: on PostgreSQL in autocommit, so a read is one round trip, not BEGIN,
    the query and ROLLBACK. Same pool. Never write through it: nothing would be atomic."""
    if engine.dialect.name == "sqlite":
        return engine
    reader = _readers.get(engine.sync_engine)
    if reader is None:
        reader = _readers[engine.sync_engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return reader


def sqlite_sync_engine(url: URL) -> Engine | None:
    """A plain (threaded) engine on the same SQLite file, for the group writer; None for memory."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    private_sqlite(url.database)
    engine = create_sync_engine(
        url.set(drivername="sqlite+pysqlite"), connect_args={"timeout": 30, "check_same_thread": False}
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    # WAL: readers never block the writer; NORMAL: durable at checkpoints, no fsync per commit.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(url: str) -> Config:
    from alembic.config import Config  # alembic only when migrating: it is slow to import

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (synchronous; Alembic's env runs the async engine itself)."""
    from alembic import command

    if make_url(url).get_backend_name() == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            private_sqlite(database)
    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> tuple[str | None, str | None]:
    """(revision the database is at, revision the code needs)."""
    import asyncio

    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()

    async def read() -> str | None:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
        finally:
            await engine.dispose()

    return asyncio.run(read()), head
