"""The shapes Rasa's action server and rasa-sdk's Tracker expect, checked where a mistake would not
show in a reply: button presses and triggered intents as Rasa writes them, the domain's slots."""

from __future__ import annotations

from dataclasses import replace

from rasa_sdk import Tracker

from seamline.bots.dialogue.model import SlotMapping
from seamline.bots.dialogue.tracker import action_call, bot_event, domain_dict, domain_dict_and_digest, user_event
from seamline.nlu.parse import Parse
from seamline.shared.message import Button, Message, Reply

from tests.bots.actions.sample import DOMAIN, conversation


def test_a_button_press_is_its_payload_and_a_triggered_intent_is_slash_intent():
    pressed = user_event(Parse("track", 1.0), Message("vk", "1", "1", "Track", payload="/track"))
    assert pressed["text"] == "/track" and pressed["parse_data"]["text"] == "/track"
    assert pressed["input_channel"] == "vk"
    fired = user_event(Parse("remind_order", 1.0), None)
    assert fired["text"] == "/remind_order"
    assert fired["parse_data"]["intent_ranking"][0] == {"name": "remind_order", "confidence": 1.0}


def test_what_the_bot_said_keeps_its_buttons_image_and_payload():
    event = bot_event(Reply("Pick", (Button("A", "/a"),), image="https://x.example/a.png", custom={"k": 1}))
    assert event["event"] == "bot" and event["text"] == "Pick"
    assert event["data"] == {
        "buttons": [{"title": "A", "payload": "/a"}],
        "image": "https://x.example/a.png",
        "custom": {"k": 1},
    }


def test_rasa_sdk_reads_the_call_as_rasa_sends_it():
    call = action_call("action_x", domain=DOMAIN, session=conversation(vip=True), channel="telegram")
    assert call["next_action"] == "action_x" and call["version"].startswith("3.")
    tracker = Tracker.from_dict(call["tracker"])
    assert tracker.get_slot("vip") is True and tracker.get_slot("order_number") is None
    assert tracker.get_latest_input_channel() == "telegram"
    assert tracker.latest_message["intent"] == {"name": "order_status", "confidence": 0.93}


def test_the_domain_json_and_its_digest():
    profiled = replace(
        DOMAIN.slots["order_number"],
        mappings=(
            SlotMapping("from_entity", entity="order_number", active_form="order_form"),
            SlotMapping("from_profile", attribute="phone"),
        ),
    )
    domain = replace(DOMAIN, slots={**DOMAIN.slots, "order_number": profiled})
    shown = domain_dict(domain)
    assert shown["slots"]["order_number"]["mappings"] == [
        {"type": "from_entity", "entity": "order_number", "conditions": [{"active_loop": "order_form"}]},
        {"type": "custom"},
    ]
    assert shown["slots"]["tier"]["values"] == ["gold", "silver"] and "requested_slot" in shown["slots"]
    assert shown["responses"]["order_found"] == [{"text": "Order {order_number} is {status}."}]
    assert domain_dict_and_digest(domain)[1] == domain_dict_and_digest(replace(domain))[1]
    assert domain_dict_and_digest(domain)[1] != domain_dict_and_digest(DOMAIN)[1]
