"""Frames for a visitor's widget, wherever its socket is open.

Several workers behind a load balancer each hold some of the widgets' WebSockets. A reply made in
worker B (an agent's answer, a reminder, the outbox) must reach the tab open on worker A. With Redis,
each worker SUBSCRIBEs, on one pub/sub connection, to one channel per visitor it holds a socket for
(and unsubscribes when the last one closes); ``send`` PUBLISHes the frame, and the number of
receivers Redis returns says whether any worker holds that visitor (0: unreachable, as in one
process). Without Redis the relay is this process alone.

The pub/sub reader reconnects and resubscribes by itself after Redis went away; it logs the outage
once and the recovery once, not a trace per retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from seamline.shared.errors import StoreError

log = logging.getLogger(__name__)

Deliver = Callable[[str, dict], Awaitable[int]]  # (visitor, frame) -> sockets written here
PREFIX = "seamline:web:"


class Relay(Protocol):
    """Reaches the sockets of a visitor in any worker: ``publish`` returns how many workers (or, in
    process, sockets) got the frame."""

    async def publish(self, visitor: str, frame: dict) -> int: ...

    async def held(self, visitor: str) -> None: ...

    async def released(self, visitor: str) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LocalRelay:
    """One process: the frame goes straight to this process's sockets."""

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def publish(self, visitor: str, frame: dict) -> int:
        return await self._deliver(visitor, frame)

    async def held(self, visitor: str) -> None:
        """Nothing to tell anyone: this process is the only one."""

    async def released(self, visitor: str) -> None:
        """Nothing to tell anyone: this process is the only one."""

    async def start(self) -> None:
        """Nothing to start."""

    async def close(self) -> None:
        """Nothing to close."""


class RedisRelay:
    """Redis pub/sub, one channel per visitor held here, all on one connection."""

    def __init__(self, *, client: Redis, deliver: Deliver, retry_seconds: float = 1.0) -> None:
        self._redis, self._deliver, self._retry = client, deliver, retry_seconds
        self._visitors: set[str] = set()
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._changes = asyncio.Lock()  # subscribe/unsubscribe calls on the one connection, one at a time
        self._closed = False  # after close: holding and releasing are no-ops (a socket closing at shutdown)

    async def publish(self, visitor: str, frame: dict) -> int:
        """StoreError when Redis cannot take it: the caller treats the widget as not reachable now."""
        try:
            return int(await self._redis.publish(PREFIX + visitor, json.dumps(frame, ensure_ascii=False)))
        except RedisError as exc:
            raise StoreError(f"Redis could not relay a widget frame: {exc}") from exc

    async def held(self, visitor: str) -> None:
        """This process holds a socket of ``visitor`` now: receive its frames."""
        if visitor in self._visitors:
            return
        self._visitors.add(visitor)
        await self._change("subscribe", visitor)

    async def released(self, visitor: str) -> None:
        """This process's last socket of ``visitor`` closed."""
        if visitor not in self._visitors:
            return
        self._visitors.discard(visitor)
        await self._change("unsubscribe", visitor)

    async def _change(self, how: str, visitor: str) -> None:
        try:
            async with self._changes:  # after the reader's (re)subscription, which may not have had it
                pubsub = self._pubsub
                if self._closed or pubsub is None or pubsub.connection is None:
                    return  # the reader subscribes to every held visitor when it (re)connects
                await getattr(pubsub, how)(PREFIX + visitor)
        except (RedisError, OSError, AttributeError) as exc:  # redis-py: AttributeError on a connection torn down
            log.debug("widget relay could not %s (%s); the reader resubscribes on reconnect", how, exc)

    async def start(self) -> None:
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="seamline-web-relay")
            with contextlib.suppress(TimeoutError):  # Redis down at start: the reader keeps trying
                await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def close(self) -> None:
        """Stop relaying; a socket released after this (closing at shutdown) is a no-op."""
        async with self._changes:  # no subscribe or unsubscribe is under way on the connection now
            self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    async def _read(self) -> None:
        lost = False
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                # A channel nobody else uses keeps the connection subscribed with no visitor held.
                async with self._changes:
                    await pubsub.subscribe(PREFIX + "-", *(PREFIX + v for v in self._visitors))
                    self._pubsub = pubsub
                self._ready.set()
                if lost:
                    log.warning("widget relay: Redis is back; %d visitors resubscribed", len(self._visitors))
                    lost = False
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._received(message)
            except (RedisError, OSError) as exc:
                if not lost:
                    log.warning("widget relay lost Redis (%s); resubscribing when it is back", exc)
                lost = True
            finally:
                self._pubsub = None
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            self._ready.set()
            await asyncio.sleep(self._retry)

    async def _received(self, message: dict) -> None:
        channel = message.get("channel")
        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
        try:
            frame = json.loads(message["data"])
        except (ValueError, TypeError):
            log.warning("widget relay: an unreadable frame was ignored")
            return
        try:
            await self._deliver(channel.removeprefix(PREFIX), frame)
        except Exception:  # the one broad except of this receive loop: one bad socket stops nothing
            log.exception("widget relay: delivering a frame failed")
