"""The ``telegram`` channel plug-in: what it is called, what it reads, and the adapter.

Kept apart from bots/telegram.py (the aiogram side) so that finding the installed channels and
checking their settings does not import aiogram, which takes seconds: it is imported when the
channel is built, that is only when ``SEAMLINE_TELEGRAM_TOKEN`` (or ``[channels.telegram] token``) is
set. Webhook mode when a webhook URL is given, else long polling, in one process only: Telegram
answers a second getUpdates poller with 409 Conflict. Under ``seamline run --workers N`` worker 0
polls; separate processes set ``SEAMLINE_TELEGRAM_POLLING=false`` in all but one. The others still
send replies (docs/operations.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from aiohttp import web

from seamline.bots.retry import RetryPolicy
from seamline.bots.vk_settings import flag
from seamline.bots.workers import worker_index
from seamline.shared.channel import ChannelConfig, ChannelContext, Setting, http_url
from seamline.shared.errors import ConfigError
from seamline.shared.message import Message, Reply

SECRET_FIX = 'Generate one: python -c "import secrets; print(secrets.token_urlsafe(32))"'
SECRET_PROBLEM = "must be 16-256 characters of A-Z, a-z, 0-9, _ and - in webhook mode"


def _token(raw: str) -> str:
    if not re.fullmatch(r"\d+:[A-Za-z0-9_-]{20,}", raw):
        raise ValueError("does not look like a bot token (123456789:AAH...)")
    return raw


def _secret(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", raw):
        raise ValueError(SECRET_PROBLEM)
    return raw


class TelegramChannel:
    """Telegram through aiogram (bots/telegram.py), long polling or a webhook at /telegram/webhook."""

    name: ClassVar[str] = "telegram"
    channel: ClassVar[str] = "telegram"
    labels: ClassVar[Mapping[str, str]] = {"en": "Telegram", "ru": "Telegram"}
    icon: ClassVar[str] = "✈️"
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting(
            "token",
            "SEAMLINE_TELEGRAM_TOKEN",
            help="the bot token from @BotFather",
            secret=True,
            enables=True,
            parse=_token,
            fix="Copy the token @BotFather gave you",
        ),
        Setting(
            "api_base",
            "SEAMLINE_TELEGRAM_API_BASE",
            help="the Bot API server",
            default="https://api.telegram.org",
            parse=http_url,
            example="https://api.telegram.org",
        ),
        Setting(
            "webhook_url",
            "SEAMLINE_TELEGRAM_WEBHOOK_URL",
            help="public https URL of /telegram/webhook; empty: long polling",
            default="",
            parse=http_url,
            example="https://bot.example.com/telegram/webhook",
        ),
        Setting(
            "webhook_secret",
            "SEAMLINE_TELEGRAM_WEBHOOK_SECRET",
            help="checked on every webhook call",
            default="",
            secret=True,
            parse=_secret,
            fix=SECRET_FIX,
        ),
        Setting(
            "polling",
            "SEAMLINE_TELEGRAM_POLLING",
            help="long poll in this process (no webhook URL); false: another process polls, this one sends",
            default=True,
            parse=flag,
            example="false",
        ),
    )

    @classmethod
    def check(cls, config: ChannelConfig) -> None:
        """A webhook needs both its URL and its secret."""
        if config["webhook_secret"] and not config["webhook_url"]:
            raise ConfigError(
                "SEAMLINE_TELEGRAM_WEBHOOK_URL",
                "is not set, but a webhook secret is",
                "Set the public https URL of /telegram/webhook, or unset the secret for long polling",
            )
        if config["webhook_url"] and not config["webhook_secret"]:
            raise ConfigError("SEAMLINE_TELEGRAM_WEBHOOK_SECRET", SECRET_PROBLEM, SECRET_FIX)

    def __init__(self, *, config: Mapping[str, Any], context: ChannelContext) -> None:
        from seamline.bots.telegram import TelegramBot  # aiogram: only once the channel is on

        self.bot = TelegramBot(
            conversations=context.conversations,
            token=config["token"],
            api_base=config.get("api_base") or "https://api.telegram.org",
            webhook_url=config.get("webhook_url") or "",
            webhook_secret=config.get("webhook_secret") or "",
            intake=context.extras["intake"],
            retry=context.extras.get("retry") or RetryPolicy(),
            polling=bool(config.get("polling", True)) and worker_index() in (None, 0),
            drain=getattr(context.extras.get("settings"), "shutdown_grace", 5.0),
        )

    def to_message(self, native: Any) -> Message | None:
        return self.bot.to_message(native)

    async def send(self, address: str, reply: Reply) -> None:
        await self.bot.send(address, reply)

    def routes(self) -> Iterable[web.AbstractRouteDef]:
        return self.bot.routes()

    async def start(self) -> None:
        await self.bot.start()

    async def stop(self) -> None:
        await self.bot.stop()

    def deep_link(self, token: str) -> str | None:
        return self.bot.deep_link(token)
