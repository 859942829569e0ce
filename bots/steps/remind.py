"""``remind``: the reminders a turn's actions scheduled or cancelled (Rasa's ReminderScheduled /
ReminderCancelled, in ``Decision.reminders`` / ``cancel_reminders``) are stored, and a message of
the customer cancels those that a message cancels (``kill_on_user_message``). Firing them is the
scheduler's (bots/dialogue/reminders.py); a fired reminder's own turn (``Pipeline.trigger``) walks
this step too, so a reminder may schedule the next one.
"""

from __future__ import annotations

from collections.abc import Sequence

from seamline.bots.dialogue.reminders import Reminders
from seamline.bots.steps.turn import Next, Turn
from seamline.shared.identity import Identity

REMINDER = "reminder"  # turn.data key: the name of the reminder this turn fires (no customer message)


class Remind:
    name = "remind"

    def __init__(self, *, reminders: Reminders) -> None:
        self._reminders = reminders

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        decision = turn.decision
        customer_wrote = turn.inbound is not None and REMINDER not in turn.data
        schedule = decision.reminders if decision is not None else ()
        cancel = decision.cancel_reminders if decision is not None else ()
        if customer_wrote or schedule or cancel:
            await self._reminders.update(
                turn.session.customer_id, schedule=schedule, cancel=cancel, customer_wrote=customer_wrote
            )
        await call_next(turn)


def reaching(identities: Sequence[Identity], last_channel: str | None) -> list[Identity]:
    """The order to try a customer's identities in for a message nobody asked for just now (as the
    handoff's delivery does): the channel they were on last, then the most recently active.
    ``identities``: the reachable ones, most recently active first."""
    return sorted(identities, key=lambda i: i.channel != last_channel)
