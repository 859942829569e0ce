"""Conversation state shared by every channel, and the stores that keep it.

A session belongs to a customer, not to a channel: whichever channel the customer writes
from, the same slots, open form and handoff state apply. The pipeline holds ``lock(key)``
while it loads, changes and saves a session, so two messages of one customer never race.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

SEEN_LIMIT = 200  # platform message ids remembered per session for de-duplication
EVENT_LIMIT = 60  # tracker events kept per session (the latest)


@dataclass
class Session:
    customer_id: str
    conversation_id: str
    language: str = "en"
    slots: dict[str, Any] = field(default_factory=dict[str, Any])
    active_form: str | None = None
    requested_slot: str | None = None  # the slot the active form asked for last
    # The conversation as Rasa events (user, bot, slot, action...), the latest EVENT_LIMIT: what a
    # custom action's tracker carries (bots/dialogue/tracker.py). It is session state, so it follows
    # the customer across channels.
    events: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    fallbacks: int = 0  # misunderstandings in a row
    handoff: str = "bot"  # bot | queued | with_agent | transferred (handoff/machine.py)
    last_channel: str | None = None
    attributes: dict[str, Any] = field(
        default_factory=dict[str, Any]
    )  # the customer's profile attributes routing looks at
    seen: list[str] = field(default_factory=list)

    def remember(self, external_id: str) -> None:
        self.seen.append(external_id)
        del self.seen[:-SEEN_LIMIT]

    def record(self, *events: dict[str, Any]) -> None:
        """Append tracker events, keeping the latest EVENT_LIMIT."""
        self.events.extend(events)
        del self.events[:-EVENT_LIMIT]

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "conversation_id": self.conversation_id,
            "language": self.language,
            "slots": dict(self.slots),
            "active_form": self.active_form,
            "requested_slot": self.requested_slot,
            "events": list(self.events),
            "fallbacks": self.fallbacks,
            "handoff": self.handoff,
            "last_channel": self.last_channel,
            "attributes": dict(self.attributes),
            "seen": list(self.seen),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class SessionStore(Protocol):
    async def load(self, key: str) -> Session | None: ...

    async def save(self, session: Session) -> None: ...

    async def delete(self, key: str) -> None: ...

    def lock(self, key: str) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def close(self) -> None: ...


class MemorySessionStore:
    """The embedded default: sessions live in this process, bounded by ``capacity``.

    An evicted or lost session is rebuilt by the pipeline from the database (history and
    recent message ids survive; slots do not). Use the Redis store to share between processes.
    """

    def __init__(self, *, capacity: int = 100_000) -> None:
        self._data: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._capacity = capacity

    async def load(self, key: str) -> Session | None:
        data = self._data.get(key)
        if data is None:
            return None
        self._data.move_to_end(key)
        return Session.from_dict(_copy(data))

    async def save(self, session: Session) -> None:
        self._data[session.customer_id] = session.to_dict()
        self._data.move_to_end(session.customer_id)
        while len(self._data) > self._capacity:
            self._data.popitem(last=False)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def close(self) -> None:
        self._data.clear()


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in data.items()}
