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
    """A button under a reply. ``kind`` says what pressing it does:

    - ``action`` (default): sends ``payload`` back ("/intent" names an intent); an inline button;
    - ``reply``: a keyboard key that sends its title as the customer's text;
    - ``contact`` / ``location``: asks the messenger to share the customer's phone / place.
    Channels without such keys show every kind as a quick reply.
    """

    title: str
    payload: str
    kind: str = "action"


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
    # The network address it came from, when the channel has one (the widget's socket; a messenger
    # relays every user from its own servers, so none there): abuse budgets are kept per address.
    client_address: str | None = None


@dataclass(frozen=True)
class Reply:
    """Something said to the customer by the bot or an agent."""

    text: str
    buttons: tuple[Button, ...] = ()
    role: Role = Role.BOT
    id: str | None = None
    ts: datetime = field(default_factory=utcnow)
