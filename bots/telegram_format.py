"""Telegram updates as Messages: pure, no I/O, tested against the recorded updates in
tests/fixtures/telegram/. The Telegram channel (bots/telegram.py) stores an update first and
converts it when its chat's turn comes.
"""

from __future__ import annotations

import re

from aiogram.types import Message as Native
from aiogram.types import Update, User

from seamline.bots.telegram_text import CallbackPayloads
from seamline.shared.message import Attachment, Message

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
        return Message(
            channel="telegram",
            address=str(chat),
            sender=str(query.from_user.id),
            text=_title(query.message, query.data),
            payload=payload,
            external_id=str(update.update_id),
            sender_name=_name(query.from_user),
            language=_language(query.from_user),
        )
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
    return Message(
        channel="telegram",
        address=str(native.chat.id),
        sender=str(user.id if user else native.chat.id),
        text=text,
        payload=_command(native),
        attachments=attachments,
        external_id=str(update.update_id),
        sender_name=_name(user),
        language=_language(user),
    )


def _command(native: Native) -> str | None:
    """A command as the payload: ``/start ref42`` (a deep link) as it is, ``/order_status@shop_bot`` as
    ``/order_status``; None for a message that is not a command."""
    entities = native.entities or ()
    if not any(e.type == "bot_command" and e.offset == 0 for e in entities):
        return None
    return re.sub(r"^(/[^\s@]+)@\w+", r"\1", (native.text or "").strip())


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
        found.append(
            Attachment(
                "location",
                data={
                    k: v
                    for k, v in (
                        ("latitude", place.latitude),
                        ("longitude", place.longitude),
                        ("horizontal_accuracy", place.horizontal_accuracy),
                    )
                    if v is not None
                },
            )
        )
    if native.contact is not None:
        contact = native.contact
        own = native.from_user is not None and contact.user_id == native.from_user.id
        found.append(
            Attachment(
                "contact",
                name=" ".join(filter(None, (contact.first_name, contact.last_name))),
                data={
                    "phone_number": contact.phone_number,
                    "first_name": contact.first_name,
                    "last_name": contact.last_name,
                    "user_id": contact.user_id,
                    "own": own,
                },
            )
        )
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


def chat_of(update: Update) -> int | None:
    """The chat whose order an update keeps; None for the kinds the bot does not process."""
    native = update.message or update.edited_message
    if native is not None:
        return native.chat.id
    query = update.callback_query
    if query is not None:
        return query.message.chat.id if query.message is not None else query.from_user.id
    return None
