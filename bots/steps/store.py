"""``store``: the message is stored before anything else happens to it, so nothing the customer
wrote is lost if a later step fails (a resend is processed again; the database keeps the first
copy). A link proof (a code, a token, a yes/no answer) is never stored in clear, even a used one."""

from __future__ import annotations

from seamline.bots.steps.turn import Next, Turn
from seamline.shared.history import StoredMessage, new_id
from seamline.shared.linking import Linker
from seamline.shared.message import Role
from seamline.shared.storage.sql import SqlChatStore

MASK = "••••••"  # what is stored instead of a link code


class StoreInbound:
    name = "store"

    def __init__(self, *, store: SqlChatStore) -> None:
        self._store = store

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        message, session = turn.message, turn.session
        text, payload = message.text, message.payload
        if turn.link is not None:
            token, answer = Linker.token_in(payload), Linker.answer_in(payload)
            if answer:
                payload = "/link_yes" if answer[0] else "/link_no"
            elif token:
                text, payload = text.replace(token, "").strip() or "/start", "/start"
            else:
                text = MASK
        turn.inbound = StoredMessage(
            id=new_id(),
            conversation_id=session.conversation_id,
            customer_id=session.customer_id,
            channel=message.channel,
            direction="in",
            role=Role.CUSTOMER.value,
            text=text,
            payload=payload,
            attachments=[a.__dict__ for a in message.attachments],
            external_id=message.external_id,
            identity=message.sender,
            created_at=message.ts,
        )
        await self._store.append(turn.inbound)
        if session.last_channel != message.channel:
            session.last_channel = message.channel
            await self._store.touch_customer(session.customer_id, message.channel)
        if turn.on_stored is not None:
            await turn.on_stored(turn.inbound)
        await call_next(turn)
