"""Running one custom action and applying what it returned to the session, Rasa's way.

``run_action`` builds Rasa's action-server call (bots/dialogue/tracker.py), runs it on the project's
``ActionServer`` (bots/dialogue/action_server.py: in process and/or remote) within the timeout, and
turns the answer into an ``Outcome``: the replies to send, follow-up actions, a handoff, reminders.
The session's slots, form and tracker events are changed here, and only when the whole answer is
usable: an action that raises, times out, is unknown, cannot be reached or returns garbage leaves the
session as it was, and the ``Outcome`` says why in a sentence for the agent console (``problem``).
It never raises for an action's failure: the customer gets a polite fallback (the engine's
``action_failed``) and the conversation goes on.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from seamline.bots.dialogue.action_server import Actions, LocalActions, RemoteActions, load_actions
from seamline.bots.dialogue.model import ActionError, ActionServer, Domain, Reminder
from seamline.bots.dialogue.slots import coerce
from seamline.bots.dialogue.tracker import action_call, action_event
from seamline.shared.errors import ConfigError
from seamline.shared.message import Button, Reply
from seamline.shared.session import EVENT_LIMIT, Session

__all__ = ["Actions", "LocalActions", "Outcome", "RemoteActions", "load_actions", "run_action"]

log = logging.getLogger(__name__)

# Rasa's events that change nothing Seamline keeps beyond the tracker's history: recorded as they are.
_RECORDED = {"user", "bot", "agent", "action", "undo", "export", "loop_interrupted", "session_ended"}
_RECORDED |= {"action_execution_rejected", "form_validation", "stack", "user_featurization", "entities"}
_MESSAGE_FIELDS = {"text", "buttons", "elements", "custom", "template", "response", "image", "attachment"}


@dataclass
class Outcome:
    """What one action run means for the turn."""

    replies: list[Reply] = field(default_factory=list)
    followups: list[str] = field(default_factory=list)  # FollowupAction names, in order
    escalate: str | None = None  # ConversationPaused: why a person should take over
    resume: bool = False  # ConversationResumed
    reminders: list[Reminder] = field(default_factory=list)
    cancel_reminders: list[str] = field(default_factory=list)  # names; "*": all of this customer
    problem: str | None = None  # why the action failed, for the agent console (None: it did not)
    rejected: bool = False  # a validation action refused (Rasa's ActionExecutionRejection / 400)


class _Malformed(Exception):
    """The action's answer is not something Rasa would accept."""


async def run_action(
    name: str,
    *,
    server: ActionServer | None,
    domain: Domain,
    session: Session,
    channel: str,
    timeout: float,
    slots_to_validate: Mapping[str, Any] | None = None,
) -> Outcome:
    """Run custom action ``name`` for ``session`` and apply its events; see the module's docstring."""
    if server is None or not server.knows(name):
        return _failed(name, session, "unknown", f"{name} is not a known action: no actions module defines it")
    call = action_call(name, domain=domain, session=session, channel=channel, slots_to_validate=slots_to_validate)
    try:
        answer = await asyncio.wait_for(server.run(call), timeout)
    except TimeoutError:
        return _failed(name, session, "timeout", f"{name} timed out after {timeout:g} s")
    except ActionError as exc:
        if exc.kind == "rejected":
            session.record(action_event(name), {"event": "action_execution_rejected", "name": name})
            return Outcome(rejected=True)
        if exc.kind == "unknown":
            return _failed(name, session, exc.kind, f"{name} is not a known action: {exc.detail}")
        return _failed(name, session, exc.kind, f"{name} {_KIND_WORDS.get(exc.kind, 'failed')}: {exc.detail}", exc)
    except Exception as exc:  # noqa: BLE001 - an ActionServer of the project's making failed; logged, not the turn's error
        return _failed(name, session, "failed", f"{name} failed: {type(exc).__name__}: {exc}", exc)
    try:
        return _apply(name, answer, domain=domain, session=session, channel=channel)
    except _Malformed as exc:
        return _failed(name, session, "malformed", f"{name} returned something unusable: {exc}")


_KIND_WORDS = {"failed": "failed", "unreachable": "could not run", "malformed": "returned something unusable"}


def _failed(name: str, session: Session, kind: str, problem: str, exc: BaseException | None = None) -> Outcome:
    cause = exc.__cause__ if exc is not None and exc.__cause__ is not None else None
    log.log(
        logging.ERROR if kind == "failed" else logging.WARNING,
        "conversation %s: custom action %s %s: %s",
        session.conversation_id,
        name,
        kind,
        problem,
        exc_info=(type(cause), cause, cause.__traceback__) if cause is not None and kind == "failed" else None,
    )
    return Outcome(problem=problem)


