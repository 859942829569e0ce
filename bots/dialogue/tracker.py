"""The conversation as Rasa sees it: tracker events, the tracker state and the domain JSON that a
rasa-sdk action receives (Rasa's action-server protocol, ``POST /webhook``).

Why Rasa's shapes, byte for byte: a project's actions are written against ``rasa_sdk.Tracker`` and
may run on a stock ``python -m rasa_sdk`` server, so what we send must be what Rasa sends. The
session keeps the events (``Session.events``, the latest EVENT_LIMIT), and the session belongs to
the customer, so the history an action reads spans every channel the customer wrote from; each user
event names its ``input_channel``.

Building a call is on every action's path, so it is cheap: the domain's JSON and digest are made
once per ``Domain`` (cached), and the tracker copies lists, never deep-copies them.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from seamline.bots.dialogue.model import Domain, Slot
from seamline.nlu.parse import Parse
from seamline.shared.message import Message, Reply
from seamline.shared.session import Session

RASA_VERSION = "3.1.0"  # the protocol version we speak (rasa-sdk checks only that it is 3.x)
DOMAIN_VERSION = "3.1"
_SLOT_TYPES = {"any": "any", "text": "text", "bool": "bool", "categorical": "categorical", "float": "float"}
_DOMAINS: dict[int, tuple[Domain, dict[str, Any], str]] = {}  # id(domain) -> (domain, json, digest)
_DOMAINS_KEPT = 16  # tests build many domains; a server one


def user_event(parse: Parse, message: Message | None) -> dict[str, Any]:
    """Rasa's ``user`` event for a customer's message and what the NLU understood of it. A button
    press is the button's payload (as Rasa receives it), else the typed text; an intent triggered
    without a message (a reminder firing) is "/intent", as Rasa writes it."""
    text = (message.payload or message.text) if message is not None else f"/{parse.intent}"
    parse_data: dict[str, Any] = {
        "intent": {"name": parse.intent, "confidence": parse.confidence},
        "entities": [
            {"entity": e.type, "value": e.value, "start": e.start, "end": e.end, "extractor": "seamline"}
            for e in parse.entities
        ],
        # the chosen intent first (rasa-sdk's get_intent_of_latest_message reads the ranking's head)
        "intent_ranking": [{"name": parse.intent, "confidence": parse.confidence}]
        + [{"name": name, "confidence": confidence} for name, confidence in parse.ranking if name != parse.intent],
        "text": text,
    }
    message_id = (message.external_id if message is not None else None) or uuid.uuid4().hex
    parse_data["message_id"] = message_id
    metadata: dict[str, Any] = {"language": parse.language} if parse.language else {}
    return {
        "event": "user",
        "timestamp": message.ts.timestamp() if message is not None else time.time(),
        "text": text,
        "parse_data": parse_data,
        "input_channel": message.channel if message is not None else None,
        "message_id": message_id,
        "metadata": metadata,
    }


def bot_event(reply: Reply) -> dict[str, Any]:
    """Rasa's ``bot`` event for something the bot said."""
    buttons = [{"title": b.title, "payload": b.payload} for b in reply.buttons] or None
    return {
        "event": "bot",
        "timestamp": reply.ts.timestamp(),
        "text": reply.text or None,
        "data": {"buttons": buttons, "image": reply.image, "custom": reply.custom},
        "metadata": {},
    }


def action_event(name: str) -> dict[str, Any]:
    """Rasa's ``action`` event: an action ran (recorded before the events it returned)."""
    return {"event": "action", "timestamp": time.time(), "name": name}


