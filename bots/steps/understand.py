"""``understand``: the intent, its confidence and the entities of the message (nlu/), kept on the
turn for the steps after it and stored with the message.
``typing``: once it is clear the bot will answer, the channel may show "typing…"."""

from __future__ import annotations

import time

from seamline.bots.steps.turn import Next, Turn
from seamline.nlu.understanding import Understanding
from seamline.shared import logs
from seamline.shared.handoff_states import BOT_SILENT
from seamline.shared.metrics import NLU_SECONDS


class Understand:
    name = "understand"

    def __init__(self, *, understanding: Understanding) -> None:
        self._understanding = understanding

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        # The turn's log records name its conversation from here on (the pipeline may already have).
        logs.conversation.set(turn.session.conversation_id)
        if turn.parse is None:
            started = time.perf_counter()
            turn.parse = self._understanding.parse(turn.message.text, turn.message.payload)
            NLU_SECONDS.observe(time.perf_counter() - started)
        await call_next(turn)


class Typing:
    name = "typing"

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        if turn.on_answering is not None and turn.inbound is not None and turn.session.handoff not in BOT_SILENT:
            await turn.on_answering(turn.inbound)
        await call_next(turn)
