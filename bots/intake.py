"""Durable first, acknowledge second, process after: the receiving side of a messenger channel.

``take`` stores what a webhook or a long poll received in the inbox (shared/storage/inbox.py) and
returns once it is committed; only then may the platform hear "ok" (or the poll move on). Taken rows
are processed one chat at a time in arrival order, different chats concurrently (a queue and a
worker per chat, gone when the chat is idle), and marked done once processed. A failed row is
released and tried again by the next sweep, up to ``max_attempts`` times. At start and every
``sweep_every`` seconds the rows nobody alive holds (left by a crash, or released) are taken over,
and this process's leases renewed; rows done a day ago are forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from seamline.shared.storage.inbox import Entry, SqlInbox, Taken

log = logging.getLogger(__name__)

Process = Callable[[Taken], Awaitable[None]]
IntakeFactory = Callable[[str, Process], "Intake"]  # (channel, process) -> its Intake


class Intakes:
    """The one per-chat ordering engine every messenger channel uses, handed to adapters as
    ``context.extras["intake"]``: ``intake("my_channel", process)`` gives an Intake whose rows live
    in the shared inbox table under that channel's name. ``channels`` remembers who took one: those
    recover through their inbox; the others' stored but unanswered messages are answered at start."""

    def __init__(self, store: object) -> None:
        self._store = store
        self.channels: set[str] = set()

    def __call__(self, channel: str, process: Process) -> Intake:
        self.channels.add(channel)
        return Intake(inbox=SqlInbox(store=self._store, channel=channel), process=process)  # type: ignore[arg-type]


def intakes(store: object) -> Intakes:
    return Intakes(store)


class Intake:
    def __init__(self, *, inbox: SqlInbox, process: Process, sweep_every: float = 15.0, max_attempts: int = 5) -> None:
        self._inbox, self._process = inbox, process
        self._sweep_every, self._max_attempts = sweep_every, max_attempts
        self._queues: dict[str, deque[Taken]] = {}
        self._workers: set[asyncio.Task] = set()
        self._held: set[int] = set()  # inbox ids queued or being processed here
        self._sweeper: asyncio.Task | None = None

    async def take(self, entries: list[Entry]) -> None:
        """Store entries durably (StoreError if the database cannot), then queue the new ones."""
        for taken in await self._inbox.put(entries):
            self._queue(taken)

    async def start(self) -> None:
        """Take over what earlier runs left (before anything new is received), then sweep periodically."""
        try:
            await self._take_over()
        except Exception:
            log.warning(
                "%s inbox: taking over unprocessed updates failed; the sweep tries again",
                self._inbox.channel,
                exc_info=True,
            )
        self._sweeper = asyncio.create_task(self._sweep(), name=f"seamline-{self._inbox.channel}-inbox")

    async def stop(self, drain: float = 5.0) -> None:
        """Stop sweeping; give the chats being processed ``drain`` seconds. Whatever is left stays in
        the inbox, not done, for the next start."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        if self._workers and drain > 0:
            await asyncio.wait(set(self._workers), timeout=drain)
        for worker in list(self._workers):
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_every)
            try:
                await self._inbox.renew(sorted(self._held))
                await self._take_over()
                await self._inbox.purge()
            except Exception:
                log.warning(
                    "%s inbox sweep failed; trying again in %.0f s",
                    self._inbox.channel,
                    self._sweep_every,
                    exc_info=True,
                )

    async def _take_over(self) -> None:
        for taken in await self._inbox.take_over():
            if taken.attempts > self._max_attempts:
                log.error(
                    "%s update %s in chat %s given up after %d attempts; it stays in the inbox table",
                    self._inbox.channel,
                    taken.platform_id,
                    taken.chat,
                    taken.attempts - 1,
                )
                await self._inbox.done(taken, error=f"given up after {taken.attempts - 1} attempts")
            else:
                self._queue(taken)

    def _queue(self, taken: Taken) -> None:
        """Behind the earlier updates of its chat; never blocks."""
        if taken.id in self._held:
            return
        self._held.add(taken.id)
        queue = self._queues.get(taken.chat)
        if queue is None:
            queue = self._queues[taken.chat] = deque()
            worker = asyncio.create_task(
                self._work(taken.chat, queue), name=f"seamline-{self._inbox.channel}-chat-{taken.chat}"
            )
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        queue.append(taken)

    async def _work(self, chat: str, queue: deque[Taken]) -> None:
        try:
            while queue:
                taken = queue.popleft()
                try:
                    await self._run(taken)
                finally:
                    self._held.discard(taken.id)
        finally:
            del self._queues[chat]  # no await since the queue was last seen empty: nothing is lost

    async def _run(self, taken: Taken) -> None:
        try:
            await self._process(taken)
        except asyncio.CancelledError:
            raise  # stopping: the row stays, not done, for the next start
        except Exception:
            log.exception(
                "%s update %s in chat %s failed (attempt %d of %d); it stays in the inbox",
                self._inbox.channel,
                taken.platform_id,
                taken.chat,
                taken.attempts,
                self._max_attempts,
            )
            try:
                await self._inbox.release(taken)
            except Exception:
                log.warning(
                    "%s inbox: could not release update %s", self._inbox.channel, taken.platform_id, exc_info=True
                )
            return
        try:
            await self._inbox.done(taken)
        except Exception:
            log.warning(
                "%s inbox: could not mark update %s done", self._inbox.channel, taken.platform_id, exc_info=True
            )
