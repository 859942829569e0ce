"""Entities found by patterns. Only order numbers for now; the pattern is configurable."""
from __future__ import annotations

import re

from nlu.parse import Entity

DEFAULT_ORDER_PATTERN = r"(?<![\d+])(?:№\s?|#\s?)?(\d{4,12})(?!\d)"


class PatternEntities:
    def __init__(self, *, order_pattern: str = DEFAULT_ORDER_PATTERN) -> None:
        self._order = re.compile(order_pattern)

    def extract(self, text: str) -> tuple[Entity, ...]:
        found = []
        for match in self._order.finditer(text):
            value = match.group(1) if match.groups() else match.group(0)
            found.append(Entity("order_number", value, match.group(0), match.start(), match.end()))
        return tuple(found)
