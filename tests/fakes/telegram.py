"""A fake Telegram Bot API server: aiohttp on 127.0.0.1, a random port, Telegram's own wire format.

Point any Bot API client at ``fake.url`` instead of https://api.telegram.org (aiogram:
``AiohttpSession(api=TelegramAPIServer.from_base(fake.url))``; Seamline:
``SEAMLINE_TELEGRAM_API_BASE``), make the customer say things, and look at what the bot sent::

    async with FakeTelegram() as telegram:
        ...start your bot with token TOKEN and api base telegram.url...
        telegram.enqueue(telegram.update("message_text", chat_id=1001, text="hello"))
        [answer] = await telegram.wait_for("sendMessage", chat_id="1001")
        assert "Hi" in answer.params["text"]

Like Telegram, it serves ``POST`` (or ``GET``) ``/bot<token>/<method>`` with form-encoded, JSON or
multipart bodies (method names in any case), and answers ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": ..., "description": ..., "parameters": {"retry_after": N}}`` with the
same HTTP status. A wrong token gets 401, an unknown method 404. It implements getMe, getUpdates
(real long polling: ``offset`` confirms, ``timeout`` holds the request until an update is queued;
a second concurrent poller ends the first with 409, and getUpdates is refused while a webhook is
set), setWebhook / deleteWebhook / getWebhookInfo (with a webhook set, queued updates are POSTed
to it in order, with ``X-Telegram-Bot-Api-Secret-Token``), sendMessage (checks the 4096 UTF-16
unit limit, empty text, 1-64 byte callback_data), sendPhoto (a file id or an http(s) URL, never
fetched; a caption of at most 1024 units), sendLocation, sendChatAction, answerCallbackQuery and
editMessageReplyMarkup.

Unlike Telegram it accepts ``http://`` webhooks on any port, delivers each update to a webhook
once (``deliveries`` says how it was answered; no redelivery), keeps no chats (any chat id is
valid unless ``block``-ed), and serves no files.

Every call is recorded in ``calls`` (method, params, arrival time, status, result); ``fail``,
``block`` and ``hold`` make calls fail or wait; ``update`` builds updates from the recorded-style
payloads in tests/fixtures/telegram/ with fresh ids, and ``press`` presses a button the bot sent.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "telegram"
TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"
CUSTOMER = 500100200  # the user (and private chat) every fixture is written from; ``update`` replaces it
BOT = {
    "id": 123456,
    "is_bot": True,
    "first_name": "Seamline Shop",
    "username": "seamline_shop_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Parameters Telegram takes as JSON-serialized strings in form bodies; recorded decoded.
_JSON_PARAMS = {
    "reply_markup",
    "allowed_updates",
    "entities",
    "caption_entities",
    "link_preview_options",
    "reply_parameters",
    "media",
    "commands",
}
_DEFAULT_UPDATES = {"chat_member", "message_reaction", "message_reaction_count"}  # sent only when asked for
_CHAT_ACTIONS = {
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
}
_HTML_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
    "tg-time",
}
_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass(frozen=True)
class Call:
    """One request the fake answered. ``params`` are as sent (form values are strings), with the
    JSON-serialized ones (reply_markup, ...) decoded; ``at`` is ``time.monotonic()`` at arrival."""

    method: str
    params: dict
    at: float
    status: int = 200
    result: Any = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class Delivery:
    """One POST of an update to the webhook, and the HTTP status it got (0: no connection)."""

    update_id: int
    status: int
    at: float


class ApiError(Exception):
    def __init__(self, code: int, description: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.retry_after = code, retry_after
        self.description = description or _DESCRIPTIONS.get(code, "Error")


def load_fixture(name: str) -> dict:
    """A fresh copy of tests/fixtures/telegram/<name>.json."""
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeTelegram:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.deliveries: list[Delivery] = []
        self.webhook_url = ""
        self.webhook_secret = ""
        self.port = 0
        self._pending: list[dict] = []  # updates not yet confirmed (polling) or delivered (webhook)
        self._allowed: set[str] = set()
        self._failures: dict[str, deque[ApiError]] = defaultdict(deque)
        self._blocked: dict[str, str] = {}
        self._holds: dict[str, asyncio.Event] = {}
        self._listeners: list[Callable[[Call], None]] = []
        self._update_ids = itertools.count(int(time.time()) % 1_000_000 * 1000)
        self._message_ids = itertools.count(1)
        self._poll_turn = 0
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._pusher: asyncio.Task | None = None
        self._methods = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "sendMessage": self._send_message,
                "sendPhoto": self._send_photo,
                "sendLocation": self._send_location,
                "sendChatAction": self._send_chat_action,
                "answerCallbackQuery": self._answer_callback_query,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
            }.items()
        }

    # Running

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeTelegram:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._client = aiohttp.ClientSession()
        self._pusher = asyncio.create_task(self._push())
        return self

    async def stop(self) -> None:
        self._closing = True
        for event in self._holds.values():
            event.set()
        self._notify()
        if self._pusher is not None:
            self._pusher.cancel()
            await asyncio.gather(self._pusher, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # What the customer does

    def update(self, fixture: str, *, chat_id: int | None = None, text: str | None = None) -> dict:
        """An update from tests/fixtures/telegram/<fixture>.json with a fresh update_id (and message
        id), written by ``chat_id`` (user and private chat) instead of the fixtures' customer.
        ``text`` replaces the text; a text starting with "/" is marked as a bot command."""
        update = _replace_customer(load_fixture(fixture), chat_id or CUSTOMER)
        update["update_id"] = next(self._update_ids)
        for kind, body in update.items():
            if isinstance(body, dict) and "message_id" in body:
                body["message_id"], body["date"] = next(self._message_ids), int(time.time())
                if text is not None:
                    body["text"] = text
                    body.pop("entities", None)
                    if text.startswith("/"):
                        body["entities"] = [{"offset": 0, "length": utf16_len(text.split()[0]), "type": "bot_command"}]
            elif kind == "callback_query":
                body["id"] = str(next(self._update_ids) * 7919)
        return update

    def press(self, sent: Call, title: str) -> dict:
        """The callback_query update of the customer pressing the button ``title`` on a message the bot sent."""
        message = sent.result
        buttons = [b for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
        button = next((b for b in buttons if b["text"] == title), None)
        if button is None:
            raise AssertionError(f"no button {title!r} on the message; it has {[b['text'] for b in buttons]}")
        update = self.update("callback_query", chat_id=message["chat"]["id"])
        update["callback_query"].update(message=message, data=button["callback_data"])
        return update

    def enqueue(self, *updates: dict) -> None:
        """Queue updates as Telegram would: for the next getUpdates, or POSTed to the webhook if one is set."""
        self._pending.extend(copy.deepcopy(u) for u in updates)
        self._notify()

    # What the test arranges

    def fail(
        self,
        method: str,
        times: int = 1,
        *,
        status: int = 429,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` fail with ``status``; a 429 comes with ``retry_after``
        (1 s unless given)."""
        if status == 429:
            retry_after = retry_after or 1
            description = description or f"Too Many Requests: retry after {retry_after}"
        for _ in range(times):
            self._failures[method.lower()].append(ApiError(status, description, retry_after))

    def block(self, chat_id: int | str, description: str = "Forbidden: bot was blocked by the user") -> None:
        """Every call naming this chat answers 403, as when the user blocked the bot."""
        self._blocked[str(chat_id)] = description

    def hold(self, chat_id: int | str) -> asyncio.Event:
        """Calls naming this chat wait until the returned event is set (to show other chats go on meanwhile)."""
        return self._holds.setdefault(str(chat_id), asyncio.Event())

    def listen(self, listener: Callable[[Call], None]) -> None:
        """Call ``listener(call)`` for every call as it is recorded (benchmarks use it to time answers)."""
        self._listeners.append(listener)

    # What the test looks at

    def calls_of(self, method: str, *, ok: bool | None = True, **params: object) -> list[Call]:
        """Recorded calls of ``method`` (only the successful ones unless ``ok`` says otherwise) whose
        params match the given ones (compared as strings: chat_id="1001" matches 1001)."""
        return [
            c
            for c in self.calls
            if c.method.lower() == method.lower()
            and (ok is None or c.ok == ok)
            and all(str(c.params.get(k)) == str(v) for k, v in params.items())
        ]

    def texts(self, chat_id: int | str) -> list[str]:
        """The texts the bot sent to a chat, in order."""
        return [c.params["text"] for c in self.calls_of("sendMessage", chat_id=chat_id)]

    async def wait_for(
        self, method: str, *, count: int = 1, timeout: float = 10.0, ok: bool | None = True, **params: object
    ) -> list[Call]:
        """Wait until at least ``count`` matching calls are recorded (see ``calls_of``); they are returned.
        Fails with what was recorded after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while len(found := self.calls_of(method, ok=ok, **params)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [
                    (c.method, c.status, {k: c.params.get(k) for k in ("chat_id", "text")})
                    for c in self.calls
                    if c.method != "getUpdates"
                ]
                raise AssertionError(f"{len(found)} of {count} {method} {params} in {timeout} s; calls: {seen}")
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                pass
        return found

    # Serving

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _serve(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        name, handler = self._methods.get(request.match_info["method"].lower(), (request.match_info["method"], None))
        params: dict = {}
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401)
            if handler is None:
                raise ApiError(404)
            params = await _params(request)
            chat = str(params.get("chat_id", ""))
            if chat in self._holds:
                await self._holds[chat].wait()
            if self._failures[name.lower()]:
                raise self._failures[name.lower()].popleft()
            if chat in self._blocked:
                raise ApiError(403, self._blocked[chat])
            result, description = await handler(params)
            body: dict = {"ok": True, "result": result}
            if description:
                body["description"] = description
            status = 200
        except ApiError as error:
            status, result = error.code, None
            body = {"ok": False, "error_code": error.code, "description": error.description}
            if error.retry_after is not None:
                body["parameters"] = {"retry_after": error.retry_after}
        self._record(Call(name, params, arrived, status, result))
        return web.json_response(body, status=status)

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        for listener in self._listeners:
            listener(call)
        self._notify()

    async def _push(self) -> None:
        """Deliver queued updates to the webhook, in order, one at a time."""
        while not self._closing:
            if not (self.webhook_url and self._pending):
                await self._changed.wait()
                continue
            update = self._pending.pop(0)
            headers = {SECRET_HEADER: self.webhook_secret} if self.webhook_secret else {}
            try:
                async with self._client.post(
                    self.webhook_url, json=update, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
                ) as response:
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            self.deliveries.append(Delivery(update["update_id"], status, time.monotonic()))
            self._notify()

    # Methods: each returns (result, description)

    async def _get_me(self, params: dict) -> tuple[Any, str | None]:
        return dict(BOT), None

    async def _get_updates(self, params: dict) -> tuple[Any, str | None]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset, limit, timeout = (
            _int(params, "offset", 0),
            min(max(_int(params, "limit", 100), 1), 100),
            max(_int(params, "timeout", 0), 0),
        )
        if "allowed_updates" in params:
            self._allowed = set(params["allowed_updates"] or ())
        if offset > 0:  # confirms every update before it
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]
        self._poll_turn += 1
        turn, deadline = self._poll_turn, time.monotonic() + timeout
        while True:
            if turn != self._poll_turn:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                )
            ready = [u for u in self._pending if self._wanted(u)][:limit]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or self._closing:
                return ready, None
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                pass

    def _wanted(self, update: dict) -> bool:
        kinds = set(update) - {"update_id"}
        return bool(kinds & self._allowed) if self._allowed else not kinds & _DEFAULT_UPDATES

    async def _set_webhook(self, params: dict) -> tuple[Any, str | None]:
        url, secret = str(params.get("url") or ""), str(params.get("secret_token") or "")
        if not url:
            return await self._delete_webhook(params)
        if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", url):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._pending.clear()
        self.webhook_url, self.webhook_secret = url, secret
        self._poll_turn += 1  # a waiting getUpdates ends
        self._notify()
        return True, "Webhook was set"

    async def _delete_webhook(self, params: dict) -> tuple[Any, str | None]:
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._pending.clear()
        was = self.webhook_url
        self.webhook_url = self.webhook_secret = ""
        return True, "Webhook was deleted" if was else "Webhook is already deleted"

    async def _get_webhook_info(self, params: dict) -> tuple[Any, str | None]:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }, None

    async def _send_message(self, params: dict) -> tuple[Any, str | None]:
        text = str(params.get("text") or "")
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        _check_markup(text, params.get("parse_mode"))
        keyboard = _check_keyboard(params.get("reply_markup"))
        message = {
            "message_id": next(self._message_ids),
            "from": _user(BOT),
            "chat": _chat(params),
            "date": int(time.time()),
            "text": text,
        }
        if keyboard and "inline_keyboard" in keyboard:  # like Telegram: a reply keyboard is not echoed back
            message["reply_markup"] = keyboard
        return message, None

    async def _send_photo(self, params: dict) -> tuple[Any, str | None]:
        """Like Telegram: ``photo`` is a file id, an http(s) URL Telegram fetches (here: never fetched),
        or an uploaded file; the caption is at most 1024 UTF-16 units."""
        photo = params.get("photo")
        if not photo:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        if isinstance(photo, str) and photo.startswith("attach://"):  # an upload in a field of that name
            photo = params.get(photo.removeprefix("attach://"))
            if not isinstance(photo, dict):
                raise ApiError(400, "Bad Request: there is no photo in the request")
        if isinstance(photo, str) and ":" in photo and not re.match(r"https?://", photo):
            raise ApiError(400, "Bad Request: wrong remote file identifier specified: can't unserialize it")
        caption = str(params.get("caption") or "")
        if utf16_len(caption) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        _check_markup(caption, params.get("parse_mode"))
        keyboard = _check_keyboard(params.get("reply_markup"))
        message = self._message(params, keyboard)
        size = {"file_id": f"AgAC{message['message_id']:08d}", "file_unique_id": f"AQAD{message['message_id']}"}
        message["photo"] = [{**size, "width": 90, "height": 90}, {**size, "width": 800, "height": 800}]
        if caption:
            message["caption"] = caption
        return message, None

    async def _send_location(self, params: dict) -> tuple[Any, str | None]:
        try:
            latitude, longitude = float(params["latitude"]), float(params["longitude"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "Bad Request: wrong latitude or longitude") from None
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ApiError(400, "Bad Request: wrong latitude or longitude")
        message = self._message(params, _check_keyboard(params.get("reply_markup")))
        message["location"] = {"latitude": latitude, "longitude": longitude}
        return message, None

    def _message(self, params: dict, keyboard: dict | None) -> dict:
        """The Message object Telegram answers a send with (without its content)."""
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "from": _user(BOT),
            "chat": _chat(params),
            "date": int(time.time()),
        }
        if keyboard and "inline_keyboard" in keyboard:
            message["reply_markup"] = keyboard
        return message

    async def _send_chat_action(self, params: dict) -> tuple[Any, str | None]:
        _chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True, None

    async def _answer_callback_query(self, params: dict) -> tuple[Any, str | None]:
        if not params.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return True, None

    async def _edit_message_reply_markup(self, params: dict) -> tuple[Any, str | None]:
        if params.get("inline_message_id"):
            return True, None
        if not params.get("message_id"):
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = {
            "message_id": _int(params, "message_id", 0),
            "from": _user(BOT),
            "chat": _chat(params),
            "date": int(time.time()),
            "edit_date": int(time.time()),
            "text": "...",
        }
        if keyboard := _check_keyboard(params.get("reply_markup")):
            message["reply_markup"] = keyboard
        return message, None


async def _params(request: web.Request) -> dict:
    """Query string and body (form, multipart or JSON) as one dict, as Telegram reads them."""
    params: dict = dict(request.query)
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: JSON object expected")
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):  # an uploaded file: kept as what it was, not its bytes
                value = {"filename": value.filename, "content_type": value.content_type, "size": len(value.file.read())}
            params[key] = value
    for key in _JSON_PARAMS & params.keys():
        if isinstance(params[key], str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from None
    return params


def _int(params: dict, key: str, default: int) -> int:
    try:
        return int(params.get(key, default) or default)
    except (TypeError, ValueError):
        raise ApiError(400, f"Bad Request: wrong parameter {key}") from None


def _chat(params: dict) -> dict:
    chat = str(params.get("chat_id") or "")
    if not chat:
        raise ApiError(400, "Bad Request: chat_id is empty")
    if re.fullmatch(r"-?\d+", chat):
        return {"id": int(chat), "type": "private" if not chat.startswith("-") else "supergroup"}
    if chat.startswith("@"):
        return {"id": -1001000000000 - len(chat), "type": "channel", "username": chat[1:]}
    raise ApiError(400, "Bad Request: chat not found")


def _user(user: dict) -> dict:
    return {k: user[k] for k in ("id", "is_bot", "first_name", "username")}


def _check_keyboard(markup: object) -> dict | None:
    if not markup:
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("keyboard", []):
        for button in row:
            if not button.get("text"):
                raise ApiError(400, "Bad Request: keyboard button text is empty")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if not button.get("text"):
                raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup


def _check_markup(text: str, parse_mode: object) -> None:
    """Telegram refuses HTML it cannot parse; here: tags it does not know (a light check)."""
    if parse_mode in (None, ""):
        return
    if str(parse_mode) not in ("HTML", "MarkdownV2", "Markdown"):
        raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode}")
    if parse_mode == "HTML":
        for match in re.finditer(r"</?([A-Za-z][\w-]*)", text):
            if match.group(1).lower() not in _HTML_TAGS:
                raise ApiError(
                    400,
                    f'Bad Request: can\'t parse entities: Unsupported start tag "{match.group(1)}" '
                    f"at byte offset {len(text[: match.start()].encode())}",
                )


def _replace_customer(value: Any, chat_id: int) -> Any:
    """Every ``id``/``user_id`` equal to the fixtures' customer, replaced by ``chat_id`` (in place)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("id", "user_id") and item == CUSTOMER:
                value[key] = chat_id
            else:
                _replace_customer(item, chat_id)
    elif isinstance(value, list):
        for item in value:
            _replace_customer(item, chat_id)
    return value
