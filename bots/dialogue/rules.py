"""Which rule answers a message: the first, in file order, whose intent is the message's and whose
``when`` holds (slot values, the channel it came on, the language, the active form)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from seamline.bots.dialogue.model import Condition, Rule
from seamline.bots.dialogue.responses import same


def holds(condition: Condition, *, slots: Mapping[str, Any], channel: str, language: str, form: str | None) -> bool:
    """Every field of ``condition`` that is set matches (an empty condition always holds)."""
    if condition.channels and channel not in condition.channels:
        return False
    if condition.languages and language not in condition.languages:
        return False
    if condition.active_form is not None and (form or "") != condition.active_form:
        return False
    for name, expected in condition.slots.items():
        value = slots.get(name)
        if expected == "*":
            if value is None:
                return False
        elif expected is None:
            if value is not None:
                return False
        elif not same(value, expected):
            return False
    return True


def matching(
    rules: Iterable[Rule],
    *,
    intent: str | None,
    slots: Mapping[str, Any],
    channel: str,
    language: str,
    form: str | None,
) -> list[Rule]:
    """The rules for ``intent`` whose conditions hold, in file order (the first one wins); not the
    conversation-start ones (``at_start``), which answer only a conversation's first message."""
    return [
        rule
        for rule in rules
        if intent is not None
        and rule.intent == intent
        and not rule.conversation_start
        and holds(rule.when, slots=slots, channel=channel, language=language, form=form)
    ]


def after_form(
    rules: Iterable[Rule], form: str, *, slots: Mapping[str, Any], channel: str, language: str
) -> list[Rule]:
    """The rules that run when ``form`` has all its slots (Rasa's form submission rules)."""
    return [
        rule
        for rule in rules
        if rule.after_form == form and holds(rule.when, slots=slots, channel=channel, language=language, form=None)
    ]


def at_start(
    rules: Iterable[Rule], *, intent: str | None, slots: Mapping[str, Any], channel: str, language: str
) -> list[Rule]:
    """Conversation-start rules for the first message of a conversation."""
    return [
        rule
        for rule in rules
        if rule.conversation_start
        and rule.intent in (None, intent)
        and holds(rule.when, slots=slots, channel=channel, language=language, form=None)
    ]
