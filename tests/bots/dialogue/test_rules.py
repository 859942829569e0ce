"""Rules and responses as an author writes them: conditions on slots, channel and language; steps;
response variants with buttons, images, channel and slot conditions, profile placeholders; and the
mistakes a config can have, said with the file and the entry."""

from __future__ import annotations

import pytest

from seamline.nlu.understanding import _command
from seamline.shared.errors import ConfigError

from tests.bots.dialogue.shop import Chat, dialogue, project

RULES = """
rules:
  - name: vip payments go to people
    intent: payment_problem
    when: {slots: {vip: true}}
    then: [payment_vip, {handoff: "VIP payment problem"}]
  - name: payments on telegram in russian
    intent: payment_problem
    when: {channel: [telegram], language: [ru]}
    then: [{response: payment_telegram_ru}]
  - name: payments
    intent: payment_problem
    then: [payment_problem]
  - name: news
    intent: subscribe
    then: [{slot: {wants_news: true}}, subscribed, listen, never_said]
"""
DOMAIN = """
slots:
  vip:
    type: bool
    mappings: [{type: from_profile, attribute: vip}]
  wants_news:
    type: bool
    mappings: [{type: from_action}]
"""
EN = """
payment_vip: [{text: "A manager will call you."}]
payment_telegram_ru: [{text: "unused in english"}]
payment_problem: [{text: "Tell me the payment's time."}]
subscribed: [{text: "Subscribed: {wants_news}."}]
never_said: [{text: "never"}]
greet:
  - {text: "Hello, {name}!", buttons: [{title: "Orders", payload: "/order_status"}]}
  - {text: "Hello there!"}
photo:
  - {text: "Here it is", image: "https://example.com/a.png", custom: {card: 1}}
hours:
  - {text: "On Telegram: 9-18", channel: telegram}
  - {text: "9 to 6"}
status:
  - {text: "VIP line", condition: [{type: slot, name: vip, value: true}]}
  - {text: "Common line"}
"""
RU = """
payment_vip: [{text: "Менеджер позвонит."}]
payment_telegram_ru: [{text: "Напишите время платежа, в Telegram."}]
payment_problem: [{text: "Напишите время платежа."}]
subscribed: [{text: "Подписали."}]
never_said: [{text: "никогда"}]
"""


@pytest.fixture
def shop(tmp_path):
    return dialogue(project(tmp_path, domain=DOMAIN, rules=RULES, en=EN, ru=RU))


async def test_the_first_rule_whose_conditions_hold_answers(shop):
    plain = Chat(shop)
    assert await plain.texts("payment failed", "payment_problem") == ["Tell me the payment's time."]
    assert plain.decisions[-1].escalate is None
    vip = Chat(shop, vip=True)  # a profile attribute, mapped to the slot
    decision = await vip.say("payment failed", "payment_problem")
    assert [r.text for r in decision.replies] == ["A manager will call you."]
    assert decision.escalate == "VIP payment problem" and vip.session.slots["vip"] is True
    on_telegram = Chat(shop, channel="telegram", language="ru")
    assert await on_telegram.texts("платёж не прошёл", "payment_problem", language="ru") == [
        "Напишите время платежа, в Telegram."
    ]
    in_english = Chat(shop, channel="telegram")
    assert await in_english.texts("payment failed", "payment_problem") == ["Tell me the payment's time."]


async def test_steps_set_slots_and_listen_stops_the_rule(shop):
    chat = Chat(shop)
    assert await chat.texts("sign me up", "subscribe") == ["Subscribed: yes."]
    assert chat.session.slots["wants_news"] is True


async def test_an_intent_without_a_rule_gets_its_response_and_an_unknown_one_the_fallback(shop):
    chat = Chat(shop)
    assert await chat.texts("what time", "hours") == ["9 to 6"]
    assert await chat.texts("blah", "no_such_intent") == ["Sorry?"]
    assert await chat.texts("???", None) == ["Sorry?"]
    assert await chat.texts("!!!", None) == ["Shall I call a person?"]  # twice in a row


