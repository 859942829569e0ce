"""Which language a message is in (ru or en), from its letters; None when it has none.

Russian speakers often mix in Latin words ("статус order pls"); English speakers hardly ever
type Cyrillic. So a message with a fair share of Cyrillic letters is Russian.
"""

from __future__ import annotations

import re

_CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)
_LATIN = re.compile("[a-z]", re.IGNORECASE)


def detect(text: str) -> str | None:
    cyrillic, latin = len(_CYRILLIC.findall(text)), len(_LATIN.findall(text))
    if cyrillic == latin == 0:
        return None
    return "ru" if cyrillic >= 0.3 * (cyrillic + latin) else "en"
