"""Filling slots from a message, as Rasa 3 does: every slot's mappings are tried on every user
message, whatever form is active, when their conditions (intent, not_intent, active form, requested
slot) hold. Two mappings only apply while a form asks for that very slot, since otherwise they would
take any message: ``from_text``, and ``from_intent`` without an intent. ``from_profile`` reads the
customer's profile (name, phone, email, language, or any profile attribute); ``from_action`` is set
only by a custom action (Rasa's ``custom``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from seamline.bots.dialogue.model import Domain, Slot, SlotMapping
from seamline.nlu.parse import Parse
from seamline.shared.message import Message
from seamline.shared.session import Session

_TRUE = {"true", "yes", "1", "да", "y", "on"}
_FALSE = {"false", "no", "0", "нет", "n", "off"}


def coerce(slot: Slot, value: Any) -> Any:
    """``value`` as the slot's type keeps it, or None when it cannot be one (an unknown category, "abc"
    for a float): a mapping that gives a wrong value fills nothing."""
    if value is None:
        return None
    if slot.type == "bool":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        return True if word in _TRUE else False if word in _FALSE else None
    if slot.type == "float":
        try:
            return float(str(value).replace(",", "."))
        except ValueError:
            return None
    if slot.type == "categorical" and slot.values:
        return next((v for v in slot.values if v.lower() == str(value).strip().lower()), None)
    if slot.type == "list":
        return list(value) if isinstance(value, (list, tuple)) else [value]
    if slot.type == "text":
        return str(value)
    return value


def profile(session: Session, message: Message | None) -> dict[str, Any]:
    """What the customer's profile tells: its attributes, the language, the name the channel gave."""
    known: dict[str, Any] = {"language": session.language}
    if message is not None and message.sender_name:
        known["name"] = message.sender_name
    known.update({k: v for k, v in session.attributes.items() if v is not None and v != ""})
    return known


def candidates(
    domain: Domain, parse: Parse, session: Session, *, message: Message | None, known: Mapping[str, Any]
) -> dict[str, Any]:
    """slot -> the value this message gives it (already of the slot's type), for every slot a
    mapping fills. Nothing is set here: a form checks its slots' values first."""
    found: dict[str, Any] = {}
    for slot in domain.slots.values():
        for mapping in slot.mappings:
            if not _applies(mapping, slot.name, parse, session):
                continue
            value = coerce(slot, _value(mapping, slot.name, parse, session, message, known))
            if value is not None:
                found[slot.name] = value
                break
    return found


def _applies(mapping: SlotMapping, slot: str, parse: Parse, session: Session) -> bool:
    intent = parse.intent if parse.understood else None
    if mapping.intent and intent not in mapping.intent:
        return False
    if intent is not None and intent in mapping.not_intent:
        return False
    if mapping.active_form and session.active_form != mapping.active_form:
        return False
    if mapping.requested_slot and session.requested_slot != mapping.requested_slot:
        return False
    asked = session.active_form is not None and session.requested_slot == slot
    if mapping.type == "from_text" or (mapping.type == "from_intent" and not mapping.intent):
        return asked
    return mapping.type != "from_action"


def _value(
    mapping: SlotMapping,
    slot: str,
    parse: Parse,
    session: Session,
    message: Message | None,
    known: Mapping[str, Any],
) -> Any:
    if mapping.type == "from_entity":
        values = [e.value for e in parse.entities if e.type == mapping.entity]
        return values[0] if values else None
    if mapping.type == "from_intent":
        return mapping.value if parse.understood or not mapping.intent else None
    if mapping.type == "from_text":
        return message.text.strip() or None if message is not None else None
    if mapping.type == "from_button":
        if message is None or not message.payload:
            return None
        return mapping.value if mapping.value is not None else message.payload
    if mapping.type == "from_profile":
        value = known.get(mapping.attribute or "")
        return None if value == session.slots.get(slot) else value
    return None


def slot_event(name: str, value: Any) -> dict[str, Any]:
    """Rasa's ``slot`` event, as the tracker carries it."""
    return {"event": "slot", "name": name, "value": value}


def active_loop_event(name: str | None) -> dict[str, Any]:
    """Rasa's ``active_loop`` event: a form started (its name) or ended (None)."""
    return {"event": "active_loop", "name": name}
