"""Moving a conversation from one handoff state to another, the one way it is done.

Every move holds the customer's session lock, changes the conversation row and the session
together, records an event (who, why, when) and tells the live inboxes. Choosing an agent and
giving them the conversation holds one more lock (``assigning``), so two escalations or claims at
the same moment never both see the same free place.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from types import TracebackType
from typing import Any

from seamline.handoff.inbox import ConsoleInbox
from seamline.handoff.machine import check
from seamline.handoff.storage import ConversationInfo, HandoffStore, Move
from seamline.shared.history import ChatStore
from seamline.shared.message import utcnow
from seamline.shared.metrics import HANDOFF_WAIT
from seamline.shared.session import Session, SessionStore


class Transitions:
    def __init__(self, *, rows: HandoffStore, chat: ChatStore, sessions: SessionStore, inbox: ConsoleInbox) -> None:
        self.rows = rows
        self.chat = chat
        self.sessions = sessions
        self.inbox = inbox

    def assigning(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The session store's lock, so with Redis it holds across processes."""
        return self.sessions.lock("handoff:assign")

    def session(self, info: ConversationInfo) -> Locked:
        """``async with``: the conversation's customer session, locked, saved after."""
        return Locked(self, info)

    async def move(
        self,
        session: Session,
        state: str,
        *,
        by: str,
        reason: str,
        queue: str | None,
        agent_id: str | None,
        escalation: dict[str, Any] | None = None,
        queued_at: datetime | None = None,
    ) -> None:
        current = session.handoff
        check(current, state)
        now = utcnow()
        if current == "queued" and state == "with_agent":  # a person takes a waiting conversation
            await self._measure_wait(session.conversation_id, now)
        await self.rows.move(
            session.conversation_id,
            Move(
                state,
                queue,
                agent_id,
                now,
                escalation=escalation,
                queued_at=queued_at,
                assigned=state == "with_agent" and current != "with_agent",
            ),
        )
        session.handoff = state
        data = {"from": current, "to": state, "by": by, "reason": reason, "queue": queue, "agent_id": agent_id}
        await self.chat.record_event("handoff", session.customer_id, session.conversation_id, data)
        if state == "queued" and current == "bot":
            await self.chat.record_event(
                "handoff_requested",
                session.customer_id,
                session.conversation_id,
                {
                    "reason": reason,
                    "queue": queue,
                    "from": by,
                    **({"intent": escalation.get("intent")} if escalation else {}),
                },
            )
        await self.inbox.publish(
            {
                "type": "conversation",
                "conversation": {
                    "id": session.conversation_id,
                    "customer_id": session.customer_id,
                    "state": state,
                    "queue": queue,
                    "agent_id": agent_id,
                    "escalation": escalation,
                    "updated_at": now.isoformat(),
                },
            }
        )

    async def _measure_wait(self, conversation_id: str, now: datetime) -> None:
        """How long it waited in its queue (``seamline_handoff_wait_seconds``)."""
        info = await self.rows.get(conversation_id)
        if info is not None and info.queued_at is not None:
            HANDOFF_WAIT.observe(max(0.0, (now - info.queued_at).total_seconds()))


class Locked:
    """The session of a conversation's customer while its lock is held. A session now on another
    conversation (the customer moved on) is given back detached: changed here, never saved."""

    def __init__(self, transitions: Transitions, info: ConversationInfo) -> None:
        self._transitions, self._info = transitions, info
        self._lock: contextlib.AbstractAsyncContextManager[None] | None = None
        self._detached = False
        self.session: Session | None = None

    async def __aenter__(self) -> Session:
        sessions, info = self._transitions.sessions, self._info
        self._lock = sessions.lock(info.customer_id)
        await self._lock.__aenter__()
        try:
            session = await sessions.load(info.customer_id)
            if session is None or session.conversation_id != info.id:
                kept = session
                seen = kept.seen if kept else await self._transitions.chat.recent_external_ids(info.customer_id)
                session = Session(
                    customer_id=info.customer_id,
                    conversation_id=info.id,
                    language=kept.language if kept else "en",
                    handoff=info.state,
                    last_channel=kept.last_channel if kept else None,
                    seen=seen,
                )
                self._detached = kept is not None and kept.conversation_id != info.id
        except BaseException:
            await self._lock.__aexit__(None, None, None)
            raise
        session.handoff = info.state
        self.session = session
        return session

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._lock is not None and self.session is not None
        try:
            if kind is None and not self._detached:
                await self._transitions.sessions.save(self.session)
        finally:
            await self._lock.__aexit__(kind, error, trace)
