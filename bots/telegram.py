"""The Telegram channel: long polling or a webhook at ``/telegram/webhook``, through aiogram.

Updates are acknowledged at once and processed after, one chat at a time in arrival order and
different chats concurrently (a queue and a worker per chat, gone when the chat is idle). The
platform's ``update_id`` is the message's ``external_id``, so a redelivered update is processed
once. aiogram's errors are translated here: 429 waits ``retry_after``, 5xx and network errors
are retried with backoff (bounded), 403 and "chat not found" become ``Unreachable``.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections import deque
from collections.abc import AsyncIterator
from typing import TypeVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (AiogramError, TelegramBadRequest, TelegramForbiddenError,
                                TelegramNetworkError, TelegramNotFound, TelegramRetryAfter, TelegramServerError,
                                TelegramUnauthorizedError)
from aiogram.methods import (AnswerCallbackQuery, DeleteWebhook, GetMe, GetUpdates, SendChatAction, SendMessage,
                             SetWebhook, TelegramMethod)
from aiogram.methods.base import Response
from aiogram.types import (InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup, Update,
                           User)
from aiogram.types import Message as Native
from aiohttp import web
from pydantic import ValidationError

from bots.pipeline import Pipeline
from bots.telegram_text import CallbackPayloads, split
from shared.errors import ChannelError, ConfigError, Unreachable
from shared.message import Attachment, Button, Channel, Message, Reply
from shared.settings import TelegramSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

# aiogram parses every answer as ``Response[<the method's return type>]``, a pydantic generic that
# pydantic caches only weakly: once collected, the next call builds its schema again (milliseconds
# of CPU per Bot API call, measured as the top cost under load). Holding the ones we use keeps them.
_RESPONSE_TYPES = tuple(Response[method.__returning__] for method in (  # type: ignore[name-defined]
    AnswerCallbackQuery, DeleteWebhook, GetMe, GetUpdates, SendChatAction, SendMessage, SetWebhook))

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_FILES = ("document", "voice", "audio", "video", "video_note", "sticker")  # an animation also comes as a document
_FILE_FIELDS = ("file_id", "file_unique_id", "file_name", "mime_type", "file_size", "duration", "width", "height")


def to_message(update: Update, payloads: CallbackPayloads | None = None) -> Message | None:
    """A Telegram update as a Message; None for what the bot does not answer (other update kinds,
    service messages). Pure: ``payloads`` is only read, to restore payloads too long for Telegram."""
    if update.callback_query is not None:
        query = update.callback_query
        if query.data is None:
            return None  # a game button: nothing to say to it
        payload = payloads.unpack(query.data) if payloads else query.data
        chat = query.message.chat.id if query.message is not None else query.from_user.id
        return Message(channel=Channel.TELEGRAM, address=str(chat), sender=str(query.from_user.id),
                       text=_title(query.message, query.data), payload=payload, external_id=str(update.update_id),
                       sender_name=_name(query.from_user), language=_language(query.from_user))
    native = update.message or update.edited_message
    if native is None:
        return None
    text = (native.text or native.caption or "").strip()
    attachments = _attachments(native)
    if not text and not attachments:
        return None  # someone joined, a pin, a poll...: nothing the customer said
    user = native.from_user
    # ts stays the time of arrival: Telegram's date has whole seconds on another clock, and the
    # history is ordered by time, so two quick messages and their answers would interleave.
    return Message(channel=Channel.TELEGRAM, address=str(native.chat.id),
                   sender=str(user.id if user else native.chat.id), text=text, payload=_command(native),
                   attachments=attachments, external_id=str(update.update_id), sender_name=_name(user),
                   language=_language(user))


def _command(native: Native) -> str | None:
    """A command as the payload: ``/start ref42`` (a deep link) as it is, ``/order_status@shop_bot`` as
    ``/order_status``; None for a message that is not a command."""
    entities = native.entities or ()
    if not any(e.type == "bot_command" and e.offset == 0 for e in entities):
        return None
    return re.sub(r"^(/[^\s@]+)@\w+", r"\1", native.text.strip())


def _attachments(native: Native) -> tuple[Attachment, ...]:
    found = []
    if native.photo:  # the sizes of one photo, smallest first
        found.append(Attachment("photo", data=_file(native.photo[-1])))
    for kind in _FILES:
        media = getattr(native, kind)
        if media is not None:
            found.append(Attachment(kind, name=getattr(media, "file_name", None), data=_file(media)))
    if native.location is not None:
        place = native.location
        found.append(Attachment("location", data={k: v for k, v in (
            ("latitude", place.latitude), ("longitude", place.longitude),
            ("horizontal_accuracy", place.horizontal_accuracy)) if v is not None}))
    if native.contact is not None:
        contact = native.contact
        own = native.from_user is not None and contact.user_id == native.from_user.id
        found.append(Attachment("contact", name=" ".join(filter(None, (contact.first_name, contact.last_name))),
                                data={"phone_number": contact.phone_number, "first_name": contact.first_name,
                                      "last_name": contact.last_name, "user_id": contact.user_id, "own": own}))
    return tuple(found)


def _file(media: object) -> dict:
    return {name: getattr(media, name) for name in _FILE_FIELDS if getattr(media, name, None) is not None}


def _title(message: object, data: str) -> str:
    """The title of the pressed button, from the keyboard of the message it was on ("" if gone)."""
    keyboard = getattr(message, "reply_markup", None)
    for row in getattr(keyboard, "inline_keyboard", None) or ():
        for button in row:
            if button.callback_data == data:
                return button.text
    return ""


def _name(user: User | None) -> str | None:
    if user is None:
        return None
    return " ".join(filter(None, (user.first_name, user.last_name))) or user.username


def _language(user: User | None) -> str | None:
    code = ((user.language_code if user else None) or "")[:2].lower()
    return code if code in ("ru", "en") else None


def _chat(update: Update) -> int | None:
    """The chat whose order an update keeps; None for the kinds the bot does not process."""
    native = update.message or update.edited_message
    if native is not None:
        return native.chat.id
    query = update.callback_query
    if query is not None:
        return query.message.chat.id if query.message is not None else query.from_user.id
    return None


class TelegramChannel:
    channel = Channel.TELEGRAM

    def __init__(self, *, pipeline: Pipeline, settings: TelegramSettings, poll_timeout: int = 25,
                 attempts: int = 5, backoff: float = 0.5, max_retry_after: float = 60.0) -> None:
        self._pipeline = pipeline
        self._settings = settings
        self._bot = Bot(settings.token, session=AiohttpSession(api=TelegramAPIServer.from_base(settings.api_base)))
        self._poll_timeout = poll_timeout
        self._attempts, self._backoff, self._max_retry_after = attempts, backoff, max_retry_after
        self._payloads = CallbackPayloads()
        self._queues: dict[int, deque[Update]] = {}
        self._workers: set[asyncio.Task] = set()
        self._poller: asyncio.Task | None = None
        self._username: str | None = None  # the bot's @username, from getMe at start

    def install(self, app: web.Application) -> None:
        app[TELEGRAM] = self
        if self._settings.webhook:
            app.router.add_post(WEBHOOK_PATH, self._webhook)
        app.cleanup_ctx.append(self._running)
        app.on_shutdown.append(self._on_shutdown)
        self._pipeline.register(self)

    async def _running(self, app: web.Application) -> AsyncIterator[None]:
        try:
            await self.start()
        except BaseException:
            await self.close()  # aiohttp cleans up only what started
            raise
        yield
        await self.close()

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.stop()

    async def start(self) -> None:
        """Check the token and the API base, then set the webhook or start long polling."""
        try:
            me = await self._call(GetMe())
            if self._settings.webhook:
                await self._call(SetWebhook(url=self._settings.webhook_url, secret_token=self._settings.webhook_secret))
            else:
                await self._call(DeleteWebhook())  # getUpdates is refused while a webhook is set
        except ChannelError as exc:
            raise _config_error(exc, self._settings) from exc
        self._username = me.username
        mode = f"webhook {self._settings.webhook_url}" if self._settings.webhook else "long polling"
        log.info("Telegram bot @%s is listening (%s)", me.username, mode)
        if not self._settings.webhook:
            self._poller = asyncio.create_task(self._poll(), name="telegram-poll")

    def deep_link(self, token: str) -> str:
        """The t.me link that opens the bot and sends it "/start <token>" (letters, digits, _ and -, up to 64)."""
        if not self._username:
            raise ChannelError("Telegram: the bot's username is not known yet (the channel has not started)")
        return f"https://t.me/{self._username}?start={token}"

    async def stop(self, drain: float = 5.0) -> None:
        """Stop receiving; give the chats being processed ``drain`` seconds to finish."""
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        if self._workers:
            await asyncio.wait(set(self._workers), timeout=drain)
        for worker in list(self._workers):
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def close(self) -> None:
        await self.stop(drain=0)
        await self._bot.session.close()

    async def send(self, address: str, reply: Reply) -> None:
        parts = split(reply.text)
        keyboard = self._keyboard(reply.buttons)
        for index, part in enumerate(parts):
            # No parse mode: whatever the text holds (<b>, &, *) is shown as it is, never as markup.
            await self._call(SendMessage(chat_id=address, text=part, parse_mode=None,
                                         reply_markup=keyboard if index == len(parts) - 1 else None))

    def _keyboard(self, buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
        """Inline buttons for actions; a reply keyboard (hidden after use) when any key sends text,
        a contact or a location, which inline buttons cannot do."""
        if not buttons:
            return None
        if all(b.kind == "action" for b in buttons):
            return InlineKeyboardMarkup(inline_keyboard=[
                [InlineKeyboardButton(text=b.title, callback_data=self._payloads.pack(b.payload))] for b in buttons])
        return ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text=b.title, request_contact=b.kind == "contact" or None,
                                                             request_location=b.kind == "location" or None)]
                                             for b in buttons], resize_keyboard=True, one_time_keyboard=True)

    # Receiving

    async def _webhook(self, request: web.Request) -> web.Response:
        secret = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(secret, self._settings.webhook_secret.encode()):
            return web.json_response({"error": f"missing or wrong {SECRET_HEADER}"}, status=401)
        try:
            update = Update.model_validate(await request.json(), context={"bot": self._bot})
        except ValueError as exc:  # not JSON, or not an update (pydantic's ValidationError is a ValueError)
            reason = "not a Telegram update" if isinstance(exc, ValidationError) else "the body is not JSON"
            return web.json_response({"error": reason}, status=400)
        self._dispatch(update)
        return web.Response()

    async def _poll(self) -> None:
        offset: int | None = None
        failures = 0
        while True:
            try:
                updates = await self._bot(GetUpdates(offset=offset, timeout=self._poll_timeout),
                                          request_timeout=self._poll_timeout + 10)
                failures = 0
            except TelegramRetryAfter as exc:
                await asyncio.sleep(exc.retry_after)
                continue
            except Exception as exc:  # noqa: BLE001 - the one broad except of the polling loop
                failures += 1
                delay = min(self._backoff * 2 ** failures, 30.0)
                log.warning("telegram getUpdates failed (offset=%s); retrying in %.1f s", offset, delay,
                            exc_info=not isinstance(exc, AiogramError))  # a trace only for the unexpected
                await asyncio.sleep(delay)
                continue
            for update in updates:
                offset = update.update_id + 1  # confirmed with the next call, whatever happens to it
                self._dispatch(update)

    def _dispatch(self, update: Update) -> None:
        """Queue an update behind the earlier ones of its chat; never blocks, never raises for one update."""
        chat = _chat(update)
        if chat is None:
            log.debug("telegram update %s ignored: not a kind the bot answers", update.update_id)
            return
        queue = self._queues.get(chat)
        if queue is None:
            queue = self._queues[chat] = deque()
            worker = asyncio.create_task(self._work(chat, queue), name=f"telegram-chat-{chat}")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        queue.append(update)

    async def _work(self, chat: int, queue: deque[Update]) -> None:
        try:
            while queue:
                await self._process(chat, queue.popleft())
        finally:
            del self._queues[chat]  # no await since the queue was last seen empty: nothing is lost

    async def _process(self, chat: int, update: Update) -> None:
        try:
            if update.callback_query is not None:  # stop the button's spinner first
                await self._quietly(AnswerCallbackQuery(callback_query_id=update.callback_query.id))
            message = to_message(update, self._payloads)
            if message is None:
                log.debug("telegram update %s in chat %s has nothing to answer", update.update_id, chat)
                return

            async def typing(stored: object) -> None:
                await self._quietly(SendChatAction(chat_id=message.address, action="typing"))

            # Telegram already has our acknowledgement: a storage outage is waited out, not lost.
            await self._pipeline.handle_retrying(message, on_answering=typing, attempts=self._attempts,
                                                 backoff=self._backoff)
        except Exception:  # noqa: BLE001 - the one broad except of a chat's worker
            log.exception("telegram update %s in chat %s failed", update.update_id, chat)

    # Calling Telegram

    async def _call(self, method: TelegramMethod[T]) -> T:
        """Call the Bot API; wait and retry what may pass, translate the rest to Seamline's errors."""
        name = type(method).__name__
        for attempt in range(1, self._attempts + 1):
            try:
                return await self._bot(method)
            except TelegramRetryAfter as exc:
                if exc.retry_after > self._max_retry_after:
                    raise ChannelError(f"Telegram {name}: flood control asks to wait {exc.retry_after} s") from exc
                delay, error = float(exc.retry_after), exc
            except (TelegramServerError, TelegramNetworkError) as exc:
                delay, error = min(self._backoff * 2 ** (attempt - 1), 30.0), exc
            except TelegramForbiddenError as exc:  # blocked by the user, user deactivated, kicked from the group
                raise Unreachable(f"Telegram {name}: {exc.message}") from exc
            except (TelegramBadRequest, TelegramNotFound) as exc:
                if "chat not found" in exc.message.lower():
                    raise Unreachable(f"Telegram {name}: {exc.message}") from exc
                raise ChannelError(f"Telegram {name}: {exc.message}") from exc
            except AiogramError as exc:  # unauthorized, an answer that is not the Bot API's, ...
                raise ChannelError(f"Telegram {name}: {exc}") from exc
            if attempt < self._attempts:
                log.warning("telegram %s failed (%s); attempt %d of %d in %.1f s", name, error, attempt + 1,
                            self._attempts, delay)
                await asyncio.sleep(delay)
        raise ChannelError(f"Telegram {name} failed {self._attempts} times; last: {error}") from error

    async def _quietly(self, method: TelegramMethod) -> None:
        """A courtesy call (typing, a button's spinner): one attempt, a failure is only logged."""
        try:
            await self._bot(method, request_timeout=5)
        except AiogramError as exc:
            log.debug("telegram %s failed: %s", type(method).__name__, exc)


def _config_error(exc: ChannelError, settings: TelegramSettings) -> ConfigError:
    cause = exc.__cause__
    if isinstance(cause, TelegramUnauthorizedError):
        return ConfigError("SEAMLINE_TELEGRAM_TOKEN", "Telegram refused the token (401 Unauthorized)",
                           "Copy the token @BotFather gave you (or /revoke it there and set the new one)")
    if isinstance(cause, TelegramBadRequest) and isinstance(cause.method, SetWebhook):
        return ConfigError("SEAMLINE_TELEGRAM_WEBHOOK_URL", f"Telegram refused the webhook ({cause.message})",
                           "Use the public https URL of /telegram/webhook on this server")
    return ConfigError("SEAMLINE_TELEGRAM_API_BASE", f"{settings.api_base} did not answer like the Telegram Bot API "
                       f"({exc})", "Use https://api.telegram.org or the URL of your own Bot API server")


TELEGRAM = web.AppKey("telegram", TelegramChannel)
