"""Group commit: many concurrent writes become one transaction.

Every conversation wants its message on disk before it goes on, and a commit per message
makes the database the bottleneck. Writes are queued; one task drains whatever is queued into
a single transaction, one ``executemany`` per distinct statement, and wakes each waiter when
its rows are committed. If a batch fails, its writes are retried one by one so one bad write
fails alone.

A write may be several statements (``write_all``) that commit together. Writes in one batch
come from callers that are all still waiting, so none depends on another; statements run in
the tables' foreign-key order (inserts parents first, then updates, then deletes children first).

All of Seamline's writes go through here, so SQLite never has two writers waiting on each
other. On SQLite the batch runs on a plain connection right on the event loop: a WAL commit
without fsync takes about a millisecond, while going through the async driver's thread would
cost a thread hop and a GIL hand-over per statement and per row.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Delete, Insert, Update

from seamline.shared.errors import StoreError
from seamline.shared.storage.database import sqlite_sync_engine

log = logging.getLogger(__name__)
CLOSE_WAIT_SECONDS = 10.0  # a database that hangs must not hang the shutdown

Write = tuple[Executable, dict[str, Any]]
_Item = tuple[list[Write], asyncio.Future[None]]


class GroupWriter:
    def __init__(self, engine: AsyncEngine, metadata: MetaData, *, max_batch: int = 512) -> None:
        self._engine = engine
        self._sync_engine = sqlite_sync_engine(engine.url)
        self._max_batch = max_batch
        self._table_order = {table.name: n for n, table in enumerate(metadata.sorted_tables)}
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None

    async def write(self, statement: Executable, params: dict[str, Any]) -> None:
        await self.write_all([(statement, params)])

    async def write_all(self, writes: list[Write]) -> None:
        """Commit these statements together; returns once they are durable in the database."""
        if self._queue is None or self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(self._queue), name="seamline-group-writer")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((writes, future))
        await future

    async def close(self) -> None:
        if self._task is not None:
            if self._queue is not None and not self._task.done():
                try:  # every write handed in is committed (or failed), the batch in flight too
                    await asyncio.wait_for(self._queue.join(), CLOSE_WAIT_SECONDS)
                except TimeoutError:
                    log.warning(
                        "the database took over %.0f s to commit the last writes; they are abandoned",
                        CLOSE_WAIT_SECONDS,
                    )
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()

    async def _run(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _write(self, batch: list[_Item]) -> None:
        """The batch in one commit; if that fails, each write on its own, so one bad write fails alone."""
        try:
            await self._commit(batch)
        except Exception:  # one failing write must not fail its neighbours
            if len(batch) > 1:
                log.warning("group commit of %d writes failed; retrying one by one", len(batch), exc_info=True)
            for item in batch:
                try:
                    await self._commit([item])
                except Exception as exc:  # noqa: BLE001 - handed to the waiting writer as a StoreError
                    if not item[1].done():
                        item[1].set_exception(StoreError(f"database write failed: {exc}"))

    def _rank(self, statement: Executable) -> tuple[int, int]:
        table = getattr(statement, "table", None)
        order = self._table_order.get(table.name, 0) if table is not None else 0
        if isinstance(statement, Insert):
            return 0, order
        if isinstance(statement, Update):
            return 1, order
        return (2, -order) if isinstance(statement, Delete) else (3, order)

    async def _commit(self, batch: list[_Item]) -> None:
        groups: dict[int, tuple[Executable, list[dict[str, Any]]]] = {}
        for writes, _ in batch:
            for statement, params in writes:
                groups.setdefault(id(statement), (statement, []))[1].append(params)
        ordered = sorted(groups.values(), key=lambda group: self._rank(group[0]))
        if self._sync_engine is not None:
            with self._sync_engine.begin() as conn:
                for statement, rows in ordered:
                    conn.execute(statement, rows)
        else:
            async with self._engine.begin() as conn:
                for statement, rows in ordered:
                    await conn.execute(statement, rows)
        for _, future in batch:
            if not future.done():
                future.set_result(None)
