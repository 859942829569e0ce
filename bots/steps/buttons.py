"""Answers the handoff asked for.

``rate``: the rating buttons sent when an agent closed the chat ("/rate 4"): recorded, thanked
for, and nothing else is done with the message.
``callback``: a customer waiting in the queue (after hours, say) who leaves a phone number gets
it on the conversation, so the queue shows whom to call back.
"""

from __future__ import annotations

from seamline.bots.dialogue import Dialogue
from seamline.bots.steps.turn import Next, Turn
from seamline.shared.handoff_states import BOT_SILENT


def rating(payload: str | None) -> int | None:
    """ "/rate 4" (a rating button) → 4."""
    if payload and payload.startswith("/rate "):
        value = payload[6:].strip()
        if value in ("1", "2", "3", "4", "5"):
            return int(value)
    return None


class Rate:
    name = "rate"

    def __init__(self, *, handoff, dialogue: Dialogue) -> None:
        self._handoff = handoff
        self._dialogue = dialogue

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        score, session = rating(turn.message.payload), turn.session
        if score and "rating_for" in session.slots and self._handoff is not None and session.handoff not in BOT_SILENT:
            await self._handoff.rate(session, score)
            turn.answer(self._dialogue.say("handoff_rated", session), intent="rate", score=score)
            return
        await call_next(turn)


class Callback:
    name = "callback"

    def __init__(self, *, handoff) -> None:
        self._handoff = handoff

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        phone = turn.parse.entity("phone") if turn.parse is not None else None
        if phone and turn.session.handoff == "queued" and self._handoff is not None:
            await self._handoff.callback(turn.session, phone)
        await call_next(turn)
