"""The sample bot the action tests talk about: its domain (slots of each type, a form, responses in
two languages), where its actions package is, and a conversation with one customer message."""

from __future__ import annotations

from pathlib import Path

from seamline.bots.dialogue.model import Domain, Form, Slot
from seamline.bots.dialogue.responses import Responses
from seamline.bots.dialogue.tracker import user_event
from seamline.nlu.parse import Entity, Parse
from seamline.shared.message import Message
from seamline.shared.session import Session

PROJECT = Path(__file__).parent / "project"  # holds the actions package (project/actions/)
RESPONSES = {
    "en": {
        "order_found": [{"text": "Order {order_number} is {status}."}],
        "fallback": [{"text": "Sorry?"}],
    },
    "ru": {"order_found": [{"text": "Заказ {order_number}: {status}."}]},
}
DOMAIN = Domain(
    responses=Responses(RESPONSES),
    intents=("order_status", "greet"),
    entities=("order_number",),
    slots={
        "order_number": Slot("order_number", "text"),
        "order_count": Slot("order_count", "float"),
        "vip": Slot("vip", "bool"),
        "handoff_reason": Slot("handoff_reason", "text"),
        "tier": Slot("tier", "categorical", values=("gold", "silver"), initial="silver"),
    },
    forms={"order_form": Form("order_form", ("order_number",))},
    actions=("action_check_order", "validate_order_form"),
)


def conversation(text: str = "where is my order 48213", channel: str = "telegram", **slots) -> Session:
    session = Session("customer-7", "conversation-7", slots=dict(slots))
    entities = (Entity("order_number", "48213", "48213", 18, 23),) if "48213" in text else ()
    parse = Parse("order_status", 0.93, (("order_status", 0.93), ("greet", 0.04)), entities, "en")
    session.record(user_event(parse, Message(channel, "chat-1", "user-1", text, external_id="m-1")))
    return session
