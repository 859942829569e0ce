"""Group commit: many concurrent writes become one transaction.

Every conversation wants its message on disk before it goes on, and a commit per message
makes the database the bottleneck. Writes are queued; one task drains whatever is queued
into a single transaction, grouping runs of the same statement into ``executemany``, and
wakes each waiter when its row is committed. If a batch fails, its writes are retried one by
one so one bad row fails alone.
"""
from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable

from shared.errors import StoreError

log = logging.getLogger(__name__)

_Item = tuple[Executable, dict, asyncio.Future]


class GroupWriter:
    def __init__(self, engine: AsyncEngine, *, max_batch: int = 512) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None

    async def write(self, statement: Executable, params: dict) -> None:
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(self._queue), name="seamline-group-writer")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((statement, params, future))
        await future

    async def close(self) -> None:
        if self._task is not None:
            while self._queue is not None and not self._queue.empty():
                await asyncio.sleep(0.01)
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._commit(batch)
            except Exception:  # noqa: BLE001 - one failing row must not fail its neighbours
                log.warning("group commit of %d writes failed; retrying one by one", len(batch), exc_info=True)
                for item in batch:
                    try:
                        await self._commit([item])
                    except Exception as exc:  # noqa: BLE001
                        if not item[2].done():
                            item[2].set_exception(StoreError(f"database write failed: {exc}"))
                continue

    async def _commit(self, batch: list[_Item]) -> None:
        async with self._engine.begin() as conn:
            start = 0
            while start < len(batch):
                end = start + 1
                while end < len(batch) and batch[end][0] is batch[start][0]:
                    end += 1
                await conn.execute(batch[start][0], [item[1] for item in batch[start:end]])
                start = end
        for _, _, future in batch:
            if not future.done():
                future.set_result(None)
