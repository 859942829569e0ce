"""Custom actions as rule steps (rasa-sdk classes run by rasa-sdk's executor): their messages said
with buttons, a follow-up action chained, a pause handing over to people, a failure answered politely
once and kept as a problem, and an endless chain cut."""

from __future__ import annotations

import pytest
from rasa_sdk import Action
from rasa_sdk.events import ConversationPaused, FollowupAction, SlotSet

from seamline.bots.dialogue.model import MAX_ACTIONS_PER_TURN

from tests.bots.dialogue.shop import Chat, InProcess, dialogue, project

pytest.importorskip("seamline.bots.dialogue.actions")

RULES = """
rules:
  - name: menu
    intent: menu
    then: [action_menu]
  - name: broken twice
    intent: broken
    then: [action_boom, action_boom, after_boom]
  - name: people
    intent: complaint
    then: [action_pause, never_said]
  - name: loop
    intent: loop
    then: [action_loop]
"""
DOMAIN = """
slots:
  reason: {type: text, mappings: [{type: from_action}]}
actions: [action_menu, action_next, action_boom, action_pause, action_loop]
"""
EN = """
after_boom: [{text: "Anything else?"}]
never_said: [{text: "never"}]
"""


def action(name: str, run):
    return type(name, (Action,), {"name": lambda self: name, "run": lambda self, d, t, dom: run(d, t)})()


def menu(dispatcher, tracker):
    dispatcher.utter_message(text="Pick one", buttons=[{"title": "Orders", "payload": "/order_status"}])
    return [FollowupAction("action_next")]


def following(dispatcher, tracker):
    dispatcher.utter_message(text=f"next, on {tracker.get_latest_input_channel()}")
    return []


def boom(dispatcher, tracker):
    raise RuntimeError("the order system is down")


def pause(dispatcher, tracker):
    dispatcher.utter_message(text="A person will help.")
    return [SlotSet("reason", "angry"), ConversationPaused()]


def loop(dispatcher, tracker):
    dispatcher.utter_message(text="again")
    return [FollowupAction("action_loop")]


@pytest.fixture
def shop(tmp_path):
    server = InProcess(
        action("action_menu", menu),
        action("action_next", following),
        action("action_boom", boom),
        action("action_pause", pause),
        action("action_loop", loop),
    )
    return dialogue(project(tmp_path, domain=DOMAIN, rules=RULES, en=EN), actions=server)


async def test_an_actions_messages_and_its_follow_up_are_said(shop):
    decision = await Chat(shop, channel="telegram").say("menu", "menu")
    assert [r.text for r in decision.replies] == ["Pick one", "next, on telegram"]
    assert [b.payload for b in decision.replies[0].buttons] == ["/order_status"]
    assert decision.actions == ("action_menu", "action_next")


async def test_a_failing_action_is_answered_politely_once_and_the_turn_goes_on(shop):
    chat = Chat(shop)
    decision = await chat.say("broken", "broken")
    assert [r.text for r in decision.replies] == ["Something went wrong", "Anything else?"]
    assert len(decision.problems) == 2 and all("action_boom" in p for p in decision.problems)
    assert "the order system is down" in decision.problems[0]


async def test_a_pause_hands_over_to_people_and_stops_the_rule(shop):
    chat = Chat(shop)
    decision = await chat.say("you are useless", "complaint")
    assert [r.text for r in decision.replies] == ["A person will help."]
    assert decision.escalate and chat.session.slots["reason"] == "angry"


async def test_an_endless_chain_of_follow_ups_is_cut(shop):
    decision = await Chat(shop).say("loop", "loop")
    assert decision.actions == ("action_loop",) * MAX_ACTIONS_PER_TURN
