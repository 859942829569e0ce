"""``decide``: what the bot says to what it understood (bots/dialogue/: rules, forms, custom
actions, fallbacks); an action that failed is recorded on the conversation, for the console. "Link my account" is answered here too: a code valid only on the channel it
will be typed on, shown to the customer and stored masked."""

from __future__ import annotations

from collections.abc import Mapping

from seamline.bots.dialogue import Decision, Dialogue
from seamline.bots.steps.turn import Next, Turn
from seamline.shared.linking import Linker, RateLimited
from seamline.shared.storage.sql import SqlChatStore


class Decide:
    name = "decide"

    def __init__(
        self,
        *,
        dialogue: Dialogue,
        linker: Linker | None = None,
        channels: Mapping[str, object] = {},
        store: SqlChatStore | None = None,
    ) -> None:
        self._store = store  # where a failed action is recorded (the agent console shows it)
        self._dialogue = dialogue
        self._linker = linker
        self._channels = channels  # the connected channels by name (the pipeline's adapters, live)

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        if turn.parse is not None:
            if turn.parse.intent == "link_account" and self._linker is not None:
                turn.secret, turn.decision = await self._link_code(turn, self._linker)
            else:
                turn.decision = await self._dialogue.decide(turn.parse, turn.session, message=turn.message)
                await self._record_problems(turn)
            turn.replies.extend(turn.decision.replies)
        await call_next(turn)

    async def _record_problems(self, turn: Turn) -> None:
        decision = turn.decision
        if self._store is None or decision is None:
            return
        for problem in decision.problems:
            action, _, why = problem.partition(": ")
            await self._store.record_event(
                "action_failed",
                turn.session.customer_id,
                turn.session.conversation_id,
                {"action": action, "problem": why or problem},
            )

    async def _link_code(self, turn: Turn, linker: Linker) -> tuple[str, Decision]:
        """With one other channel connected, a code for that one; with several, the customer picks
        (``/link_account <channel>``)."""
        message, session = turn.message, turn.session
        here = message.channel
        targets = [c for c in self._channels if c != here and c != "console"]
        chosen = (message.payload or "").split()[1:2]
        target = chosen[0] if chosen and chosen[0] in targets else targets[0] if len(targets) == 1 else None
        if target is None:
            return "", self._dialogue.link_where(targets, session)
        try:
            secret = await linker.issue_code(session.customer_id, here, message.sender, target=target)
        except RateLimited:
            secret = ""
        return secret, self._dialogue.link_code(secret, session, target)
