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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from seamline.bots.dialogue.action_server import Actions, LocalActions, RemoteActions, load_actions
from seamline.bots.dialogue.events import Malformed, read, short
from seamline.bots.dialogue.model import ActionError, ActionServer, Domain, Reminder
from seamline.bots.dialogue.tracker import action_call, action_event
from seamline.shared.errors import ConfigError
from seamline.shared.message import Button, Reply
from seamline.shared.session import Session

__all__ = ["Actions", "LocalActions", "Outcome", "RemoteActions", "load_actions", "run_action"]

log = logging.getLogger(__name__)

_MESSAGE_FIELDS = {"text", "buttons", "elements", "custom", "template", "response", "image", "attachment"}


# Rasa's default actions that a project's rules or FollowupAction may name, as the events Rasa's own
# implementations return (they never reach an action server unless the domain lists them).
_BUILT_IN: dict[str, tuple[dict[str, Any], ...]] = {
    "action_restart": ({"event": "restart"},),
    "action_session_start": ({"event": "session_started"},),
    "action_deactivate_loop": (
        {"event": "active_loop", "name": None},
        {"event": "slot", "name": "requested_slot", "value": None},
    ),
    "action_back": ({"event": "rewind"}, {"event": "rewind"}),
    "action_default_fallback": ({"event": "rewind"},),
}


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
    if name in _BUILT_IN and name not in domain.actions:  # Rasa's own, unless the project overrides it
        said = "utter_default" if "utter_default" in domain.responses.keys() else "fallback"
        fallback = [{"response": said}] if name == "action_default_fallback" else []
        answer = {"events": [dict(e) for e in _BUILT_IN[name]], "responses": fallback}
        return _apply(name, answer, domain=domain, session=session, channel=channel)
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
    except Malformed as exc:
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
    """The answer's messages as replies and its events applied (bots/dialogue/events.py), all or
    nothing: Malformed leaves the session untouched. Responses are rendered with the slots as they
    were before the action's events, as Rasa does (pass new values as keyword arguments)."""
    if not isinstance(answer, dict):
        raise Malformed(f"the answer is {type(answer).__name__}, not a dict")
    events, messages = answer.get("events"), answer.get("responses")
    if not isinstance(events, list) or not isinstance(messages, list):
        raise Malformed('the answer has no "events" and "responses" lists')
    changes = read(name, events, domain=domain, session=session)
    replies = [r for m in messages if (r := _reply(m, domain, session.language, session.slots, channel)) is not None]
    changes.commit(session)
    return Outcome(
        replies=replies,
        followups=changes.followups,
        escalate=changes.escalate,
        resume=changes.resume,
        reminders=changes.reminders,
        cancel_reminders=changes.cancel_reminders,
    )


def _reply(message: Any, domain: Domain, language: str, slots: Mapping[str, Any], channel: str) -> Reply | None:
    """One ``dispatcher.utter_message`` as a Reply, as Rasa builds it: a named ``response`` rendered in
    the customer's language (slots and the message's extra keyword arguments fill its placeholders),
    then the message's own non-empty fields over it, its buttons added."""
    if not isinstance(message, dict):
        raise Malformed(f"{short(message)} is not a message")
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
            raise Malformed(f"custom {short(message['custom'])} is not a dict")
        custom = message["custom"]
    for button in message.get("buttons") or []:
        if not isinstance(button, dict) or "title" not in button:
            raise Malformed(f"button {short(button)} has no title")
        buttons.append(Button(str(button["title"]), str(button.get("payload") or button["title"])))
    if not (text or image or custom or buttons):
        return None
    return Reply(text or "", tuple(buttons), image=image, custom=custom)
