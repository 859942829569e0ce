"""The website chat channel: the widget's static files and its WebSocket at ``/chat/ws``.

The protocol is documented in docs/web-chat-protocol.md. A visitor is known by a signed
token the server hands out; everything a connection may see is that visitor's own history
(its customer's, once linked to other channels by proof). Besides chatting, a visitor may ask
for a deep link to continue in a messenger (a ``link`` frame), and a site may vouch for its
logged-in user by signing the user's id (``external_id`` + ``signature`` in ``hello``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, cast

from aiohttp import WSCloseCode, WSMsgType, web
from sqlalchemy.exc import SQLAlchemyError

from seamline.bots.web_frames import (
    MAX_ID,
    MAX_TEXT,
    FrameError,
    checked_id,
    client_id,
    page,
    parse,
    reply_frame,
    to_frame,
    to_message,
)
from seamline.bots.web_limits import (
    Connections,
    FrameBudget,
    MemoryConnections,
    RedisConnections,
    address_key,
    limit_accept_errors,
)
from seamline.bots.web_links import Linking, label
from seamline.bots.web_relay import LocalRelay, RedisRelay, Relay
from seamline.shared.channel import ChannelContext, Setting
from seamline.shared.errors import StoreError, Unreachable
from seamline.shared.history import StoredMessage
from seamline.shared.linking import Linker
from seamline.shared.message import Message, Reply
from seamline.shared.net import client_address
from seamline.shared.tokens import Signer

__all__ = ["MAX_ID", "MAX_TEXT", "FrameError", "WebChannel", "to_frame", "to_message"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_FRAME = 64 * 1024
NO_HELLO = 4408  # close code: no ``hello`` within the deadline (docs/web-chat-protocol.md)
TRY_AGAIN_LATER = 1013  # close code: the server cannot serve the chat now (storage down); reconnect later
UNAVAILABLE = "the server cannot store messages now; resend it with the same id once reconnected (the widget does)"


class WebChannel(Linking):
    """The chat widget. Its settings are the framework's own (``[web]`` of seamline.toml, read into
    Settings: rate limits, origins, the identity secret), handed in as ``context.extras["settings"]``."""

    name: ClassVar[str] = "web"
    channel: ClassVar[str] = "web"
    labels: ClassVar[Mapping[str, str]] = {"en": "Web", "ru": "Сайт"}
    icon: ClassVar[str] = "🌐"
    settings: ClassVar[tuple[Setting, ...]] = ()

    def __init__(self, *, config: Mapping[str, Any], context: ChannelContext, history_limit: int = 200) -> None:
        """``extras``: ``settings`` (Settings), ``store`` and ``linker`` (deep links and signed site
        identities), ``redis`` (a client factory when Redis is configured: the per-visitor and per-address
        budgets then hold across processes), ``channels`` (the other channels, for "continue in…")."""
        extras, settings = context.extras, context.extras["settings"]
        self._settings = settings
        self._budget = FrameBudget(
            limiter=context.limiter, per_visitor=settings.web_rate_limit, per_address=settings.web_address_rate_limit
        )
        redis = extras.get("redis")
        self._connections: Connections = RedisConnections(client=redis()) if redis else MemoryConnections()
        self._connection_cap, self._hello_timeout = settings.web_connections_per_address, settings.web_hello_timeout
        self._history_bytes, self._proxies = settings.web_history_bytes, settings.trusted_proxies
        self._pipeline: Any = cast(Any, context.conversations)  # the pipeline itself: history, on_linked
        self._store, self._linker = extras.get("store"), extras.get("linker")
        self._identity_key = settings.web_identity_secret.encode()
        self._channels: Mapping[str, Any] = extras.get("channels", {})  # the others, for their deep links
        self._allowed_origins = frozenset(settings.web_allowed_origins)
        self._signer = Signer(
            secret_key=settings.secret_key,
            purpose="web-visitor",
            old_keys=settings.old_secret_keys,
            max_age=settings.visitor_token_days * 86400,
        )
        self._history_limit = history_limit
        self._sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        # Frames for a visitor reach its sockets in whichever worker holds them (bots/web_relay.py).
        self._relay: Relay = RedisRelay(client=redis(), deliver=self._deliver) if redis else LocalRelay(self._deliver)
        if self._store is not None:  # a link confirmed on another channel: open widgets get the joined history
            self._pipeline.on_linked.append(self._refresh)

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/", self._page), web.get("/widget.js", self._widget), web.get("/chat/ws", self._websocket)]

    def to_message(self, native: Any) -> Message | None:
        """A ``message`` frame of a visitor (``{"visitor": ..., "frame": {...}, "lang": ...}``) as a Message."""
        return to_message(native["visitor"], native["frame"], native.get("lang"))

    def deep_link(self, token: str) -> str | None:
        return None  # the widget lives on the bot author's site: there is no link to open it

    async def start(self) -> None:
        limit_accept_errors()  # a client holding every descriptor must not fill the disk with tracebacks
        await self._relay.start()

    async def stop(self) -> None:
        """Say "going away" to every open widget (they reconnect by themselves); release the counters."""
        await self._close_all()
        for _ in range(200):  # their handlers release them (and unsubscribe) before the relay closes
            if not self._sockets:
                break
            await asyncio.sleep(0.01)
        await self._relay.close()
        await self._connections.close()

    async def _close_all(self) -> None:
        """On shutdown say "going away" to every open widget; they reconnect by themselves."""
        sockets = [ws for group in self._sockets.values() for ws in group]
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server restarting") for ws in sockets),
            return_exceptions=True,
        )

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Content-Type": "text/html; charset=utf-8"})

    async def _widget(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(
            STATIC / "widget.js",
            headers={
                "Content-Type": "application/javascript; charset=utf-8",
                "Cache-Control": "public, max-age=300",
                "Access-Control-Allow-Origin": "*",
            },
        )

    async def send(self, address: str, reply: Reply) -> None:
        if not await self._broadcast(address, reply_frame(reply)):
            # No tab open in any worker: the reply is stored and shown when they come back, but a reply
            # that can go elsewhere (an agent's, while the customer is away) should go to another channel.
            raise Unreachable(f"web visitor {address} has no chat open")

    async def _broadcast(self, visitor: str, frame: dict) -> int:
        """Send a frame to the visitor's open tabs in every worker; how many workers (or, in process,
        sockets) got it. With Redis down, this worker's tabs get it."""
        try:
            reached = await self._relay.publish(visitor, frame)
        except StoreError as exc:
            log.warning("widget frame relayed in this process only: %s", exc)
            reached = 0
        # Nobody subscribed, yet a tab is here (Redis down, or this worker resubscribing): deliver here.
        return reached or (await self._deliver(visitor, frame) if isinstance(self._relay, RedisRelay) else 0)

    async def _deliver(self, visitor: str, frame: dict) -> int:
        """This process's open sockets of the visitor get the frame; how many did."""
        sent = 0
        for ws in list(self._sockets.get(visitor, ())):
            if not ws.closed:
                try:
                    await ws.send_json(frame)
                    sent += 1
                except ConnectionError:
                    pass  # the tab went away; it gets the message from history when it returns
        return sent

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if self._allowed_origins and origin is not None and origin not in self._allowed_origins:
            # Browsers always send Origin; a page of a site not on the list may not embed the chat.
            return web.json_response({"error": f"origin {origin} may not open the chat"}, status=403)
        address = address_key(client_address(request.remote, request.headers.get("X-Forwarded-For"), self._proxies))
        lease = await self._lease(address)
        if lease is False:
            refused = web.json_response(
                {"error": "too many chat connections from your address; close some tabs or try again later"},
                status=429,
                headers={"Retry-After": "10"},
            )
            refused.force_close()
            return refused
        try:
            return await self._serve(request, address)
        finally:
            if isinstance(lease, str):
                await self._connections.release(address, lease)

    async def _lease(self, address: str) -> str | bool | None:
        """A lease on one of the address's sockets; False when the cap is reached, None when uncounted."""
        if not self._connection_cap:
            return None
        try:
            return await self._connections.acquire(address, self._connection_cap) or False
        except StoreError as exc:  # Redis down: the chat stays open (see bots/web_limits.py)
            log.warning("widget socket not counted: %s", exc)
            return None

    async def _serve(self, request: web.Request, address: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        visitor: str | None = None
        language: str | None = None
        deadline = asyncio.get_running_loop().time() + self._hello_timeout
        try:
            while True:
                try:
                    raw = await ws.receive(
                        timeout=None if visitor else max(0.0, deadline - asyncio.get_running_loop().time())
                    )
                except TimeoutError:  # a socket that never says hello holds a descriptor for nothing
                    await ws.close(code=NO_HELLO, message=b"no hello in time")
                    break
                if raw.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                frame_id = None
                try:
                    wait = await self._budget.frame(address, visitor)  # every frame counts, garbage too
                    frame = _parsed(raw, wait)
                    frame_id = client_id(frame)
                    if wait:
                        raise FrameError("rate_limited", f"too many frames; wait {math.ceil(wait)} s", frame_id)
                    if frame["type"] == "hello":
                        if visitor:
                            raise FrameError("hello_repeated", "this connection has said hello already")
                        visitor, language = await self._hello(ws, frame, address, frame_id)
                        self._sockets[visitor].add(ws)
                        await self._relay.held(visitor)
                    elif frame["type"] not in ("ping", "message", "link", "older"):
                        raise FrameError("unknown_type", f"unknown frame type {frame['type'][:32]!r}", frame_id)
                    elif frame["type"] == "ping":
                        await ws.send_json({"type": "pong"})
                    elif visitor is None:
                        raise FrameError("hello_required", "send a hello frame first", frame_id)
                    elif frame["type"] == "message":
                        await self._message(ws, visitor, frame, language, address)
                    elif frame["type"] == "link":
                        await self._link(ws, visitor, frame, language)
                    else:
                        await self._older(ws, visitor, frame, address)
                except FrameError as exc:
                    await _error(ws, exc.code, exc.message, exc.frame_id)
                except ConnectionError:
                    break  # the client went away mid-answer
                except StoreError as exc:  # Redis or the database down: "reconnecting…", resent later
                    log.warning("web chat frame refused, storage unavailable (id=%s): %s", frame_id, exc)
                    await _error(ws, "unavailable", UNAVAILABLE, frame_id)
                    if visitor is None:  # no welcome yet: close, the widget reconnects after a pause
                        await ws.close(code=TRY_AGAIN_LATER, message=b"try again later")
                        break
                except Exception:
                    log.exception("web chat frame failed (visitor=%s, id=%s)", visitor, frame_id)
                    await _error(
                        ws,
                        "internal",
                        "the server failed on this message; it is kept, and you may resend it with the same id",
                        frame_id,
                    )
        finally:
            if visitor:
                self._sockets[visitor].discard(ws)
                if not self._sockets[visitor]:
                    del self._sockets[visitor]
                    await self._relay.released(visitor)
        return ws

    async def _hello(
        self, ws: web.WebSocketResponse, frame: dict, address: str, frame_id: str | None
    ) -> tuple[str, str | None]:
        token, language = frame.get("token"), frame.get("lang")
        language = language if language in ("ru", "en") else None
        visitor = self._signer.verify(token) if token else None
        wait = await self._budget.page(address, visitor)
        if wait:  # a welcome can be a page of history: these have a budget of their own
            raise FrameError("rate_limited", f"too many conversations opened; wait {math.ceil(wait)} s", frame_id)
        if token and visitor is None:
            await _error(ws, "bad_token", "this token is not valid here; a new conversation was started")
        if visitor is None:
            visitor, token = self._signer.new()
        identified = False
        site_user = self._claim(frame, visitor)
        if site_user is not None:
            visitor, token, identified = await self._identify(visitor, str(token), site_user, language)
        with _storage():
            history = await self._pipeline.history("web", visitor, self._history_limit)
        if history and self._store is not None:  # a known visitor is back: reachable on the web again
            await self._store.set_reachable("web", visitor, True)
        # A fresh token on every welcome: a token dies after days unused, not days after it was made.
        await ws.send_json(
            {
                "type": "welcome",
                "token": self._signer.sign(visitor),
                **page(history, self._history_bytes),
                "identified": identified,
                "channels": self.channels,
                "continue_in": self.continue_in(language),
                "labels": {n: label(a.labels, language) for n, a in self._channels.items()},
            }
        )
        return visitor, language

    async def _older(self, ws: web.WebSocketResponse, visitor: str, frame: dict, address: str) -> None:
        """An ``older`` frame: the page of history before the cursor a welcome (or older page) gave."""
        frame_id, before = checked_id(frame), frame.get("before")
        if not isinstance(before, str) or not 0 < len(before) <= MAX_ID:
            raise FrameError("bad_frame", "'before' must be the cursor from the last welcome or older frame", frame_id)
        wait = await self._budget.page(address, visitor)
        if wait:
            raise FrameError("rate_limited", f"too many pages of history; wait {math.ceil(wait)} s", frame_id)
        with _storage():
            history = await self._pipeline.history("web", visitor, self._history_limit)
        answer = {"type": "older", **page(history, self._history_bytes, before)}
        if frame_id:
            answer["id"] = frame_id
        await ws.send_json(answer)

    # -- messages ----------------------------------------------------------------------------------

    async def _message(
        self, ws: web.WebSocketResponse, visitor: str, frame: dict, language: str | None, address: str | None = None
    ) -> None:
        # The socket's client address goes along: link-code guesses are counted per address.
        message = replace(to_message(visitor, frame, language), client_address=address)

        kept: list[StoredMessage] = []

        async def acknowledge(stored: StoredMessage) -> None:
            # The echo is the acknowledgement; other tabs of the same visitor see it too.
            kept.append(stored)
            await self._broadcast(visitor, to_frame(stored))

        # Six digits may be a link code from another channel: if they join this visitor to another
        # customer, the widget is sent that customer's whole history.
        maybe_link = self._store is not None and not message.payload and Linker.code_in(message.text) is not None
        before = await self._store.find_customer("web", visitor) if maybe_link else None
        try:
            with _storage():
                handled = await self._pipeline.handle(message, on_stored=acknowledge)
        except StoreError:
            raise  # "unavailable": kept by the widget, sent again on reconnect
        except Exception:
            if kept:
                raise
            log.exception("web chat message not stored (visitor=%s, id=%s)", visitor, frame.get("id"))
            raise FrameError(
                "internal", "the server could not store this message; resend it with the same id", frame.get("id")
            ) from None
        if handled.duplicate:
            await ws.send_json({"type": "ack", "id": frame["id"], "duplicate": True})
        elif maybe_link:
            after = await self._store.find_customer("web", visitor)
            if after is not None and (before is None or after.id != before.id):
                await self._refresh(after.id)


@contextlib.contextmanager
def _storage():
    """The database or Redis unreachable (a refused connection is an OSError, which must not pass
    for the client going away): StoreError, answered with ``unavailable``."""
    try:
        yield
    except StoreError:
        raise
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"storage unreachable: {exc}") from exc


def _parsed(raw, refused: float) -> dict:
    """The frame's JSON object; FrameError for anything else (``rate_limited`` first when over budget)."""
    try:
        if raw.type != WSMsgType.TEXT:
            raise FrameError("bad_json", "frames must be JSON text")
        return parse(raw.data)
    except FrameError:
        if refused:
            raise FrameError("rate_limited", f"too many frames; wait {math.ceil(refused)} s") from None
        raise


async def _error(ws: web.WebSocketResponse, code: str, message: str, frame_id: str | None = None) -> None:
    frame = {"type": "error", "code": code, "message": message}
    if frame_id:
        frame["id"] = frame_id
    await ws.send_json(frame)
