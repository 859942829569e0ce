"""Actions inside a turn: a rule runs the project's action (in process and on the server) and the
dialogue does what the action asked: answer, chain a follow-up, hand over with its reason, schedule a
reminder; and when the action fails, the customer gets the polite fallback in their language, the
console gets the reason, and the conversation goes on."""

from __future__ import annotations

from dataclasses import replace

from seamline.bots.dialogue import Dialogue, Rule, RuleStep
from seamline.bots.dialogue.responses import Responses
from seamline.nlu.parse import Entity, Parse
from seamline.shared.message import Message
from seamline.shared.session import Session

from tests.bots.actions.sample import DOMAIN, RESPONSES

TURN_RESPONSES = {
    "en": {**RESPONSES["en"], "action_failed": [{"text": "Sorry, something went wrong on our side."}]},
    "ru": {**RESPONSES["ru"], "action_failed": [{"text": "Извините, у нас что-то сломалось."}]},
}
RULES = (
    Rule("order", (RuleStep("action", "action_check_order"),), intent="order_status"),
    Rule("refund", (RuleStep("action", "action_refund"),), intent="refund"),
    Rule("chain", (RuleStep("action", "action_first"),), intent="chain"),
    Rule("remind", (RuleStep("action", "action_remind"),), intent="remind"),
    Rule("broken", (RuleStep("action", "action_fail"),), intent="broken"),
)


def bot(server) -> Dialogue:
    domain = replace(DOMAIN, responses=Responses(TURN_RESPONSES), rules=RULES, intents=(*DOMAIN.intents, "refund"))
    return Dialogue(domain=domain, actions=server, action_timeout=5)


async def turn(dialogue: Dialogue, session: Session, intent: str, text: str = "hi", language: str = "en"):
    message = Message("telegram", "chat-1", "user-1", text)
    entities = tuple(
        Entity("order_number", w, w, text.index(w), text.index(w) + len(w)) for w in text.split() if w.isdigit()
    )
    return await dialogue.decide(Parse(intent, 0.9, entities=entities, language=language), session, message=message)


async def test_a_rule_runs_the_action_and_its_follow_up(server):
    dialogue, session = bot(server), Session("customer-1", "conversation-1")
    decision = await turn(dialogue, session, "chain")
    assert [r.text for r in decision.replies] == ["first", "second"]
    assert decision.actions == ("action_first", "action_second") and not decision.problems


async def test_an_action_pausing_the_conversation_hands_it_over(server):
    dialogue, session = bot(server), Session("customer-1", "conversation-1")
    decision = await turn(dialogue, session, "refund")
    assert decision.escalate == "Refund over the limit"
    assert [r.text for r in decision.replies] == ["A colleague will look at the refund."]


async def test_a_reminder_scheduled_by_an_action_reaches_the_turn(server):
    decision = await turn(bot(server), Session("customer-1", "conversation-1"), "remind")
    assert [r.name for r in decision.reminders][0] == "tomorrow"
    assert decision.cancel_reminders == ("old_reminder", "*")


async def test_a_failing_action_gets_a_polite_answer_and_the_conversation_goes_on(server):
    dialogue, session = bot(server), Session("customer-1", "conversation-1", language="ru")
    decision = await turn(dialogue, session, "broken", "сломай", language="ru")
    assert [r.text for r in decision.replies] == ["Извините, у нас что-то сломалось."]
    assert len(decision.problems) == 1 and "action_fail failed" in decision.problems[0]
    assert decision.escalate is None
    after = await turn(dialogue, session, "order_status", "где заказ 48213", language="ru")
    assert [r.text for r in after.replies] == ["Заказ 48213: shipped."] and not after.problems
