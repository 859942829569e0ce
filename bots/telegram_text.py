"""Fitting Seamline's replies into Telegram's limits: 4096 UTF-16 units a message, 64 bytes of callback data.

Pure and free of aiogram, so the rules are tested on their own (tests/bots/test_telegram.py).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import OrderedDict

MESSAGE_LIMIT = 4096  # Telegram counts text length in UTF-16 code units, not characters
CAPTION_LIMIT = 1024  # a photo's caption, in the same units
CALLBACK_LIMIT = 64  # bytes of callback_data
HASHED = "#h:"  # prefix of a callback_data that stands for a longer payload

# Where a long text may be cut, best first: between paragraphs, lines, sentences, words.
_BOUNDARIES = (re.compile(r"\n[ \t]*\n"), re.compile(r"\n"), re.compile(r"[.!?…][\"'»”)\]]*(?=\s)"), re.compile(r"\s"))


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """``text`` as parts of at most ``limit`` UTF-16 units, cut on the best boundary in each window.

    A boundary is taken only in the second half of a window, so no part is needlessly short; a
    text without any (a very long URL) is cut hard, never inside a surrogate pair. Whitespace
    at the cuts is dropped, as Telegram would drop it; empty parts are never returned.
    """
    parts: list[str] = []
    rest = text.strip()
    while utf16_len(rest) > limit:
        window = _fitting(rest, limit)
        cut = _boundary(window)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return [part for part in parts if part]


def _fitting(text: str, limit: int) -> str:
    """The longest prefix of ``text`` within ``limit`` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text


def _boundary(window: str) -> int:
    half = len(window) // 2
    for pattern in _BOUNDARIES:
        ends = [match.end() for match in pattern.finditer(window) if match.end() > half]
        if ends:
            return ends[-1]
    return len(window)


class CallbackPayloads:
    """Button payloads as Telegram callback_data (1-64 bytes).

    A payload that fits travels as itself, so a press still works after a restart. A longer (or
    empty) one travels as ``#h:`` + a 128-bit hash, remembered here for the last ``size`` such
    payloads; a press on a forgotten one still reaches the bot with the button's title as text.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._long: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def pack(self, payload: str) -> str:
        if 0 < len(payload.encode()) <= CALLBACK_LIMIT and not payload.startswith(HASHED):
            return payload
        digest = hashlib.sha256(payload.encode()).digest()[:16]
        data = HASHED + base64.urlsafe_b64encode(digest).decode().rstrip("=")
        self._long[data] = payload
        self._long.move_to_end(data)
        while len(self._long) > self._size:
            self._long.popitem(last=False)
        return data

    def unpack(self, data: str) -> str:
        """The payload behind ``data``: itself, or the long payload its hash stands for (if remembered)."""
        return self._long.get(data, data)
