"""``action_order_status``: the submit step of ``order_status_form`` (config/domain.yml). It looks the
order up (orders.py) and answers with its status; an order the shop does not know goes to people,
with the reason they will see in the console."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from . import orders


class ActionOrderStatus(Action):
    def name(self) -> str:
        return "action_order_status"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        number = str(tracker.get_slot("order_number") or "").strip()
        order = orders.find(number) if number else None
        if order is None:
            dispatcher.utter_message(response="order_unknown", order_number=number)
            # ConversationPaused: a person takes over; Seamline queues the conversation with this reason.
            return [SlotSet("handoff_reason", f"Order {number} not found"), ConversationPaused()]
        dispatcher.utter_message(
            response=f"order_{order.status}",
            order_number=order.number,
            carrier=order.carrier or "",
            delivery_date=order.delivery_date.isoformat() if order.delivery_date else "",
        )
        return []
