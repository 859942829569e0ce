"""Forms: asked slot by slot, values checked (a pattern, an entity, a validation action), another
question answered mid-form and the form resumed, cancelled in English and Russian, submitted by its
own steps and by after_form rules."""

from __future__ import annotations

import pytest

from seamline.bots.dialogue import Dialogue, load_domain
from seamline.shared.session import Session

from tests.bots.dialogue.shop import Chat, InProcess, dialogue, project

DOMAIN = r"""
slots:
  order_number:
    type: text
    mappings: [{type: from_entity, entity: order_number}]
  receipt:
    type: text
    mappings: [{type: from_text}]
  reason:
    type: text
    mappings: [{type: from_text, not_intent: [delivery_info]}]
  wants_news:
    type: bool
    mappings:
      - {type: from_intent, intent: affirm, value: true, active_form: newsletter_form}
      - {type: from_intent, intent: deny, value: false, active_form: newsletter_form}
  email:
    type: text
    mappings: [{type: from_entity, entity: email}, {type: from_text, requested_slot: email}]
forms:
  order_form:
    required_slots: [order_number]
    ask: {order_number: ask_order_number}
    validate:
      order_number: {pattern: '\d{4,12}', invalid: order_number_invalid}
    submit: [order_found]
  return_form:
    required_slots: [receipt, reason]
    validate:
      receipt: {entity: order_number}
    cancelled: return_cancelled
  newsletter_form:
    required_slots: [wants_news, email]
    submit: [{response: newsletter_done}]
"""
RULES = """
rules:
  - name: orders
    intent: order_status
    then: [order_form]
  - name: returns
    intent: return_item
    then: [{form: return_form}]
  - name: return submitted
    after_form: return_form
    then: [return_done]
  - name: news
    intent: subscribe
    then: [newsletter_form]
"""
EN = """
ask_order_number: [{text: "Your order number?"}]
order_number_invalid: [{text: "That is not an order number."}]
order_found: [{text: "Order {order_number} is on its way."}]
ask_receipt: [{text: "The number on the receipt?"}]
utter_ask_reason: [{text: "Why are you returning it?"}]
return_cancelled: [{text: "No return then."}]
return_done: [{text: "Return of {receipt} registered: {reason}."}]
ask_wants_news: [{text: "Do you want our news?"}]
utter_ask_newsletter_form_email: [{text: "Your email?"}]
newsletter_done: [{text: "Subscribed {email}."}]
delivery_info: [{text: "Delivery takes 2 days."}]
link_done: [{text: "Linked."}]
"""
RU = """
ask_order_number: [{text: "Номер заказа?"}]
order_found: [{text: "Заказ {order_number} в пути."}]
"""


@pytest.fixture
def shop(tmp_path) -> Dialogue:
    return dialogue(project(tmp_path, domain=DOMAIN, rules=RULES, en=EN, ru=RU))


async def test_a_form_asks_checks_the_pattern_and_submits(shop):
    chat = Chat(shop)
    assert await chat.texts("where is my order", "order_status") == ["Your order number?"]
    assert (chat.session.active_form, chat.session.requested_slot) == ("order_form", "order_number")
    assert await chat.texts("it's 12", None, order_number="12") == [
        "That is not an order number.",
        "Your order number?",
    ]
    assert chat.session.slots.get("order_number") is None
    assert await chat.texts("48213", None, order_number="48213") == ["Order 48213 is on its way."]
    assert chat.session.active_form is None and chat.session.slots["order_number"] == "48213"


async def test_a_value_given_with_the_question_skips_the_question(shop):
    chat = Chat(shop)
    assert await chat.texts("where is order 48213", "order_status", order_number="48213") == [
        "Order 48213 is on its way."
    ]


async def test_an_entity_check_takes_only_what_the_model_found_and_after_form_rules_run(shop):
    chat = Chat(shop)
    assert await chat.texts("I want to return a kettle", "return_item") == ["The number on the receipt?"]
    assert await chat.texts("no idea", None) == ["The number on the receipt?"]  # no order number in it
    assert await chat.texts("5555", None, order_number="5555") == ["Why are you returning it?"]
    assert await chat.texts("it leaks", None) == ["Return of 5555 registered: it leaks."]
    assert chat.session.active_form is None


async def test_another_question_mid_form_is_answered_then_the_form_resumes(shop):
    chat = Chat(shop)
    await chat.say("where is my order", "order_status")
    assert await chat.texts("how long is delivery", "delivery_info") == ["Delivery takes 2 days.", "Your order number?"]
    assert chat.session.active_form == "order_form"
    assert await chat.texts("48213", None, order_number="48213") == ["Order 48213 is on its way."]
    # from_text with not_intent: the question is not taken as the reason
    await chat.say("return please", "return_item")
    await chat.say("5555", None, order_number="5555")
    assert await chat.texts("how long is delivery", "delivery_info") == [
        "Delivery takes 2 days.",
        "Why are you returning it?",
    ]


