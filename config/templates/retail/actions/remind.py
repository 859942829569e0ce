"""``action_remind_tomorrow``: "remind me tomorrow". It schedules a reminder (Rasa's ReminderScheduled);
Seamline keeps it in its database, so it survives a restart, and tomorrow triggers the intent
``EXTERNAL_reminder`` for the customer, whose answer (a rule in config/rules.yml) goes out on the
channel they are on then.

Tomorrow at 10:00 in the customer's time zone when the slot ``timezone`` holds one (e.g.
Europe/Moscow, set by your own action or from the profile), else 24 hours from now.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ReminderScheduled
from rasa_sdk.executor import CollectingDispatcher

REMINDER = "remind_tomorrow"  # one such reminder per customer: asking again moves it


def tomorrow(zone: str | None, now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    try:
        local = ZoneInfo(zone) if zone else None
    except (ZoneInfoNotFoundError, ValueError):
        local = None
    if local is None:
        return now + timedelta(hours=24)
    day = now.astimezone(local).date() + timedelta(days=1)
    return datetime.combine(day, time(10, 0), tzinfo=local)


class ActionRemindTomorrow(Action):
    def name(self) -> str:
        return "action_remind_tomorrow"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        zone = tracker.slots.get("timezone")
        dispatcher.utter_message(response="reminder_set")
        # kill_on_user_message=False: the customer saying "thanks" now must not cancel tomorrow's reminder.
        return [
            ReminderScheduled(
                "EXTERNAL_reminder", tomorrow(str(zone) if zone else None), name=REMINDER, kill_on_user_message=False
            )
        ]
