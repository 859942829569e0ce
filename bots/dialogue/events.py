"""Rasa events returned by a custom action, applied to the session as Rasa applies them to a tracker.

``read`` checks every event and works out what it changes on copies (slots, form, the requested slot,
the tracker's history) and what the turn must do (follow-ups, a handoff, reminders); ``Changes.commit``
then writes it to the session. Two steps, so that an answer with one bad event changes nothing: half
an action's events applied would leave a conversation no one designed.

What each event does here:
- ``slot`` (SlotSet): sets the slot, as the slot's type keeps the value ("3" for a float slot is 3.0);
  a value the type cannot hold (an unknown category, "abc" for a float) makes the answer malformed.
  ``requested_slot`` is the form's question.
- ``reset_slots`` (AllSlotsReset): every slot back to its initial value.
- ``active_loop`` (ActiveLoop): starts a form of the domain, or ends the active one (None).
- ``session_started`` / ``restart``: slots reset and no form; a restart also forgets the history.
- ``rewind`` (UserUtteranceReverted): the last user event is dropped from the history.
- ``followup`` (FollowupAction): run next, this turn (a response, a form or an action).
- ``pause`` (ConversationPaused): people take over; the reason is the slot ``handoff_reason`` when
  the same action set it, else "Paused by action <name>". ``resume`` (ConversationResumed): back.
- ``reminder`` / ``cancel_reminder``: scheduled or cancelled by name (no name: all of the customer's);
  a naive ``date_time`` is read as UTC.
- the others Rasa knows (``bot``, ``user``, ``action``, ...) are kept in the history; unknown ones
  are ignored (logged).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from seamline.bots.dialogue.model import Domain, Reminder
from seamline.bots.dialogue.slots import coerce
from seamline.bots.dialogue.tracker import action_event
from seamline.shared.session import EVENT_LIMIT, Session

log = logging.getLogger(__name__)

# Rasa's events that change nothing Seamline keeps beyond the tracker's history: recorded as they are.
_RECORDED = {"user", "bot", "agent", "action", "undo", "export", "loop_interrupted", "session_ended"}
_RECORDED |= {"action_execution_rejected", "form_validation", "stack", "user_featurization", "entities"}


class Malformed(Exception):
    """The action's answer is not something Rasa would accept; the message says what."""


@dataclass
class Changes:
    """What an action's events do, worked out on copies of the session's state."""

    slots: dict[str, Any]
    form: str | None
    requested: str | None
    history: list[dict[str, Any]]
    followups: list[str] = field(default_factory=list)
    escalate: str | None = None
    resume: bool = False
    reminders: list[Reminder] = field(default_factory=list)
    cancel_reminders: list[str] = field(default_factory=list)

    def commit(self, session: Session) -> None:
        session.slots.clear()
        session.slots.update(self.slots)
        session.active_form, session.requested_slot = self.form, self.requested
        session.events[:] = self.history[-EVENT_LIMIT:]


def read(name: str, events: list[Any], *, domain: Domain, session: Session) -> Changes:
    """The changes action ``name``'s events make (its ``action`` event first); Malformed if one of
    them makes no sense. The session is not touched."""
    changes = Changes(
        dict(session.slots), session.active_form, session.requested_slot, [*session.events, action_event(name)]
    )
    reason: str | None = None
    paused = False
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            raise Malformed(f"{short(event)} is not an event")
        kind = event["event"]
        if kind == "slot":
            slot, value = _slot_value(domain, event)
            event = {**event, "value": value}
            if slot == "requested_slot":
                changes.requested = value
            else:
                changes.slots[slot] = value
                if slot == "handoff_reason" and value:
                    reason = str(value)
        elif kind == "reset_slots":
            changes.slots, changes.requested = _initial(domain), None
        elif kind in ("active_loop", "form"):  # "form": rasa-sdk's deprecated Form(name)
            form = event.get("name") or None
            if form is not None and form not in domain.forms:
                raise Malformed(f"it starts form {form!r}, which the domain does not have")
            if form != changes.form:
                changes.requested = None
            changes.form = form
        elif kind in ("session_started", "restart"):
            changes.slots, changes.form, changes.requested = _initial(domain), None, None
            if kind == "restart":
                changes.history = []
        elif kind == "rewind":
            users = [i for i, e in enumerate(changes.history) if e.get("event") == "user"]
            if users:
                del changes.history[users[-1]]
        elif kind == "followup":
            if not event.get("name"):
                raise Malformed("a followup event names no action")
            changes.followups.append(str(event["name"]))
        elif kind == "pause":
            paused = True
        elif kind == "resume":
            changes.resume = True
        elif kind == "reminder":
            changes.reminders.append(_reminder(event))
        elif kind == "cancel_reminder":
            changes.cancel_reminders.append(str(event.get("name") or "*"))
        elif kind not in _RECORDED:
            log.info("conversation %s: action %s returned event %r, ignored", session.conversation_id, name, kind)
            continue
        changes.history.append(event)
    if paused:
        changes.escalate = reason or f"Paused by action {name}"
    return changes


def _slot_value(domain: Domain, event: dict[str, Any]) -> tuple[str, Any]:
    slot, value = event.get("name"), event.get("value")
    if not isinstance(slot, str) or not slot:
        raise Malformed(f"{short(event)} sets no slot")
    known = domain.slots.get(slot)
    if known is None or value is None:
        return slot, value
    fitting = coerce(known, value)
    if fitting is None:
        raise Malformed(f"slot {slot!r} is {known.type}; {short(value)} is not")
    return slot, fitting


def _initial(domain: Domain) -> dict[str, Any]:
    return {name: slot.initial for name, slot in domain.slots.items() if slot.initial is not None}


def _reminder(event: dict[str, Any]) -> Reminder:
    intent, when = event.get("intent"), event.get("date_time")
    if not isinstance(intent, str) or not intent or not isinstance(when, str):
        raise Malformed(f"{short(event)} has no intent or date_time")
    try:
        at = datetime.fromisoformat(when)
    except ValueError:
        raise Malformed(f"reminder date_time {when!r} is not ISO 8601") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    raw = event.get("entities") or []
    if isinstance(raw, dict):
        entities = tuple((str(k), v) for k, v in raw.items())
    elif isinstance(raw, list) and all(isinstance(e, dict) and "entity" in e for e in raw):
        entities = tuple((str(e["entity"]), e.get("value")) for e in raw)
    else:
        raise Malformed(f"reminder entities {short(raw)} are not a list of {{entity, value}}")
    return Reminder(
        name=str(event.get("name") or uuid.uuid4().hex),
        intent=intent,
        at=at,
        entities=entities,
        kill_on_user_message=bool(event.get("kill_on_user_msg", True)),
    )


def short(value: object, limit: int = 80) -> str:
    """``value`` as it may appear in a problem sentence: its repr, cut."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
