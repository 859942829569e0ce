"""Which language a message is in (ru or en), from its letters; None when it has none.

Russian speakers often mix in Latin words ("статус order pls"); English speakers hardly ever
type Cyrillic. So a message with a fair share of Cyrillic letters is Russian.
"""
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
    return "ru" if cyrillic >= 0.3 * (cyrillic + latin) else "en"
