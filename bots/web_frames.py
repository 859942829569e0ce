"""The widget's frames as data: parsing what a client sent, and what the server sends back. Pure.

Everything a client can get wrong is a ``FrameError`` with a documented code
(docs/web-chat-protocol.md), never an exception that reaches the log: a script sending garbage must
not be able to fill the disk with tracebacks.
"""

from __future__ import annotations

import json
import re
from typing import Any

from seamline.shared.history import StoredMessage, stored_custom, stored_image
from seamline.shared.message import Message, Reply, image_url

MAX_TEXT = 4096
MAX_ID = 64
MAX_PAYLOAD = 256
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")  # NUL (PostgreSQL) and lone surrogates (UTF-8, SQLite)


class FrameError(Exception):
    def __init__(self, code: str, message: str, frame_id: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.frame_id = code, message, frame_id


def parse(data: str) -> dict:
    """A text frame as a JSON object with a string ``type``; FrameError otherwise."""
    try:
        frame = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        raise FrameError("bad_json", "the frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise FrameError("bad_json", "the frame must be a JSON object")
    if not isinstance(frame.get("type"), str):
        raise FrameError("bad_frame", "'type' is missing", client_id(frame))
    return frame


def client_id(frame: dict) -> str | None:
    """The client's ``id`` of a frame, if it is one that may be echoed back."""
    value = frame.get("id")
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID and not _UNSTORABLE.search(value) else None


def checked_id(frame: dict) -> str | None:
    """The frame's ``id`` (optional), or FrameError when it is there but malformed."""
    value = frame.get("id")
    if value is not None and client_id(frame) is None:
        raise FrameError("bad_frame", f"'id' must be a string of 1-{MAX_ID} characters")
    return value


def to_message(visitor: str, frame: dict, language: str | None = None) -> Message:
    """A ``message`` frame as a Message; raises FrameError for anything malformed.

    Characters no database can keep (NUL, a lone UTF-16 surrogate) become U+FFFD here, at the edge,
    so the message is stored as the customer meant it rather than failing deep inside the pipeline."""
    frame_id = checked_id(frame)
    text, payload = frame.get("text", ""), frame.get("payload")
    if not isinstance(text, str):
        raise FrameError("bad_frame", "'text' must be a string", frame_id)
    if payload is not None and (not isinstance(payload, str) or len(payload) > MAX_PAYLOAD):
        raise FrameError("bad_frame", f"'payload' must be a string of at most {MAX_PAYLOAD} characters", frame_id)
    if len(text) > MAX_TEXT:
        raise FrameError("too_long", f"text is {len(text)} characters; the limit is {MAX_TEXT}", frame_id)
    text = _UNSTORABLE.sub("\ufffd", text)
    payload = _UNSTORABLE.sub("\ufffd", payload) if payload else payload
    if not text.strip() and not payload:
        raise FrameError("empty", "text is empty", frame_id)
    return Message(
        channel="web",
        address=visitor,
        sender=visitor,
        text=text.strip(),
        payload=payload,
        external_id=f"{visitor}:{frame_id}" if frame_id else None,
        language=language,
    )


def to_frame(message: StoredMessage) -> dict:
    """A stored message as the widget sees it. A web customer's own message keeps the client's id."""
    frame_id = message.id
    if message.role == "customer" and message.channel == "web" and message.external_id:
        # "visitor:client id" as the widget makes it; a message made otherwise (a plug-in, a test) keeps its own.
        frame_id = message.external_id.split(":", 1)[-1]
    frame: dict[str, Any] = {
        "type": "message",
        "id": frame_id,
        "role": message.role,
        "text": message.text,
        "channel": message.channel,
        "ts": message.created_at.isoformat(),
    }
    if message.buttons:
        frame["buttons"] = message.buttons
    return with_media(frame, stored_image(message), stored_custom(message))


def reply_frame(reply: Reply) -> dict:
    """A reply being sent now, as the same ``message`` frame its stored copy replays as."""
    frame: dict[str, Any] = {
        "type": "message",
        "id": reply.id,
        "role": reply.role.value,
        "text": reply.text,
        "channel": "web",
        "ts": reply.ts.isoformat(),
    }
    if reply.buttons:
        frame["buttons"] = [{"title": b.title, "payload": b.payload} for b in reply.buttons]
    return with_media(frame, reply.image, reply.custom)


def with_media(frame: dict, image: str | None, custom: dict | None) -> dict:
    """``frame`` with the reply's ``image`` (only an absolute http(s) URL: a ``javascript:`` or
    ``data:`` one is dropped here, and the widget checks again) and ``custom`` payload (for the page,
    which the widget hands it to as a ``seamline:custom`` DOM event; never rendered)."""
    if safe := image_url(image):
        frame["image"] = safe
    if isinstance(custom, dict) and custom:
        frame["custom"] = custom
    return frame


def page(history: list[StoredMessage], budget: int, before: str | None = None) -> dict:
    """The newest messages of ``history`` (oldest first) older than the message ``before`` that fit in
    ``budget`` bytes of JSON, as ``{"history", "more", "before"}``: ``before`` is the cursor for the
    next older page (null when there is none). At least one message, however long, so paging moves."""
    if before is not None:
        ids = [m.id for m in history]
        history = history[: ids.index(before)] if before in ids else []
    frames: list[dict] = []
    used = 0
    for message in reversed(history):
        frame = to_frame(message)
        size = len(json.dumps(frame).encode()) + 1
        if frames and used + size > budget:
            break
        frames.append(frame)
        used += size
    more = len(frames) < len(history)
    frames.reverse()
    return {"history": frames, "more": more, "before": history[-len(frames)].id if more else None}
