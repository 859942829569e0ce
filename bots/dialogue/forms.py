"""What a form checks without running anything: which slot it still needs, whether a value passes its
pattern and entity checks, and whether the customer is cancelling it. The engine (engine.py) asks,
runs validation actions and submits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from seamline.bots.dialogue.model import CANCEL_WORDS, Form
from seamline.nlu.parse import Parse

CANCEL_INTENTS = ("cancel", "stop")  # an intent by this name stops the active form too


def missing(form: Form, slots: Mapping[str, Any]) -> str | None:
    """The first required slot without a value, or None when the form can be submitted."""
    return next((name for name in form.required_slots if slots.get(name) is None), None)


def cancelling(text: str, parse: Parse) -> bool:
    """The customer stops the form: a cancel word as the whole message ("отмена", "Cancel!"), or an
    intent named cancel/stop."""
    word = text.strip().strip(".!?…").strip().lower()
    return word in CANCEL_WORDS or (parse.understood and parse.intent in CANCEL_INTENTS)


def passes(form: Form, slot: str, value: Any, parse: Parse) -> bool:
    """The value passes the form's pattern (the whole value must match) and entity checks."""
    check = form.checks.get(slot)
    if check is None:
        return True
    if check.pattern is not None and re.fullmatch(check.pattern, str(value).strip()) is None:
        return False
    if check.entity is not None:
        return any(e.type == check.entity and str(e.value) == str(value) for e in parse.entities)
    return True
