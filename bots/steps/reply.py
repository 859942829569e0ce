"""``reply``: the one ending of every turn that was not a duplicate. After the steps inside it
(unless one before it answered: ``turn.handled``), what was understood, the replies and their
outbox rows are committed together, the message counts as answered, and the people on the
conversation see the replies. Sending is not done here, under the customer's session lock: the
pipeline hands the rows to the outbox's dispatcher once the lock is released (bots/outbox.py).

Committed before sent: if anything before failed, a resend is processed again; a reply that could
not be delivered stays in the history the customer sees when they come back.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from seamline.bots.steps.store import MASK
from seamline.bots.steps.turn import Annotation, Next, Turn
from seamline.shared.history import StoredMessage, new_id, reply_attachments
from seamline.shared.message import Message, utcnow
from seamline.shared.session import Session
from seamline.shared.storage.outbox import SqlOutbox
from seamline.shared.storage.sql import SqlChatStore

log = logging.getLogger(__name__)


class SendReplies:
    name = "reply"

    def __init__(self, *, store: SqlChatStore, outbox: SqlOutbox, handoff=None) -> None:
        self._store = store
        self._outbox = outbox
        self._handoff = handoff

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        if not turn.handled:
            await call_next(turn)
        await self.finish(turn)

    async def finish(self, turn: Turn) -> None:
        message, session = turn.message, turn.session
        stored = outgoing(message, session, turn.replies, turn.secret)
        note = turn.annotation
        if note is None:
            parse = turn.parse
            note = Annotation(parse.intent, parse.confidence, parse.to_dict()) if parse else Annotation(None, 1.0, {})
        if turn.inbound is None:
            raise RuntimeError("the reply step needs the message stored first: keep the store step before it")
        rows = self._outbox.rows(
            stored, turn.replies, channel=message.channel, address=message.address, identity=message.sender
        )
        await self._store.annotate(turn.inbound, note.intent, note.confidence, note.nlu, stored, rows)
        # Only now is the message done with.
        if turn.seen_key:
            session.remember(turn.seen_key)
        turn.sent = stored
        if self._handoff is not None and session.handoff != "bot":
            for row in stored:
                await self._handoff.customer_wrote(session, row)


def outgoing(message: Message, session: Session, replies, secret: str | None = None) -> tuple[StoredMessage, ...]:
    """The replies to ``message`` as stored: a microsecond apart, so that every history (the
    widget's, the agent console's) shows them in the order they were said; a link code shown in a
    reply is stored masked."""
    now = utcnow()
    return tuple(
        StoredMessage(
            id=new_id(),
            conversation_id=session.conversation_id,
            customer_id=session.customer_id,
            channel=message.channel,
            direction="out",
            role=reply.role.value,
            text=reply.text.replace(secret, MASK) if secret else reply.text,
            identity=message.sender,
            buttons=[{"title": b.title, "payload": b.payload} for b in reply.buttons],
            attachments=reply_attachments(reply.image, reply.custom),
            created_at=now + timedelta(microseconds=n),
        )
        for n, reply in enumerate(replies)
    )
