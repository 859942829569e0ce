"""A Rasa-compatible REST channel: ``POST /webhooks/rest/webhook`` answers with the bot's messages.

Clients, test scripts and load tools written for Rasa's ``rest`` channel work unchanged: they post
``{"sender": "...", "message": "...", "metadata": {...}}`` and get the JSON array of what the bot
said to that message (``recipient_id``, ``text``, ``buttons``; ``image`` and ``custom`` when a reply
has them). The sender is an identity on the channel ``rest`` like any other: it has its own history
and can be linked to a Telegram or web customer with a code. Written only against the public
channel contract (``seamline.shared.channel``), as a third-party channel would be; see
docs/channels.md ("The REST channel") for the security model and every status code.

REST has no push: what is said to a sender outside one of its requests (an agent's reply, a link
question) waits in a bounded mailbox and comes first in that sender's next answer. With Redis the
mailbox and the answers kept for resends are in Redis, so any worker serves any sender
(bots/rest_mailbox.py); without it they are in this process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, ClassVar

from aiohttp import web

from seamline.bots.rest_mailbox import Answers, Mailbox, MemoryAnswers, MemoryMailbox, RedisAnswers, RedisMailbox
from seamline.bots.rest_replies import answering, collecting, rasa_items
from seamline.shared.channel import ChannelContext, Setting
from seamline.shared.errors import ChannelError, ConfigError, StoreError
from seamline.shared.message import Message, Reply, storable

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # bytes of one request body
MAX_SENDER = 128  # characters: what an identity holds
MAX_TEXT = 4096  # characters of one message
MAX_PAYLOAD = 256  # a "/command" longer than this is plain text (what a stored payload holds)
MAX_MESSAGE_ID = 128
WINDOW = 10.0  # seconds the request budgets count over
LANGUAGE = re.compile(r"[a-z]{2}")


def _token(raw: str) -> str:
    token = raw.strip()
    if len(token) < 16:
        raise ValueError("the token is shorter than 16 characters; anyone could guess it")
    return token


def _flag(raw: str) -> bool:
    value = str(raw).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"{raw!r} is not true or false")


def _count(raw: str) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{raw!r} is not a whole number") from None
    if value < 0:
        raise ValueError(f"{value} is negative")
    return value


class BadRequest(ValueError):
    """A request the channel refuses; the message is the reason the client is told."""


class RestChannel:
    """The ``rest`` channel. Enabled by ``SEAMLINE_REST_TOKEN`` (requests must carry it) or, only behind
    your own authentication or on a private network, by ``SEAMLINE_REST_ALLOW_ANONYMOUS=true``."""

    name: ClassVar[str] = "rest"
    channel: ClassVar[str] = "rest"  # the name the pipeline registers adapters under
    labels: ClassVar[Mapping[str, str]] = {"en": "App chat", "ru": "Чат в приложении"}
    icon: ClassVar[str] = "🔌"
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting(
            "token",
            "SEAMLINE_REST_TOKEN",
            secret=True,
            enables=True,
            parse=_token,
            example="$(python -c 'import secrets; print(secrets.token_urlsafe(32))')",
            help="the bearer token every request must carry (Authorization: Bearer …, or ?token=…)",
        ),
        Setting(
            "allow_anonymous",
            "SEAMLINE_REST_ALLOW_ANONYMOUS",
            default=False,
            enables=True,
            parse=_flag,
            example="true",
            help="serve requests without a token: only behind your own auth or on a private network",
        ),
        Setting(
            "rate_limit",
            "SEAMLINE_REST_RATE_LIMIT",
            default=30,
            parse=_count,
            example="30",
            help="messages per 10 s per sender (0: no limit)",
        ),
        Setting(
            "address_rate_limit",
            "SEAMLINE_REST_ADDRESS_RATE_LIMIT",
            default=300,
            parse=_count,
            example="300",
            help="requests per 10 s per client address (0: no limit)",
        ),
        Setting(
            "mailbox",
            "SEAMLINE_REST_MAILBOX",
            default=50,
            parse=_count,
            example="50",
            help="replies kept per sender between its requests (0: none; they go to another channel)",
        ),
    )

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        """On without a token only when anonymous requests were asked for in so many words."""
        if not config.get("token") and not config.get("allow_anonymous"):
            raise ConfigError(
                "SEAMLINE_REST_TOKEN",
                "the REST channel is on but has no token, so anyone could write as any sender and read their replies",
                "set SEAMLINE_REST_TOKEN (or [channels.rest] token) to a long random string, or "
                "SEAMLINE_REST_ALLOW_ANONYMOUS=true if your own proxy authenticates requests",
            )

    def __init__(self, *, config: Mapping[str, Any], context: ChannelContext) -> None:
        self.check(config)
        self._token = (config.get("token") or "").encode("utf-8", "surrogatepass")
        self._anonymous = bool(config.get("allow_anonymous", False))
        self._context = context
        self._per_sender = int(config.get("rate_limit", 30))
        self._per_address = int(config.get("address_rate_limit", 300))
        size = int(config.get("mailbox", 50))
        redis = (getattr(context, "extras", None) or {}).get("redis")  # a client factory with Redis
        self._mailbox: Mailbox | None = None
        if size:
            self._mailbox = RedisMailbox(client=redis(), size=size) if redis else MemoryMailbox(size=size)
        self._answers: Answers = RedisAnswers(client=redis()) if redis else MemoryAnswers()

    # -- the contract ----------------------------------------------------------------------------

    def to_message(self, native: Any) -> Message | None:
        """A request body as a Message; None when it carries no message (a poll for waiting replies).
        Raises BadRequest naming what is wrong. A message starting with "/" is a payload (a button
        press, ``/intent``) as in Rasa; its stored text is the command without its arguments."""
        if not isinstance(native, dict):
            raise BadRequest("the body must be a JSON object")
        sender = native.get("sender")
        if isinstance(sender, int) and not isinstance(sender, bool):
            sender = str(sender)
        if not isinstance(sender, str) or not 1 <= len(sender) <= MAX_SENDER:
            raise BadRequest(f"sender must be a string of 1 to {MAX_SENDER} characters")
        metadata = native.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise BadRequest("metadata must be a JSON object")
        text = native.get("message")
        if text is not None and not isinstance(text, str):
            raise BadRequest("message must be a string")
        if text is not None and len(text) > MAX_TEXT:
            raise BadRequest(f"message is longer than {MAX_TEXT} characters")
        message_id = (metadata or {}).get("message_id")
        if isinstance(message_id, int) and not isinstance(message_id, bool):
            message_id = str(message_id)
        if message_id is not None and (not isinstance(message_id, str) or not 1 <= len(message_id) <= MAX_MESSAGE_ID):
            raise BadRequest(f"metadata.message_id must be a string of 1 to {MAX_MESSAGE_ID} characters")
        if not text or not text.strip():
            return None
        text = text.strip()
        payload = text if text.startswith("/") and len(text) <= MAX_PAYLOAD else None
        language = (metadata or {}).get("language")
        return Message(
            channel=self.name,
            address=sender,
            sender=sender,
            text=text.split(maxsplit=1)[0] if payload else text,
            payload=payload,
            external_id=_external_id(sender, message_id) if message_id else None,
            language=language if isinstance(language, str) and LANGUAGE.fullmatch(language) else None,
        )

    async def send(self, address: str, reply: Reply) -> None:
        items = rasa_items(address, reply)
        if all(answering(address, item) for item in items):
            return
        if self._mailbox is not None:
            try:
                await self._mailbox.put(address, items)
            except StoreError as exc:  # the outbox tries the reply again later (or another channel)
                raise ChannelError(f"rest sender {address}'s reply could not be kept for its next request") from exc
        else:  # no push and no mailbox: let the framework try the customer's other channels
            raise ChannelError(f"rest sender {address} has no request open and the mailbox is off")

    def routes(self) -> Iterable[web.AbstractRouteDef]:
        return [web.get("/webhooks/rest/", self._health), web.post("/webhooks/rest/webhook", self._receive)]

    async def start(self) -> None:
        if self._anonymous and not self._token:
            log.warning(
                "REST channel: requests without a token are accepted (SEAMLINE_REST_ALLOW_ANONYMOUS): "
                "anyone reaching /webhooks/rest/webhook can write as any sender and read its replies"
            )

    async def stop(self) -> None:
        await self._answers.close()
        if self._mailbox is not None:
            await self._mailbox.close()

    def deep_link(self, token: str) -> str | None:
        return None  # nothing to open: the REST client is the bot author's own app

    # -- serving ---------------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _receive(self, request: web.Request) -> web.Response:
        try:
            return await self._answer(request)
        except BadRequest as exc:
            return _error(400, str(exc))
        except StoreError:
            log.warning("REST channel: storage failed", exc_info=True)
            return _error(503, "the message could not be stored now; send it again", retry_after=5)
        except ConnectionError:
            raise  # the client went away: nobody to answer
        except Exception:  # the one broad except of this receive path: a bug is logged, not a 500
            log.exception("REST channel: a request failed")
            return _error(
                503,
                "the message could not be answered now; send it again (with the same "
                "metadata.message_id, it is not answered twice)",
                retry_after=5,
            )

    async def _answer(self, request: web.Request) -> web.Response:
        if request.query.get("stream", "").lower() in ("true", "1"):
            raise BadRequest("stream=true is not supported; post without it to get the JSON array")
        address = request.remote or "unknown"
        wait = await self._take("address", address, self._per_address)
        if wait:
            return _error(429, "too many requests from your address", retry_after=wait)
        if not self._authorized(request):
            return _error(
                401,
                "missing or wrong token: send Authorization: Bearer <SEAMLINE_REST_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if request.content_type != "application/json":
            return _error(415, "the body must be JSON (Content-Type: application/json)")
        if (request.content_length or 0) > MAX_BODY:
            return _error(413, f"the body is larger than {MAX_BODY} bytes")
        body = await _read(request)
        if body is None:
            return _error(413, f"the body is larger than {MAX_BODY} bytes")
        try:
            native = json.loads(body)
        except (ValueError, RecursionError):
            raise BadRequest("the body is not valid JSON") from None
        message = self.to_message(native)
        sender = message.sender if message else storable(str(native["sender"]))
        if message is not None:
            wait = await self._take("sender", sender, self._per_sender)
            if wait:
                return _error(429, "too many messages from this sender", retry_after=wait)
            message = replace(message, client_address=address)
        replies = await self._turn(message) if message is not None else []
        try:
            waiting = await self._mailbox.take(sender) if self._mailbox is not None else []
        except StoreError:
            if message is None:  # a poll with nothing else to answer: the client polls again
                log.warning("REST channel: the mailbox could not be read", exc_info=True)
                return _error(503, "waiting replies could not be read now; poll again", retry_after=5)
            log.warning("REST channel: the mailbox could not be read; its replies wait for the next request")
            waiting = []  # the taken-together read failed: they stay in the mailbox
        return web.json_response(waiting + replies)

    async def _turn(self, message: Message) -> list[dict[str, Any]]:
        """Walk the message (stored before anything else happens to it) and collect what it was answered."""
        if message.external_id:
            try:
                again = await self._answers.get(message.external_id)
            except StoreError:  # not remembered now: the database still refuses a second turn
                again = None
            if again is not None:
                return again  # a resend: the same answer, no second turn
        with collecting(message.address) as items:
            handled = await self._context.conversations.handle(message)
        if message.external_id:
            if getattr(handled, "duplicate", False):  # answered before this process remembered it
                return []
            try:
                await self._answers.keep(message.external_id, items)
            except StoreError:  # a resend of it then gets [] (answered, not remembered)
                log.warning("REST channel: an answer could not be kept for a resend")
        return items

    def _authorized(self, request: web.Request) -> bool:
        if not self._token:
            return True
        header = request.headers.get("Authorization", "")
        given = header[7:].strip() if header[:7].lower() == "bearer " else request.query.get("token", "")
        return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), self._token)

    async def _take(self, kind: str, who: str, limit: int) -> float:
        if not limit:
            return 0.0
        key = hashlib.sha256(who.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return await self._context.limiter.take(f"rest:{kind}:{key}", limit=limit, window=WINDOW)


def _external_id(sender: str, message_id: str) -> str:
    """The client's message id, made unique per sender (ids are unique per channel in the database)."""
    digest = hashlib.sha256(f"{sender}\n{message_id}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"rest-{digest[:40]}"


async def _read(request: web.Request) -> bytes | None:
    """The body, or None past MAX_BODY (read no further than that)."""
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(16384):
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, reason: str, *, retry_after: float = 0, headers: dict[str, str] | None = None) -> web.Response:
    headers = dict(headers or {})
    if retry_after:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return web.json_response({"error": reason}, status=status, headers=headers)
