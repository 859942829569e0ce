"""Steps for a conversation people are on.

``agents``: what the customer writes reaches the people on the conversation (the agent holding
it, or the consoles of the queue it waits in), whatever the bot does with it.
``silence``: while a person holds the conversation the bot says nothing; what it understood is
still stored for the agent. A customer asking to link another channel still gets their code.
"""

from __future__ import annotations

from seamline.bots.steps.turn import Next, Turn
from seamline.shared.handoff_states import BOT_SILENT


class ToAgents:
    name = "agents"

    def __init__(self, *, handoff) -> None:
        self._handoff = handoff  # handoff.service.Handoff, or None when no people take over

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        if self._handoff is not None and turn.inbound is not None:
            await self._handoff.customer_wrote(turn.session, turn.inbound)
        await call_next(turn)


class Silence:
    name = "silence"

    def __init__(self, *, linking: bool) -> None:
        self._linking = linking  # whether link codes are issued at all

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        if turn.session.handoff in BOT_SILENT:
            asks_for_code = turn.parse is not None and turn.parse.intent == "link_account" and self._linking
            if not asks_for_code:
                return  # "reply" stores what was understood, and says nothing
        await call_next(turn)