@pytest.mark.parametrize(("word", "language"), [("cancel", "en"), ("Отмена!", "ru"), ("stop", "en")])
async def test_a_cancel_word_stops_the_form(shop, word, language):
    chat = Chat(shop, language=language)
    await chat.say("where is my order", "order_status", language=language)
    said = await chat.texts(word, None, language=language)
    assert said == ["Stopped." if language == "en" else "Отменил."]
    assert chat.session.active_form is None and chat.session.requested_slot is None
    assert await chat.texts("12345", None, order_number="12345", language=language) == [
        "Sorry?" if language == "en" else "Простите?"
    ]  # nothing asks for it any more


async def test_a_cancel_intent_stops_the_form_with_its_own_words(shop):
    chat = Chat(shop)
    await chat.say("return", "return_item")
    assert await chat.texts("forget it", "cancel") == ["No return then."]
    assert chat.session.active_form is None


async def test_yes_no_fill_a_bool_slot_only_inside_its_form_and_text_fills_what_is_asked(shop):
    chat = Chat(shop)
    await chat.say("yes", "affirm")
    assert "wants_news" not in chat.session.slots  # not inside the form: nothing to fill
    assert await chat.texts("news please", "subscribe") == ["Do you want our news?"]
    assert await chat.texts("yes", "affirm") == ["Your email?"]
    assert await chat.texts("anna@example.com", None) == ["Subscribed anna@example.com."]
    assert chat.session.slots["wants_news"] is True


async def test_misunderstanding_in_a_form_asks_again_then_offers_a_person(shop):
    chat = Chat(shop)
    await chat.say("where is my order", "order_status")
    assert await chat.texts("hmm", None) == ["Your order number?"]
    assert await chat.texts("hmm?", None) == ["Shall I call a person?"]


async def test_the_form_is_session_state_so_it_goes_on_wherever_the_session_is_loaded(shop, tmp_path):
    web = Chat(shop, channel="web")
    await web.say("where is my order", "order_status")
    telegram = Chat(shop, channel="telegram")
    telegram.session = Session.from_dict(web.session.to_dict())  # as the session store keeps it
    linked = shop.link_outcome("linked", telegram.session)
    assert [r.text for r in linked.replies] == ["Linked.", "Your order number?"]  # picked up where it was
    assert await telegram.texts("48213", None, order_number="48213") == ["Order 48213 is on its way."]


def test_the_retail_template_has_no_order_specific_python():
    from pathlib import Path

    import seamline.bots.dialogue as package

    source = " ".join(p.read_text() for p in Path(package.__file__).parent.glob("*.py"))
    assert not any(f"{quote}order_" in source for quote in "\"'")  # no order slot, form or topic named in code
    domain = load_domain(Path(package.__file__).resolve().parents[2] / "config")
    assert domain.forms["order_status_form"].submit[0].name == "action_order_status"


# -- validation by a custom action (rasa-sdk's FormValidationAction) --------------------------------


async def test_a_validation_action_refuses_a_value_and_says_why(tmp_path):
    pytest.importorskip("seamline.bots.dialogue.actions")
    from rasa_sdk import FormValidationAction

    class ValidateOrderForm(FormValidationAction):
        def name(self) -> str:
            return "validate_order_form"

        def validate_order_number(self, value, dispatcher, tracker, domain):
            if value.startswith("0"):
                dispatcher.utter_message(text="Order numbers never start with 0.")
                return {"order_number": None}
            return {"order_number": value}

    domain = DOMAIN.replace("forms:\n", "actions: [validate_order_form]\nforms:\n")
    shop = Dialogue(
        domain=load_domain(project(tmp_path, domain=domain, rules=RULES, en=EN, ru=RU)),
        actions=InProcess(ValidateOrderForm()),
    )
    chat = Chat(shop)
    await chat.say("where is my order", "order_status")
    decision = await chat.say("01234", None, order_number="01234")
    assert [r.text for r in decision.replies] == ["Order numbers never start with 0.", "Your order number?"]
    assert decision.actions == ("validate_order_form",) and chat.session.slots.get("order_number") is None
    assert await chat.texts("48213", None, order_number="48213") == ["Order 48213 is on its way."]


async def test_a_question_taken_as_free_text_and_refused_is_answered_as_a_question(shop):
    chat = Chat(shop)
    await chat.say("return please", "return_item")  # asks for the receipt number (free text, an entity check)
    assert await chat.texts("how long is delivery", "delivery_info") == [
        "Delivery takes 2 days.",
        "The number on the receipt?",
    ]
    assert chat.session.slots.get("receipt") is None and chat.session.active_form == "return_form"


async def test_a_value_given_with_the_question_is_checked_too(shop):
    chat = Chat(shop)
    assert await chat.texts("where is order 12", "order_status", order_number="12") == [
        "That is not an order number.",
        "Your order number?",
    ]
    assert chat.session.slots.get("order_number") is None
