"""The one message model every channel speaks.

Adapters turn their native updates into ``Message`` and send ``Reply`` back; nothing
channel-specific crosses this line.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone


class Channel(str, enum.Enum):
    WEB = "web"
    TELEGRAM = "telegram"
    VK = "vk"
    CONSOLE = "console"


class Role(str, enum.Enum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class Attachment:
    kind: str  # photo, document, voice, location, contact, ...
    url: str | None = None
    name: str | None = None
    data: dict | None = None


@dataclass(frozen=True)
class Message:
    """An inbound customer message, whatever the channel.

    ``address`` is where replies go on that channel (chat id, visitor id); ``sender`` is who
    wrote (user id). ``external_id`` is the platform's message id, used to drop duplicates.
    ``payload`` is set when the customer pressed a button.
    """

    channel: Channel
    address: str
    sender: str
    text: str = ""
    payload: str | None = None
    attachments: tuple[Attachment, ...] = ()
    external_id: str | None = None
    sender_name: str | None = None
    language: str | None = None  # a hint from the channel (e.g. the widget's lang)
    ts: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Reply:
    """Something said to the customer by the bot or an agent."""

    text: str
    buttons: tuple[Button, ...] = ()
    role: Role = Role.BOT
    id: str | None = None
    ts: datetime = field(default_factory=utcnow)
