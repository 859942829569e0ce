"""The VK channel: Callback API at ``POST /vk/callback`` when configured, else Bots Long Poll.

vk_api is synchronous, so every call to it runs in a thread, from here and nowhere else
(``asyncio.to_thread``; the long poll in a daemon thread, see bots/vk_transport.py). vk_api always
calls ``https://api.vk.ru`` and has no base URL option: ``VkTransport``, mounted on its requests
session, sends those calls to ``SEAMLINE_VK_API_BASE`` instead (a proxy, or the local fake in
tests/fakes/vk.py). An event is stored in the durable inbox before VK hears "ok" (or before the
long poll position is remembered), and processed after: events of one conversation one after the
other, conversations concurrently (bots/intake.py); what a crash left unprocessed is processed after
the restart. A malformed event gets 400; when it cannot be stored, 503, and VK sends it again.
Replies go out with a ``random_id`` derived from the stored reply, so a retried
``messages.send`` (error 6 or 10, HTTP 5xx, a lost connection) never makes a second message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar

import requests
import vk_api
from aiohttp import web
from jconfig.memory import MemoryConfig
from vk_api.bot_longpoll import VkBotLongPoll
from vk_api.exceptions import TOO_MANY_RPS_CODE

from seamline.bots.retry import RetryPolicy
from seamline.bots.vk_format import (
    EventError,
    custom_params,
    keyboard,
    random_id,
    split_text,
    to_message,
    with_image_link,
)
from seamline.bots.vk_settings import SETTINGS, check_callback
from seamline.bots.vk_transport import API_VERSION, PollPosition, VkTransport, classify, in_daemon_thread, startup_error
from seamline.bots.workers import worker_index
from seamline.shared.channel import ChannelConfig, ChannelContext, Setting
from seamline.shared.errors import ChannelError, ConfigError, StoreError
from seamline.shared.history import StoredMessage, stored_custom, stored_image
from seamline.shared.message import Button, Message, Reply
from seamline.shared.storage.inbox import Entry, Taken

__all__ = ["VkChannel", "VkTransport", "to_message"]

log = logging.getLogger(__name__)


class VkChannel:
    """VK through vk_api: the Callback API when a confirmation string is given, else Bots Long Poll."""

    name: ClassVar[str] = "vk"
    channel: ClassVar[str] = "vk"
    labels: ClassVar[Mapping[str, str]] = {"en": "VK", "ru": "ВКонтакте"}
    icon: ClassVar[str] = "💬"
    settings: ClassVar[tuple[Setting, ...]] = SETTINGS

    @classmethod
    def check(cls, config: ChannelConfig) -> None:
        """The Callback API needs both its confirmation string and its secret."""
        check_callback(config)

    def __init__(
        self,
        *,
        config: Mapping[str, Any],
        context: ChannelContext,
        wait: int = 25,
        concurrency: int = 4,
        shutdown_timeout: float | None = None,
    ) -> None:
        """``wait``: seconds a long poll is held; ``rate_limit`` (a setting): API calls a second; the retry
        policy (bots/retry.py) covers errors 6 and 10, 5xx and network errors; ``callback_buttons``: reply
        buttons as callback buttons (message_event) instead of text buttons. The long poll position is kept
        in the data dir, so that after a restart the events that came while Seamline was stopped are
        fetched (as long as VK still has them) instead of skipped. Bots Long Poll runs in one process only
        (VK gives each poller every event): worker 0 under ``seamline run --workers N``, and a process
        whose ``polling`` setting is false never polls; the others send. ``shutdown_timeout``: seconds
        the events being processed get at stop (default: the shutdown grace of the settings)."""
        self._conversations, self._store = context.conversations, context.extras["store"]
        self._token, self._group_id = config["token"], int(config["group_id"])
        self._api_base = config.get("api_base") or ""
        self._confirmation, self._secret = config.get("confirmation") or "", config.get("secret") or ""
        self._intake = context.extras["intake"]("vk", self._process_row)
        self._position = PollPosition(context.data_dir / f"vk-longpoll-{self._group_id}.json")
        self._wait, self._retry = wait, context.extras.get("retry") or RetryPolicy()
        grace = getattr(context.extras.get("settings"), "shutdown_grace", 10.0)
        self._callback_buttons = bool(config.get("callback_buttons"))
        self._shutdown_timeout = grace if shutdown_timeout is None else shutdown_timeout
        self._polling = bool(config.get("polling", True)) and worker_index() in (None, 0)
        rate_limit = config.get("rate_limit", 20)
        self._interval, self._next_call = (1 / rate_limit if rate_limit > 0 else 0.0), 0.0
        # With Redis the pace is shared by every worker (VK's limit is the community's, not a process's).
        self._rate, self._shared = rate_limit, context.limiter if context.extras.get("redis") else None
        self._slots = asyncio.Semaphore(concurrency)  # never more than a few threads of the default pool
        self._http = requests.Session()
        for prefix in ("https://", "http://"):
            self._http.mount(prefix, VkTransport(self._api_base))
        self._vk = vk_api.VkApi(token=self._token, session=self._http, api_version=API_VERSION, config=MemoryConfig)
        # vk_api spaces calls by sleeping under one lock, in whichever thread calls, and retries error 6
        # for ever; here calls are spaced on the event loop and retried by the policy.
        self._vk.RPS_DELAY = 0
        self._vk.lock = contextlib.nullcontext()
        self._vk.error_handlers.pop(TOO_MANY_RPS_CODE, None)
        self._poller: asyncio.Task | None = None
        self._running = False

    @property
    def callback(self) -> bool:
        return bool(self._confirmation)

    def to_message(self, native: Any) -> Message | None:
        return to_message(native)

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/vk/callback", self._callback)] if self.callback else []

    def deep_link(self, token: str) -> str:
        """The vk.me link that opens the community's messages; the first message comes with ``ref`` = token."""
        return f"https://vk.me/club{self._group_id}?ref={token}"

    # -- out ---------------------------------------------------------------------------------------

    async def send(self, address: str, reply: Reply) -> None:
        """The text in parts with the keyboard on the last; an image as a link line under the text
        (see ``with_image_link``); ``custom["vk"]``'s parameters on the last part (``custom_params``)."""
        text = with_image_link(reply.text, reply.image)
        extra = custom_params(reply.custom)
        if not text.strip() and not extra:
            return  # VK refuses an empty message; the reply stays stored
        parts = split_text(text)
        board = keyboard(reply.buttons, callback=self._callback_buttons)
        key = reply.id or f"{address}:{reply.ts.isoformat()}:{reply.text}"
        for number, part in enumerate(parts):
            params: dict[str, Any] = {"peer_id": int(address), "random_id": random_id(key, number)}
            if part:
                params["message"] = part
            if number == len(parts) - 1:
                if board:
                    params["keyboard"] = board
                params.update(extra)  # custom["vk"] may replace the keyboard
            await self._call("messages.send", **params)

    async def _call(self, method: str, **params: Any) -> Any:  # vk_api answers untyped JSON
        return await self._retrying(method, self._vk.method, method, params)

    async def _retrying(self, what: str, function: Any, *args: Any) -> Any:
        """``function(*args)`` in a thread, paced, under the retry policy (bots/retry.py)."""

        async def attempt() -> object:
            await self._pace()
            async with self._slots:
                return await asyncio.to_thread(function, *args)

        return await self._retry.run(f"VK {what}", attempt, partial(classify, what))

    async def _pace(self) -> None:
        """At most ``rate_limit`` calls a second, waiting on the loop, not in a thread: counted in
        Redis across workers when it is configured (in this process while Redis is away), else
        evenly spaced in this process."""
        if not self._interval:
            return
        if self._shared is not None:
            try:
                key = f"vk:api:{self._group_id}"
                for _ in range(1000):  # a unit frees within the second; bounded all the same
                    wait = await self._shared.take(key, limit=self._rate, window=1.0)
                    if not wait:
                        return
                    await asyncio.sleep(wait)
            except StoreError as exc:
                log.debug("VK API pace kept in this process: %s", exc)
        now = time.monotonic()
        at = max(now, self._next_call)
        self._next_call = at + self._interval
        if at > now:
            await asyncio.sleep(at - now)

    # -- in ----------------------------------------------------------------------------------------

    async def _callback(self, request: web.Request) -> web.Response:
        """Callback API: store the event, then answer (the confirmation string, or "ok"); process after."""
        try:
            body = (await request.read()).decode("utf-8")
            event = json.loads(body)
        except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deep
            return web.Response(status=400, text="the body is not valid JSON")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return web.Response(status=400, text="expected a JSON object with a 'type'")
        if not isinstance(event.get("group_id"), int) or isinstance(event["group_id"], bool):
            return web.Response(status=400, text="'group_id' must be a number")
        secret = event.get("secret")
        if (event["type"] != "confirmation" or secret is not None) and not hmac.compare_digest(
            str(secret or "").encode("utf-8", "surrogatepass"), self._secret.encode()
        ):
            log.warning(
                "VK callback with a wrong secret refused (type=%s, event=%s)", event["type"], event.get("event_id")
            )
            return web.Response(status=403, text="wrong secret")
        if event.get("group_id") != self._group_id:
            log.warning("VK callback for community %r refused (event=%s)", event.get("group_id"), event.get("event_id"))
            return web.Response(status=403, text=f"this server answers community {self._group_id}")
        if event["type"] == "confirmation":
            return web.Response(text=self._confirmation)
        try:
            entry = _entry(event, body)
        except EventError as exc:
            return web.Response(status=400, text=str(exc))
        try:
            await self._intake.take([entry] if entry else [])
        except StoreError as exc:
            log.warning(
                "VK event %s not stored, so not acknowledged (VK sends it again): %s",
                entry.platform_id if entry else "-",
                exc,
            )
            return web.Response(status=503, text="the event could not be stored; send it again")
        return web.Response(text="ok")

    async def _process_row(self, taken: Taken) -> None:
        """One stored event; raising leaves it in the inbox to be tried again (bots/intake.py logs it)."""
        event = json.loads(taken.body)
        message = to_message(event)
        if message is None:
            return
        button = event["object"] if event.get("type") == "message_event" else None
        on_stored = partial(self._answer_button, button) if button else None
        # VK already has our acknowledgement: a storage outage is waited out, not lost.
        handled = await self._conversations.handle_retrying(
            message, on_stored=on_stored, attempts=self._retry.attempts, backoff=self._retry.base
        )
        if handled.duplicate and taken.attempts > 1:
            # Taken over after a crash or a failure: its turn was committed, but its answers may not have
            # gone out (a crash while they waited for their turn to be sent). Sent again with the same
            # random_id, VK drops those it already has.
            for reply in await self._store.replies_to("vk", message.external_id):
                buttons = tuple(Button(b["title"], b["payload"]) for b in reply.buttons or ())
                try:
                    again = Reply(
                        reply.text,
                        buttons,
                        id=reply.id,
                        ts=reply.created_at,
                        image=stored_image(reply),
                        custom=stored_custom(reply),
                    )
                    await self.send(message.address, again)
                except ChannelError as exc:  # stays stored: the customer sees it in their history
                    log.warning("VK reply %s not sent again (peer=%s): %s", reply.id, message.address, exc)

    async def _answer_button(self, button: dict, stored: StoredMessage) -> None:
        """Stop the pressed callback button's spinner once the press is stored; the answer follows."""
        try:
            await self._call(
                "messages.sendMessageEventAnswer",
                event_id=button["event_id"],
                user_id=button["user_id"],
                peer_id=button["peer_id"],
            )
        except ChannelError as exc:
            log.warning(
                "VK button answer failed (peer=%s, event=%s): %s", button.get("peer_id"), button.get("event_id"), exc
            )

    async def _poll(self, longpoll: VkBotLongPoll) -> None:
        """Bots Long Poll; vk_api's ``check`` handles ``failed`` 1 (new ts), 2 (new key), 3 (new key and ts)."""
        failures = 0
        while True:
            before = longpoll.ts
            try:
                events = await in_daemon_thread(longpoll.check)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the one broad except of the poll loop
                failures += 1
                delay = self._retry.pause(failures)
                log.warning("VK long poll failed (%s: %s); again in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                continue
            entries = []
            for event in events:
                try:
                    entry = _entry(event.raw, json.dumps(event.raw))
                except EventError as exc:
                    log.warning("VK event %s skipped: %s", event.raw.get("event_id"), exc)
                    continue
                if entry is not None:
                    entries.append(entry)
            try:  # the position is remembered (and moved on) only once the events are durable
                await self._intake.take(entries)
            except StoreError as exc:
                longpoll.ts = before
                failures += 1
                delay = self._retry.pause(failures)
                log.warning("VK events not stored (%s); fetching them again in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            self._position.remember(longpoll.ts)

    # -- start and stop ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the token and community before serving; a wrong setting stops Seamline, named."""
        if self._running:
            return
        group_id = self._group_id
        try:
            found = await self._call("groups.getById")
            groups = found.get("groups", []) if isinstance(found, dict) else found
            token_group = groups[0]["id"] if groups else None
            if token_group != group_id:
                raise ConfigError(
                    "SEAMLINE_VK_GROUP_ID",
                    f"the VK token belongs to community {token_group}, not {group_id}",
                    f"Set SEAMLINE_VK_GROUP_ID={token_group}, or use that community's token",
                )
            if not self.callback and self._polling:
                longpoll = await self._retrying(
                    "groups.getLongPollServer", VkBotLongPoll, self._vk, group_id, self._wait
                )
                longpoll.session = self._http  # the long poll server through the same transport
                self._position.resume(longpoll)
                self._poller = asyncio.create_task(self._poll(longpoll), name="seamline-vk-longpoll")
        except ChannelError as exc:
            raise startup_error(exc, self._group_id, self._api_base) from exc
        self._running = True
        await self._intake.start()  # what a crash left stored but unprocessed
        log.info(
            "VK channel: community %s, %s",
            group_id,
            "Callback API at /vk/callback"
            if self.callback
            else "Bots Long Poll"
            if self._polling
            else "sending only; another process polls",
        )

    async def stop(self) -> None:
        """Stop polling at once (its thread ends by itself within ``wait``); let queued events finish.
        Safe to call again (shutdown, then cleanup)."""
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        await self._intake.stop(self._shutdown_timeout if self._running else 0)
        self._running = False
        self._http.close()


def _entry(event: dict, body: str) -> Entry | None:
    """An inbox entry for an event the bot answers (None for the others, logged); EventError if malformed."""
    event_id = event.get("event_id")
    if event_id is not None and not (isinstance(event_id, str) and event_id.isascii() and event_id.isprintable()):
        raise EventError("'event_id' must be a string of printable ASCII characters (VK's are hex)")
    message = to_message(event)
    if message is None:
        log.info("VK %s event %.40s ignored", event.get("type"), event.get("event_id"))
        return None
    if message.external_id is None:  # to_message gives every event it keeps an id
        raise EventError("the event has no 'event_id'")
    if len(message.external_id) > 160:
        raise EventError("'event_id' is longer than 160 characters")
    return Entry(message.external_id, message.address, body)
