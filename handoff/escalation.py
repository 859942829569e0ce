"""Escalation: the bot decides a person should take over, and the conversation is queued.

States: ``bot`` → ``queued`` → ``with_agent`` → ``bot`` or ``resolved``. While queued the bot
still answers what it can; while with an agent it stays quiet on every channel.
"""
from __future__ import annotations

from shared.history import ChatStore
from shared.session import Session

DEFAULT_QUEUE = "support"


class Escalation:
    def __init__(self, *, store: ChatStore, default_queue: str = DEFAULT_QUEUE) -> None:
        self._store = store
        self._default_queue = default_queue

    async def request(self, session: Session, *, reason: str, intent: str | None, message_id: str) -> bool:
        """Queue the conversation; False when it already is with people (nothing to do)."""
        if session.handoff in ("queued", "with_agent"):
            return False
        session.handoff = "queued"
        await self._store.set_conversation_state(session.conversation_id, "queued", queue=self._default_queue)
        await self._store.record_event("handoff_requested", session.customer_id, session.conversation_id,
                                       {"reason": reason, "intent": intent, "queue": self._default_queue,
                                        "message_id": message_id, "from": "bot"})
        return True