async def test_responses_with_profile_placeholders_buttons_images_channels_and_conditions(shop):
    web = Chat(shop)
    greetings = [(await web.say("hi", "greet", name="Anna")).replies[0] for _ in range(30)]
    named = [g for g in greetings if g.text == "Hello, Anna!"]
    assert named and {g.text for g in greetings} <= {"Hello, Anna!", "Hello there!"}  # both fit: either
    assert [b.payload for b in named[0].buttons] == ["/order_status"]
    for _ in range(10):  # no name known: never "Hello, {name}!"
        assert await web.texts("hi", "greet") == ["Hello there!"]
    photo = (await web.say("show", "photo")).replies[0]
    assert (photo.image, photo.custom) == ("https://example.com/a.png", {"card": 1})
    assert await Chat(shop, channel="telegram").texts("when", "hours") == ["On Telegram: 9-18"]
    assert await web.texts("which line", "status") == ["Common line"]
    assert await Chat(shop, vip="true").texts("which line", "status") == ["VIP line"]


async def test_the_turn_is_recorded_as_rasa_events(shop):
    chat = Chat(shop)
    await chat.say("sign me up", "subscribe")
    assert [e["event"] for e in chat.session.events] == ["user", "slot", "bot"]


def test_a_button_payload_carries_an_intent_and_entities_in_rasas_syntax():
    intent, entities = _command('/order_status{"order_number": "48213", "count": 2}')
    assert intent == "order_status" and [(e.type, e.value) for e in entities] == [
        ("order_number", "48213"),
        ("count", "2"),
    ]
    assert _command("/greet") == ("greet", ())
    assert _command("/greet{not json") == ("greet", ())


@pytest.mark.parametrize(
    ("files", "named"),
    [
        ({"rules": "rules:\n  - name: r\n    intent: x\n    then: [{form: nope}]\n"}, "rule 'r'"),
        ({"rules": "rules:\n  - name: r\n    intent: x\n"}, "rule 'r'"),
        ({"rules": "rules:\n  - name: r\n    intent: x\n    then: [{dance: 1}]\n"}, "rule 'r'"),
        ({"rules": "rules:\n  - name: r\n    intent: x\n    when: {weather: sunny}\n    then: [a]\n"}, "rule 'r'"),
        ({"domain": "slots:\n  s: {type: number}\n"}, "slot 's'"),
        ({"domain": "slots:\n  s: {mappings: [{type: from_entity}]}\n"}, "slot 's'"),
        ({"domain": "forms:\n  f: {required_slots: []}\n"}, "form 'f'"),
        ({"domain": "forms:\n  f:\n    required_slots: [a]\n    validate: {a: {pattern: '('}}\n"}, "form 'f'"),
        ({"domain": "slots: [1, 2"}, "valid YAML"),
    ],
)
def test_config_mistakes_name_the_file_and_the_entry(tmp_path, files, named):
    config = project(tmp_path, **files)
    with pytest.raises(ConfigError) as error:
        dialogue(config)
    assert named in str(error.value) and (config.name in error.value.setting)


def test_a_form_naming_a_response_that_does_not_exist_is_refused_at_start(tmp_path):
    config = project(tmp_path, domain="forms:\n  f:\n    required_slots: [a]\n    ask: {a: ask_it}\n")
    with pytest.raises(ConfigError) as error:
        dialogue(config)
    assert "form 'f'" in error.value.setting and "'ask_it'" in error.value.problem


async def test_a_project_without_a_framework_text_still_answers(tmp_path):
    config = project(tmp_path)
    for file in (config / "responses").glob("*.yml"):
        file.write_text(file.read_text().replace("  action_failed:", "  renamed:"))
    (config / "rules.yml").write_text("rules:\n  - {name: r, intent: x, then: [action_x]}\n")
    shop = dialogue(config)
    assert await Chat(shop).texts("x", "x") == [
        "Sorry, something went wrong on our side; please try again or ask for a person."
    ]


async def test_a_conversation_start_rule_runs_first_once_and_a_rule_can_let_the_next_one_run(tmp_path):
    rules = """
rules:
  - name: welcome
    conversation_start: true
    then: [welcome]
  - name: hours, then more
    intent: hours
    wait_for_user_input: false
    then: [hours]
  - name: more
    intent: hours
    then: [more]
  - name: never reached
    intent: hours
    then: [never_said]
"""
    en = """
welcome: [{text: "Welcome!"}]
hours: [{text: "9 to 6"}]
more: [{text: "Also on Sundays."}]
never_said: [{text: "never"}]
"""
    chat = Chat(dialogue(project(tmp_path, rules=rules, en=en)))
    assert await chat.texts("when are you open", "hours") == ["Welcome!", "9 to 6", "Also on Sundays."]
    assert await chat.texts("when are you open", "hours") == ["9 to 6", "Also on Sundays."]
