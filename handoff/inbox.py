"""Live updates for agent consoles: every event about conversations people are on goes to every
subscribed console (each filters what it shows). In-process; several Seamline processes would
relay these through Redis pub/sub (not built yet)."""
from __future__ import annotations

import asyncio
import json
import logging

log = logging.getLogger(__name__)


class Inbox:
    def __init__(self, *, backlog: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue] = set()
        self._backlog = backlog

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=self._backlog)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._subscribers.discard(queue)

    async def publish(self, event: dict) -> None:
        if not self._subscribers:
            return
        text = json.dumps(event, ensure_ascii=False, default=str)  # once, however many consoles listen
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:  # a console that stopped reading: it reloads its state on reconnect
                log.warning("an agent console fell %d events behind; dropping it", self._backlog)
                self._subscribers.discard(queue)
