"""Live updates for agent consoles. An event about a conversation an agent holds goes to that agent,
to admins and to consoles watching that conversation (an agent reading a colleague's); what is said
in a waiting conversation (messages, notes: ``queue`` given) goes to the consoles of agents with
that queue among their skills (handoff/permissions.py); every other event (state changes, agents)
goes to every console, which filters what it shows. With many agents this keeps each customer
message from being sent to every console, and nobody reads a conversation they may not.

A logout (or a password change) is *revoked* through the inbox too: every process forgets the cached
token and ends the consoles opened with it, at once.

``Inbox`` fans events out inside one process (the embedded default). ``RedisInbox`` relays them
through Redis pub/sub, so a console connected to one Seamline process sees what happens in every
other process sharing the same Redis (several workers behind a load balancer)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


@dataclass
class _Console:
    agent_id: str | None
    admin: bool
    session: str | None = None  # the digest of the token it was opened with
    watching: str | None = None  # the conversation open in it
    skills: tuple[str, ...] = ()  # the agent's queues; empty: every queue

    def wants(self, audience: str | None, conversation_id: str | None, queue: str | None = None) -> bool:
        if self.admin or audience == self.agent_id or (conversation_id and conversation_id == self.watching):
            return True
        return audience is None and (queue is None or not self.skills or queue in self.skills)


class ConsoleInbox(Protocol):
    """What handoff and the console API need of the live inbox, whichever backend relays it."""

    def subscribe(
        self,
        agent_id: str | None = None,
        *,
        admin: bool = False,
        session: str | None = None,
        skills: tuple[str, ...] = (),
    ) -> asyncio.Queue[str]: ...

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None: ...

    def watch(self, queue: asyncio.Queue[str], conversation_id: str | None) -> None: ...

    def agents_here(self) -> set[str]: ...

    def on_revoke(self, callback: Callable[[str, str | None], None]) -> None: ...

    async def publish(
        self, event: dict[str, Any], *, audience: str | None = None, queue: str | None = None
    ) -> None: ...

    async def revoke(self, agent_id: str, digest: str | None = None) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class Inbox:
    """The in-process backend of ``ConsoleInbox``."""

    def __init__(self, *, backlog: int = 1000) -> None:
        self._subscribers: dict[asyncio.Queue[str], _Console] = {}
        self._backlog = backlog
        self._on_revoke: list[Callable[[str, str | None], None]] = []

    def subscribe(
        self,
        agent_id: str | None = None,
        *,
        admin: bool = False,
        session: str | None = None,
        skills: tuple[str, ...] = (),
    ) -> asyncio.Queue[str]:
        """A queue of JSON texts, one per event for this agent, until ``unsubscribe`` (or ``REVOKED``,
        the last item, when the login ``session`` it was opened with ends). ``skills``: the agent's
        queues (empty: every queue)."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=self._backlog)
        self._subscribers[queue] = _Console(agent_id, admin, session, skills=tuple(skills))
        return queue

    def agents_here(self) -> set[str]:
        """The agents with a console open in this process."""
        return {c.agent_id for c in self._subscribers.values() if c.agent_id}

    def on_revoke(self, callback: Callable[[str, str | None], None]) -> None:
        """``callback(agent_id, digest)`` runs in every process when a login ends."""
        self._on_revoke.append(callback)

    async def revoke(self, agent_id: str, digest: str | None = None) -> None:
        """One login (``digest``) or every login of an agent ended: forget it and close its consoles."""
        self._revoked(agent_id, digest)

    def _revoked(self, agent_id: str, digest: str | None) -> None:
        for callback in self._on_revoke:
            callback(agent_id, digest)
        for queue, console in list(self._subscribers.items()):
            if console.agent_id == agent_id and (digest is None or console.session == digest):
                self._subscribers.pop(queue, None)
                with contextlib.suppress(asyncio.QueueEmpty):
                    while True:
                        queue.get_nowait()
                queue.put_nowait(REVOKED)

    def watch(self, queue: asyncio.Queue[str], conversation_id: str | None) -> None:
        """The console of ``queue`` shows this conversation now: it gets its events, whoever holds it."""
        console = self._subscribers.get(queue)
        if console is not None:
            console.watching = conversation_id

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._subscribers.pop(queue, None)

    async def publish(self, event: dict[str, Any], *, audience: str | None = None, queue: str | None = None) -> None:
        """``audience``: the agent holding the conversation the event is about (None: everyone);
        ``queue``: when nobody holds it, only agents with this queue among their skills get it."""
        if self._subscribers:
            self._fan_out(_encode(event), audience, event.get("conversation_id"), queue)

    async def start(self) -> None:
        """Nothing to start in one process."""

    async def close(self) -> None:
        self._subscribers.clear()

    def _fan_out(
        self, text: str, audience: str | None = None, conversation_id: str | None = None, skill: str | None = None
    ) -> None:
        for queue, console in list(self._subscribers.items()):
            if not console.wants(audience, conversation_id, skill):
                continue
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:  # a console that stopped reading: it reloads its state on reconnect
                log.warning("an agent console fell %d events behind; dropping it", self._backlog)
                self._subscribers.pop(queue, None)
                with contextlib.suppress(asyncio.QueueEmpty):  # tell it: it sees the end and reconnects
                    queue.get_nowait()
                queue.put_nowait(DROPPED)


