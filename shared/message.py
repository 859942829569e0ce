"""The one message model every channel speaks.

Adapters turn their native updates into ``Message`` and send ``Reply`` back; nothing
channel-specific crosses this line.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast


class Role(str, enum.Enum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"


def utcnow() -> datetime:
    return datetime.now(UTC)


T = TypeVar("T")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: T) -> T:
    """``value`` with what no database keeps made U+FFFD: NUL (PostgreSQL refuses it) and lone UTF-16
    surrogates (not UTF-8: SQLite and the drivers refuse them), in strings, and in lists and dicts of
    them (JSON). A platform's JSON may carry both (``"\\ud800"``, ``"\\u0000"``); cleaned here, at the
    edge, a message is stored and answered instead of failing every write of its batch."""
    if isinstance(value, str):
        return value if value.isascii() and "\x00" not in value else cast(T, _UNSTORABLE.sub("\ufffd", value))
    if isinstance(value, dict):
        return cast(T, {storable(k): storable(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return cast(T, type(value)(storable(v) for v in value))
    return value


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
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class Message:
    """An inbound customer message, whatever the channel.

    ``address`` is where replies go on that channel (chat id, visitor id); ``sender`` is who
    wrote (user id). ``external_id`` is the platform's message id, used to drop duplicates.
    ``payload`` is set when the customer pressed a button.
    """

    channel: str
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

    def __post_init__(self) -> None:
        for name in ("address", "sender", "text", "payload", "external_id", "sender_name", "language"):
            value = getattr(self, name)
            if value is not None and storable(value) is not value:
                object.__setattr__(self, name, storable(value))
        if self.attachments:
            object.__setattr__(
                self,
                "attachments",
                tuple(
                    Attachment(a.kind, storable(a.url), storable(a.name), storable(a.data)) for a in self.attachments
                ),
            )


@dataclass(frozen=True)
class Reply:
    """Something said to the customer by the bot or an agent."""

    text: str
    buttons: tuple[Button, ...] = ()
    role: Role = Role.BOT
    id: str | None = None
    ts: datetime = field(default_factory=utcnow)
    image: str | None = None  # an image's URL, shown with (or instead of) the text
    custom: dict[str, Any] | None = None  # a channel-specific payload (Rasa's custom / json_message)


_IMAGE_URL = re.compile(r"https?://[^\s<>\"'\\\x00-\x1f\x7f]+", re.IGNORECASE)
MAX_IMAGE_URL = 2048


def image_url(value: object) -> str | None:
    """``value`` if it is an absolute http(s) URL a channel may show as an image, else None.

    An image's URL may come from a remote action server or a template someone else wrote; shown in a
    page it must never be ``javascript:``, ``data:`` or a relative path, so every channel asks here."""
    if not isinstance(value, str) or len(value) > MAX_IMAGE_URL:
        return None
    return value if _IMAGE_URL.fullmatch(value) else None
