"""The website chat channel: the widget's static files and its WebSocket at ``/chat/ws``.

The protocol is documented in docs/web-chat-protocol.md. A visitor is known by a signed
token the server hands out; everything a connection may see is that visitor's own history.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict, deque
from pathlib import Path

from aiohttp import WSCloseCode, WSMsgType, web

from bots.pipeline import Pipeline
from shared.history import StoredMessage
from shared.message import Channel, Message, Reply
from shared.tokens import Signer

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_TEXT = 4096
MAX_FRAME = 64 * 1024
MAX_ID = 64
RATE_WINDOW = 10.0  # seconds; at most ``rate_limit`` messages per window and connection


class FrameError(Exception):
    def __init__(self, code: str, message: str, frame_id: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.frame_id = code, message, frame_id


def to_message(visitor: str, frame: dict, language: str | None = None) -> Message:
    """A ``message`` frame as a Message; raises FrameError for anything malformed. Pure."""
    frame_id = frame.get("id")
    if frame_id is not None and (not isinstance(frame_id, str) or not 0 < len(frame_id) <= MAX_ID):
        raise FrameError("bad_frame", f"'id' must be a string of 1-{MAX_ID} characters")
    text, payload = frame.get("text", ""), frame.get("payload")
    if not isinstance(text, str):
        raise FrameError("bad_frame", "'text' must be a string", frame_id)
    if payload is not None and (not isinstance(payload, str) or len(payload) > 256):
        raise FrameError("bad_frame", "'payload' must be a string of at most 256 characters", frame_id)
    if len(text) > MAX_TEXT:
        raise FrameError("too_long", f"text is {len(text)} characters; the limit is {MAX_TEXT}", frame_id)
    if not text.strip() and not payload:
        raise FrameError("empty", "text is empty", frame_id)
    return Message(channel=Channel.WEB, address=visitor, sender=visitor, text=text.strip(), payload=payload,
                   external_id=f"{visitor}:{frame_id}" if frame_id else None, language=language)


def to_frame(message: StoredMessage) -> dict:
    """A stored message as the widget sees it. A web customer's own message keeps the client's id."""
    frame_id = message.id
    if message.role == "customer" and message.channel == Channel.WEB.value and message.external_id:
        frame_id = message.external_id.split(":", 1)[1]
    frame = {"type": "message", "id": frame_id, "role": message.role, "text": message.text,
             "channel": message.channel, "ts": message.created_at.isoformat()}
    if message.buttons:
        frame["buttons"] = message.buttons
    return frame


class WebChannel:
    channel = Channel.WEB

    def __init__(self, *, pipeline: Pipeline, signer: Signer, history_limit: int = 200,
                 rate_limit: int = 30, allowed_origins: tuple[str, ...] = ()) -> None:
        self._pipeline = pipeline
        self._allowed_origins = frozenset(allowed_origins)
        self._rate_limit = rate_limit
        self._signer = signer
        self._history_limit = history_limit
        self._sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)

    def install(self, app: web.Application) -> None:
        app.router.add_get("/", self._page)
        app.router.add_get("/widget.js", self._widget)
        app.router.add_get("/chat/ws", self._websocket)
        app.on_shutdown.append(self._close_all)
        self._pipeline.register(self)

    async def _close_all(self, app: web.Application) -> None:
        """On shutdown say "going away" to every open widget; they reconnect by themselves."""
        sockets = [ws for group in self._sockets.values() for ws in group]
        await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server restarting")
                               for ws in sockets), return_exceptions=True)

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Content-Type": "text/html; charset=utf-8"})

    async def _widget(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "widget.js", headers={
            "Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "public, max-age=300",
            "Access-Control-Allow-Origin": "*"})

    async def send(self, address: str, reply: Reply) -> None:
        frame = {"type": "message", "id": reply.id, "role": reply.role.value, "text": reply.text,
                 "channel": Channel.WEB.value, "ts": reply.ts.isoformat()}
        if reply.buttons:
            frame["buttons"] = [{"title": b.title, "payload": b.payload} for b in reply.buttons]
        await self._broadcast(address, frame)

    async def _broadcast(self, visitor: str, frame: dict) -> None:
        for ws in list(self._sockets.get(visitor, ())):
            if not ws.closed:
                try:
                    await ws.send_json(frame)
                except ConnectionError:
                    pass  # the tab went away; it gets the message from history when it returns

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if self._allowed_origins and origin is not None and origin not in self._allowed_origins:
            # Browsers always send Origin; a page of a site not on the list may not embed the chat.
            return web.json_response({"error": f"origin {origin} may not open the chat"}, status=403)
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        visitor: str | None = None
        language: str | None = None
        recent: deque[float] = deque()
        try:
            async for raw in ws:
                if raw.type != WSMsgType.TEXT:
                    if raw.type == WSMsgType.BINARY:
                        await _error(ws, "bad_json", "frames must be JSON text")
                    continue
                frame_id = None
                try:
                    frame = _parse(raw.data)
                    frame_id = frame.get("id") if isinstance(frame.get("id"), str) else None
                    if frame["type"] == "hello":
                        if visitor:
                            self._sockets[visitor].discard(ws)
                        visitor, language = await self._hello(ws, frame)
                        self._sockets[visitor].add(ws)
                    elif frame["type"] == "message":
                        if visitor is None:
                            raise FrameError("hello_required", "send a hello frame first", frame_id)
                        if self._rate_limit and _limited(recent, self._rate_limit):
                            raise FrameError("rate_limited", "too many messages; wait a few seconds", frame_id)
                        await self._message(ws, visitor, frame, language)
                    elif frame["type"] == "ping":
                        await ws.send_json({"type": "pong"})
                    else:
                        raise FrameError("unknown_type", f"unknown frame type {frame['type']!r}", frame_id)
                except FrameError as exc:
                    await _error(ws, exc.code, exc.message, exc.frame_id)
                except Exception:  # noqa: BLE001 - the one broad except of this receive loop
                    log.exception("web chat frame failed (visitor=%s, id=%s)", visitor, frame_id)
                    await _error(ws, "internal", "the server failed on this message; it is kept, "
                                                 "and you may resend it with the same id", frame_id)
        finally:
            if visitor:
                self._sockets[visitor].discard(ws)
                if not self._sockets[visitor]:
                    del self._sockets[visitor]
        return ws

    async def _hello(self, ws: web.WebSocketResponse, frame: dict) -> tuple[str, str | None]:
        token, language = frame.get("token"), frame.get("lang")
        language = language if language in ("ru", "en") else None
        visitor = self._signer.verify(token) if token else None
        if token and visitor is None:
            await _error(ws, "bad_token", "this token is not valid here; a new conversation was started")
        if visitor is None:
            visitor, token = self._signer.new()
        history = await self._pipeline.history(Channel.WEB, visitor, self._history_limit)
        await ws.send_json({"type": "welcome", "token": token, "history": [to_frame(m) for m in history]})
        return visitor, language

    async def _message(self, ws: web.WebSocketResponse, visitor: str, frame: dict, language: str | None) -> None:
        message = to_message(visitor, frame, language)

        async def acknowledge(stored: StoredMessage) -> None:
            # The echo is the acknowledgement; other tabs of the same visitor see it too.
            await self._broadcast(visitor, to_frame(stored))

        handled = await self._pipeline.handle(message, on_stored=acknowledge)
        if handled.duplicate:
            await ws.send_json({"type": "ack", "id": frame["id"], "duplicate": True})


def _parse(data: str) -> dict:
    try:
        frame = json.loads(data)
    except ValueError:
        raise FrameError("bad_json", "the frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise FrameError("bad_json", "the frame must be a JSON object")
    if not isinstance(frame.get("type"), str):
        raise FrameError("bad_frame", "'type' is missing", frame.get("id") if isinstance(frame.get("id"), str) else None)
    return frame


def _limited(recent: deque[float], count: int) -> bool:
    now = time.monotonic()
    while recent and now - recent[0] > RATE_WINDOW:
        recent.popleft()
    if len(recent) >= count:
        return True
    recent.append(now)
    return False


async def _error(ws: web.WebSocketResponse, code: str, message: str, frame_id: str | None = None) -> None:
    frame = {"type": "error", "code": code, "message": message}
    if frame_id:
        frame["id"] = frame_id
    await ws.send_json(frame)
