"""VK's JSON (API v5.199) ↔ Seamline's message model. Pure functions, no I/O.

Kept apart from ``bots/vk.py`` so the mapping can be read, and tested on recorded events, on its own:
the same event dicts arrive through the Callback API and through Bots Long Poll.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

from seamline.shared.message import Attachment, Button, Message, image_url

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # characters per messages.send
MAX_PAYLOAD = 255  # bytes of a button's payload JSON
MAX_LABEL = 40  # characters of a button's label
MAX_INLINE_BUTTONS, MAX_INLINE_ROWS = 10, 6
LANGUAGES = {0: "ru", 3: "en"}  # client_info.lang_id → our languages; others are left to detection
START = "/greet"  # VK's own "Start" button sends {"command": "start"}


class EventError(ValueError):
    """An event we handle (message_new, message_event) is missing what it needs."""


def to_message(event: dict) -> Message | None:
    """A Callback API / Bots Long Poll event as a Message; None for events the bot does not answer."""
    kind, obj = event.get("type"), event.get("object")
    if kind not in ("message_new", "message_event"):
        return None
    if not isinstance(obj, dict):
        raise EventError(f"{kind} without an 'object'")
    if kind == "message_event":
        return _button_event(event, obj)
    message = obj.get("message")
    if not isinstance(message, dict):
        raise EventError("message_new without 'object.message' (the API version must be 5.103 or later)")
    peer, sender = _int(message, "peer_id"), _int(message, "from_id")
    if sender <= 0 or message.get("out") or message.get("action"):
        return None  # written by a community, our own, or a chat service message
    client = obj.get("client_info") or {}
    external_id = event.get("event_id") or f"{peer}:{message.get('conversation_message_id')}"
    attachments = tuple(filter(None, (_attachment(a) for a in message.get("attachments") or ())))
    if isinstance(message.get("geo"), dict):
        attachments += (_location(message["geo"]),)
    payload = to_payload(message.get("payload"))
    ref = message.get("ref")
    if isinstance(ref, str) and ref.strip() and payload in (None, START):
        # The customer came by a vk.me/club<id>?ref=<ref> link (VK also sets ``ref_source``): a deep link,
        # given to the pipeline the way Telegram's t.me/<bot>?start=<ref> arrives. The Start button's own
        # payload is only "hello", so the link wins over it; any other button keeps its payload.
        payload = f"/start {ref.strip()[:250]}"
    # ts stays the time of arrival: VK's ``date`` has whole seconds, and the history is ordered by time,
    # so a message sent in the same second as the bot's previous answer would be listed before it.
    return Message(
        channel="vk",
        address=str(peer),
        sender=str(sender),
        text=(message.get("text") or "").strip(),
        payload=payload,
        attachments=attachments,
        external_id=str(external_id),
        language=LANGUAGES.get(client.get("lang_id", -1)),
    )


def _button_event(event: dict, obj: dict) -> Message:
    """A callback button press: no text, only the payload (answered with messages.sendMessageEventAnswer)."""
    peer, user = _int(obj, "peer_id"), _int(obj, "user_id")
    if not obj.get("event_id"):
        raise EventError("message_event without 'object.event_id'")
    return Message(
        channel="vk",
        address=str(peer),
        sender=str(user),
        payload=to_payload(obj.get("payload")),
        external_id=str(event.get("event_id") or obj["event_id"]),
    )


def to_payload(raw: object) -> str | None:
    """A button's payload as our "/intent": ``{"command": "/order_status"}`` → "/order_status".

    message_new carries it as a JSON string, message_event as an object. Anything else (another bot's
    payload, broken JSON) is logged and ignored: the button's label still arrives as text.
    """
    if raw is None or raw == "":
        return None
    data = raw
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except ValueError:
            log.info("VK payload is not JSON, ignored (%d characters)", len(raw))  # never what was sent
            return None
    command = data.get("command") if isinstance(data, dict) else None
    if command == "start":
        return START
    if isinstance(command, str) and command.startswith("/") and len(command) <= 256:
        return command
    log.info("VK payload without a /command, ignored")  # never what was sent: a customer may write it
    return None


def keyboard(buttons: tuple[Button, ...], *, callback: bool = False) -> str | None:
    """An inline keyboard (VK allows 10 buttons in 6 rows) as the JSON string messages.send takes."""
    cells: list[dict[str, Any]] = []
    for button in buttons[:MAX_INLINE_BUTTONS]:
        if button.kind == "location":
            cells.append({"action": {"type": "location"}})  # VK draws its own "send location" key
            continue
        if button.kind in ("reply", "contact"):  # VK bots cannot ask for a phone: the key sends its title
            cells.append({"action": {"type": "text", "label": _label(button.title)}, "color": "secondary"})
            continue
        payload = json.dumps({"command": button.payload}, ensure_ascii=False, separators=(",", ":"))
        action: dict[str, str] = {
            "type": "callback" if callback else "text",
            "label": _label(button.title),
            "payload": payload,
        }
        if len(payload.encode()) > MAX_PAYLOAD:
            log.warning(
                "VK button %r: payload over %d bytes dropped; its label is sent as text", button.title, MAX_PAYLOAD
            )
            action = {"type": "text", "label": action["label"]}
        cells.append({"action": action, "color": "secondary"})
    if not cells:
        return None
    per_row = 1 if len(cells) <= MAX_INLINE_ROWS else 2
    rows = [cells[i : i + per_row] for i in range(0, len(cells), per_row)]
    return json.dumps({"inline": True, "buttons": rows}, ensure_ascii=False, separators=(",", ":"))


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Parts of at most ``limit`` characters, cut at a paragraph, else a line, a sentence, a word."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = 0
        for pattern in (r"\n\s*\n", r"\n", r"[.!?…](?=\s)", r"\s"):
            ends = [m.end() for m in re.finditer(pattern, window) if m.end() <= limit]
            if ends and ends[-1] > limit // 3:
                cut = ends[-1]
                break
        cut = cut or limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


# messages.send parameters a reply's ``custom["vk"]`` may set; never who it goes to or its random_id.
CUSTOM_PARAMS = frozenset(
    {
        "attachment",
        "sticker_id",
        "lat",
        "long",
        "template",
        "dont_parse_links",
        "disable_mentions",
        "keyboard",
        "payload",
    }
)


def with_image_link(text: str, image: str | None) -> str:
    """``text`` with the image's URL on a line under it. VK shows only photos uploaded to it
    (photos.getMessagesUploadServer, a POST of the bytes, photos.saveMessagesPhoto): uploading would
    make Seamline fetch any URL a reply names (a way into the private network) and cost three calls
    a reply; a link is shown with VK's own preview of the picture."""
    url = image_url(image)
    if url is None:
        return text
    return f"{text.rstrip()}\n{url}" if text.strip() else url


