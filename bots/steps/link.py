"""``link``: the customer proves another channel is theirs (a deep-link token "/start ln-…", a
6-digit code, or the yes/no answer of the customer a code was issued to). The proof is redeemed
before the turn (``redeem``, outside the session lock: linking may merge two customers); this
step answers it here, then tells the other side: asks the issuer (pending), or tells the side
that typed the code how it ended (linked, declined).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from seamline.bots.dialogue import Dialogue
from seamline.bots.link_notices import LinkNotices
from seamline.bots.steps.turn import Next, Turn
from seamline.shared.identity import Customer
from seamline.shared.linking import Linker, Outcome
from seamline.shared.message import Message
from seamline.shared.session import SEEN_LIMIT, SessionStore
from seamline.shared.storage.sql import SqlChatStore


async def redeem(
    linker: Linker | None, *, store: SqlChatStore, sessions: SessionStore, message: Message, customer: Customer
) -> Outcome | None:
    """The link proof in ``message`` redeemed, or None (no proof, or a resent message: the walk
    drops it as a duplicate)."""
    if linker is None:
        return None
    answer = Linker.answer_in(message.payload)
    token = None if answer else Linker.token_in(message.payload)
    code = None if answer or token or message.payload else Linker.code_in(message.text)
    if answer is None and token is None and code is None:
        return None
    peek = None if customer.new else await sessions.load(customer.id)
    seen_key = f"{message.channel}:{message.external_id}" if message.external_id else None
    if peek is not None and seen_key and seen_key in peek.seen:
        return None
    if (
        message.external_id
        and len(peek.seen if peek else ()) >= SEEN_LIMIT
        and await store.answered(message.channel, message.external_id)
    ):
        return None  # resent after more messages than the session remembers
    channel, sender = message.channel, message.sender
    if answer:
        return await linker.answer(answer[1], answer[0], customer.id, channel, sender)
    if token:
        return await linker.redeem_token(token, customer.id, channel, sender)
    # While a form asks for something (an order number, say), six digits are checked as a code only
    # while the guessing budgets have room (they are counted all the same); no live code: the answer.
    if code is None:
        return None
    asked_for_number = peek is not None and peek.active_form is not None
    return await linker.redeem_code(
        code, customer.id, channel, sender, address=message.client_address, strict=not asked_for_number
    )


class AnswerLink:
    name = "link"

    def __init__(
        self,
        *,
        store: SqlChatStore,
        dialogue: Dialogue,
        notices: LinkNotices,
        handoff=None,
        on_linked: list[Callable[[str], Awaitable[None]]],
    ) -> None:
        self._store = store
        self._dialogue = dialogue
        self._notices = notices
        self._handoff = handoff
        self._on_linked = on_linked  # the pipeline's listeners (the widget refreshes its history)

    async def __call__(self, turn: Turn, call_next: Next) -> None:
        link = turn.link
        if link is None:
            return await call_next(turn)
        session, here = turn.session, turn.message.channel
        shown = "confirmed" if link.status == "linked" else link.status  # the issuer said yes, here
        decision = self._dialogue.link_outcome(
            shown, session, from_channel=link.from_channel, minutes=link.context.get("minutes")
        )
        turn.decision = decision
        turn.answer(*decision.replies, intent="link_account", link=link.status)
        turn.handled = True
        await call_next(turn)  # "reply" stores and sends the answer; then the other side hears
        if link.status == "linked" and self._handoff is not None and session.handoff != "bot":
            await self._handoff.customer_linked(session, link.from_channel or here)
        if link.status == "pending":
            await self._notices.ask(link, here)
        elif link.status == "declined":
            await self._notices.declined(link)
        elif link.status == "linked":
            await self._notices.linked(session, link, await self._topic(session.customer_id, here), here)
            for listener in self._on_linked:
                await listener(session.customer_id)

    async def _topic(self, customer_id: str, channel: str) -> str | None:
        """The last thing the customer asked about on ``channel`` (an intent), to pick up from."""
        for stored in reversed(await self._store.history(customer_id, 50)):
            if (
                stored.direction == "in"
                and stored.channel == channel
                and stored.intent
                and self._dialogue.has_topic(stored.intent)
            ):
                return stored.intent
        return None
