"""What linking says on the *other* channel: the question to the customer who asked for a code
("Someone on the website wants to link to this chat: yes / no"), and the news to the one who
typed it (linked, or not confirmed).

The pipeline's turn belongs to one side; these go to the other side through its adapter
(``Pipeline.send_to_customer``), stored first in that side's conversation like any reply. No
session lock is taken here (the turn holds its own; taking the other's could deadlock): the
other side's session is only read, for its conversation and language.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from seamline.bots.dialogue import Dialogue
from seamline.shared.history import StoredMessage, new_id
from seamline.shared.identity import Identity
from seamline.shared.linking import Outcome
from seamline.shared.message import Reply, utcnow
from seamline.shared.session import Session, SessionStore
from seamline.shared.storage.sql import SqlChatStore

log = logging.getLogger(__name__)

Send = Callable[[str, Reply, list[Identity]], Awaitable[str | None]]


class LinkNotices:
    def __init__(
        self,
        *,
        store: SqlChatStore,
        sessions: SessionStore,
        dialogue: Dialogue,
        send: Send,
        default_language: str = "en",
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._dialogue = dialogue
        self._send = send
        self._default_language = default_language

    async def _identity(self, channel: str, sender: str) -> tuple[str, Identity] | None:
        customer = await self._store.find_customer(channel, sender)
        if customer is None:
            return None
        found = [
            i for i in await self._store.identities(customer.id) if (i.channel, i.external_id) == (channel, sender)
        ]
        return (customer.id, found[0]) if found else None

    async def _tell(self, customer_id: str, identity: Identity, session: Session | None, replies) -> None:
        """Store each reply in the customer's conversation (when there is a session to say which), then
        send it to that one identity only."""
        for reply in replies:
            stored_id, now = new_id(), utcnow()
            if session is not None:
                await self._store.append(
                    StoredMessage(
                        id=stored_id,
                        conversation_id=session.conversation_id,
                        customer_id=customer_id,
                        channel=identity.channel,
                        direction="out",
                        role=reply.role.value,
                        text=reply.text,
                        identity=identity.external_id,
                        created_at=now,
                        buttons=[{"title": b.title, "payload": b.payload} for b in reply.buttons],
                    )
                )
            if (
                await self._send(customer_id, Reply(reply.text, reply.buttons, reply.role, stored_id, now), [identity])
                is None
            ):
                log.info("link notice for %s %s kept for when they come back", identity.channel, identity.external_id)

    async def ask(self, link: Outcome, asker_channel: str) -> None:
        """A live proof was typed on ``asker_channel``: ask the customer it was issued to, on the
        identity that asked for it, whether that was them."""
        _, channel, sender = link.context["ask"]
        found = await self._identity(channel, sender)
        if found is None:
            log.warning("link request for %s %s: that identity is gone; nobody to ask", channel, sender)
            return
        customer_id, identity = found
        session = await self._sessions.load(customer_id)
        language = session.language if session else self._default_language
        question = self._dialogue.link_question(asker_channel, link.context["ref"], language)
        await self._tell(customer_id, identity, session, [question])

    async def linked(self, session: Session, link: Outcome, topic: str | None, here: str) -> None:
        """The issuer said yes on ``here``: the side that typed the code hears it worked (and where it
        left off on ``here``). ``session`` is the joined one."""
        channel, sender = link.context["redeemer"]
        found = await self._identity(channel, sender)
        if found is None:
            return
        decision = self._dialogue.link_outcome("linked", session, topic=topic, from_channel=here)
        await self._tell(found[0], found[1], session, decision.replies)

    async def declined(self, link: Outcome) -> None:
        """The issuer said no: the other side hears only that nothing was linked."""
        channel, sender = link.context["redeemer"]
        found = await self._identity(channel, sender)
        if found is None:
            return
        session = await self._sessions.load(found[0])
        language = session.language if session else self._default_language
        await self._tell(found[0], found[1], session, [self._dialogue.link_declined_there(language)])
