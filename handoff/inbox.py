"""Live updates for agent consoles: every event about conversations people are on goes to every
subscribed console (each filters what it shows).

``Inbox`` fans events out inside one process (the embedded default). ``RedisInbox`` relays them
through Redis pub/sub, so a console connected to one Seamline process sees what happens in every
other process sharing the same Redis (several workers behind a load balancer)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class Inbox:
    def __init__(self, *, backlog: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue] = set()
        self._backlog = backlog

    def subscribe(self) -> asyncio.Queue:
        """A queue of JSON texts, one per event, until ``unsubscribe``."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=self._backlog)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._subscribers.discard(queue)

    async def publish(self, event: dict) -> None:
        if self._subscribers:
            self._fan_out(_encode(event))

    async def start(self) -> None:
        """Nothing to start in one process."""

    async def close(self) -> None:
        self._subscribers.clear()

    def _fan_out(self, text: str) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:  # a console that stopped reading: it reloads its state on reconnect
                log.warning("an agent console fell %d events behind; dropping it", self._backlog)
                self._subscribers.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):  # tell it: it sees the end and reconnects
                    queue.get_nowait()
                queue.put_nowait(DROPPED)


DROPPED = json.dumps({"type": "dropped", "reason": "fell behind; reload"})


class RedisInbox(Inbox):
    """Events go through one Redis pub/sub channel; every process (this one too) relays what it
    receives to its own consoles. If Redis cannot take an event, this process's consoles still get
    it; consoles of other processes catch up when they reload."""

    def __init__(self, *, client: Redis, channel: str = "seamline:inbox", backlog: int = 1000,
                 retry_seconds: float = 1.0) -> None:
        super().__init__(backlog=backlog)
        self._redis = client
        self._channel = channel
        self._retry = retry_seconds
        self._listener: asyncio.Task | None = None
        self._ready = asyncio.Event()

    async def publish(self, event: dict) -> None:
        text = _encode(event)
        try:
            await self._redis.publish(self._channel, text)
        except RedisError as exc:
            log.warning("Redis did not take an inbox event (%s); only this process's consoles get it", exc)
            self._fan_out(text)

    async def start(self) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="inbox-relay")
            # Subscribed before serving: an event published right after start is not missed.
            await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self._redis.aclose()
        await super().close()

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._ready.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message" and self._subscribers:
                        data = message["data"]
                        self._fan_out(data.decode() if isinstance(data, bytes) else data)
            except (RedisError, OSError) as exc:
                log.warning("inbox relay lost Redis (%s); resubscribing in %.0f s", exc, self._retry)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            self._ready.set()  # a start() waiting on a Redis that is down does not hang
            await asyncio.sleep(self._retry)


def _encode(event: dict) -> str:
    return json.dumps(event, ensure_ascii=False, default=str)  # once, however many consoles listen