def _apply(name: str, answer: Any, *, domain: Domain, session: Session, channel: str) -> Outcome:
    """Apply the answer's events to a copy of the session's state, then, if all of it made sense, to
    the session. Raises _Malformed (the session untouched) otherwise."""
    if not isinstance(answer, dict):
        raise _Malformed(f"the answer is {type(answer).__name__}, not a dict")
    events, messages = answer.get("events"), answer.get("responses")
    if not isinstance(events, list) or not isinstance(messages, list):
        raise _Malformed('the answer has no "events" and "responses" lists')
    outcome = Outcome()
    slots = dict(session.slots)
    form, requested = session.active_form, session.requested_slot
    history = [*session.events, action_event(name)]
    reason: str | None = None
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            raise _Malformed(f"{_short(event)} is not an event")
        kind = event["event"]
        if kind == "slot":
            slot, value = _slot_value(domain, event)
            event = {**event, "value": value}  # as the slot keeps it ("3" for a float slot is 3.0)
            if slot == "requested_slot":
                requested = value
            else:
                slots[slot] = value
                if slot == "handoff_reason" and value:
                    reason = str(value)
        elif kind == "reset_slots":
            slots, requested = _initial(domain), None
        elif kind in ("active_loop", "form"):
            form = event.get("name") or None
            if form is not None and form not in domain.forms:
                raise _Malformed(f"it starts form {form!r}, which the domain does not have")
            requested = None if form is None else requested
        elif kind in ("session_started", "restart"):
            slots, form, requested = _initial(domain), None, None
            if kind == "restart":
                history = []
        elif kind == "rewind":
            last = next((i for i in range(len(history) - 1, -1, -1) if history[i].get("event") == "user"), None)
            if last is not None:
                del history[last]
        elif kind == "followup":
            if not event.get("name"):
                raise _Malformed("a followup event without an action name")
            outcome.followups.append(str(event["name"]))
        elif kind == "pause":
            outcome.escalate = "pause"  # the reason is known once every event is read
        elif kind == "resume":
            outcome.resume = True
        elif kind == "reminder":
            outcome.reminders.append(_reminder(event))
        elif kind == "cancel_reminder":
            outcome.cancel_reminders.append(str(event.get("name") or "*"))
        elif kind not in _RECORDED:
            log.info("conversation %s: action %s returned event %r, ignored", session.conversation_id, name, kind)
            continue
        history.append(event)
    language = session.language
    for message in messages:
        reply = _reply(message, domain, language, slots, channel)
        if reply is not None:
            outcome.replies.append(reply)
    if outcome.escalate:
        outcome.escalate = reason or f"Paused by action {name}"
    session.slots.clear()
    session.slots.update(slots)
    session.active_form, session.requested_slot = form, requested
    session.events[:] = history[-EVENT_LIMIT:]
    return outcome


def _slot_value(domain: Domain, event: dict[str, Any]) -> tuple[str, Any]:
    slot, value = event.get("name"), event.get("value")
    if not isinstance(slot, str) or not slot:
        raise _Malformed(f"{_short(event)} sets no slot name")
    known = domain.slots.get(slot)
    if known is None or value is None:
        return slot, value
    fitting = coerce(known, value)
    if fitting is None:
        raise _Malformed(f"slot {slot!r} is {known.type}; {_short(value)} is not")
    return slot, fitting


def _initial(domain: Domain) -> dict[str, Any]:
    return {name: slot.initial for name, slot in domain.slots.items() if slot.initial is not None}


def _reminder(event: dict[str, Any]) -> Reminder:
    intent, when = event.get("intent"), event.get("date_time")
    if not isinstance(intent, str) or not intent or not isinstance(when, str):
        raise _Malformed(f"{_short(event)} has no intent or date_time")
    try:
        at = datetime.fromisoformat(when)
    except ValueError:
        raise _Malformed(f"reminder date_time {when!r} is not ISO 8601") from None
    if at.tzinfo is None:  # rasa-sdk writes a naive datetime as it was given: read it as UTC
        at = at.replace(tzinfo=UTC)
    raw = event.get("entities") or []
    if isinstance(raw, dict):
        entities = tuple((str(k), v) for k, v in raw.items())
    elif isinstance(raw, list) and all(isinstance(e, dict) and "entity" in e for e in raw):
        entities = tuple((str(e["entity"]), e.get("value")) for e in raw)
    else:
        raise _Malformed(f"reminder entities {_short(raw)} are not a list of {{entity, value}}")
    return Reminder(
        name=str(event.get("name") or uuid.uuid4().hex),
        intent=intent,
        at=at,
        entities=entities,
        kill_on_user_message=bool(event.get("kill_on_user_msg", True)),
    )


def _reply(message: Any, domain: Domain, language: str, slots: Mapping[str, Any], channel: str) -> Reply | None:
    """One ``dispatcher.utter_message`` as a Reply, as Rasa builds it: a named ``response`` rendered in
    the customer's language (slots and the message's extra keyword arguments fill its placeholders),
    then the message's own non-empty fields over it, its buttons added."""
    if not isinstance(message, dict):
        raise _Malformed(f"{_short(message)} is not a message")
    text, image, custom, buttons = None, None, None, []
    key = message.get("response") or message.get("template")
    if key:
        values = {**slots, **{k: v for k, v in message.items() if k not in _MESSAGE_FIELDS}}
        try:
            drafted = domain.responses.render(str(key), language, values, channel=channel)
        except ConfigError:
            log.warning("custom action uttered response %r, which the responses do not have", key)
            return None
        text, image, custom, buttons = drafted.text, drafted.image, drafted.custom, list(drafted.buttons)
    if message.get("text"):
        text = str(message["text"])
    if message.get("image"):
        image = str(message["image"])
    if message.get("custom"):
        if not isinstance(message["custom"], dict):
            raise _Malformed(f"custom {_short(message['custom'])} is not a dict")
        custom = message["custom"]
    for button in message.get("buttons") or []:
        if not isinstance(button, dict) or "title" not in button:
            raise _Malformed(f"button {_short(button)} has no title")
        buttons.append(Button(str(button["title"]), str(button.get("payload") or button["title"])))
    if not (text or image or custom or buttons):
        return None
    return Reply(text or "", tuple(buttons), image=image, custom=custom)


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
