"""The callback form (``callback_form`` in config/domain.yml): a phone number and a time to call.

``validate_callback_form`` is a rasa-sdk FormValidationAction: each ``validate_<slot>`` method gets the
value the customer gave and returns it (perhaps cleaned up) to keep it, or None to ask again.
``action_request_callback`` (the form's submit step) passes the request to people with the reason.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

DIGITS = re.compile(r"\d")
ALLOWED = re.compile(r"^\+?[\d\s().-]+$")


def phone(text: str) -> str | None:
    """A phone number written as people write them (+7 912 345-67-89, 8 (912) 345 67 89), as +digits;
    None when it cannot be one. Russian numbers written with 8 become +7."""
    text = text.strip()
    if not ALLOWED.match(text):
        return None
    digits = "".join(DIGITS.findall(text))
    if len(digits) == 11 and digits[0] == "8" and not text.startswith("+"):
        digits = "7" + digits[1:]
    return "+" + digits if 10 <= len(digits) <= 15 else None


class ValidateCallbackForm(FormValidationAction):
    def name(self) -> str:
        return "validate_callback_form"

    def validate_callback_phone(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        number = phone(str(slot_value or ""))
        if number is None:
            dispatcher.utter_message(response="callback_phone_invalid")
        return {"callback_phone": number}

    def validate_callback_time(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        text = str(slot_value or "").strip()
        return {"callback_time": text[:100] or None}


class ActionRequestCallback(Action):
    def name(self) -> str:
        return "action_request_callback"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        number, when = tracker.get_slot("callback_phone"), tracker.get_slot("callback_time")
        dispatcher.utter_message(response="callback_booked", callback_phone=number, callback_time=when)
        return [SlotSet("handoff_reason", f"Callback to {number}, {when}"), ConversationPaused()]
