"""Dialogue decisions on the retail template's config: the order-status form, fallbacks, escalation,
the customer's language."""

from __future__ import annotations

import pytest

from seamline.bots.dialogue import Dialogue, load_domain
from seamline.shared.message import Message
from seamline.shared.session import Session
from seamline.shared.settings import CONFIG_DIR


class Recorded:
    """An action server that answers every action with nothing and remembers what was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def knows(self, name: str) -> bool:
        return True

    async def run(self, call: dict) -> dict:
        self.asked.append(call["next_action"])
        return {"events": [], "responses": [{"text": f"ran {call['next_action']}"}]}

    async def close(self) -> None:
        return None


@pytest.fixture
def server():
    return Recorded()


@pytest.fixture
def dialogue(server):
    return Dialogue(
        domain=load_domain(CONFIG_DIR),
        actions=server,
        escalate_intents={"human_agent": "intent human_agent", "complaint": "intent complaint"},
        fallbacks_before_human=2,
    )


async def turn(dialogue, understanding, session, text, payload=None, channel="web"):
    message = Message(channel=channel, address="a", sender="s", text=text, payload=payload)
    return await dialogue.decide(understanding.parse(text, payload), session, message=message)


async def test_order_status_asks_for_the_number_then_runs_the_action(dialogue, understanding, server):
    session = Session(customer_id="c", conversation_id="v")
    first = await turn(dialogue, understanding, session, "where is my order?")
    assert session.active_form == "order_status_form" and "order number" in first.replies[0].text.lower()
    assert session.requested_slot == "order_number"
    second = await turn(dialogue, understanding, session, "it's 5551234")
    assert session.active_form is None and session.slots["order_number"] == "5551234"
    assert second.actions == ("action_order_status",) and server.asked == ["action_order_status"]
    assert [r.text for r in second.replies] == ["ran action_order_status"]


async def test_a_number_given_with_the_question_skips_the_question(dialogue, understanding, server):
    session = Session(customer_id="c", conversation_id="v")
    decision = await turn(dialogue, understanding, session, "где мой заказ 48213")
    assert session.active_form is None and session.slots["order_number"] == "48213"
    assert decision.actions == ("action_order_status",)


async def test_another_question_mid_form_is_answered_then_the_form_asks_again(dialogue, understanding):
    session = Session(customer_id="c", conversation_id="v")
    await turn(dialogue, understanding, session, "where is my order")
    decision = await turn(dialogue, understanding, session, "how much is delivery")
    assert session.active_form == "order_status_form"
    assert "deliver" in decision.replies[0].text.lower() and "order number" in decision.replies[-1].text.lower()


async def test_repeated_misunderstanding_offers_a_person(dialogue, understanding):
    session = Session(customer_id="c", conversation_id="v")
    first = await turn(dialogue, understanding, session, "what is the meaning of life")
    second = await turn(dialogue, understanding, session, "how tall is mount everest")
    assert not any(b.payload == "/human_agent" for b in first.replies[0].buttons) or session.fallbacks == 2
    assert any(b.payload == "/human_agent" for b in second.replies[0].buttons)
    assert first.replies[0].text != second.replies[0].text
    await turn(dialogue, understanding, session, "hello")
    assert session.fallbacks == 0


async def test_asking_for_a_person_escalates_with_a_reason(dialogue, understanding):
    session = Session(customer_id="c", conversation_id="v")
    decision = await turn(dialogue, understanding, session, "позовите оператора")
    assert decision.escalate == "intent human_agent" and session.language == "ru"


async def test_a_complaint_is_answered_and_escalated_once(dialogue, understanding):
    session = Session(customer_id="c", conversation_id="v")
    decision = await turn(dialogue, understanding, session, "your courier was rude to me, I'm very unhappy")
    assert decision.escalate and len(decision.replies) == 1
    session.handoff = "queued"
    assert (await turn(dialogue, understanding, session, "the courier was so rude")).escalate is None


async def test_the_bot_answers_in_the_language_of_the_message(dialogue, understanding):
    session = Session(customer_id="c", conversation_id="v", language="en")
    ru = await turn(dialogue, understanding, session, "спасибо")
    assert session.language == "ru" and any("а" <= ch <= "я" for ch in ru.replies[0].text.lower())
    await turn(dialogue, understanding, session, "12345")  # no letters: the language stays
    assert session.language == "ru"


async def test_the_turn_is_kept_as_tracker_events(dialogue, understanding):
    session = Session(customer_id="c", conversation_id="v")
    await turn(dialogue, understanding, session, "where is my order")
    kinds = [e["event"] for e in session.events]
    assert kinds[0] == "user" and "active_loop" in kinds and kinds[-1] == "bot"
    assert {"event": "active_loop", "name": "order_status_form"}.items() <= next(
        e for e in session.events if e["event"] == "active_loop"
    ).items()
