"""The one place a message walks through: identity → session → understanding → decision → reply.

Every channel calls ``Pipeline.handle``; replies go out through the adapter of the channel
the message came from (the channel the customer is on now).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol

from bots.dialogue import Dialogue
from handoff.escalation import Escalation
from nlu.understanding import Understanding
from shared.errors import ChannelError, StoreError, Unreachable
from shared.history import StoredMessage, new_id
from shared.identity import Customer
from shared.message import Channel, Message, Reply, Role, utcnow
from shared.session import Session, SessionStore
from shared.storage.sql import SqlChatStore

log = logging.getLogger(__name__)


class Adapter(Protocol):
    channel: Channel

    async def send(self, address: str, reply: Reply) -> None: ...


@dataclass(frozen=True)
class Handled:
    duplicate: bool = False
    inbound: StoredMessage | None = None
    replies: tuple[StoredMessage, ...] = field(default=())


OnStored = Callable[[StoredMessage], Awaitable[None]]


class Pipeline:
    def __init__(self, *, store: SqlChatStore, sessions: SessionStore, understanding: Understanding,
                 dialogue: Dialogue, escalation: Escalation, default_language: str = "en") -> None:
        self._store = store
        self._sessions = sessions
        self.understanding = understanding
        self._dialogue = dialogue
        self._escalation = escalation
        self._default_language = default_language
        self._adapters: dict[Channel, Adapter] = {}

    def register(self, adapter: Adapter) -> None:
        self._adapters[adapter.channel] = adapter

    async def history(self, channel: Channel, sender: str, limit: int = 100) -> list[StoredMessage]:
        """Everything this sender's customer said and was told, on every channel; [] for a stranger."""
        customer = await self._store.find_customer(channel.value, sender)
        return [] if customer is None else await self._store.history(customer.id, limit)

    async def handle(self, message: Message, on_stored: OnStored | None = None) -> Handled:
        customer = await self._store.resolve_customer(message.channel.value, message.sender, message.address,
                                                      message.sender_name, message.language)
        async with self._sessions.lock(customer.id):
            session = await self._load_session(customer, message)
            try:
                return await self._walk(message, session, on_stored)
            finally:
                await self._sessions.save(session)

    async def handle_retrying(self, message: Message, on_stored: OnStored | None = None, *, attempts: int = 5,
                              backoff: float = 0.5) -> Handled:
        """``handle`` for a message the platform was already told we have: a storage outage (database or
        Redis down) is waited out, bounded, instead of losing what the customer wrote. Safe to repeat:
        a platform id counts as seen only once its turn is committed."""
        for attempt in range(1, attempts + 1):
            try:
                return await self.handle(message, on_stored)
            except StoreError:
                if attempt == attempts:
                    raise
                delay = min(backoff * 2 ** (attempt - 1), 30.0)
                log.warning("%s message %s: storage failed, retrying in %.1f s", message.channel.value,
                            message.external_id, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _walk(self, message: Message, session: Session, on_stored: OnStored | None) -> Handled:
        seen_key = f"{message.channel.value}:{message.external_id}" if message.external_id else None
        if seen_key and seen_key in session.seen:
            return Handled(duplicate=True)
        inbound = StoredMessage(
            id=new_id(), conversation_id=session.conversation_id, customer_id=session.customer_id,
            channel=message.channel.value, direction="in", role=Role.CUSTOMER.value, text=message.text,
            payload=message.payload, attachments=[a.__dict__ for a in message.attachments],
            external_id=message.external_id, created_at=message.ts,
        )
        await self._store.append(inbound)  # stored before anything else happens to it
        if session.last_channel != message.channel.value:
            session.last_channel = message.channel.value
            await self._store.touch_customer(session.customer_id, message.channel.value)
        if on_stored is not None:
            await on_stored(inbound)
        if session.handoff == "with_agent":
            if seen_key:
                session.remember(seen_key)
            return Handled(inbound=inbound)  # a person holds the conversation: the bot stays quiet

        parse = self.understanding.parse(message.text, message.payload)
        decision = self._dialogue.decide(parse, session)
        now = utcnow()
        replies = tuple(StoredMessage(
            id=new_id(), conversation_id=session.conversation_id, customer_id=session.customer_id,
            channel=message.channel.value, direction="out", role=reply.role.value, text=reply.text,
            buttons=[{"title": b.title, "payload": b.payload} for b in reply.buttons], created_at=now,
        ) for reply in decision.replies)
        # What was understood and what is answered are stored (together) before anything is sent.
        await self._store.annotate(inbound, parse.intent, parse.confidence, parse.to_dict(), replies)
        # Only now is the message done with: if anything above failed, a resend is processed again
        # (the database keeps the first copy of the message), so nothing is lost.
        if seen_key:
            session.remember(seen_key)
        if decision.escalate:
            await self._escalation.request(session, reason=decision.escalate, intent=parse.intent,
                                           message_id=inbound.id)
        for reply, stored in zip(decision.replies, replies):
            await self._deliver(message, Reply(reply.text, reply.buttons, reply.role, stored.id, stored.created_at))
        return Handled(inbound=inbound, replies=replies)

    async def _deliver(self, message: Message, reply: Reply) -> None:
        adapter = self._adapters.get(message.channel)
        if adapter is None:
            log.error("no adapter registered for %s; reply %s stays stored only", message.channel.value, reply.id)
            return
        try:
            await adapter.send(message.address, reply)
        except Unreachable:
            log.info("%s customer %s cannot be reached there any more", message.channel.value, message.sender)
            await self._store.set_reachable(message.channel.value, message.sender, False)
        except ChannelError:
            # The reply is stored; the customer sees it in their history when they come back.
            log.warning("could not deliver reply %s on %s", reply.id, message.channel.value, exc_info=True)

    async def _load_session(self, customer: Customer, message: Message) -> Session:
        session = await self._sessions.load(customer.id)
        if session is not None:
            return session
        # New, expired or evicted: rebuild what the database knows.
        conversation = await self._store.open_conversation(customer)
        return Session(
            customer_id=customer.id, conversation_id=conversation.id,
            language=customer.language or message.language or self._default_language,
            handoff=conversation.state, last_channel=customer.last_channel,
            seen=[] if customer.new else await self._store.recent_external_ids(customer.id),
        )
