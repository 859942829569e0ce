"""The Telegram channel: long polling or a webhook at ``/telegram/webhook``, through aiogram.

An update is stored in the durable inbox before Telegram hears 200 (or before getUpdates is asked
for the next offset), and processed after, one chat at a time in arrival order and different chats
concurrently (bots/intake.py); what a crash left unprocessed is processed after the restart. The
platform's ``update_id`` keys the inbox row and is the message's ``external_id``, so a redelivered
update is processed once. A body that is not an update gets 400; when the update cannot be stored,
503, and Telegram sends it again. aiogram's errors are translated here and retried under the one
retry policy of every channel (bots/retry.py): 429 waits ``retry_after``, 5xx and network errors
back off with jitter (bounded), 403 and "chat not found" become ``Unreachable``. The plug-in class
is bots/telegram_channel.py; updates become Messages in bots/telegram_format.py.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from functools import partial
from typing import TypeVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramRetryAfter,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    GetMe,
    GetUpdates,
    SendChatAction,
    SendMessage,
    SendPhoto,
    SetWebhook,
    TelegramMethod,
)
from aiogram.methods.base import Response
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup, Update
from aiohttp import web
from pydantic import ValidationError

from seamline.bots.intake import IntakeFactory
from seamline.bots.retry import RetryPolicy
from seamline.bots.telegram_custom import custom_method
from seamline.bots.telegram_errors import classify, config_error
from seamline.bots.telegram_format import chat_of, to_message
from seamline.bots.telegram_text import CAPTION_LIMIT, CallbackPayloads, split, utf16_len
from seamline.shared.channel import Conversations
from seamline.shared.errors import ChannelError, StoreError, Unreachable
from seamline.shared.message import Button, Message, Reply, image_url
from seamline.shared.storage.inbox import Entry, Taken

log = logging.getLogger(__name__)
T = TypeVar("T")

# aiogram parses every answer as ``Response[<the method's return type>]``, a pydantic generic that
# pydantic caches only weakly: once collected, the next call builds its schema again (milliseconds
# of CPU per Bot API call, measured as the top cost under load). Holding the ones we use keeps them.
_RESPONSE_TYPES = tuple(
    Response[method.__returning__]  # type: ignore[name-defined]  # a runtime type, which mypy cannot follow
    for method in (
        AnswerCallbackQuery,
        DeleteWebhook,
        GetMe,
        GetUpdates,
        SendChatAction,
        SendMessage,
        SendPhoto,
        SetWebhook,
    )
)

__all__ = ["WEBHOOK_PATH", "TelegramBot", "to_message"]

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramBot:
    """The Telegram side of the ``telegram`` channel (bots/telegram_channel.py is the plug-in, which
    imports this, and aiogram, only when the channel is on: aiogram takes seconds to import)."""

    def __init__(
        self,
        *,
        conversations: Conversations,
        token: str,
        api_base: str,
        intake: IntakeFactory,
        retry: RetryPolicy,
        webhook_url: str = "",
        webhook_secret: str = "",
        poll_timeout: int = 25,
        polling: bool = True,
        drain: float = 5.0,
    ) -> None:
        """``polling``: long poll here when there is no webhook (one process of several does; the others
        only send); ``drain``: seconds the chats being processed get to finish at stop."""
        self._conversations, self._polling, self._drain = conversations, polling, drain
        self._intake = intake("telegram", self._process_row)
        self._api_base, self._webhook_url, self._webhook_secret = api_base, webhook_url, webhook_secret
        self._bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(api_base)))
        self._poll_timeout, self._retry = poll_timeout, retry
        self._payloads = CallbackPayloads()
        self._poller: asyncio.Task | None = None
        self._started = False
        self._username: str | None = None  # the bot's @username, from getMe at start

    def routes(self) -> list[web.RouteDef]:
        return [web.post(WEBHOOK_PATH, self._webhook)] if self._webhook_url else []

    def to_message(self, native: Update | dict) -> Message | None:
        """An update (or its JSON as a dict) as a Message; see ``to_message``."""
        update = native if isinstance(native, Update) else Update.model_validate(native, context={"bot": self._bot})
        return to_message(update, self._payloads)

    async def start(self) -> None:
        """Check the token and the API base, then set the webhook or start long polling."""
        if self._started:
            return
        try:
            me = await self._call(GetMe())
            if self._webhook_url:
                await self._call(SetWebhook(url=self._webhook_url, secret_token=self._webhook_secret))
            elif self._polling:
                await self._call(DeleteWebhook())  # getUpdates is refused while a webhook is set
        except ChannelError as exc:
            raise config_error(exc, self._api_base) from exc
        self._started, self._username = True, me.username
        mode = (
            f"webhook {self._webhook_url}"
            if self._webhook_url
            else "long polling"
            if self._polling
            else "sending only; another process long-polls"
        )
        await self._intake.start()  # what a crash left stored but unprocessed goes first
        log.info("Telegram bot @%s is listening (%s)", me.username, mode)
        if not self._webhook_url and self._polling:
            self._poller = asyncio.create_task(self._poll(), name="telegram-poll")

    def deep_link(self, token: str) -> str:
        """The t.me link that opens the bot and sends it "/start <token>" (letters, digits, _ and -, up to 64)."""
        if not self._username:
            raise ChannelError("Telegram: the bot's username is not known yet (the channel has not started)")
        return f"https://t.me/{self._username}?start={token}"

    async def stop(self, drain: float | None = None) -> None:
        """Stop receiving; give the chats being processed ``drain`` seconds (default: the shutdown
        grace) to finish; close the session. Safe to call again (shutdown, then cleanup)."""
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        await self._intake.stop(self._drain if drain is None else drain)
        self._started = False
        await self._bot.session.close()

    async def send(self, address: str, reply: Reply) -> None:
        """The text (cut to Telegram's limits) with the buttons under its last part. With an image: a
        photo (Telegram fetches the URL) captioned with the text when it fits a caption, else the
        photo and then the text; a photo Telegram cannot fetch becomes a link line under the text.
        Then ``custom``, when it has a Telegram shape (bots/telegram_custom.py)."""
        parts = split(reply.text)
        keyboard = self._keyboard(reply.buttons)
        image = image_url(reply.image)
        if image:
            fits = len(parts) <= 1 and utf16_len(parts[0] if parts else "") <= CAPTION_LIMIT
            try:
                await self._call(
                    SendPhoto(
                        chat_id=address,
                        photo=image,
                        caption=parts[0] if fits and parts else None,
                        parse_mode=None,
                        reply_markup=keyboard if fits else None,
                    )
                )
                if fits:
                    parts = []
            except Unreachable:
                raise
            except ChannelError as exc:
                log.warning("telegram: the image of reply %s was refused (%s); sent as a link", reply.id, exc)
                parts = split(f"{reply.text.strip()}\n{image}".strip())
        for index, part in enumerate(parts):
            # No parse mode: whatever the text holds (<b>, &, *) is shown as it is, never as markup.
            await self._call(
                SendMessage(
                    chat_id=address,
                    text=part,
                    parse_mode=None,
                    reply_markup=keyboard if index == len(parts) - 1 else None,
                )
            )
        extra = custom_method(address, reply.custom)
        if extra is not None:
            await self._call(extra)

    def _keyboard(self, buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
        """Inline buttons for actions; a reply keyboard (hidden after use) when any key sends text,
        a contact or a location, which inline buttons cannot do."""
        if not buttons:
            return None
        if all(b.kind == "action" for b in buttons):
            return InlineKeyboardMarkup(
                inline_keyboard=[
                    [InlineKeyboardButton(text=b.title, callback_data=self._payloads.pack(b.payload))] for b in buttons
                ]
            )
        return ReplyKeyboardMarkup(
            keyboard=[
                [
                    KeyboardButton(
                        text=b.title,
                        request_contact=b.kind == "contact" or None,
                        request_location=b.kind == "location" or None,
                    )
                ]
                for b in buttons
            ],
            resize_keyboard=True,
            one_time_keyboard=True,
        )

    # Receiving

    async def _webhook(self, request: web.Request) -> web.Response:
        secret = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(secret, self._webhook_secret.encode()):
            return web.json_response({"error": f"missing or wrong {SECRET_HEADER}"}, status=401)
        try:
            body = (await request.read()).decode("utf-8")
            update = Update.model_validate(json.loads(body), context={"bot": self._bot})
        except (ValueError, RecursionError) as exc:  # not UTF-8 or JSON (or nested too deep), not an update
            reason = "not a Telegram update" if isinstance(exc, ValidationError) else "the body is not UTF-8 JSON"
            return web.json_response({"error": reason}, status=400)
        try:
            await self._store([(update, body)])
        except StoreError as exc:
            log.warning(
                "telegram update %s not stored, so not acknowledged (Telegram sends it again): %s",
                update.update_id,
                exc,
            )
            return web.json_response({"error": "the update could not be stored; send it again"}, status=503)
        return web.Response()

    async def _store(self, updates: list[tuple[Update, str]]) -> None:
        """Make updates durable in the inbox, then queue them; the kinds the bot does not answer are skipped."""
        entries = []
        for update, body in updates:
            chat = chat_of(update)
            if chat is None:
                log.debug("telegram update %s ignored: not a kind the bot answers", update.update_id)
            else:
                entries.append(Entry(str(update.update_id), str(chat), body))
        await self._intake.take(entries)

    async def _poll(self) -> None:
        offset: int | None = None
        failures = 0
        while True:
            try:
                updates = await self._bot(
                    GetUpdates(offset=offset, timeout=self._poll_timeout), request_timeout=self._poll_timeout + 10
                )
                failures = 0
            except TelegramRetryAfter as exc:
                await asyncio.sleep(exc.retry_after)
                continue
            except Exception as exc:
                failures += 1
                delay = self._retry.pause(failures)
                log.warning(
                    "telegram getUpdates failed (offset=%s); retrying in %.1f s",
                    offset,
                    delay,
                    exc_info=not isinstance(exc, AiogramError),
                )  # a trace only for the unexpected
                await asyncio.sleep(delay)
                continue
            if not updates:
                continue
            try:  # the offset moves past these updates only once they are durable
                await self._store([(u, _raw(u)) for u in updates])
            except StoreError as exc:
                failures += 1
                delay = self._retry.pause(failures)
                log.warning("telegram updates not stored (%s); fetching them again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            offset = updates[-1].update_id + 1  # confirmed with the next call

    async def _process_row(self, taken: Taken) -> None:
        # json.loads, not pydantic's parser: that one refuses a lone surrogate ("\ud800") in a string.
        await self._process(taken.chat, Update.model_validate(json.loads(taken.body), context={"bot": self._bot}))

    async def _process(self, chat: str, update: Update) -> None:
        """One update; raising leaves it in the inbox to be tried again (bots/intake.py logs it)."""
        if update.callback_query is not None:  # stop the button's spinner first
            await self._quietly(AnswerCallbackQuery(callback_query_id=update.callback_query.id))
        message = to_message(update, self._payloads)
        if message is None:
            log.debug("telegram update %s in chat %s has nothing to answer", update.update_id, chat)
            return

        async def typing(stored: object) -> None:
            await self._quietly(SendChatAction(chat_id=message.address, action="typing"))

        # Telegram already has our acknowledgement: a storage outage is waited out, not lost.
        await self._conversations.handle_retrying(
            message, on_answering=typing, attempts=self._retry.attempts, backoff=self._retry.base
        )

    # Calling Telegram

    async def _call(self, method: TelegramMethod[T]) -> T:
        """Call the Bot API under the retry policy (bots/retry.py); translate errors to Seamline's."""
        return await self._retry.run(
            f"Telegram {type(method).__name__}", lambda: self._bot(method), partial(classify, type(method).__name__)
        )

    async def _quietly(self, method: TelegramMethod) -> None:
        """A courtesy call (typing, a button's spinner): one attempt, a failure is only logged."""
        try:
            await self._bot(method, request_timeout=5)
        except AiogramError as exc:
            log.debug("telegram %s failed: %s", type(method).__name__, exc)


def _raw(update: Update) -> str:
    """A polled update as the JSON Telegram sent (ASCII: any text stores, even a lone surrogate)."""
    return json.dumps(update.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_unset=True))
