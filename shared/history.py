"""What is kept of every message, inbound and outbound, and the store protocol for it."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from seamline.shared.identity import Customer
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
    buttons: list[dict] = field(default_factory=list)
    attachments: list[dict] = field(default_factory=list)
    external_id: str | None = None
    identity: str | None = None  # the sender (inbound) or recipient (outbound) on ``channel``
    intent: str | None = None
    confidence: float | None = None
    nlu: dict | None = None
    created_at: datetime = field(default_factory=utcnow)


class ChatStore(Protocol):
    """Customers, conversations, messages and events. SQL today; the contract test pins it."""

    async def resolve_customer(self, channel: str, sender: str, address: str,
                               name: str | None = None, language: str | None = None) -> Customer: ...

    async def open_conversation(self, customer_id: str) -> str: ...

    async def append(self, message: StoredMessage) -> None: ...

    async def annotate(self, message: StoredMessage, intent: str | None, confidence: float | None, nlu: dict,
                       replies: tuple[StoredMessage, ...] = ()) -> None: ...

    async def history(self, customer_id: str, limit: int = 100) -> list[StoredMessage]: ...

    async def record_event(self, kind: str, customer_id: str | None, conversation_id: str | None,
                           data: dict | None = None) -> None: ...
