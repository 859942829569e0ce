"""Durable first, acknowledge second, process after: the receiving side of a messenger channel.

``take`` stores what a webhook or a long poll received in the inbox (shared/storage/inbox.py) and
returns once it is committed; only then may the platform hear "ok" (or the poll move on). Taken rows
are processed one chat at a time in arrival order, different chats concurrently (a queue and a
worker per chat, gone when the chat is idle), and marked done once processed. A failed row is
released and tried again by the next sweep, up to ``max_attempts`` times. At start and every
``sweep_every`` seconds the rows nobody alive holds (left by a crash, or released) are taken over,
and this process's leases renewed; rows done a day ago are forgotten.

One chat's rows are processed in inbox id order whoever stored them (several workers on one
database): a chat's queue here is kept in id order, and a row stored while an earlier row of its chat
was not done (here, in another worker, or left by a crash) waits until that one is done
(shared/storage/inbox.py); a row taken over after a crash waits likewise.
A row whose processing found Redis or the database down (StoreError) is not a failed attempt: it is
tried again in place, with a growing pause, until storage is back (the platform has its "ok" already).

Re-deliveries: with Redis, a platform id seen (and committed) within ``DEDUPE_TTL`` is dropped before
the database is asked (``SET NX EX``, set only after the row is committed: a crash in between must
not lose the update); a copy arriving while another request stores the same id waits for that
commit (a short-lived ``taking`` mark), and is acknowledged only once it is committed, or asks the
database itself. The database's unique key stays the authority. Both count DUPLICATES.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from seamline.shared.errors import StoreError
from seamline.shared.metrics import DUPLICATES
from seamline.shared.storage.inbox import Entry, SqlInbox, Taken, new_owner

log = logging.getLogger(__name__)

DEDUPE_TTL = 24 * 3600  # seconds: platforms re-deliver within hours; the inbox keeps done rows a day
TAKING_TTL = 5  # seconds a "being stored" mark lives (a request killed mid-store frees it by itself)
TAKING_WAIT = 2.0  # seconds a copy waits for another request's commit before asking the database
# What storage being away raises: StoreError, or an unwrapped refused connection (asyncpg's OSError).
STORAGE_DOWN = (StoreError, SQLAlchemyError, OSError)
STORAGE_PAUSES = (0.5, 1, 2, 4, 8, 15)  # seconds between tries of a row while storage is down

Process = Callable[[Taken], Awaitable[None]]
IntakeFactory = Callable[[str, Process], "Intake"]  # (channel, process) -> its Intake


class Intakes:
    """The one per-chat ordering engine every messenger channel uses, handed to adapters as
    ``context.extras["intake"]``: ``intake("my_channel", process)`` gives an Intake whose rows live
    in the shared inbox table under that channel's name. ``channels`` remembers who took one: those
    recover through their inbox; the others' stored but unanswered messages are answered at start."""

    def __init__(self, store: object, redis: Callable[[], Any] | None = None) -> None:
        """``redis``: makes a client (redis.asyncio) for the re-delivery fast path; None: the database alone."""
        self._store, self._redis = store, redis
        self._owner = new_owner()  # one per app: two apps in one process keep their chats apart too
        self.channels: set[str] = set()

    def __call__(self, channel: str, process: Process) -> Intake:
        self.channels.add(channel)
        inbox = SqlInbox(store=self._store, channel=channel, owner=self._owner)  # type: ignore[arg-type]
        return Intake(inbox=inbox, process=process, redis=self._redis() if self._redis else None)


def intakes(store: object, redis: Callable[[], Any] | None = None) -> Intakes:
    return Intakes(store, redis)


