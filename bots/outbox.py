"""Sending the outbox's rows (shared/storage/outbox.py): the hot path and the sweep.

The worker that committed a turn sends its replies right after the session lock is released
(``deliver``); one lane's rows (an address's, or a customer's for "whatever reaches them") go out
one after the other, in one task per lane in this process, which continues with the lane's next rows. The sweep (at start, then about every
second) claims what nobody holds: rows of a worker that died, rows due again after a failure, rows
that waited behind another worker's. A send that fails with a ChannelError is tried again later
with exponential backoff and full jitter (bots/retry.py's RetryPolicy), up to
``max_attempts``; Unreachable marks the identity unreachable and, for a row meant for "whatever
reaches the customer", tries their next identity.

Stopping finishes the sends under way and leaves the rest, leased, to be taken over (by the next
start or another worker) once the lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Protocol

from seamline.bots.retry import RetryPolicy
from seamline.bots.steps.remind import reaching
from seamline.shared import logs
from seamline.shared.errors import ChannelError, Unreachable
from seamline.shared.message import Reply, utcnow
from seamline.shared.metrics import DELIVERIES, ERRORS, MESSAGES
from seamline.shared.storage.customers import SqlCustomerStore
from seamline.shared.storage.outbox import Entry, SqlOutbox
from seamline.shared.storage.sql import SqlChatStore

log = logging.getLogger(__name__)
SWEEP_EVERY = 1.0
BACKOFF = RetryPolicy(base=1.0, cap=300.0)  # between a failed send and its next attempt
SLOW_LANE = 1.0  # a lane busy this long (a 429 waited out) likely let other workers' rows queue behind it


class Sender(Protocol):
    async def send(self, address: str, reply: Reply) -> None: ...


class Dispatcher:
    def __init__(
        self,
        *,
        outbox: SqlOutbox,
        store: SqlChatStore,
        adapters: Mapping[str, Sender],
        max_attempts: int = 10,
        backoff: RetryPolicy = BACKOFF,
        sweep_every: float = SWEEP_EVERY,
    ) -> None:
        self.outbox = outbox
        self._store = store
        self._customers = SqlCustomerStore(store)
        self._adapters = adapters  # by channel name (the pipeline's, live)
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._sweep_every = sweep_every
        self._lanes: dict[str, deque[Entry]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False

    # -- the hot path ----------------------------------------------------------------------------

    async def deliver(self, ids: Iterable[str]) -> list[str]:
        """Send the rows with these ids that this worker leased at insert; returns once they are
        sent (or handed to this customer's lane already sending here). Rows that wait behind
        another worker's are left to it or to the sweep. Returns the channels the rows sent now
        went out on."""
        ids, used = list(ids), list[str]()
        if not ids:
            return used
        try:
            entries = await self.outbox.mine(ids)
        except Exception:  # the rows are durable: the sweep sends them once their lease runs out
            log.warning("could not read back %d outbox rows; the sweep will send them", len(ids), exc_info=True)
            return used
        if len(entries) < len(ids):
            self.wake()  # some wait behind rows nobody holds now (a failed one due again): sweep soon
        if entries:
            await self._run(entries, continued=False, used=used)
        return used

    def wake(self) -> None:
        """Rows were committed that this worker does not hold: sweep now rather than in a second."""
        self._wake.set()

    async def _run(self, entries: list[Entry], *, continued: bool, used: list[str] | None = None) -> None:
        key = entries[0].lane
        lane = self._lanes.get(key)
        if lane is not None:  # this lane's earlier replies are being sent here: after them
            lane.extend(entries)
            return
        lane = self._lanes[key] = deque(entries)
        started = time.monotonic()
        try:
            while lane:
                entry = lane.popleft()
                channel = await self._send(entry)
                if channel and used is not None:
                    used.append(channel)
                if channel is None:
                    await self.outbox.release([e.seq for e in lane])  # wait behind the failed one
                    lane.clear()
                    return
                if not lane and not self._stopping and (continued or time.monotonic() - started > SLOW_LANE):
                    lane.extend(await self.outbox.claim(lane=key))
        except Exception:  # one broad except per lane: the rows stay durable, leased, taken over later
            log.exception("sending the replies of %s failed; they are taken over later", key)
        finally:
            del self._lanes[key]

    # -- one row -----------------------------------------------------------------------------------

    async def _send(self, entry: Entry) -> str | None:
        """The channel it went out on, "" when it is done with otherwise (given up, nobody to send
        it to); None when it is to be tried again later (the lane's later rows wait)."""
        token = logs.conversation.set(entry.conversation_id)
        channel = entry.channel or "any"
        try:
            if entry.channel:
                channel = await self._to_address(entry)
            else:
                channel = await self._to_customer(entry)
        except ChannelError as exc:
            return await self._failed(entry, channel, exc)
        finally:
            logs.conversation.reset(token)
        if channel:
            await self.outbox.sent(entry)
            DELIVERIES.labels(channel, "sent").inc()
            MESSAGES.labels(channel, "out").inc()
        else:
            await self.outbox.failed(entry, "unreachable")
            log.info("reply %s is stored; no channel reaches customer %s now", entry.id, entry.customer_id)
        return channel

    async def _to_address(self, entry: Entry) -> str:
        """The row's own channel and address; "" when the customer cannot be reached there."""
        adapter = self._adapters.get(entry.channel)
        if adapter is None:
            raise ChannelError(f"no adapter registered for {entry.channel}")
        try:
            await adapter.send(entry.address, entry.reply)
        except Unreachable:
            log.info("%s customer %s cannot be reached there any more", entry.channel, entry.customer_id)
            await self._store.set_reachable(entry.channel, entry.identity, False)
            return ""
        return entry.channel

    async def _to_customer(self, entry: Entry) -> str:
        """The channel the customer was on last, else the most recently active reachable one,
        falling back to the next; "" when none is left. A ChannelError of one channel is raised
        (the row is tried again) only when no other channel took the reply."""
        identities = await self._customers.reachable_identities(entry.customer_id)
        profile = await self._customers.profile(entry.customer_id) if len(identities) > 1 else None
        last = profile.last_channel if profile is not None else None
        error: ChannelError | None = None
        for identity in reaching(identities, last):
            adapter = self._adapters.get(identity.channel)
            if adapter is None:
                continue
            try:
                await adapter.send(identity.address, entry.reply)
                return identity.channel
            except Unreachable:
                await self._store.set_reachable(identity.channel, identity.external_id, False)
            except ChannelError as exc:
                error = exc
        if error is not None:
            raise error
        return ""

    async def _failed(self, entry: Entry, channel: str, exc: ChannelError) -> str | None:
        attempts = entry.attempts + 1
        if attempts >= self._max_attempts:
            log.error("reply %s on %s given up after %d attempts: %s", entry.id, channel, attempts, exc)
            ERRORS.labels("outbox").inc()
            DELIVERIES.labels(channel, "failed").inc()
            await self.outbox.failed(entry, str(exc) or type(exc).__name__)
            return ""
        wait = self._backoff.delay(attempts)
        log.warning("reply %s on %s failed (attempt %d), again in %.1f s: %s", entry.id, channel, attempts, wait, exc)
        DELIVERIES.labels(channel, "retry").inc()
        await self.outbox.again(entry, utcnow() + timedelta(seconds=wait), str(exc) or type(exc).__name__)
        return None

    # -- the sweep -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._loop = asyncio.create_task(self._sweeping(), name="seamline-outbox")

    async def stop(self, grace: float = 10.0) -> None:
        """Finish the sends under way (up to ``grace`` seconds); what is left is taken over later."""
        self._stopping = True
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        await self.drain(grace)
        for lane in self._lanes.values():
            lane.clear()  # the row under way finishes; the rest waits for its lease to run out

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the lanes the sweep started to finish (the tests' "until it settled")."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def sweep(self) -> int:
        """Claim and start sending what is due and free; returns how many rows were claimed."""
        entries = await self.outbox.claim()
        by_lane: dict[str, list[Entry]] = {}
        for entry in entries:
            by_lane.setdefault(entry.lane, []).append(entry)
        for rows in by_lane.values():
            task = asyncio.create_task(self._run(rows, continued=True))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(entries)

    async def _sweeping(self) -> None:
        renewed = purged = 0.0
        while True:
            try:
                now = time.monotonic()
                if self._lanes and now - renewed > self.outbox.lease_seconds / 3:
                    await self.outbox.renew()
                    renewed = now
                if now - purged > 3600:
                    await self.outbox.purge()
                    purged = now
                await self.sweep()
            except Exception:  # the database may be down: the next sweep tries again
                log.warning("the outbox sweep failed", exc_info=True)
            try:
                await asyncio.wait_for(self._wake.wait(), self._sweep_every)
            except TimeoutError:
                pass
            self._wake.clear()
