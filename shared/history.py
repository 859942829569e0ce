"""What is kept of every message, inbound and outbound, and the protocols of the stores keeping it.

Small protocols by job (messages, conversations, identities in shared/identity.py), so a user names
the part it needs; ``ChatStore`` is all of them, as the SQL store (shared/storage/sql.py) serves them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from seamline.shared.identity import Customer, IdentityStore
from seamline.shared.message import utcnow


def new_id() -> str:
    """A time-ordered unique id (48-bit ms time + 80 random bits, hex), made without the database.

    Ids name rows; they are not secrets, so the fast PRNG is enough for uniqueness.
    """
    return f"{time.time_ns() // 1_000_000:012x}{random.getrandbits(80):020x}"


@dataclass(frozen=True)
class StoredMessage:
    id: str
    conversation_id: str
    customer_id: str
    channel: str
    direction: str  # in | out
    role: str  # customer | bot | agent
    text: str
    payload: str | None = None
    buttons: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    external_id: str | None = None
    identity: str | None = None  # the sender (inbound) or recipient (outbound) on ``channel``
    intent: str | None = None
    confidence: float | None = None
    nlu: dict[str, Any] | None = None
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Conversation:
    """One stretch of a customer's talk with the bot and people, from its start until resolved."""

    id: str
    customer_id: str
    state: str = "bot"  # bot | queued | with_agent | resolved
    queue: str | None = None
    started_at: datetime | None = None


class MessageStore(Protocol):
    """Every message kept, inbound and outbound, and which turns were answered (committed)."""

    async def append(self, message: StoredMessage) -> None: ...

    async def annotate(
        self,
        message: StoredMessage,
        intent: str | None,
        confidence: float | None,
        nlu: dict[str, Any],
        replies: tuple[StoredMessage, ...] = (),
        outbox: Sequence[Any] = (),
    ) -> None: ...

    async def history(self, customer_id: str, limit: int = 100) -> list[StoredMessage]: ...

    async def recent_external_ids(self, customer_id: str, limit: int = 200) -> list[str]: ...

    async def answered(self, channel: str, external_id: str) -> bool: ...

    async def unanswered(self, channel: str, since: datetime, limit: int = 1000) -> list[StoredMessage]: ...

    async def replies_to(self, channel: str, external_id: str) -> list[StoredMessage]: ...


class ConversationStore(Protocol):
    """A customer's conversations and what happened in them (events: who did what, when)."""

    async def open_conversation(self, customer: Customer) -> Conversation: ...

    async def open_conversation_for(self, customer_id: str) -> Conversation: ...

    async def conversation(self, conversation_id: str) -> Conversation | None: ...

    async def set_conversation_state(self, conversation_id: str, state: str, queue: str | None = None) -> None: ...

    async def record_event(
        self, kind: str, customer_id: str | None, conversation_id: str | None, data: dict[str, Any] | None = None
    ) -> None: ...

    async def events(self, customer_id: str) -> list[dict[str, Any]]: ...


class ChatStore(MessageStore, ConversationStore, IdentityStore, Protocol):
    """All the core keeps of a chat, as one backend serves it (the pipeline's store)."""

    async def close(self) -> None: ...


def reply_attachments(image: str | None, custom: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A bot reply's image and custom payload as the attachments its stored message keeps (the
    ``attachments`` column, as a customer's photo is kept: no migration), so the widget's history,
    the console and a re-send show them again."""
    kept: list[dict[str, Any]] = []
    if image:
        kept.append({"kind": "image", "url": image})
    if custom:
        kept.append({"kind": "custom", "data": custom})
    return kept


def stored_image(message: StoredMessage) -> str | None:
    """The image URL a stored bot reply carried (see ``reply_attachments``), or None."""
    if message.direction != "out":
        return None
    found = next((a for a in message.attachments or () if isinstance(a, dict) and a.get("kind") == "image"), None)
    return found.get("url") if found and isinstance(found.get("url"), str) else None


def stored_custom(message: StoredMessage) -> dict[str, Any] | None:
    """The custom payload a stored bot reply carried (see ``reply_attachments``), or None."""
    if message.direction != "out":
        return None
    found = next((a for a in message.attachments or () if isinstance(a, dict) and a.get("kind") == "custom"), None)
    return found.get("data") if found and isinstance(found.get("data"), dict) else None