DROPPED = json.dumps({"type": "dropped", "reason": "fell behind; reload"})
REVOKED = json.dumps({"type": "error", "error": "your session has ended: log in again"})


class RedisInbox(Inbox):
    """Events go through one Redis pub/sub channel; every process (this one too) relays what it
    receives to its own consoles. If Redis cannot take an event, this process's consoles still get
    it; consoles of other processes catch up when they reload."""

    def __init__(
        self, *, client: Redis, channel: str = "seamline:inbox", backlog: int = 1000, retry_seconds: float = 1.0
    ) -> None:
        super().__init__(backlog=backlog)
        self._redis = client
        self._channel = channel
        self._control = channel + ":control"
        self._retry = retry_seconds
        self._listener: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def publish(self, event: dict[str, Any], *, audience: str | None = None, queue: str | None = None) -> None:
        text, conversation_id = _encode(event), event.get("conversation_id")
        # On the wire: "<audience>\t<conversation id>\t<queue>\n<event>", so relaying needs no JSON decoding.
        frame = f"{audience or ''}\t{conversation_id or ''}\t{queue or ''}\n{text}"
        try:
            await self._redis.publish(self._channel, frame)
        except RedisError as exc:
            log.warning("Redis did not take an inbox event (%s); only this process's consoles get it", exc)
            self._fan_out(text, audience, conversation_id, queue)

    async def revoke(self, agent_id: str, digest: str | None = None) -> None:
        self._revoked(agent_id, digest)  # here at once, whatever Redis does
        try:
            await self._redis.publish(self._control, json.dumps({"revoke": [agent_id, digest]}))
        except RedisError as exc:
            log.warning(
                "Redis did not take a logout (%s); other processes trust the token until their cache expires", exc
            )

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
        """Reconnects and resubscribes by itself after Redis went away; the outage is logged once
        and the recovery once (a warning per retry would flood the log for the outage's length)."""
        lost = False
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel, self._control)
                self._ready.set()
                if lost:
                    log.warning("inbox relay: Redis is back; consoles get other processes' events again")
                    lost = False
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data = message["data"]
                    if _text(message.get("channel")) == self._control:
                        self._control_frame(data)
                    elif self._subscribers:
                        head, _, text = (data.decode() if isinstance(data, bytes) else data).partition("\n")
                        audience, _, rest = head.partition("\t")
                        conversation_id, _, queue = rest.partition("\t")
                        self._fan_out(text, audience or None, conversation_id or None, queue or None)
            except (RedisError, OSError) as exc:
                if not lost:
                    log.warning("inbox relay lost Redis (%s); resubscribing when it is back", exc)
                lost = True
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            self._ready.set()  # a start() waiting on a Redis that is down does not hang
            await asyncio.sleep(self._retry)

    def _control_frame(self, data: str | bytes) -> None:
        try:
            agent_id, digest = json.loads(data)["revoke"]
        except (ValueError, KeyError, TypeError):
            log.warning("an unreadable inbox control frame was ignored")
            return
        self._revoked(agent_id, digest)


def _text(value: str | bytes | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _encode(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, default=str)  # once, however many consoles listen


def _serves(memory: Inbox, redis: RedisInbox) -> tuple[ConsoleInbox, ConsoleInbox]:
    return memory, redis  # for mypy: both backends are the protocol
