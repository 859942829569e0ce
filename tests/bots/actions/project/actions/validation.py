"""A form's validation in a submodule (the runner registers the package's submodules too)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher


class ValidateOrderForm(FormValidationAction):
    def name(self) -> str:
        return "validate_order_form"

    def validate_order_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        if str(value).startswith("0"):
            dispatcher.utter_message(text="Order numbers never start with 0.")
            return {"order_number": None}
        return {"order_number": str(value).strip()}
