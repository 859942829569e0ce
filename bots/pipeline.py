"""The one place a message walks through: identity → session → understanding → decision → reply.

Every channel calls ``Pipeline.handle``; replies go out through the adapter of the channel
the message came from (the channel the customer is on now).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Awaitable, Callable, Protocol

from seamline.bots.dialogue import Decision, Dialogue
from seamline.bots.link_notices import LinkNotices
from seamline.shared.handoff_states import BOT_SILENT, WITH_PEOPLE
from seamline.nlu.understanding import Understanding
from seamline.shared.errors import ChannelError, StoreError, Unreachable
from seamline.shared.history import StoredMessage, new_id
from seamline.shared.identity import Customer
from seamline.shared.linking import Linker, Outcome, RateLimited
from seamline.shared.message import Attachment, Message, Reply, Role, utcnow
from seamline.shared.session import SEEN_LIMIT, Session, SessionStore
from seamline.shared.storage.sql import SqlChatStore

log = logging.getLogger(__name__)
MASK = "••••••"  # what is stored instead of a link code


class Adapter(Protocol):
    channel: str

    async def send(self, address: str, reply: Reply) -> None: ...


@dataclass(frozen=True)
class Handled:
    duplicate: bool = False
    inbound: StoredMessage | None = None
    replies: tuple[StoredMessage, ...] = field(default=())


OnStored = Callable[[StoredMessage], Awaitable[None]]


class Pipeline:
    def __init__(self, *, store: SqlChatStore, sessions: SessionStore, understanding: Understanding,
                 dialogue: Dialogue, handoff=None, default_language: str = "en",
                 linker: Linker | None = None) -> None:
        self._store = store
        self._linker = linker
        self._sessions = sessions
        self.understanding = understanding
        self._dialogue = dialogue
        self._handoff = handoff  # handoff.service.Handoff: escalation, queues, agents
        self._default_language = default_language
        self._adapters: dict[str, Adapter] = {}
        self._link_notices = LinkNotices(store=store, sessions=sessions, dialogue=dialogue, send=self.send_to_customer,
                                         default_language=default_language)
        # Called with the survivor's id when two customers became one (the widget refreshes its history).
        self.on_linked: list[Callable[[str], Awaitable[None]]] = []

    def register(self, adapter: Adapter) -> None:
        self._adapters[adapter.channel] = adapter

    @property
    def store(self) -> SqlChatStore:
        return self._store

    async def history(self, channel: str, sender: str, limit: int = 100) -> list[StoredMessage]:
        """Everything this sender's customer said and was told, on every channel; [] for a stranger."""
        customer = await self._store.find_customer(channel, sender)
        return [] if customer is None else await self._store.history(customer.id, limit)

    async def handle(self, message: Message, on_stored: OnStored | None = None,
                     on_answering: OnStored | None = None) -> Handled:
        """Walk one message. ``on_stored`` runs once it is durable (the widget's acknowledgement);
        ``on_answering`` once it is clear the bot will answer it (a messenger's "typing…")."""
        customer = await self._store.resolve_customer(message.channel, message.sender, message.address,
                                                      message.sender_name, message.language)
        link = await self._try_link(message, customer)
        if link is not None and link.linked and link.survivor_id != customer.id:
            customer = await self._store.fresh_customer(message.channel, message.sender) or customer
        for _ in range(3):
            async with self._sessions.lock(customer.id):
                session = await self._sessions.load(customer.id)
                if session is None and not customer.new:
                    # Lost, expired, or this identity was linked to another customer or erased (maybe by
                    # another process): ask the database who it belongs to before rebuilding.
                    fresh = await self._store.fresh_customer(message.channel, message.sender)
                    if fresh is None:  # erased: whoever writes now is a new customer
                        fresh = await self._store.resolve_customer(message.channel, message.sender,
                                                                   message.address, message.sender_name,
                                                                   message.language)
                    if fresh.id != customer.id:
                        customer = fresh
                        continue
                if session is None:
                    session = await self._rebuild_session(customer, message)
                try:
                    return await self._walk(message, session, on_stored, link, on_answering)
                finally:
                    await self._sessions.save(session)
        raise StoreError(f"{message.channel} {message.sender}: the customer kept changing while loading")

    async def _try_link(self, message: Message, customer: Customer) -> Outcome | None:
        """A link step, taken before the turn: a deep-link token ("/start ln-…"), a message that is just
        a 6-digit code, or the answer ("/link_yes <ref>" / "/link_no <ref>") of the customer a code
        was issued to."""
        if self._linker is None:
            return None
        answer = Linker.answer_in(message.payload)
        token = None if answer else Linker.token_in(message.payload)
        code = None if answer or token or message.payload else Linker.code_in(message.text)
        if answer is None and token is None and code is None:
            return None
        peek = None if customer.new else await self._sessions.load(customer.id)
        seen_key = f"{message.channel}:{message.external_id}" if message.external_id else None
        if peek is not None and seen_key and seen_key in peek.seen:
            return None  # a resent message: the walk drops it as a duplicate
        if seen_key and len(peek.seen if peek else ()) >= SEEN_LIMIT and await self._store.answered(
                message.channel, message.external_id):
            return None  # resent after more messages than the session remembers: a duplicate too
        channel, sender = message.channel, message.sender
        if answer:
            return await self._linker.answer(answer[1], answer[0], customer.id, channel, sender)
        if token:
            return await self._linker.redeem_token(token, customer.id, channel, sender)
        # When the bot asked for an order number, six digits are checked as a code only while the
        # guessing budgets have room (they are counted all the same); no live code: the order number.
        asked_for_number = peek is not None and peek.active_form == "order_status"
        return await self._linker.redeem_code(code, customer.id, channel, sender, address=message.client_address,
                                              strict=not asked_for_number)

    async def handle_retrying(self, message: Message, on_stored: OnStored | None = None, *, attempts: int = 5,
                              backoff: float = 0.5, on_answering: OnStored | None = None) -> Handled:
        """``handle`` for a message the platform was already told we have: a storage outage (database or
        Redis down) is waited out, bounded, instead of losing what the customer wrote. Safe to repeat:
        a platform id counts as seen only once its turn is committed."""
        for attempt in range(1, attempts + 1):
            try:
                return await self.handle(message, on_stored, on_answering)
            except StoreError:
                if attempt == attempts:
                    raise
                delay = min(backoff * 2 ** (attempt - 1), 30.0)
                log.warning("%s message %s: storage failed, retrying in %.1f s", message.channel,
                            message.external_id, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def answer_unanswered(self, channel: str, within: timedelta = timedelta(days=1)) -> int:
        """Walk again the messages stored on ``channel`` (within the last ``within``) whose turn never
        committed: a crash came after the message was stored (and acknowledged) but before it was
        answered. Returns how many were answered. The widget's messages are recovered this way; the
        messengers' updates through their inbox (bots/intake.py)."""
        answered = 0
        for stored in await self._store.unanswered(channel, utcnow() - within):
            message = Message(channel=channel, address=stored.identity or "", sender=stored.identity or "",
                              text=stored.text, payload=stored.payload, external_id=stored.external_id,
                              attachments=tuple(Attachment(**a) for a in stored.attachments or ()),
                              ts=stored.created_at)
            try:
                handled = await self.handle(message)
            except Exception:  # noqa: BLE001 - one broken message must not keep the others unanswered
                log.exception("%s message %s: answering it after a restart failed", channel, stored.external_id)
                continue
            answered += not handled.duplicate
        return answered

    async def _walk(self, message: Message, session: Session, on_stored: OnStored | None,
                    link: Outcome | None = None, on_answering: OnStored | None = None) -> Handled:
        seen_key = f"{message.channel}:{message.external_id}" if message.external_id else None
        if seen_key and seen_key in session.seen:
            return Handled(duplicate=True)
        if seen_key and len(session.seen) >= SEEN_LIMIT and await self._store.answered(
                message.channel, message.external_id):
            # Answered, but longer ago than the session's window of seen ids reaches (a window not
            # full holds every id the customer's messages were answered under: nothing to look up).
            return Handled(duplicate=True)
        text, payload = message.text, message.payload
        if link is not None:  # a proof is never kept in clear, even a used one
            token, answer = Linker.token_in(payload), Linker.answer_in(payload)
            if answer:
                payload = "/link_yes" if answer[0] else "/link_no"
            elif token:
                text, payload = text.replace(token, "").strip() or "/start", "/start"
            else:
                text = MASK
        inbound = StoredMessage(
            id=new_id(), conversation_id=session.conversation_id, customer_id=session.customer_id,
            channel=message.channel, direction="in", role=Role.CUSTOMER.value, text=text,
            payload=payload, attachments=[a.__dict__ for a in message.attachments],
            external_id=message.external_id, identity=message.sender, created_at=message.ts,
        )
        await self._store.append(inbound)  # stored before anything else happens to it
        if session.last_channel != message.channel:
            session.last_channel = message.channel
            await self._store.touch_customer(session.customer_id, message.channel)
        if on_stored is not None:
            await on_stored(inbound)
        if link is not None:
            return await self._answer_link(message, session, inbound, link, seen_key)
        if self._handoff is not None:
            await self._handoff.customer_wrote(session, inbound)
        if session.handoff in BOT_SILENT:
            # A person holds the conversation: the bot stays quiet, but what it understood is kept for
            # the agent, and a customer asking to link another channel still gets their code.
            parse = self.understanding.parse(message.text, message.payload)
            if parse.intent != "link_account" or self._linker is None:
                await self._store.annotate(inbound, parse.intent, parse.confidence, parse.to_dict(), ())
                if seen_key:
                    session.remember(seen_key)
                return Handled(inbound=inbound)
        else:
            if on_answering is not None:
                await on_answering(inbound)
            rating = _rating(message.payload)
            if rating and "rating_for" in session.slots and self._handoff is not None:
                await self._handoff.rate(session, rating)
                return await self._answer(message, session, inbound, seen_key,
                                          [self._dialogue.say("handoff_rated", session)], "rate", {"score": rating})
            parse = self.understanding.parse(message.text, message.payload)
        phone = parse.entity("phone")
        if phone and session.handoff == "queued" and self._handoff is not None:
            await self._handoff.callback(session, phone)  # e.g. left after hours: shows in the queue
        secret = None
        if parse.intent == "link_account" and self._linker is not None:
            secret, decision = await self._link_code(message, session)
        else:
            decision = self._dialogue.decide(parse, session)
        out = list(decision.replies)
        if self._handoff is not None and session.handoff == "bot" and secret is None:
            reason = decision.escalate or self._handoff.trigger(
                intent=parse.intent if parse.understood else None, text=message.text,
                fallbacks=session.fallbacks, attributes=session.attributes)
            if reason:
                out += await self._handoff.escalate(session, reason=reason, parse=parse, message=message,
                                                    inbound_id=inbound.id)
        replies = _outgoing(message, session, out, secret)
        # What was understood and what is answered are stored (together) before anything is sent.
        await self._store.annotate(inbound, parse.intent, parse.confidence, parse.to_dict(), replies)
        # Only now is the message done with: if anything above failed, a resend is processed again
        # (the database keeps the first copy of the message), so nothing is lost.
        if seen_key:
            session.remember(seen_key)
        if self._handoff is not None and session.handoff != "bot":
            for stored in replies:
                await self._handoff.customer_wrote(session, stored)
        for reply, stored in zip(out, replies):
            await self._deliver(message, Reply(reply.text, reply.buttons, reply.role, stored.id, stored.created_at))
        return Handled(inbound=inbound, replies=replies)

    async def _answer(self, message: Message, session: Session, inbound: StoredMessage, seen_key: str | None,
                      answers: list[Reply], intent: str, nlu: dict) -> Handled:
        replies = _outgoing(message, session, answers)
        await self._store.annotate(inbound, intent, 1.0, {"intent": intent, **nlu}, replies)
        if seen_key:
            session.remember(seen_key)
        for reply, stored in zip(answers, replies):
            await self._deliver(message, Reply(reply.text, reply.buttons, reply.role, stored.id, stored.created_at))
        return Handled(inbound=inbound, replies=replies)

    async def _link_code(self, message: Message, session: Session) -> tuple[str, Decision]:
        """"Link my account": a code valid only on the channel it will be typed on. With one other
        channel connected, for that one; with several, the customer picks (``/link_account <channel>``)."""
        here = message.channel
        targets = [c for c in self._adapters if c != here and c != "console"]
        chosen = (message.payload or "").split()[1:2]
        target = chosen[0] if chosen and chosen[0] in targets else targets[0] if len(targets) == 1 else None
        if target is None:
            return "", self._dialogue.link_where(targets, session)
        try:
            secret = await self._linker.issue_code(session.customer_id, here, message.sender, target=target)
        except RateLimited:
            secret = ""
        return secret, self._dialogue.link_code(secret, session, target)

    async def _answer_link(self, message: Message, session: Session, inbound: StoredMessage, link: Outcome,
                           seen_key: str | None) -> Handled:
        """Answer a link step here, then tell the other side: ask the issuer (pending), or tell the side
        that typed the code how it ended (linked, declined)."""
        here = message.channel
        shown = "confirmed" if link.status == "linked" else link.status  # the issuer said yes, here
        decision = self._dialogue.link_outcome(shown, session, from_channel=link.from_channel,
                                               minutes=link.context.get("minutes"))
        replies = _outgoing(message, session, decision.replies)
        await self._store.annotate(inbound, "link_account", 1.0, {"intent": "link_account", "link": link.status},
                                   replies)
        if seen_key:
            session.remember(seen_key)
        if self._handoff is not None and session.handoff != "bot":  # the agent's view follows
            for stored in (inbound, *replies):
                await self._handoff.customer_wrote(session, stored)
            if link.status == "linked":
                await self._handoff.customer_linked(session, link.from_channel or here)
        for reply, stored in zip(decision.replies, replies):
            await self._deliver(message, Reply(reply.text, reply.buttons, reply.role, stored.id, stored.created_at))
        if link.status == "pending":
            await self._link_notices.ask(link, here)
        elif link.status == "declined":
            await self._link_notices.declined(link)
        elif link.status == "linked":
            await self._link_notices.linked(session, link, await self._topic(session.customer_id, here), here)
            for listener in self.on_linked:
                await listener(session.customer_id)
        return Handled(inbound=inbound, replies=replies)

    async def _topic(self, customer_id: str, channel: str) -> str | None:
        """The last thing the customer asked about on ``channel`` (an intent), to pick up from."""
        for stored in reversed(await self._store.history(customer_id, 50)):
            if stored.direction == "in" and stored.channel == channel and stored.intent:
                if self._dialogue.has_topic(stored.intent):
                    return stored.intent
        return None

    async def send_to_customer(self, customer_id: str, reply: Reply, identities) -> str | None:
        """A reply nobody asked for just now (an agent's, say): to the most recently active reachable
        identity whose channel is connected, falling back to the next. Returns the channel used."""
        for identity in identities:
            adapter = self._adapters.get(identity.channel)
            if adapter is None:
                continue
            try:
                await adapter.send(identity.address, reply)
                return identity.channel
            except Unreachable:
                await self._store.set_reachable(identity.channel, identity.external_id, False)
            except ChannelError:
                log.warning("could not deliver reply %s on %s", reply.id, identity.channel, exc_info=True)
        return None

    async def _deliver(self, message: Message, reply: Reply) -> None:
        adapter = self._adapters.get(message.channel)
        if adapter is None:
            log.error("no adapter registered for %s; reply %s stays stored only", message.channel, reply.id)
            return
        try:
            await adapter.send(message.address, reply)
        except Unreachable:
            log.info("%s customer %s cannot be reached there any more", message.channel, message.sender)
            await self._store.set_reachable(message.channel, message.sender, False)
        except ChannelError:
            # The reply is stored; the customer sees it in their history when they come back.
            log.warning("could not deliver reply %s on %s", reply.id, message.channel, exc_info=True)

    async def _rebuild_session(self, customer: Customer, message: Message) -> Session:
        """New, expired or evicted: rebuild what the database knows."""
        conversation = await self._store.open_conversation(customer)
        return Session(
            customer_id=customer.id, conversation_id=conversation.id,
            language=customer.language or message.language or self._default_language,
            handoff=conversation.state if conversation.state in WITH_PEOPLE else "bot",
            last_channel=customer.last_channel, attributes=dict(customer.attributes),
            seen=[] if customer.new else await self._store.recent_external_ids(customer.id),
        )


def _rating(payload: str | None) -> int | None:
    """"/rate 4" (a rating button) → 4."""
    if payload and payload.startswith("/rate "):
        value = payload[6:].strip()
        if value in ("1", "2", "3", "4", "5"):
            return int(value)
    return None


def _outgoing(message: Message, session: Session, replies, secret: str | None = None) -> tuple[StoredMessage, ...]:
    """The replies to ``message`` as stored: a microsecond apart, so that every history (the
    widget's, the agent console's) shows them in the order they were said; a link code shown in a
    reply is stored masked."""
    now = utcnow()
    return tuple(StoredMessage(
        id=new_id(), conversation_id=session.conversation_id, customer_id=session.customer_id,
        channel=message.channel, direction="out", role=reply.role.value,
        text=reply.text.replace(secret, MASK) if secret else reply.text, identity=message.sender,
        buttons=[{"title": b.title, "payload": b.payload} for b in reply.buttons],
        created_at=now + timedelta(microseconds=n)) for n, reply in enumerate(replies))