class Intake:
    def __init__(
        self,
        *,
        inbox: SqlInbox,
        process: Process,
        sweep_every: float = 15.0,
        max_attempts: int = 5,
        redis: Any = None,
        ahead_poll: float = 0.05,
    ) -> None:
        self._inbox, self._process, self._redis, self._ahead_poll = inbox, process, redis, ahead_poll
        self._sweep_every, self._max_attempts = sweep_every, max_attempts
        self._queues: dict[str, list[Taken]] = {}  # per chat, in id order
        self._workers: set[asyncio.Task] = set()
        self._held: set[int] = set()  # inbox ids queued or being processed here
        self._sweeper: asyncio.Task | None = None

    async def take(self, entries: list[Entry]) -> None:
        """Store entries durably (StoreError if the database cannot), then queue the new ones."""
        fresh = await self._unseen(entries)
        if not fresh:
            return
        try:
            taken = await self._inbox.put(fresh)
        except BaseException:
            await self._marked(fresh, committed=False)  # copies waiting on us go to the database
            raise
        await self._marked(fresh, committed=True)  # only now: the rows are committed
        if len(taken) < len(fresh):
            DUPLICATES.labels(self._inbox.channel).inc(len(fresh) - len(taken))
        for row in taken:
            self._queue(row)

    def _key(self, entry: Entry, kind: str = "seen") -> str:
        return f"seamline:{kind}:{self._inbox.channel}:{entry.platform_id}"

    async def _unseen(self, entries: list[Entry]) -> list[Entry]:
        """The entries to store: those Redis has not seen committed. A copy that another request is
        storing right now (its ``taking`` mark) waits briefly for that commit rather than asking the
        database too: a storm of copies reaches the database once. All of them without Redis."""
        if self._redis is None or not entries:
            return entries
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for entry in entries:
                    pipe.get(self._key(entry))
                    pipe.set(self._key(entry, "taking"), 1, nx=True, ex=TAKING_TTL)
                marks = await pipe.execute()
        except RedisError as exc:
            log.debug("%s inbox: re-delivery check skipped (%s); the database dedupes", self._inbox.channel, exc)
            return entries
        fresh: list[Entry] = []
        waiting: list[Entry] = []
        for entry, seen, mine in zip(entries, marks[::2], marks[1::2], strict=True):
            if seen is None:
                (fresh if mine else waiting).append(entry)
        if waiting:
            fresh += await self._wait_for_commits(waiting)
        if len(fresh) < len(entries):
            DUPLICATES.labels(self._inbox.channel).inc(len(entries) - len(fresh))
        return fresh

    async def _wait_for_commits(self, entries: list[Entry]) -> list[Entry]:
        """Entries another request is storing: those it has not committed within ``TAKING_WAIT``."""
        for _ in range(int(TAKING_WAIT / 0.05)):
            await asyncio.sleep(0.05)
            try:
                seen = await self._redis.mget([self._key(e) for e in entries])
            except RedisError:
                return entries
            entries = [e for e, mark in zip(entries, seen, strict=True) if mark is None]
            if not entries:
                break
        return entries

    async def _marked(self, entries: list[Entry], *, committed: bool) -> None:
        if self._redis is None:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for entry in entries:
                    if committed:
                        pipe.set(self._key(entry), 1, nx=True, ex=DEDUPE_TTL)
                    pipe.delete(self._key(entry, "taking"))
                await pipe.execute()
        except RedisError as exc:
            log.debug("%s inbox: re-delivery marks not set (%s)", self._inbox.channel, exc)

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
        if self._redis is not None:
            await self._redis.aclose()

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
        await self._admit(await self._inbox.take_over())

    async def _admit(self, rows: list[Taken]) -> None:
        """Queue claimed rows; one tried ``max_attempts`` times already is given up (kept in the table)."""
        for taken in rows:
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
        """Into its chat's queue, in id order; never blocks."""
        if taken.id in self._held:
            return
        self._held.add(taken.id)
        queue = self._queues.get(taken.chat)
        if queue is None:
            queue = self._queues[taken.chat] = []
            worker = asyncio.create_task(
                self._work(taken.chat, queue), name=f"seamline-{self._inbox.channel}-chat-{taken.chat}"
            )
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        bisect.insort(queue, taken, key=lambda row: row.id)

    async def _work(self, chat: str, queue: list[Taken]) -> None:
        """The chat's rows one at a time, the earliest first; one that waits for an earlier row held
        elsewhere is checked again (an earlier row taken over here meanwhile goes first)."""
        pause = self._ahead_poll
        try:
            while queue:
                taken = queue[0]
                if taken.behind and await self._ahead(taken):
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 0.5)
                    continue
                pause = self._ahead_poll
                queue.pop(0)
                try:
                    if not await self._run(taken):
                        await self._give_back(queue)  # the failed row goes first: the rest wait for it
                finally:
                    self._held.discard(taken.id)
        finally:
            del self._queues[chat]  # no await since the queue was last seen empty: nothing is lost

    async def _ahead(self, taken: Taken) -> bool:
        """Whether an earlier row of its chat is not done (a failed check counts as yes). Earlier rows
        nobody alive holds are claimed and queued here: they go first."""
        try:
            ahead = await self._inbox.ahead(taken)
            if ahead == "free":
                await self._admit(await self._inbox.claim_ahead(taken))
        except StoreError as exc:
            log.debug("%s inbox: order check failed (%s)", self._inbox.channel, exc)
            return True
        return ahead is not None

    async def _give_back(self, queue: list[Taken]) -> None:
        """Release the rest of a chat's queue, not counted as attempts: the sweep takes them over
        with the failed row, in order."""
        rows, queue[:] = list(queue), []
        for row in rows:
            self._held.discard(row.id)
            await self._release(row, counted=False)

    async def _run(self, taken: Taken) -> bool:
        """Process one row and mark it done; False: it failed and was released."""
        pauses = iter(STORAGE_PAUSES)
        while True:
            try:
                await self._process(taken)
                break
            except asyncio.CancelledError:
                raise  # stopping: the row stays, not done, for the next start
            except STORAGE_DOWN as exc:  # storage down: not the row's fault; waited out here, in order
                pause = next(pauses, None)
                if pause is None:  # still down: leave it to a later sweep, the attempt not counted
                    log.warning("%s update %s: storage still down (%s)", self._inbox.channel, taken.platform_id, exc)
                    await self._release(taken, counted=False)
                    return False
                log.warning(
                    "%s update %s waits for storage (%s); trying again in %.1f s",
                    self._inbox.channel,
                    taken.platform_id,
                    exc,
                    pause,
                )
                await asyncio.sleep(pause)
            except Exception:
                log.exception(
                    "%s update %s in chat %s failed (attempt %d of %d); it stays in the inbox",
                    self._inbox.channel,
                    taken.platform_id,
                    taken.chat,
                    taken.attempts,
                    self._max_attempts,
                )
                await self._release(taken)
                return False
        try:
            await self._inbox.done(taken)
        except Exception:
            log.warning(
                "%s inbox: could not mark update %s done", self._inbox.channel, taken.platform_id, exc_info=True
            )
        return True

    async def _release(self, taken: Taken, counted: bool = True) -> None:
        try:
            await self._inbox.release(taken, counted=counted)
        except Exception:
            log.warning("%s inbox: could not release update %s", self._inbox.channel, taken.platform_id, exc_info=True)