def custom_params(custom: dict[str, Any] | None) -> dict[str, Any]:
    """The messages.send parameters in ``custom["vk"]`` (an ``attachment`` already uploaded such as
    ``photo-1_2``, a ``sticker_id``, ``lat``/``long``, a carousel ``template``, a ``keyboard`` that
    replaces the buttons' ...), merged into the reply's last messages.send; other keys, and a custom
    payload without ``vk``, are ignored (a debug line). Objects are sent as JSON, as VK takes them."""
    vk = (custom or {}).get("vk")
    if not isinstance(vk, dict):
        if custom:
            log.debug("vk: a custom payload without a 'vk' object is not sent (keys %s)", sorted(custom))
        return {}
    params: dict[str, Any] = {}
    for key, value in vk.items():
        if key not in CUSTOM_PARAMS or value is None:
            log.debug("vk: custom parameter %r is not one Seamline passes to messages.send; ignored", key)
            continue
        params[key] = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
    return params


def random_id(reply_id: str, part: int) -> int:
    """messages.send's ``random_id``: 31 bits derived from the stored reply, so a retry never sends twice."""
    digest = hashlib.blake2b(f"{reply_id}:{part}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF or 1


def _attachment(item: dict) -> Attachment | None:
    kind = item.get("type")
    if not isinstance(kind, str):
        return None
    obj = item.get(kind)
    if not isinstance(obj, dict):
        return None
    ref = _ref(kind, obj)
    if kind == "photo":
        sizes = [s for s in obj.get("sizes") or () if s.get("url")]
        best: dict[str, Any] = obj.get("orig_photo") or max(
            sizes, key=lambda s: s.get("width", 0) * s.get("height", 0), default={}
        )
        return Attachment(
            "photo",
            url=best.get("url"),
            name=obj.get("text") or None,
            data={"vk": ref, "width": best.get("width"), "height": best.get("height")},
        )
    if kind == "doc":
        return Attachment(
            "document",
            url=obj.get("url"),
            name=obj.get("title"),
            data={"vk": ref, "ext": obj.get("ext"), "size": obj.get("size")},
        )
    if kind == "audio_message":
        data = {"vk": ref, "duration": obj.get("duration"), "mp3": obj.get("link_mp3")}
        if obj.get("transcript"):
            data["transcript"] = obj["transcript"]
        return Attachment("voice", url=obj.get("link_ogg") or obj.get("link_mp3"), data=data)
    return Attachment(kind, data={"vk": ref})  # sticker, video, wall, ...: kept so a person can look


def _label(title: str) -> str:
    title = " ".join(title.split()) or "…"
    return title if len(title) <= MAX_LABEL else title[: MAX_LABEL - 1].rstrip() + "…"


def _location(geo: dict) -> Attachment:
    coordinates, place = geo.get("coordinates") or {}, geo.get("place") or {}
    data = {"latitude": coordinates.get("latitude"), "longitude": coordinates.get("longitude")}
    data.update({k: place[k] for k in ("country", "city") if place.get(k)})
    return Attachment("location", name=place.get("title"), data=data)


def _ref(kind: str, obj: dict) -> str | None:
    """VK's own name for the attachment ("photo-1_2_key"): what messages.send takes to send it again."""
    if "owner_id" not in obj or "id" not in obj:
        return None
    key = f"_{obj['access_key']}" if obj.get("access_key") else ""
    return f"{kind}{obj['owner_id']}_{obj['id']}{key}"


def _int(obj: dict, key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError(f"'{key}' must be a number, got {value!r}")
    return value
