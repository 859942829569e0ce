"""Which language a message is in (ru or en), from its letters; None when it has none."""
from __future__ import annotations


def detect(text: str) -> str | None:
    cyrillic = latin = 0
    for ch in text:
        if "а" <= ch.lower() <= "я" or ch in "ёЁ":
            cyrillic += 1
        elif "a" <= ch.lower() <= "z":
            latin += 1
    if cyrillic == latin == 0:
        return None
    return "ru" if cyrillic >= latin else "en"
