"""The custom actions the tests run, in process and on a real ``python -m rasa_sdk`` server: one per
thing an action can do or get wrong. Written as a bot author writes them, against rasa_sdk only."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import (
    ActiveLoop,
    AllSlotsReset,
    ConversationPaused,
    ConversationResumed,
    FollowupAction,
    ReminderCancelled,
    ReminderScheduled,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
)
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import ActionExecutionRejection

Domain = dict[str, Any]
RELEASE = threading.Event()  # the in-process test of a blocking action sets it


class ActionCheckOrder(Action):
    def name(self) -> str:
        return "action_check_order"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        number = next(tracker.get_latest_entity_values("order_number"), None) or tracker.get_slot("order_number")
        dispatcher.utter_message(response="order_found", order_number=number, status="shipped")
        return [SlotSet("order_number", number), SlotSet("order_count", "3"), SlotSet("vip", True)]


class ActionRich(Action):
    def name(self) -> str:
        return "action_rich"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        dispatcher.utter_message(
            text="Pick one", buttons=[{"title": "Track", "payload": "/track"}, {"title": "Cancel", "payload": "/stop"}]
        )
        dispatcher.utter_message(image="https://example.com/parcel.png")
        dispatcher.utter_message(json_message={"card": {"order": "48213"}})
        return []


class ActionTrackerEcho(Action):
    """Says what the tracker told it, so a test can read it back."""

    def name(self) -> str:
        return "action_tracker_echo"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        users = [e for e in tracker.events if e.get("event") == "user"]
        dispatcher.utter_message(
            custom={
                "sender_id": tracker.sender_id,
                "channel": tracker.get_latest_input_channel(),
                "intent": tracker.get_intent_of_latest_message(),
                "entities": tracker.latest_message.get("entities"),
                "text": tracker.latest_message.get("text"),
                "user_channels": [e.get("input_channel") for e in users],
                "slots": tracker.slots,
                "active_loop": tracker.active_loop,
                "latest_action_name": tracker.latest_action_name,
                "domain_slots": sorted(domain.get("slots", {})),
                "domain_forms": domain.get("forms"),
            }
        )
        return []


class ActionFirst(Action):
    def name(self) -> str:
        return "action_first"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="first")
        return [FollowupAction("action_second")]


class ActionSecond(Action):
    def name(self) -> str:
        return "action_second"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="second")
        return []


class ActionRefund(Action):
    def name(self) -> str:
        return "action_refund"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="A colleague will look at the refund.")
        return [SlotSet("handoff_reason", "Refund over the limit"), ConversationPaused()]


class ActionPause(Action):
    def name(self) -> str:
        return "action_pause"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        return [ConversationPaused()]


class ActionResume(Action):
    def name(self) -> str:
        return "action_resume"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        return [ConversationResumed()]


class ActionRemind(Action):
    def name(self) -> str:
        return "action_remind"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="I'll remind you tomorrow.")
        at = datetime(2030, 1, 2, 9, 30)
        return [
            ReminderCancelled(name="old_reminder"),
            ReminderScheduled(
                "remind_order",
                at,
                entities=[{"entity": "order_number", "value": "48213"}],
                name="tomorrow",
                kill_on_user_message=False,
            ),
            ReminderScheduled("remind_order", at + timedelta(days=1)),
            ReminderCancelled(),
        ]


class ActionStartOver(Action):
    def name(self) -> str:
        return "action_start_over"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        return [AllSlotsReset(), SlotSet("vip", True), UserUtteranceReverted()]


class ActionNewSession(Action):
    def name(self) -> str:
        return "action_new_session"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        return [SessionStarted()]


class ActionOpenForm(Action):
    def name(self) -> str:
        return "action_open_form"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        return [ActiveLoop("order_form"), SlotSet("requested_slot", "order_number")]


class ActionFail(Action):
    def name(self) -> str:
        return "action_fail"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="never sent")
        raise RuntimeError("the order system is down")


class ActionSlow(Action):
    def name(self) -> str:
        return "action_slow"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        await asyncio.sleep(60)
        return [SlotSet("vip", True)]


class ActionBlocking(Action):
    """A synchronous action waiting on something slow (here: the test says when)."""

    def name(self) -> str:
        return "action_blocking"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="released" if RELEASE.wait(20) else "never released")
        return []


class ActionWrongType(Action):
    """Sets a float slot to a word, after a valid event: nothing of it may be applied."""

    def name(self) -> str:
        return "action_wrong_type"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        dispatcher.utter_message(text="never sent")
        return [SlotSet("vip", True), SlotSet("order_count", "many")]


class ActionUnknownForm(Action):
    def name(self) -> str:
        return "action_unknown_form"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        return [ActiveLoop("no_such_form")]


class ActionNotAList(Action):
    def name(self) -> str:
        return "action_not_a_list"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> Any:
        return "done"


class ActionReject(Action):
    def name(self) -> str:
        return "action_reject"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Domain) -> list[dict[str, Any]]:
        raise ActionExecutionRejection("action_reject", "not now")
