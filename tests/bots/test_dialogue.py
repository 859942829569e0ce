"""Dialogue decisions: the order-number form, fallbacks, escalation, the customer's language."""

from __future__ import annotations

import pytest

from seamline.bots.dialogue import Dialogue, Responses
from seamline.shared.session import Session
from seamline.shared.settings import CONFIG_DIR


@pytest.fixture
def dialogue():
    return Dialogue(
        responses=Responses.from_dir(CONFIG_DIR / "responses"),
        escalate_intents={"human_agent": "intent human_agent", "complaint": "intent complaint"},
        fallbacks_before_human=2,
    )


def turn(dialogue, understanding, session, text, payload=None):
    return dialogue.decide(understanding.parse(text, payload), session)


def test_order_status_asks_for_the_number_then_keeps_it(dialogue, understanding):
    session = Session(customer_id="c", conversation_id="v")
    first = turn(dialogue, understanding, session, "where is my order?")
    assert session.active_form == "order_status" and "order number" in first.replies[0].text.lower()
    second = turn(dialogue, understanding, session, "it's 5551234")
    assert session.active_form is None and session.slots["order_number"] == "5551234"
    assert "5551234" in second.replies[0].text


def test_a_number_given_with_the_question_skips_the_form(dialogue, understanding):
    session = Session(customer_id="c", conversation_id="v")
    decision = turn(dialogue, understanding, session, "где мой заказ 48213")
    assert session.active_form is None and "48213" in decision.replies[0].text


def test_changing_the_subject_leaves_the_form(dialogue, understanding):
    session = Session(customer_id="c", conversation_id="v")
    turn(dialogue, understanding, session, "where is my order")
    turn(dialogue, understanding, session, "how much is delivery")
    assert session.active_form is None


def test_repeated_misunderstanding_offers_a_person(dialogue, understanding):
    session = Session(customer_id="c", conversation_id="v")
    first = turn(dialogue, understanding, session, "what is the meaning of life")
    second = turn(dialogue, understanding, session, "how tall is mount everest")
    assert not any(b.payload == "/human_agent" for b in first.replies[0].buttons) or session.fallbacks == 2
    assert any(b.payload == "/human_agent" for b in second.replies[0].buttons)
    assert first.replies[0].text != second.replies[0].text
    turn(dialogue, understanding, session, "hello")
    assert session.fallbacks == 0


def test_asking_for_a_person_escalates_with_a_reason(dialogue, understanding):
    session = Session(customer_id="c", conversation_id="v")
    decision = turn(dialogue, understanding, session, "позовите оператора")
    assert decision.escalate == "intent human_agent" and session.language == "ru"


def test_a_complaint_is_answered_and_escalated_once(dialogue, understanding):
    session = Session(customer_id="c", conversation_id="v")
    decision = turn(dialogue, understanding, session, "your courier was rude to me, I'm very unhappy")
    assert decision.escalate and len(decision.replies) == 1
    session.handoff = "queued"
    assert turn(dialogue, understanding, session, "the courier was so rude").escalate is None


def test_the_bot_answers_in_the_language_of_the_message(dialogue, understanding):
    session = Session(customer_id="c", conversation_id="v", language="en")
    ru = turn(dialogue, understanding, session, "спасибо")
    assert session.language == "ru" and any("а" <= ch <= "я" for ch in ru.replies[0].text.lower())
    turn(dialogue, understanding, session, "12345")  # no letters: the language stays
    assert session.language == "ru"