def action_call(
    name: str,
    *,
    domain: Domain,
    session: Session,
    channel: str,
    slots_to_validate: Mapping[str, Any] | None = None,
    with_domain: bool = True,
) -> dict[str, Any]:
    """The JSON body Rasa posts to an action server to run ``name``.

    ``sender_id`` is the customer's id (one per person across channels, as the session is), not a
    channel's chat id. ``slots_to_validate`` are slot candidates a form wants checked: they are set
    in the tracker's slots and appended as ``slot`` events after everything else, which is where
    ``Tracker.slots_to_validate()`` (and so ``FormValidationAction``) looks for them. The domain is
    left out with ``with_domain=False``: the server has it already when it knows the digest (it
    answers 449 when it does not)."""
    domain_json, digest = domain_dict_and_digest(domain)
    events = list(session.events)
    values: dict[str, Any] = dict.fromkeys(domain.slots)
    values.update(session.slots)
    values["requested_slot"] = session.requested_slot
    if slots_to_validate:
        values.update(slots_to_validate)
        events.extend({"event": "slot", "timestamp": None, "name": k, "value": v} for k, v in slots_to_validate.items())
    latest: dict[str, Any] = {}
    latest_action = "action_listen"
    for event in reversed(session.events):
        kind = event.get("event")
        if kind == "user":
            latest = dict(event.get("parse_data") or {})
            latest.setdefault("text", event.get("text"))
            break
        if kind == "action" and latest_action == "action_listen":
            latest_action = str(event.get("name") or "action_listen")
    tracker = {
        "sender_id": session.customer_id,
        "slots": values,
        "latest_message": latest,
        "latest_event_time": events[-1].get("timestamp") if events else None,
        "followup_action": None,
        "paused": session.handoff != "bot",
        "events": events,
        "latest_input_channel": channel,
        "active_loop": {"name": session.active_form} if session.active_form else {},
        "latest_action": {"action_name": latest_action},
        "latest_action_name": latest_action,
    }
    call: dict[str, Any] = {
        "next_action": name,
        "sender_id": session.customer_id,
        "tracker": tracker,
        "domain_digest": digest,
        "version": RASA_VERSION,
    }
    if with_domain:
        call["domain"] = domain_json
    return call


def domain_dict(domain: Domain) -> dict[str, Any]:
    """Rasa's domain JSON (what ``Domain.as_dict()`` gives): intents, entities, slots with their
    mappings, responses, forms with their required slots, actions. Made once per domain; do not
    change what it returns."""
    return domain_dict_and_digest(domain)[0]


def domain_dict_and_digest(domain: Domain) -> tuple[dict[str, Any], str]:
    cached = _DOMAINS.get(id(domain))
    if cached is not None and cached[0] is domain:
        return cached[1], cached[2]
    built = _build_domain(domain)
    digest = hashlib.sha256(json.dumps(built, sort_keys=True, default=str).encode()).hexdigest()
    while len(_DOMAINS) >= _DOMAINS_KEPT:
        del _DOMAINS[next(iter(_DOMAINS))]
    _DOMAINS[id(domain)] = (domain, built, digest)  # the domain is kept, so its id is not reused
    return built, digest


def _build_domain(domain: Domain) -> dict[str, Any]:
    forms = {name: {"required_slots": list(form.required_slots)} for name, form in domain.forms.items()}
    slots = {name: _slot(slot) for name, slot in domain.slots.items()}
    slots.setdefault("requested_slot", {"type": "any", "influence_conversation": False, "mappings": []})
    return {
        "version": DOMAIN_VERSION,
        "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
        "intents": list(domain.intents),
        "entities": list(domain.entities),
        "slots": slots,
        "responses": _responses(domain),
        "actions": list(domain.actions),
        "forms": forms,
        "e2e_actions": [],
    }


def _slot(slot: Slot) -> dict[str, Any]:
    mappings: list[dict[str, Any]] = []
    for m in slot.mappings:
        if m.type in ("from_entity", "from_intent", "from_text"):
            mapping: dict[str, Any] = {"type": m.type}
            if m.entity:
                mapping["entity"] = m.entity
            if m.type == "from_intent":
                mapping["value"] = m.value
            if m.intent:
                mapping["intent"] = list(m.intent)
            if m.not_intent:
                mapping["not_intent"] = list(m.not_intent)
        else:  # from_profile, from_button, from_action: Rasa's "custom" (filled outside its mappings)
            mapping = {"type": "custom"}
        condition = {k: v for k, v in (("active_loop", m.active_form), ("requested_slot", m.requested_slot)) if v}
        if condition:
            mapping["conditions"] = [condition]
        mappings.append(mapping)
    shown: dict[str, Any] = {
        "type": _SLOT_TYPES.get(slot.type, slot.type),
        "initial_value": slot.initial,
        "influence_conversation": False,
        "mappings": mappings,
    }
    if slot.type == "categorical":
        shown["values"] = list(slot.values)
    return shown


def _responses(domain: Domain) -> dict[str, list[dict[str, Any]]]:
    """Each response key with its variants, in English when it has them, else the first language
    that does (Rasa's domain has one language; Seamline renders ``response=`` in the customer's)."""
    variants: Mapping[str, Mapping[str, list[dict[str, Any]]]] = getattr(domain.responses, "_variants", {})
    found: dict[str, list[dict[str, Any]]] = {}
    for language in ("en", *variants):
        for key, options in (variants.get(language) or {}).items():
            if key not in found and isinstance(options, list):
                found[key] = [o for o in options if isinstance(o, dict)]
    return found
