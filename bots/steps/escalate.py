"""``escalate``: the conversation goes to people when the dialogue says so (an intent configured
to escalate) or a routing rule matches (words, fallbacks in a row, a profile attribute such as
``vip``); the customer is told who took it, or their place in the queue, or when people are back.
A custom action's ConversationResumed (``Decision.resume``) hands a conversation back to the bot."""

from __future__ import annotations

from seamline.bots.steps.turn import Next, Turn


class Escalate:
    name = "escalate"

    def __init__(self, *, handoff) -> None:
        self._handoff = handoff  # handoff.service.Handoff

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        session, parse = turn.session, turn.parse
        if (
            turn.decision is not None
            and turn.decision.resume
            and session.handoff != "bot"
            and self._handoff is not None
        ):
            await self._handoff.transitions.move(
                session, "bot", by="bot", reason="resumed by an action", queue=None, agent_id=None
            )
            session.fallbacks = 0
        # Not while a link code is shown: the customer is about to type it elsewhere.
        inbound = turn.inbound
        if (
            self._handoff is not None
            and session.handoff == "bot"
            and turn.secret is None
            and parse is not None
            and inbound is not None
        ):
            decided = turn.decision.escalate if turn.decision is not None else None
            reason = decided or self._handoff.trigger(
                intent=parse.intent if parse.understood else None,
                text=turn.message.text,
                fallbacks=session.fallbacks,
                attributes=session.attributes,
            )
            if reason:
                turn.replies.extend(
                    await self._handoff.escalate(
                        session, reason=reason, parse=parse, message=turn.message, inbound_id=inbound.id
                    )
                )
        await call_next(turn)
