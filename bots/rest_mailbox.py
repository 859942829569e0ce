"""What the REST channel keeps between a sender's requests: its ``Mailbox`` (replies said outside a
request, given first in the sender's next answer or poll) and its ``Answers`` (the answer to a
message with an id, so a resend gets the same answer without a second turn).

Two backends behind each protocol, as for the limits (shared/limits.py): in this process (one
worker, or no Redis), and in Redis, so any worker behind a load balancer serves a sender's poll and
a resend. The Redis mailbox is one list per sender, bounded and expiring; a poll takes it whole
with one command (LPOP with a count, Redis 6.2+), so two polls on two workers never both get a
reply, nor lose one.
Both contracts are checked by tests/shared/test_rest_mailbox.py.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict, deque
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from seamline.shared.errors import StoreError

MAILBOX_SENDERS = 10_000  # senders with waiting replies kept per process (the stalest go first)
MAILBOX_TTL = 24 * 3600.0  # seconds a waiting reply is kept
REMEMBERED = 10_000  # answers kept in one process for resent message ids
ANSWER_TTL = 24 * 3600.0  # seconds Redis keeps an answer for a resend

Item = dict[str, Any]


class Mailbox(Protocol):
    async def put(self, sender: str, items: list[Item]) -> None:
        """Keep ``items`` after what already waits for ``sender`` (the oldest go past the bound).
        Raises StoreError when they could not be kept."""

    async def take(self, sender: str) -> list[Item]:
        """What waits for ``sender``, oldest first, removed: a second take gets none of it."""

    async def close(self) -> None: ...


class Answers(Protocol):
    async def get(self, message_id: str) -> list[Item] | None:
        """The answer given to ``message_id``; None when none is remembered."""

    async def keep(self, message_id: str, answer: list[Item]) -> None: ...

    async def close(self) -> None: ...


class MemoryMailbox:
    """At most ``size`` replies per sender (the oldest are dropped), ``senders`` senders (the stalest
    are dropped), each kept ``ttl`` seconds. A restart forgets them (they stay in the history)."""

    def __init__(self, *, size: int, senders: int = MAILBOX_SENDERS, ttl: float = MAILBOX_TTL) -> None:
        self._size, self._senders, self._ttl = size, senders, ttl
        self._boxes: OrderedDict[str, deque[tuple[float, Item]]] = OrderedDict()

    async def put(self, sender: str, items: list[Item]) -> None:
        box = self._boxes.get(sender)
        if box is None:
            box = self._boxes[sender] = deque(maxlen=self._size)
            while len(self._boxes) > self._senders:
                self._boxes.popitem(last=False)
        self._boxes.move_to_end(sender)
        box.extend((time.monotonic(), item) for item in items)

    async def take(self, sender: str) -> list[Item]:
        box = self._boxes.pop(sender, None)
        fresh = time.monotonic() - self._ttl
        return [item for at, item in box or () if at >= fresh]

    async def close(self) -> None:
        self._boxes.clear()


class MemoryAnswers:
    """The answers to the latest ``size`` messages that had an id."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._size = size
        self._answers: OrderedDict[str, list[Item]] = OrderedDict()

    async def get(self, message_id: str) -> list[Item] | None:
        answer = self._answers.get(message_id)
        if answer is None:
            return None
        self._answers.move_to_end(message_id)
        return list(answer)

    async def keep(self, message_id: str, answer: list[Item]) -> None:
        self._answers[message_id] = list(answer)
        while len(self._answers) > self._size:
            self._answers.popitem(last=False)

    async def close(self) -> None:
        self._answers.clear()


def _digest(text: str) -> str:
    """A sender as a key: fixed length, nothing of the sender's name readable in Redis. (JSON is
    written ASCII-escaped, so a lone surrogate in a text cannot fail the encoding.)"""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class RedisMailbox:
    """One list per sender, shared by every worker on one Redis, trimmed to ``size`` at every put
    (in the same MULTI as the push). An entry is ``{"at": epoch seconds,
        "item": …}``: a reply older than ``ttl`` is dropped at take, and the list itself expires ``ttl``
        after its last put."""

    def __init__(
        self, *, client: Redis, size: int, ttl: float = MAILBOX_TTL, prefix: str = "seamline:rest:mailbox:"
    ) -> None:
        self._redis, self._size, self._ttl, self._prefix = client, size, ttl, prefix

    async def put(self, sender: str, items: list[Item]) -> None:
        if not items:
            return
        key = self._prefix + _digest(sender)
        now = time.time()
        entries = [json.dumps({"at": now, "item": item}) for item in items]
        try:
            async with self._redis.pipeline(transaction=True) as multi:
                multi.rpush(key, *entries)
                multi.ltrim(key, -self._size, -1)
                multi.pexpire(key, int(self._ttl * 1000))
                await multi.execute()
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis failed keeping a REST reply: {exc}") from exc

    async def take(self, sender: str) -> list[Item]:
        key = self._prefix + _digest(sender)
        try:  # the list never holds more than size: one LPOP of size takes it all, atomically
            raw: list[bytes] = await self._redis.lpop(key, self._size) or []  # type: ignore[assignment]
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis failed reading REST replies: {exc}") from exc
        fresh = time.time() - self._ttl
        entries = [json.loads(entry) for entry in raw]
        return [entry["item"] for entry in entries if entry["at"] >= fresh]

    async def close(self) -> None:
        await self._redis.aclose()


class RedisAnswers:
    """One key per message id with a TTL: a resend reaching any worker gets the same answer."""

    def __init__(self, *, client: Redis, ttl: float = ANSWER_TTL, prefix: str = "seamline:rest:answer:") -> None:
        self._redis, self._ttl, self._prefix = client, ttl, prefix

    async def get(self, message_id: str) -> list[Item] | None:
        try:
            raw = await self._redis.get(self._prefix + message_id)
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis failed reading a REST answer: {exc}") from exc
        return None if raw is None else list(json.loads(raw))

    async def keep(self, message_id: str, answer: list[Item]) -> None:
        value = json.dumps(answer)
        try:
            await self._redis.set(self._prefix + message_id, value, px=int(self._ttl * 1000))
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis failed keeping a REST answer: {exc}") from exc

    async def close(self) -> None:
        await self._redis.aclose()
