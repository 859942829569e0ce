"""The retail shop's custom actions, written against rasa-sdk exactly as for Rasa.

- ``order_status``: ``action_order_status`` answers where an order is, from the order table in
  ``orders.py`` (the place to call your real order system), or passes an unknown order to people
  with the reason;
- ``callback``: ``validate_callback_form`` checks the phone number the callback form asks for,
  ``action_request_callback`` passes the request to people;
- ``remind``: ``action_remind_tomorrow`` schedules a reminder (Rasa's ReminderScheduled), which comes
  back tomorrow as the intent ``EXTERNAL_reminder`` (answered by a rule in config/rules.yml).

Seamline runs them in its own process (the module named in config/seamline.toml ``[actions]``), or
they run on a Rasa action server: ``python -m rasa_sdk --actions actions`` in the project's folder.
docs/examples.md walks through each.
"""

from . import callback, order_status, remind

__all__ = ["callback", "order_status", "remind"]
