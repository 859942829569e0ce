"""A Seamline channel for a messenger that speaks plain HTTP both ways (like Rasa's callback channel).

The messenger posts each customer message to ``POST /webhooks/callback/webhook``; the bot's replies
are posted to the messenger's URL (``SEAMLINE_CALLBACK_URL``). Both directions carry the shared
token (``Authorization: Bearer …``), so each side knows the other. This is the tutorial channel of
docs/channels.md: it uses only names exported by ``seamline``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import aiohttp
from aiohttp import web

from seamline import ChannelContext, ChannelError, Message, Reply, Setting, Unreachable

log = logging.getLogger(__name__)

MAX_TEXT = 4096


def _url(raw: str) -> str:
    url = raw.strip()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url


def _token(raw: str) -> str:
    if len(raw.strip()) < 16:
        raise ValueError("the token is shorter than 16 characters")
    return raw.strip()


class CallbackChannel:
    """Customer messages come in by webhook, replies go out by POST to the messenger."""

    name: ClassVar[str] = "callback"
    channel: ClassVar[str] = "callback"
    labels: ClassVar[Mapping[str, str]] = {"en": "Callback messenger", "ru": "Мессенджер"}
    icon: ClassVar[str] = "↩"
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting(
            "url",
            "SEAMLINE_CALLBACK_URL",
            enables=True,
            parse=_url,
            example="https://messenger.example/bot/replies",
            help="where replies are posted",
        ),
        Setting(
            "token",
            "SEAMLINE_CALLBACK_TOKEN",
            required=True,
            secret=True,
            parse=_token,
            example="a-long-random-shared-secret",
            help="carried by both directions",
        ),
        Setting(
            "link",
            "SEAMLINE_CALLBACK_LINK",
            default="",
            example="https://messenger.example/bot?start={token}",
            help="opens the bot with a token",
        ),
    )

    def __init__(self, *, config: Mapping[str, Any], context: ChannelContext) -> None:
        self._url, self._link = config["url"], config.get("link") or ""
        self._auth = f"Bearer {config['token']}"
        self._context = context
        self._http: aiohttp.ClientSession | None = None
        self._turns: set[asyncio.Task[Any]] = set()

    def to_message(self, native: Any) -> Message | None:
        """``{"type": "message", "id", "sender", "text", "payload"?}`` as a Message; other types (typing,
        read receipts) are not messages. Pure: tested against recorded payloads. Raises ValueError
        for a body that is no message at all."""
        if not isinstance(native, dict):
            raise ValueError("the body must be a JSON object")
        if native.get("type", "message") != "message":
            return None
        sender, text, payload = native.get("sender"), native.get("text") or "", native.get("payload")
        if not isinstance(sender, str) or not 1 <= len(sender) <= 128:
            raise ValueError("sender must be a string of 1 to 128 characters")
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise ValueError(f"text must be a string of at most {MAX_TEXT} characters")
        if payload is not None and (not isinstance(payload, str) or len(payload) > 256):
            raise ValueError("payload must be a string of at most 256 characters")
        message_id = native.get("id")
        return Message(
            channel=self.name,
            address=sender,
            sender=sender,
            text=text,
            payload=payload,
            external_id=str(message_id) if message_id is not None else None,
        )

    async def send(self, address: str, reply: Reply) -> None:
        if self._http is None:
            raise ChannelError("the callback channel is not started")
        body = {
            "recipient": address,
            "text": reply.text,
            "role": reply.role.value,
            "buttons": [{"title": b.title, "payload": b.payload} for b in reply.buttons],
        }
        try:
            async with self._http.post(self._url, json=body, headers={"Authorization": self._auth}) as answer:
                if answer.status in (404, 410):  # the messenger no longer knows this recipient
                    raise Unreachable(f"callback recipient {address} is gone ({answer.status})")
                if answer.status >= 300:
                    raise ChannelError(f"the messenger answered {answer.status} to a reply for {address}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ChannelError(f"could not post a reply for {address}: {exc!r}") from exc

    def routes(self) -> Iterable[web.AbstractRouteDef]:
        return [web.post("/webhooks/callback/webhook", self._receive)]

    async def start(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def stop(self) -> None:
        if self._turns:  # let turns under way deliver their replies, a little while
            await asyncio.wait(self._turns, timeout=5)
        if self._http is not None:
            await self._http.close()
            self._http = None

    def deep_link(self, token: str) -> str | None:
        return self._link.format(token=token) if self._link else None

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(given, self._auth.encode()):
            return web.json_response({"error": "missing or wrong token"}, status=401)
        try:
            message = self.to_message(await request.json())
        except ValueError as exc:  # also a body that is not JSON
            return web.json_response({"error": str(exc)}, status=400)
        if message is None:
            return web.json_response({"ok": True})
        return await self._store_then_acknowledge(message)

    async def _store_then_acknowledge(self, message: Message) -> web.Response:
        """Answer 200 once the message is stored, not before (a crash would lose what we said we have)
        and not after the whole turn (the messenger should not wait for the bot's thinking)."""
        stored = asyncio.Event()

        async def on_stored(_: Any) -> None:
            stored.set()

        turn = asyncio.create_task(self._context.conversations.handle(message, on_stored=on_stored))
        self._turns.add(turn)
        turn.add_done_callback(self._finished)
        waiting = asyncio.create_task(stored.wait())
        await asyncio.wait([turn, waiting], return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if stored.is_set() or (turn.done() and not turn.exception()):  # stored, or a resend seen before
            return web.json_response({"ok": True})
        return web.json_response({"error": "the message could not be stored; send it again"}, status=503)

    def _finished(self, turn: asyncio.Task[Any]) -> None:
        self._turns.discard(turn)
        if not turn.cancelled() and turn.exception() is not None:
            log.error("callback turn failed", exc_info=turn.exception())
