"""The channel adapter contract: what a channel plug-in implements and what the framework gives it.

A channel is a name (``"telegram"``, ``"rest"``, ``"my_messenger"``) and one class. Built-in and
third-party channels are found the same way, through the ``seamline.channels`` entry-point group::

    [project.entry-points."seamline.channels"]
    my_messenger = "my_package.channel:MyMessengerChannel"

The framework reads the class's declared ``settings`` (from the environment and the
``[channels.<name>]`` table of the bot project's ``config/seamline.toml``), checks them with the
same "setting, problem, fix" errors as its own, and builds the adapter with
``cls(config=..., context=...)`` when the channel is enabled. It then mounts ``routes()``, calls
``start()`` once the server runs and ``stop()`` before the stores close. Everything
platform-specific (SDK types, HTTP calls, frames) stays inside the adapter.

This module is part of the public API (re-exported from ``seamline``); see docs/channels.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

from aiohttp import web

from seamline.shared.message import Message, Reply

if TYPE_CHECKING:
    from seamline.shared.limits import Limiter


@dataclass(frozen=True)
class Setting:
    """One setting a channel declares. Read from ``env`` (e.g. ``SEAMLINE_TELEGRAM_TOKEN``), else from
    ``key`` in ``[channels.<name>]`` of seamline.toml, else ``default``. ``parse`` turns the raw text
    into the value or raises ``ValueError`` whose message is the problem; ``example`` is shown in the
    fix. ``secret`` values never appear in a repr or a log. ``enables``: setting it turns the channel
    on (a channel with no enabling setting is always on)."""

    key: str
    env: str
    help: str = ""
    default: Any = None
    required: bool = False
    secret: bool = False
    enables: bool = False
    example: str = ""
    parse: Callable[[str], Any] = str
    fix: str = ""  # how to put it right; default "Set it like ENV=example"

    def remedy(self) -> str:
        """The fix a ConfigError about this setting names."""
        return self.fix or (f"Set it like {self.env}={self.example}" if self.example else f"Set {self.env}")


def http_url(raw: str) -> str:
    """A ``Setting.parse`` for an http(s) URL (an API base, a webhook); the trailing slash dropped."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{raw!r} is not an http(s) URL")
    return raw.rstrip("/")


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """A ``Setting.parse`` for a whole number in ``low..high``."""

    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"{raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low}..{high}")
        return value

    return parse


class ChannelConfig(Mapping[str, Any]):
    """The checked values of a channel's declared settings, by key; secrets are hidden in repr.
    ``given`` holds the keys set in the environment or seamline.toml (not left to their default)."""

    def __init__(self, values: Mapping[str, Any], secret: Iterable[str] = (), given: Iterable[str] = ()) -> None:
        self._values, self._secret, self.given = dict(values), frozenset(secret), frozenset(given)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        shown = {k: ("***" if k in self._secret and v else v) for k, v in self._values.items()}
        return f"ChannelConfig({shown!r})"


class Conversations(Protocol):
    """The framework's side of a turn, as a channel sees it (the pipeline).

    ``handle`` walks one inbound message: it stores it (then awaits ``on_stored``), and the replies of
    the turn reach the adapter's ``send`` before ``handle`` returns. ``handle_retrying`` is the same
    for a message the platform was already told "ok" for: a storage outage is waited out, bounded."""

    async def handle(
        self,
        message: Message,
        on_stored: Callable[[Any], Awaitable[None]] | None = None,
        on_answering: Callable[[Any], Awaitable[None]] | None = None,
    ) -> Any: ...

    async def handle_retrying(
        self,
        message: Message,
        on_stored: Callable[[Any], Awaitable[None]] | None = None,
        *,
        attempts: int = 5,
        backoff: float = 0.5,
        on_answering: Callable[[Any], Awaitable[None]] | None = None,
    ) -> Any: ...


@dataclass
class ChannelContext:
    """What the framework hands every adapter. ``conversations`` is the pipeline; ``limiter`` keeps
    abuse budgets (shared through Redis when configured); ``data_dir`` is where the adapter may keep
    small state files; ``public_url`` is where the server is reached from outside, if known.
    ``extras`` carries framework services the built-in channels use; third-party channels should not
    rely on their shape yet: ``intake`` (``intake(name, process)``: the durable inbox with per-chat
    ordered processing, bots/intake.py), ``retry`` (the one retry policy, bots/retry.py), ``store``,
    ``linker``, ``settings`` (the framework's Settings), ``redis`` (a client factory, or None) and
    ``channels`` (every built adapter by name, complete once all are built)."""

    conversations: Conversations
    limiter: Limiter
    data_dir: Path
    public_url: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class ChannelAdapter(Protocol):
    """One channel. Class attributes describe it; the instance serves it.

    - ``name``: the channel's name, stored with every message and identity (lowercase, ``[a-z0-9_]``);
    - ``labels``: how people call it, per language (``{"en": "Telegram", "ru": "Telegram"}``); shown by
      the widget ("continue in…") and the console;
    - ``icon``: a short text or emoji shown beside the label;
    - ``settings``: what it reads (see ``Setting``).

    Optional: a classmethod ``check(config: ChannelConfig) -> None`` raising ConfigError for what one
    setting alone cannot tell (two settings that only make sense together); the framework calls it
    after every setting parsed, for an enabled channel, before anything starts.
    """

    name: ClassVar[str]
    labels: ClassVar[Mapping[str, str]]
    icon: ClassVar[str]
    settings: ClassVar[tuple[Setting, ...]]

    def to_message(self, native: Any) -> Message | None:
        """The platform's update as a Message, or None for updates that are not a customer's message.
        Pure: no I/O, so it is tested against recorded payloads."""

    async def send(self, address: str, reply: Reply) -> None:
        """Deliver one reply to ``address`` (the Message's address); raise ChannelError if it cannot."""

    def routes(self) -> Iterable[web.AbstractRouteDef]:
        """The HTTP routes it serves (webhooks, sockets); may be empty."""

    async def start(self) -> None:
        """Begin receiving (long polling, registering a webhook); called once the server runs."""

    async def stop(self) -> None:
        """Stop receiving and release what it holds; called before the stores close."""

    def deep_link(self, token: str) -> str | None:
        """A link that opens this channel and hands it ``token`` (for "continue in…"), or None."""
