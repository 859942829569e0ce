"""A reply's ``custom`` payload on Telegram: read as Rasa's Telegram channel reads a custom JSON
message, so an action written for Rasa sends the same thing here. Pure; bots/telegram.py calls it.

The payload is ``custom["telegram"]`` when that is an object (a payload meant for several channels
keeps each one's part under its name), else ``custom`` itself. Its keys pick one Bot API method, the
first whose required parameters are all there: ``latitude``+``longitude``+``title``+``address`` a
venue, ``latitude``+``longitude`` a location, ``phone_number``+``first_name`` a contact, ``photo``,
``document``, ``video``, ``audio``, ``animation``, ``voice``, ``video_note``, ``sticker`` (a file id
or an http(s) URL Telegram fetches), and last ``text`` a message. The method's other parameters
(``caption``, ``reply_markup``, ``parse_mode``...) are passed on; ``chat_id`` is always the customer's
chat, whatever the payload says. Anything else (a payload for the web page, a method Seamline does not
send: invoices, games, media groups) is skipped with a debug line.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram.methods import (
    SendAnimation,
    SendAudio,
    SendContact,
    SendDocument,
    SendLocation,
    SendMessage,
    SendPhoto,
    SendSticker,
    SendVenue,
    SendVideo,
    SendVideoNote,
    SendVoice,
    TelegramMethod,
)
from pydantic import ValidationError

log = logging.getLogger(__name__)

# (required keys, method), first match wins: the more specific shape before the one it contains.
METHODS: tuple[tuple[tuple[str, ...], type[TelegramMethod[Any]]], ...] = (
    (("latitude", "longitude", "title", "address"), SendVenue),
    (("latitude", "longitude"), SendLocation),
    (("phone_number", "first_name"), SendContact),
    (("photo",), SendPhoto),
    (("document",), SendDocument),
    (("video",), SendVideo),
    (("audio",), SendAudio),
    (("animation",), SendAnimation),
    (("voice",), SendVoice),
    (("video_note",), SendVideoNote),
    (("sticker",), SendSticker),
    (("text",), SendMessage),
)
_NOT_FROM_PAYLOAD = frozenset({"chat_id", "business_connection_id", "message_thread_id"})


def custom_method(chat_id: str, custom: dict[str, Any] | None) -> TelegramMethod[Any] | None:
    """The Bot API call ``custom`` stands for on Telegram (see the module's docstring), or None."""
    if not custom:
        return None
    inner = custom.get("telegram")
    payload: dict[str, Any] = inner if isinstance(inner, dict) else custom
    for required, method in METHODS:
        if all(payload.get(key) is not None for key in required):
            fields = set(method.model_fields) - _NOT_FROM_PAYLOAD
            params = {key: value for key, value in payload.items() if key in fields}
            try:
                return method.model_validate({**params, "chat_id": chat_id})
            except ValidationError as exc:
                log.warning("telegram: a custom payload for %s is not valid, not sent: %s", method.__name__, exc)
                return None
    log.debug("telegram: a custom payload with keys %s has no Telegram shape; not sent", sorted(payload))
    return None
